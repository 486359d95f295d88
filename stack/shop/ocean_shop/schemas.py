"""Request and response shapes, for validation and for /openapi.json.

Responses are documented here but sent as ready-made JSON bytes (mostly built
by PostgreSQL), so these models describe the wire format without FastAPI
re-validating every response on the hot path. The schema tests (schemathesis)
check that the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ocean_shop.payments import PAYMENT_METHODS

INT8_MAX = 2**63 - 1
# The largest integer every JSON reader holds exactly (an IEEE double; RFC 7493).
# It bounds ids in request bodies: FastAPI writes body-model bounds into
# /openapi.json as doubles, where INT8_MAX would come out as 2**63, and a client
# (or schemathesis) comparing in doubles would then take 2**63 + 100 as valid.
JSON_SAFE_INT_MAX = 2**53 - 1
CART_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
MAX_QUANTITY = 100

OrderStatus = Literal["pending", "paid", "shipped", "failed"]


class Problem(BaseModel):
    detail: str


class Product(BaseModel):
    id: int
    sku: str
    name: str
    description: str
    category: str
    price_cents: int
    stock: int = Field(ge=0)
    version: int
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    limit: int
    offset: int


class Category(BaseModel):
    name: str
    product_count: int


class CartLine(BaseModel):
    product_id: int
    quantity: int


class Cart(BaseModel):
    cart_id: str
    lines: list[CartLine]
    expires_in: int | None = Field(description="seconds until the cart expires; null if empty")


def _json_integer(value: object) -> object:
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# An integer as JSON Schema has it (3 or 3.0), not true or "3", which pydantic's lax
# mode would take; strict mode would refuse 3.0, which the documented schema allows.
# Last in Annotated[int, Field(...), JSON_INTEGER], so Field's bounds stay documented.
JSON_INTEGER = BeforeValidator(_json_integer)


class QuantityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Annotated[
        int, Field(ge=0, le=MAX_QUANTITY, description="0 removes the line"), JSON_INTEGER
    ]


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cart_id: Annotated[str, Field(pattern=CART_ID_PATTERN)]
    customer_id: Annotated[int, Field(ge=1, le=JSON_SAFE_INT_MAX), JSON_INTEGER]
    payment_method: Literal[PAYMENT_METHODS] = Field(  # type: ignore[valid-type]
        "card", description="'card' succeeds (unless the simulated provider fails it)"
    )


class OrderItem(BaseModel):
    product_id: int
    quantity: int
    price_cents: int


class OrderEvent(BaseModel):
    status: OrderStatus
    reason: str | None
    at: datetime


class Order(BaseModel):
    id: int
    customer_id: int
    status: OrderStatus
    total_cents: int
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    items: list[OrderItem]
    events: list[OrderEvent]


class OrderEnvelope(BaseModel):
    order: Order


class OrderPage(BaseModel):
    items: list[Order]
    total: int
    limit: int
    offset: int


class OutOfStock(Problem):
    short_product_ids: list[int] = []


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where, e.g. ['body', 'customer_id']")
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: FastAPI's list of field errors, or one sentence from the endpoint itself."""

    detail: list[FieldError] | str


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stock: Annotated[int | None, Field(ge=0, le=2**31 - 1)] = None
    price_cents: Annotated[int | None, Field(ge=0, le=2**31 - 1)] = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description="per dependency: 'ok', or why it is not ready")
    failed: list[str] = Field([], description="the checks not 'ok'; only when unavailable")


class Version(BaseModel):
    version: str
    color: Literal["blue", "green"]
