"""Warm a color on every route class, straight to its own port, until its latency settles.

A freshly started shop holds one PostgreSQL connection (the pool's min_size is 0) and
one Redis connection, and has run none of its code paths. The moment nginx sends it
the live traffic it opens the rest, each a SCRAM handshake, while the requests queue
behind them: at 50 VUs on one CPU (the production limit) its first second had a p99
of 250-300 ms, and the analysis rolled back healthy releases. Like a load balancer's
slow start, the warm-up opens those connections and runs the hot code paths first.

**What it sends.** Rounds of requests, ``concurrency`` at a time, covering every route
class live traffic uses (:data:`ROUTE_CLASSES`): catalogue reads (categories, listings,
product pages), search, a cart round trip on a throwaway cart (PUT a line, GET the
cart, DELETE the line: the emptied cart is gone from Redis), a checkout, and the
storefront's HTML pages (home, category, product, search, cart). The checkout is the
shop's dry run (docs/shop.md, "Dry-run checkout"): sent to the color's loopback admin
listener with the admin token, it checks out a scratch product in a PostgreSQL
transaction that is rolled back, so a warm-up leaves no order, no stock change, no
customer, product or cart behind, and counts no order in the business metrics.

**When it stops** (:func:`settled`): once a round's p90 is within :data:`TOLERANCE` of
the previous round's, or under :data:`FLOOR_S`, after at least :data:`MIN_ROUNDS`
rounds: the color answers at its warm latency. Else at the request budget or
``seconds``; not settling is reported, not fatal: the analysis judges the live traffic.

Every request must be answered with a 2xx within :data:`REQUEST_TIMEOUT_S`; anything
else is the color failing before it took traffic, named in one line.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from ocean import secrets
from ocean.errors import OceanError
from ocean.rollout.samples import quantile
from ocean.runtime.base import Runtime

SEARCH_TERMS = ("ocean", "mask", "fin", "reef", "wave")
CATALOGUE, SEARCH, CART, CHECKOUT, PAGES = "catalogue", "search", "cart", "checkout", "pages"
ROUTE_CLASSES = (CATALOGUE, SEARCH, CART, CHECKOUT, PAGES)
# One round's mix, in the order it is sent: what a shopper does, every class in each
# round of 25 requests or more (a cart round trip is 3 requests).
KINDS = (
    "product",
    "list",
    "search",
    "page home",
    "cart",
    "product",
    "page product",
    "categories",
    "checkout",
    "page search",
    "product",
    "page category",
    "search",
    "page cart",
    "list",
    "product",
    "page product",
    "cart",
    "search",
    "product",
    "page home",
)
ROUND_REQUESTS = 50  # per round; fewer when the budget is small (MIN_ROUNDS rounds)
MIN_ROUNDS = 2  # the first round pays the connects: never settled on it alone
TOLERANCE = 0.25  # a round's p90 within 25% of the previous round's: settled
FLOOR_S = 0.025  # or a p90 under 25 ms: warm whatever the previous round was
TIME_LIMIT_S = 30.0  # no round starts after this
# A request unanswered this long fails the warm-up. Generous: a cold color on a busy
# machine (load 20 on 2 cores) took seconds for a few of its first requests, and the
# latency is what the rounds measure; a color that does not answer at all still fails.
REQUEST_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Call:
    """One request: its route class, and whether it goes to the admin listener."""

    route_class: str
    method: str
    path: str
    body: dict | None = None
    admin: bool = False

    @property
    def api(self) -> bool:
        """Whether the analysis counts it (slo.yaml's api_selector: /api/ routes)."""
        return self.path.startswith("/api/")


Task = tuple[Call, ...]  # sent one after the other (a cart round trip), timed each


@dataclass(frozen=True)
class Round:
    requests: int
    p50_s: float
    p90_s: float
    seconds: float


@dataclass(frozen=True)
class Admin:
    """A color's admin listener and token: what the dry-run checkout needs."""

    url: str
    token: str

    @classmethod
    def of(cls, runtime: Runtime, color: str) -> Admin:
        token = secrets.load_or_create(runtime.settings.secrets_file)["SHOP_ADMIN_TOKEN"]
        return cls(runtime.url(f"shop-{color}-admin"), token)


@dataclass(frozen=True)
class WarmUp:
    requests: int
    api_requests: int  # those the analysis counts (its baseline must include them)
    concurrency: int
    seconds: float
    rounds: tuple[Round, ...]
    settled: bool
    stopped: str  # why it stopped: "settled", "request budget" or "time limit"
    classes: dict[str, int] = field(default_factory=dict)  # route class → requests

    def as_dict(self) -> dict:
        """The figures the deploy history keeps (milliseconds, rounded)."""
        return {
            "settled": self.settled,
            "stopped": self.stopped,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "classes": self.classes,
            "rounds_p50_p90_ms": [
                [round(r.p50_s * 1000, 1), round(r.p90_s * 1000, 1)] for r in self.rounds
            ],
        }

    @property
    def p90_s(self) -> float:
        return self.rounds[-1].p90_s if self.rounds else 0.0

    @property
    def p50_s(self) -> float:
        return self.rounds[-1].p50_s if self.rounds else 0.0

    def summary(self) -> str:
        ms = _ms
        outcome = (
            f"settled at p90 {ms(self.p90_s)} ms (p50 {ms(self.p50_s)} ms)"
            if self.settled
            else f"NOT settled ({self.stopped}), last p90 {ms(self.p90_s)} ms"
        )
        classes = ", ".join(f"{name} {self.classes.get(name, 0)}" for name in ROUTE_CLASSES)
        per_round = ", ".join(f"{ms(r.p50_s)}/{ms(r.p90_s)}" for r in self.rounds)
        return (
            f"{outcome} after {len(self.rounds)} rounds: {self.requests} requests "
            f"({classes}), {self.concurrency} at a time, in {self.seconds:.1f}s; "
            f"p50/p90 ms per round: {per_round}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def settled(p90s: list[float], tolerance: float = TOLERANCE, floor_s: float = FLOOR_S) -> bool:
    """Whether the last round's p90 says the color is warm: at least MIN_ROUNDS rounds,
    and the last p90 under ``floor_s`` or within ``tolerance`` (a fraction) of the one
    before. A p90 still falling fast is not settled: the color is still warming."""
    if len(p90s) < MIN_ROUNDS:
        return False
    last, previous = p90s[-1], p90s[-2]
    return last <= floor_s or abs(last - previous) <= tolerance * previous


def plan(
    product_ids: list[int], categories: list[str], size: int, checkout: bool = True
) -> list[Task]:
    """One round: tasks cycling through KINDS until they hold ``size`` requests.

    Without products there is no product page or cart line to warm; without
    categories no category page; without ``checkout`` (no admin listener) no checkout.
    """
    products = itertools.cycle(product_ids)
    names = itertools.cycle(categories)
    terms = itertools.cycle(SEARCH_TERMS)
    offsets = itertools.cycle(range(0, 200, 20))
    skipped = set()
    if not product_ids:
        skipped |= {"product", "page product", "cart"}
    if not categories:
        skipped.add("page category")
    if not checkout:
        skipped.add("checkout")
    tasks: list[Task] = []
    count = 0
    for kind in itertools.cycle([k for k in KINDS if k not in skipped] or ["categories"]):
        if count >= size:
            break
        task = _task(kind, products, names, terms, offsets)
        if len(task) > size - count:
            continue  # a cart round trip is never cut short: it would leave its cart
        tasks.append(task)
        count += len(task)
    return tasks


def _task(kind: str, products, names, terms, offsets) -> Task:
    if kind == "product":
        return (Call(CATALOGUE, "GET", f"/api/products/{next(products)}"),)
    if kind == "list":
        return (Call(CATALOGUE, "GET", f"/api/products?limit=20&offset={next(offsets)}"),)
    if kind == "categories":
        return (Call(CATALOGUE, "GET", "/api/categories"),)
    if kind == "search":
        return (Call(SEARCH, "GET", f"/api/search?q={next(terms)}&limit=10"),)
    if kind == "cart":  # a throwaway cart: the DELETE of its one line empties it (gone)
        cart, product = f"warm-up-{uuid.uuid4().hex}", next(products)
        line = f"/api/carts/{cart}/items/{product}"
        return (
            Call(CART, "PUT", line, {"quantity": 1}),
            Call(CART, "GET", f"/api/carts/{cart}"),
            Call(CART, "DELETE", line),
        )
    if kind == "checkout":
        body = {"cart_id": f"warm-up-{uuid.uuid4().hex}", "customer_id": 1}
        return (Call(CHECKOUT, "POST", "/api/checkout", body, admin=True),)
    page = kind.removeprefix("page ")
    path = {
        "home": "/",
        "product": f"/products/{next(products)}" if page == "product" else "",
        "category": f"/categories/{quote(next(names), safe='')}" if page == "category" else "",
        "search": f"/search?q={next(terms)}" if page == "search" else "",
        "cart": "/cart",
    }[page]
    return (Call(PAGES, "GET", path),)


def warm_up(
    base_url: str,
    requests: int,
    concurrency: int,
    timeout: float = REQUEST_TIMEOUT_S,
    *,
    admin: Admin | None = None,
    seconds: float = TIME_LIMIT_S,
    tolerance: float = TOLERANCE,
    floor_s: float = FLOOR_S,
) -> WarmUp:
    """Send rounds of requests, ``concurrency`` at a time, at most ``requests`` in all,
    until a round's latency settles (:func:`settled` with ``tolerance`` and ``floor_s``),
    the budget is spent or ``seconds`` have passed.

    The checkout needs ``admin`` (without it that class is left out: the summary shows
    0 checkouts). OceanError when any request did not answer 2xx within ``timeout``,
    with how many and the first.
    """
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    auth = {"Authorization": f"Bearer {admin.token}"} if admin else {}
    with (
        httpx.Client(base_url=base_url, timeout=timeout, limits=limits) as public,
        httpx.Client(base_url=admin.url if admin else base_url, timeout=timeout) as private,
        ThreadPoolExecutor(concurrency, thread_name_prefix="warm-up") as pool,
    ):

        def send(call: Call) -> tuple[float, str, httpx.Response | None]:
            """Seconds taken, '' or what went wrong in a few words, the response."""
            client, headers = (private, dict(auth)) if call.admin else (public, {})
            if call.route_class == CHECKOUT:
                headers |= {"Ocean-Dry-Run": "1", "Idempotency-Key": uuid.uuid4().hex}
            begun = time.monotonic()
            try:
                response = client.request(call.method, call.path, json=call.body, headers=headers)
            except httpx.HTTPError as exc:
                return time.monotonic() - begun, f"{call.method} {call.path} failed: {exc}", None
            took = time.monotonic() - begun
            if not response.is_success:
                failure = f"{call.method} {call.path} answered {response.status_code}"
                return took, f"{failure}: {response.text[:200]}", response
            return took, "", response

        def run(task: Task) -> list[tuple[Call, float, str]]:
            done = []
            for call in task:
                took, failure, _ = send(call)
                done.append((call, took, failure))
                if failure:  # the rest of a round trip depends on this one, but a
                    for cleanup in task[len(done) :]:  # line that may have been set goes
                        if cleanup.method == "DELETE":
                            send(cleanup)
                    break
            return done

        # What the plan needs: product ids and category names, two catalogue reads.
        listing = send(Call(CATALOGUE, "GET", "/api/products?limit=50"))
        categories = send(Call(CATALOGUE, "GET", "/api/categories"))
        failure = listing[1] or categories[1]
        if failure:
            raise OceanError(f"warm-up: {failure}")
        ids = [item["id"] for item in listing[2].json().get("items", [])]
        names = [c["name"] for c in categories[2].json() if c.get("product_count")]
        sent = api = 2
        classes = Counter({CATALOGUE: 2})
        size = min(ROUND_REQUESTS, max(1, (requests - sent) // MIN_ROUNDS))
        rounds: list[Round] = []
        stopped = "request budget"
        while requests - sent >= size:
            if rounds and time.monotonic() - started > seconds:
                stopped = "time limit"
                break
            begun = time.monotonic()
            tasks = plan(ids, names, size, checkout=admin is not None)
            done = [result for results in pool.map(run, tasks) for result in results]
            sent += len(done)
            failures = [failure for _, _, failure in done if failure]
            if failures:
                raise OceanError(
                    f"warm-up: {len(failures)} of {sent} requests failed, first: {failures[0]}"
                )
            api += sum(call.api for call, _, _ in done)
            classes.update(call.route_class for call, _, _ in done)
            took = [took for _, took, _ in done]
            rounds.append(
                Round(
                    len(done),
                    quantile(took, 0.5) or 0.0,
                    quantile(took, 0.9) or 0.0,
                    time.monotonic() - begun,
                )
            )
            if settled([r.p90_s for r in rounds], tolerance, floor_s):
                stopped = "settled"
                break
    return WarmUp(
        requests=sent,
        api_requests=api,
        concurrency=concurrency,
        seconds=time.monotonic() - started,
        rounds=tuple(rounds),
        settled=stopped == "settled",
        stopped=stopped,
        classes=dict(classes),
    )
