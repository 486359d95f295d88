"""OpenTelemetry tracing, exported over OTLP/HTTP; used only when SHOP_OTLP_ENDPOINT is set.

Import this module only then (app.py and __main__.py do so lazily): importing it
loads the OpenTelemetry SDK, the OTLP exporter (protobuf, requests) and the
instrumentations, several MB of RSS that an instance without a collector must not
pay for. Without it no SDK or instrumentation module is ever imported (a test
checks sys.modules); FastAPI itself only loads the no-op API.

What is traced (the official opentelemetry-instrumentation-* packages):

- HTTP: a SERVER span per request (FastAPI instrumentation), named by route
  template; /healthz, /readyz and /metrics are left out (probed and scraped every
  second, they would drown the real traffic). FastAPI's built-in telemetry sees
  this instrumentation and stays off, so there is one span per request.
- SQL: a CLIENT span per statement (psycopg), on every pooled connection.
- Redis: a CLIENT span per command or pipeline.

Spans go through a BatchSpanProcessor (tuned by the standard OTEL_BSP_* variables)
to ``<SHOP_OTLP_ENDPOINT>/v1/traces`` (a URL already ending in /v1/traces is used
as is). Exports run in the processor's thread, never on the event loop; a
collector that is down costs dropped spans, not requests. Resource:
service.name=ocean-shop, service.version, deployment.color (blue|green).

Trace ids: a valid W3C ``traceparent`` continues its trace. Without one, an
``X-Request-ID`` of 32 hex digits (nginx's $request_id) becomes the trace id, so the
nginx access log, the shop's log lines and Jaeger share one id. The request span
then has a remote parent that was never exported (Jaeger notes a missing parent).
"""

from __future__ import annotations

import logging
import random
import threading

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ocean_shop.config import Settings
from ocean_shop.logs import request_id_trace_id

log = logging.getLogger(__name__)

SERVICE = "ocean-shop"
TRACES_PATH = "/v1/traces"
# Regular expressions searched in the request URL (the instrumentation's format).
EXCLUDED_URLS = r"/healthz$,/readyz$,/metrics$"
# Flushing at exit waits at most this long: SIGTERM must stay quick.
SHUTDOWN_TIMEOUT = 1.0

_provider: TracerProvider | None = None


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector base URL (http://jaeger:4318)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


class RequestIdPropagator(TextMapPropagator):
    """W3C trace context, falling back to X-Request-ID as the trace id (see above)."""

    def __init__(self) -> None:
        self._w3c = TraceContextTextMapPropagator()

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        context = self._w3c.extract(carrier, context, getter)
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
        values = getter.get(carrier, "x-request-id")
        trace_id = request_id_trace_id(values[0].encode("latin-1")) if values else None
        if trace_id is None:
            return context
        parent = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=random.getrandbits(64) or 1,  # nosec B311  # a span id, not a secret
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        return trace.set_span_in_context(NonRecordingSpan(parent), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        self._w3c.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self._w3c.fields


def configure(settings: Settings) -> TracerProvider:
    """The process's tracer provider, exporter and SQL/Redis instrumentation (once)."""
    global _provider
    if _provider is not None:
        return _provider
    assert settings.otlp_endpoint is not None  # nosec B101  # narrows a type for the checker only
    resource = Resource.create(
        {
            SERVICE_NAME: SERVICE,
            SERVICE_VERSION: settings.version,
            "deployment.color": settings.color,
        }
    )
    # shutdown() below bounds the final flush; the SDK's own atexit hook would wait
    # up to 30 s for a collector that is down.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint)))
    )
    trace.set_tracer_provider(provider)
    set_global_textmap(RequestIdPropagator())
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("tracing to %s", traces_url(settings.otlp_endpoint))
    return provider


def instrument(app: FastAPI, settings: Settings) -> None:
    """Trace `app`'s requests (and, process-wide, SQL and Redis). Before the app starts."""
    provider = configure(settings)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        # Not a span per ASGI message: one per request (plus SQL and Redis) is enough.
        exclude_spans=["receive", "send"],
    )


def shutdown(timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Export what is queued, waiting at most `timeout` seconds."""
    provider = _provider
    if provider is None:
        return
    flusher = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    flusher.start()
    flusher.join(timeout)
