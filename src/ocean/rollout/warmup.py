"""Warm a color with concurrent catalogue reads straight to its own port, before the switch.

A freshly started shop holds one PostgreSQL connection (the pool's min_size is 0) and
one Redis connection. The moment nginx sends it the live traffic it opens the rest,
each a SCRAM handshake, while the requests queue behind them: at 50 VUs on one CPU
(the production limit) its first second had a p99 of 250-300 ms, and the analysis
rolled back healthy releases. Like a load balancer's slow start, the warm-up opens
those connections and runs the hot code paths first, at the pool's size in parallel.

Reads only (categories, product pages, listings, search): a warm-up must not leave
carts or orders behind. Every answer must be a 200; anything else is the color
failing before it took traffic, named in one line.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from ocean.errors import OceanError

SEARCH_TERMS = ("ocean", "mask", "fin", "reef", "wave")


@dataclass(frozen=True)
class WarmUp:
    requests: int
    concurrency: int
    seconds: float
    slowest_s: float  # the first requests pay the connects
    median_s: float

    def summary(self) -> str:
        return (
            f"{self.requests} reads, {self.concurrency} at a time, in {self.seconds:.1f}s "
            f"(median {self.median_s * 1000:.0f} ms, slowest {self.slowest_s * 1000:.0f} ms)"
        )


def paths(product_ids: list[int], count: int) -> list[str]:
    """``count`` catalogue reads cycling through what a shopper reads."""
    pages = (f"/api/products/{i}" for i in itertools.cycle(product_ids or [1]))
    kinds = itertools.cycle(("page", "page", "list", "search", "page", "categories"))
    terms = itertools.cycle(SEARCH_TERMS)
    offsets = itertools.cycle(range(0, 200, 20))
    chosen = []
    for kind in itertools.islice(kinds, count):
        if kind == "page":
            chosen.append(next(pages))
        elif kind == "list":
            chosen.append(f"/api/products?limit=20&offset={next(offsets)}")
        elif kind == "search":
            chosen.append(f"/api/search?q={next(terms)}&limit=10")
        else:
            chosen.append("/api/categories")
    return chosen


def warm_up(base_url: str, requests: int, concurrency: int, timeout: float = 5.0) -> WarmUp:
    """Send ``requests`` reads, ``concurrency`` at a time.

    OceanError when any of them did not answer 200, with how many and the first.
    """
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=base_url, timeout=timeout, limits=limits) as client:
        listing, failure = _get(client, "/api/products?limit=50")
        if failure:
            raise OceanError(f"warm-up: {failure}")
        ids = [item["id"] for item in listing.json().get("items", [])]
        todo = paths(ids, max(0, requests - 1))

        def timed(path: str) -> tuple[float, str]:
            begun = time.monotonic()
            _, failure = _get(client, path)
            return time.monotonic() - begun, failure

        with ThreadPoolExecutor(concurrency, thread_name_prefix="warm-up") as pool:
            results = list(pool.map(timed, todo))
    failures = [failure for _, failure in results if failure]
    if failures:
        raise OceanError(
            f"warm-up: {len(failures)} of {len(results) + 1} reads failed, first: {failures[0]}"
        )
    took = sorted(seconds for seconds, _ in results)
    return WarmUp(
        requests=len(todo) + 1,
        concurrency=concurrency,
        seconds=time.monotonic() - started,
        slowest_s=took[-1] if took else 0.0,
        median_s=took[len(took) // 2] if took else 0.0,
    )


def _get(client: httpx.Client, path: str) -> tuple[httpx.Response | None, str]:
    """The response and '' when it is a 200, else what went wrong in a few words."""
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        return None, f"GET {path} failed: {exc}"
    if response.status_code != 200:
        return response, f"GET {path} answered {response.status_code}: {response.text[:200]}"
    return response, ""
