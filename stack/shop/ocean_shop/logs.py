"""JSON-lines logging to stdout, one object per record, each request's carrying its trace id.

Every record logged while a request is handled has ``trace_id`` (32 hex digits), and
``span_id`` when tracing is on. Where the trace id comes from:

- tracing on (SHOP_OTLP_ENDPOINT): the current OpenTelemetry span's; tracing.py makes
  an incoming ``traceparent`` or ``X-Request-ID`` that span's trace id, so it is the
  same id as below;
- tracing off: TraceIdMiddleware takes the trace id of a valid W3C ``traceparent``
  header, else the ``X-Request-ID`` header when it is 32 hex digits (nginx's
  ``$request_id``) or a UUID (dashes dropped), else a fresh random one. Other
  X-Request-ID values are ignored: the id is always a valid W3C trace id, and no
  client text of arbitrary length lands in every log line.

Every HTTP response carries the id back as ``X-Request-ID``, so a client (or nginx's
access log, which logs $request_id) can quote the id the shop logged and, with
tracing on, the trace to open in Jaeger. Each request but probes and scrapes also
gets one line of its own (logger ``ocean_shop.access``: method, path, status,
duration_ms; SHOP_ACCESS_LOG=0 turns it off), so `invoke logs --trace ID` finds every
request in the shop's log, not only those that logged something.

Extra structured fields: ``log.info(msg, extra={"fields": {...}})`` adds them to the
line (they never replace the standard keys).
"""

from __future__ import annotations

import logging
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The trace id of the request being handled; None outside requests.
current_trace_id: ContextVar[str | None] = ContextVar("shop_trace_id", default=None)

SpanIds = Callable[[], tuple[str, str] | None]

# version-traceid-parentid-flags; a future version may append "-..." fields.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-|$)")
_REQUEST_ID = re.compile(
    rb"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
_STANDARD_KEYS = frozenset(("ts", "level", "logger", "message", "color", "trace_id", "span_id"))


def traceparent_trace_id(value: bytes) -> str | None:
    """The trace id of a valid W3C traceparent header value, else None."""
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _ = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if version == b"00" and len(value.strip()) != 55:
        return None
    return trace_id.decode()


def request_id_trace_id(value: bytes) -> str | None:
    """An X-Request-ID of 32 hex digits or a UUID, as a lower-case trace id, else None."""
    value = value.strip()
    if _REQUEST_ID.fullmatch(value) is None:
        return None
    trace_id = value.replace(b"-", b"").lower()
    return None if trace_id == _ZERO_TRACE else trace_id.decode()


def new_trace_id() -> str:
    return f"{random.getrandbits(128) or 1:032x}"  # nosec B311  # a correlation id, not a secret


def trace_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """traceparent's trace id, else X-Request-ID's, else a new one (ASGI raw headers)."""
    from_request_id = None
    for name, value in headers:
        if name == b"traceparent":
            trace_id = traceparent_trace_id(value)
            if trace_id is not None:
                return trace_id
        elif name == b"x-request-id" and from_request_id is None:
            from_request_id = request_id_trace_id(value)
    return from_request_id or new_trace_id()


def otel_span_ids() -> SpanIds:
    """(trace id, span id) of the current OpenTelemetry span, or None outside one."""
    # The API only (FastAPI imports it anyway); the SDK stays out unless tracing is on.
    from opentelemetry.trace import get_current_span

    def span_ids() -> tuple[str, str] | None:
        context = get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    return span_ids


class TraceIdMiddleware:
    """Pure ASGI: sets current_trace_id for the request and echoes it as X-Request-ID.

    Outermost of the app's own middlewares (app.py), so everything inside logs with
    the id. When a request fails with an exception the id is left set: the server
    logs that exception after the app returns, in the request's own task and context
    (uvicorn runs each request in a task of its own), and that line needs it most.
    """

    def __init__(self, app: ASGIApp, tracing: bool = False, access_log: bool = False) -> None:
        self.app = app
        self.span_ids = otel_span_ids() if tracing else None
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        ids = self.span_ids() if self.span_ids is not None else None
        trace_id = ids[0] if ids is not None else trace_id_from_headers(scope["headers"])
        token = current_trace_id.set(trace_id)
        if kind == "http":
            header = (b"x-request-id", trace_id.encode())
            status = 0

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), header]
                    status = message["status"]
                await send(message)

            if not self.access_log or scope["path"] in UNLOGGED_PATHS:
                await self.app(scope, receive, send_with_id)
            else:
                started = time.perf_counter()
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    _log_request(scope, status, time.perf_counter() - started)
        else:
            await self.app(scope, receive, send)
        current_trace_id.reset(token)


# Probes and scrapes: every second from Prometheus and the health checks; no trace to follow.
UNLOGGED_PATHS = frozenset(("/healthz", "/readyz", "/metrics"))
access_log = logging.getLogger("ocean_shop.access")


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    """The request's line: what `invoke logs --trace ID` finds beside nginx's line
    (status 0: the app failed before answering; the server logs that exception next)."""
    method, path = scope["method"], scope["path"]
    access_log.info(
        "%s %s %d",
        method,
        path,
        status,
        extra={
            "fields": {
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
        },
    )


class TraceContextFilter(logging.Filter):
    """Adds trace_id (and span_id with tracing) to every record its handler emits."""

    def __init__(self, span_ids: SpanIds | None = None) -> None:
        super().__init__()
        self.span_ids = span_ids

    def filter(self, record: logging.LogRecord) -> bool:
        if self.span_ids is not None:
            ids = self.span_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
                return True
        if getattr(record, "trace_id", None) is None:
            record.trace_id = current_trace_id.get()
        return True


class JSONFormatter(logging.Formatter):
    def __init__(self, color: str) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "color": self.color,
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            entry["trace_id"] = trace_id
            span_id = getattr(record, "span_id", None)
            if span_id is not None:
                entry["span_id"] = span_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in _STANDARD_KEYS:
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(color: str, level: int = logging.INFO, tracing: bool = False) -> None:
    """Send every logger (uvicorn's included) through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter(color))
    handler.addFilter(TraceContextFilter(otel_span_ids() if tracing else None))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
