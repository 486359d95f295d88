"""The shop's HTTP API against its own OpenAPI schema: property-based fuzzing (schemathesis).

Handlers send ready JSON bytes (mostly built by PostgreSQL) and FastAPI does not
validate them, so /openapi.json could promise one thing while the wire carries
another. These tests fuzz a real `python -m ocean_shop` process (uvicorn on a
loopback port, real PostgreSQL and Redis from the session stack) and check every
response against the schema it serves:

- every operation, positive and negative data (schemathesis' coverage phase:
  boundary and type cases; then MAX_EXAMPLES Hypothesis cases per operation),
  derandomized: no 5xx, a documented status code, content type and headers, a
  body that matches the documented schema (formats such as date-time included),
  invalid input rejected and valid input accepted, a correct Allow on 405, and
  every 4xx a JSON object with a `detail`;
- stateful sequences along links schemathesis infers from the schema (create a
  cart, fill it with listed products, read it back, check out);
- every checkout outcome (201, 402, 404, 409, 422) and the orders it makes, sent
  explicitly (random data seldom fills a cart for a real customer) and checked
  the same way;
- explicit malformed input (non-JSON bodies, out-of-range integers, NUL
  characters): a 422 whose detail says what is wrong, never a 500;
- an outage: Redis, then PostgreSQL, cut behind a proxy: documented 503s.

The schema is generated at import from the app's routes (no I/O), so pytest can
name one test per operation; the first test proves the running process serves
exactly that document.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import hypothesis
import psycopg
import pytest
import requests
import schemathesis
from ocean_shop.app import create_app
from ocean_shop.config import Settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.integration.shop_support import (
    Proxy,
    ShopProcess,
    forget_shop_keys,
    proxied,
    shop_processes,
)

pytestmark = [pytest.mark.integration]

SEED = 20261128
# Hypothesis cases per operation, positive and negative together (the coverage phase
# adds 10-60 boundary cases per operation); stateful: scenarios × at most steps each.
MAX_EXAMPLES = 500
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS = 10
# Seeded product 250 has no stock (see test_shop_orders.py).
OUT_OF_STOCK_ID = 250


def documented_openapi() -> dict:
    """The document /openapi.json serves, generated from the routes (no connections)."""
    app = create_app(Settings(database_url="postgresql://unused", redis_url="redis://unused"))
    return json.loads(json.dumps(app.openapi()))  # as a client reads it (floats stay floats)


schema = schemathesis.openapi.from_dict(documented_openapi())
schema.config.seed = SEED
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,  # Hypothesis' derandomize: the same cases on every run
    database="none",  # no .hypothesis/ replay of an earlier run's failures
)
schema.config.update(request_timeout=10)
# Sequences of valid requests get further (a filled cart, a checkout); invalid input
# is what the per-operation tests cover.
schema.config.phases.stateful.generation.update(modes=[GenerationMode.POSITIVE])


def problem_detail(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A 4xx says what is wrong: a JSON object with a non-empty `detail`.

    Except a 402: a declined payment answers with the failed order itself.
    """
    if not 400 <= response.status_code < 500 or response.status_code == 402:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} without JSON: {response.content!r}") from None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not detail:
        raise AssertionError(f"{response.status_code} without a `detail`: {body!r}")
    if isinstance(detail, list):
        for error in detail:
            if not (isinstance(error, dict) and error.get("msg") and error.get("loc")):
                raise AssertionError(f"a validation error without loc and msg: {error!r}")


def forget_keys_at(redis_url: str) -> None:
    with Redis.from_url(redis_url) as client:
        forget_shop_keys(client)


@pytest.fixture(scope="module")
def module_schema_url(database_url: str) -> Iterator[str]:
    """Like conftest's schema_url, for the whole module: one shop serves every test."""
    name = f"shop_fuzz_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    params = conninfo_to_dict(database_url)
    params["options"] = f"-c search_path={name}"
    yield make_conninfo(**params)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def checkout(
    client: httpx.Client, lines: dict[int, int], *, customer: int = 1, method: str = "card"
) -> httpx.Response:
    cart = uuid.uuid4().hex
    for product_id, quantity in lines.items():
        added = client.put(f"/api/carts/{cart}/items/{product_id}", json={"quantity": quantity})
        assert added.status_code == 200, added.text
    return client.post(
        "/api/checkout",
        json={"cart_id": cart, "customer_id": customer, "payment_method": method},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


@contextmanager
def seeded_shop(schema_url: str, redis_url: str) -> Iterator[ShopProcess]:
    """A real shop process; customers 1-3 have orders (paid and failed) to read back."""
    forget_keys_at(redis_url)
    with (
        shop_processes(schema_url, redis_url, colors=("blue",), SHOP_PAYMENT_LATENCY_MS="0") as (
            process,
        ),
        httpx.Client(base_url=process.url, timeout=10) as client,
    ):
        for customer, method, status in (
            (1, "card", 201),
            (2, "card_declined", 402),
            (3, "card", 201),
        ):
            placed = checkout(client, {customer: 1}, customer=customer, method=method)
            assert placed.status_code == status, placed.text
        yield process
    forget_keys_at(redis_url)


@pytest.fixture(scope="module")
def shop(module_schema_url: str, redis_url: str) -> Iterator[ShopProcess]:
    """One shop for the per-operation fuzzing (its state grows from test to test)."""
    with seeded_shop(module_schema_url, redis_url) as process:
        yield process


@pytest.fixture
def fresh_shop(schema_url: str, redis_url: str) -> Iterator[ShopProcess]:
    """A shop of its own for the stateful run: the fuzzing before it leaves orders
    whose Idempotency-Keys the (derandomized) sequences would reuse with other bodies,
    and the shop's correct 422 for that would read as a rejected valid request."""
    with seeded_shop(schema_url, redis_url) as process:
        yield process


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """One keep-alive session for every schemathesis call."""
    with requests.Session() as session:
        yield session


# --- the document ---------------------------------------------------------------


def test_the_running_shop_serves_the_fuzzed_schema(shop: ShopProcess) -> None:
    served = httpx.get(f"{shop.url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == documented_openapi()
    operations = {(m.upper(), p) for p, ops in served.json()["paths"].items() for m in ops}
    assert {("POST", "/api/checkout"), ("GET", "/readyz")} <= operations
    assert not any(path.startswith("/admin") for _, path in operations)  # admin stays hidden


# --- fuzzing, one test per operation -----------------------------------------------


@schema.parametrize()
def test_operation_conforms_to_schema(
    case: schemathesis.Case, shop: ShopProcess, http: requests.Session
) -> None:
    # Every check schemathesis has (its default): not_a_server_error,
    # status_code_conformance, content_type_conformance, response_schema_conformance,
    # response_headers_conformance, negative_data_rejection, positive_data_acceptance,
    # missing_required_header, unsupported_method, allow_header_conformance, ...
    case.call_and_validate(base_url=shop.url, session=http, additional_checks=[problem_detail])


# --- stateful: links inferred from the schema ------------------------------------------


def test_stateful_sequences_conform_to_schema(
    fresh_shop: ShopProcess, http: requests.Session
) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict:
            return {"base_url": fresh_shop.url, "session": http}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            super().validate_response(response, case, additional_checks=[problem_detail], **kwargs)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


# --- every outcome of a checkout, checked against the schema -----------------------------


def validated(
    http: requests.Session, base_url: str, method: str, path: str, **case_args: object
) -> schemathesis.Response:
    """Send one explicit case and run every schemathesis check on the answer."""
    case = schema[path][method].Case(**case_args)
    response = case.call(base_url=base_url, session=http)
    case.validate_response(response, additional_checks=[problem_detail])
    return response


def test_every_checkout_outcome_conforms_to_schema(
    shop: ShopProcess, http: requests.Session
) -> None:
    def put(cart: str, product: int, quantity: int) -> None:
        response = validated(
            http,
            shop.url,
            "PUT",
            "/api/carts/{cart_id}/items/{product_id}",
            path_parameters={"cart_id": cart, "product_id": product},
            body={"quantity": quantity},
        )
        assert response.status_code == 200, response.text

    def post(cart: str, customer: int, method: str, key: str) -> schemathesis.Response:
        return validated(
            http,
            shop.url,
            "POST",
            "/api/checkout",
            body={"cart_id": cart, "customer_id": customer, "payment_method": method},
            headers={"Idempotency-Key": key},
        )

    paid_cart, key = uuid.uuid4().hex, uuid.uuid4().hex
    put(paid_cart, 11, 2)
    put(paid_cart, 12, 1)
    paid = post(paid_cart, 5, "card", key)
    assert paid.status_code == 201, paid.text
    assert post(paid_cart, 5, "card", key).json() == paid.json()  # replayed
    reused = post(paid_cart, 6, "card", key)
    assert reused.status_code == 422 and "different" in reused.json()["detail"]

    declined_cart = uuid.uuid4().hex
    put(declined_cart, 13, 1)
    declined = post(declined_cart, 5, "insufficient_funds", uuid.uuid4().hex)
    assert declined.status_code == 402 and declined.json()["order"]["status"] == "failed"

    empty = post(uuid.uuid4().hex, 5, "card", uuid.uuid4().hex)
    assert empty.status_code == 409

    short_cart = uuid.uuid4().hex
    put(short_cart, OUT_OF_STOCK_ID, 1)
    short = post(short_cart, 5, "card", uuid.uuid4().hex)
    assert short.status_code == 409 and short.json()["short_product_ids"] == [OUT_OF_STOCK_ID]

    unknown_customer = post(declined_cart, 987654, "card", uuid.uuid4().hex)  # cart kept
    assert unknown_customer.status_code == 404

    order_id = paid.json()["order"]["id"]
    order = validated(http, shop.url, "GET", "/api/orders/{id}", path_parameters={"id": order_id})
    assert order.json() == paid.json()
    history = validated(
        http, shop.url, "GET", "/api/customers/{id}/orders", path_parameters={"id": 5}
    )
    assert [o["status"] for o in history.json()["items"]] == ["failed", "paid"]


# --- malformed input: a 4xx that says what is wrong ----------------------------------------


def assert_rejected(response: httpx.Response, *, status: int = 422, mentions: str = "") -> None:
    request = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, f"{request}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json", request
    detail = response.json()["detail"]
    assert detail, request
    assert mentions in json.dumps(detail), f"{request}: {mentions!r} not in {detail!r}"


def test_malformed_bodies_get_422_with_a_clear_message(shop: ShopProcess) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        cart_item = f"/api/carts/{uuid.uuid4().hex}/items/1"
        for body, content_type, status, mentions in (
            (b"quantity=1", "application/json", 422, "JSON decode error"),
            (b'{"quantity": 1', "application/json", 422, "JSON decode error"),
            (b"quantity=1", "application/x-www-form-urlencoded", 422, "valid dictionary"),
            (b'{"quantity": "\xc3("}', "application/json", 400, "error parsing the body"),
        ):
            headers = {"content-type": content_type, "Idempotency-Key": "k-1"}
            response = client.put(cart_item, content=body, headers=headers)
            assert_rejected(response, status=status, mentions=mentions)
            response = client.post("/api/checkout", content=body, headers=headers)
            assert_rejected(response, status=status, mentions=mentions)
        # No body, or a JSON document that is not an object.
        assert_rejected(client.put(cart_item), mentions="Field required")
        assert_rejected(client.put(cart_item, json=[1]), mentions="body")
        assert_rejected(
            client.post("/api/checkout", json="x", headers={"Idempotency-Key": "k-2"}),
            mentions="body",
        )
        # A checkout without its Idempotency-Key says which header is missing.
        assert_rejected(
            client.post("/api/checkout", json={"cart_id": "a" * 8, "customer_id": 1}),
            mentions="idempotency-key",
        )


def test_huge_integers_get_422_not_500(shop: ShopProcess) -> None:
    huge = (str(2**63), str(2**64 + 1), "9" * 40, "1e3", "1.5")
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        for value in huge:
            assert_rejected(client.get(f"/api/products/{value}"), mentions="id")
            assert_rejected(client.get(f"/api/orders/{value}"), mentions="id")
            assert_rejected(client.get(f"/api/customers/{value}/orders"), mentions="id")
            assert_rejected(
                client.put(f"/api/carts/{'a' * 8}/items/{value}", json={"quantity": 1}),
                mentions="product_id",
            )
            assert_rejected(client.delete(f"/api/carts/{'a' * 8}/items/{value}"))
            response = client.get("/api/products", params={"offset": value})
            assert_rejected(response, mentions="offset")
            assert_rejected(client.get("/api/search", params={"q": "mask", "offset": value}))
        for customer in (2**63, 2**64, 10**40, -(2**63) - 1):
            response = client.post(
                "/api/checkout",
                json={"cart_id": "a" * 8, "customer_id": customer},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert_rejected(response, mentions="customer_id")
        assert_rejected(
            client.put(f"/api/carts/{'a' * 8}/items/1", json={"quantity": 2**70}),
            mentions="quantity",
        )


def test_nul_characters_in_query_strings_get_4xx(shop: ShopProcess) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        for q in ("\x00", "mask\x00", "%00"):
            response = client.get("/api/search", params={"q": q})
            if q == "%00":  # a literal "%00" (sent as %2500) is text like any other
                assert response.status_code == 200, response.text
                continue
            assert_rejected(response, mentions="NUL")
            assert_rejected(client.get("/api/products", params={"category": q}), mentions="NUL")
        assert_rejected(client.get("/api/products", params={"limit": "\x00"}), mentions="limit")
        assert_rejected(client.get("/api/carts/abc%00defgh"), mentions="cart_id")
        response = client.post(
            "/api/checkout",
            json={"cart_id": "abc\x00defgh", "customer_id": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert_rejected(response, mentions="cart_id")
        # Raw bytes on the wire, as a hostile client sends them.
        assert_rejected(client.get("/api/search?q=a%00b"), mentions="NUL")
        assert_rejected(client.get("/api/products?category=%00"), mentions="NUL")


# --- outages: documented 503s ---------------------------------------------------------------


# What a shopper does: every public operation that reads PostgreSQL or Redis.
OUTAGE_CASES = (
    ("GET", "/api/categories", {}),
    ("GET", "/api/products", {"query": {"limit": 5}}),
    ("GET", "/api/products/{id}", {"path_parameters": {"id": 77}}),
    ("GET", "/api/search", {"query": {"q": "mask"}}),
    ("GET", "/api/carts/{cart_id}", {"path_parameters": {"cart_id": "outage-cart"}}),
    (
        "PUT",
        "/api/carts/{cart_id}/items/{product_id}",
        {"path_parameters": {"cart_id": "outage-cart", "product_id": 3}, "body": {"quantity": 1}},
    ),
    (
        "DELETE",
        "/api/carts/{cart_id}/items/{product_id}",
        {"path_parameters": {"cart_id": "outage-cart", "product_id": 3}},
    ),
    (
        "POST",
        "/api/checkout",
        {
            "body": {"cart_id": "never-filled", "customer_id": 1},  # 409 while all is up
            "headers": {"Idempotency-Key": "outage-key"},
        },
    ),
    ("GET", "/api/orders/{id}", {"path_parameters": {"id": 1}}),
    ("GET", "/api/customers/{id}/orders", {"path_parameters": {"id": 1}}),
    ("GET", "/readyz", {}),
)


def statuses_during_outage(base_url: str) -> dict[str, int]:
    """Send every outage case at once (a PostgreSQL outage answers only after the
    pool's 5 s wait) and check each answer against the schema, 5xx allowed."""

    def send(method: str, path: str, args: dict) -> tuple[str, int]:
        if "headers" in args:  # a fresh Idempotency-Key: never a replay of the last phase
            args = {**args, "headers": {"Idempotency-Key": uuid.uuid4().hex}}
        case = schema[path][method].Case(**args)
        response = case.call(base_url=base_url)
        case.validate_response(
            response, excluded_checks=[not_a_server_error], additional_checks=[problem_detail]
        )
        if response.status_code == 503 and path.startswith("/api/"):
            assert response.json()["detail"].endswith("unavailable"), response.text
        return f"{method} {path}", response.status_code

    with ThreadPoolExecutor(len(OUTAGE_CASES)) as pool:
        return dict(pool.map(lambda c: send(*c), OUTAGE_CASES))


def test_outages_answer_documented_503s(
    schema_url: str, redis_url: str, redis_client: Redis
) -> None:
    pg_port = int(conninfo_to_dict(schema_url)["port"])
    redis_port = int(redis_url.removeprefix("redis://").partition("/")[0].rpartition(":")[2])
    postgres, redis = Proxy(pg_port), Proxy(redis_port)
    try:
        with shop_processes(
            proxied(schema_url, postgres.port),
            proxied(redis_url, redis.port),
            colors=("green",),
            SHOP_PAYMENT_LATENCY_MS="0",
        ) as (process,):
            up = statuses_during_outage(process.url)
            assert set(up.values()) <= {200, 201, 404, 409}, up

            redis.cut()
            no_redis = statuses_during_outage(process.url)
            # Carts live in Redis; the catalogue falls back to PostgreSQL.
            assert no_redis == {
                **{key: status for key, status in up.items() if key.startswith("GET /api/")},
                "GET /api/carts/{cart_id}": 503,
                "PUT /api/carts/{cart_id}/items/{product_id}": 503,
                "DELETE /api/carts/{cart_id}/items/{product_id}": 503,
                "POST /api/checkout": 503,
                "GET /readyz": 503,
            }, no_redis

            postgres.cut()
            nothing = statuses_during_outage(process.url)
            assert set(nothing.values()) == {503}, nothing
    finally:
        redis.cut()
        postgres.cut()
