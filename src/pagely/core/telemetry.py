"""OpenTelemetry traces, configured by the standard `OTEL_*` variables and nothing else.

Tracing is on in a process when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`): spans
go out over OTLP/HTTP (protobuf), sampled by `OTEL_TRACES_SAMPLER`/`_ARG`, under the
service name `OTEL_SERVICE_NAME` or the process's own (`pagely-api`, `pagely-worker`,
`pagely-beat`). Off, nothing is instrumented and nothing is wrapped: the only cost left is
the API's no-op tracer in a few places (the SMTP send, the outbox dispatch).

What is traced: each HTTP request (named by its route template, never by the raw path,
whose tokens the spans never see), SQLAlchemy statements, Redis commands, Celery publishes
and task runs, each outbox dispatch and SMTP send. An email joins the trace of the request
that wrote it: the W3C trace context is stored on the outbox row (`carrier()`) and the
worker continues it (`continued()`), along with the request id for its log lines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import structlog
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagely.core.context import request_id_var

log = structlog.get_logger("pagely.telemetry")

tracer = trace.get_tracer("pagely")

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_SUPPORTED_PROTOCOL = "http/protobuf"
_REQUEST_ID_KEY = "request_id"

# Set once per process tree: a forked child (Celery's pool) inherits the provider, whose batch
# processor restarts its export thread after a fork.
_configured = False


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def tracing_enabled() -> bool:
    """Whether this process configured tracing (configure_tracing returned True)."""
    return _configured


def configure_tracing(service_name: str) -> bool:
    """Install the SDK in this process when the environment asks for it (once per process);
    True when tracing is on. Then engines are instrumented through `instrument_engine`, Redis
    clients through `instrument_redis`, the ASGI app through `TracedRequests`, Celery through
    `instrument_celery`."""
    global _configured
    if tracing_enabled():
        return True
    if not tracing_requested():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip()
    if protocol and protocol != _SUPPORTED_PROTOCOL:
        log.warning("otel_protocol_unsupported", protocol=protocol, using=_SUPPORTED_PROTOCOL)
    # The environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by
    # Resource.create; ours is only the default.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler: OTEL_TRACES_*
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing_on", service=provider.resource.attributes.get(SERVICE_NAME))
    return True


def flush_tracing(timeout_seconds: float = 5.0) -> None:
    """Export what is buffered: a process about to exit (a pool child may skip atexit)."""
    if tracing_enabled():
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if flush is not None:
            flush(int(timeout_seconds * 1000))


def instrument_engine(engine: AsyncEngine) -> None:
    if tracing_enabled():
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # Its declared range stops below SQLAlchemy 2.1, which it traces all the same (the
        # suite's trace test shows the statements).
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def instrument_redis(client: Redis | None) -> None:
    """Our own clients only: the Celery broker's (kombu polls Redis all the time) would
    bury a trace in its commands."""
    if tracing_enabled() and client is not None:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client)


def instrument_celery() -> None:
    """Spans for task publishes and runs, with the context in the message headers."""
    if tracing_enabled():
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def carrier() -> dict[str, str] | None:
    """What a message written now must carry for its handling to join this request: the W3C
    trace context of the current span (when one is recording) and the request id."""
    found: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _W3C.inject(found)
    request_id = request_id_var.get()
    if request_id is not None:
        found[_REQUEST_ID_KEY] = request_id
    return found or None


@contextlib.contextmanager
def continued(saved: Mapping[str, Any] | None, name: str, **attributes: Any) -> Iterator[None]:
    """Run the block as the continuation of the request `saved` (from `carrier()`): a span
    `name` in that trace (linked to the current one, a task's run), and the request id bound
    for the log lines."""
    saved = saved or {}
    request_id = saved.get(_REQUEST_ID_KEY)
    token = request_id_var.set(request_id) if isinstance(request_id, str) else None
    try:
        if not tracing_enabled():
            yield
            return
        here = trace.get_current_span().get_span_context()
        links = [trace.Link(here)] if here.is_valid else []
        parent = _W3C.extract(dict(saved)) if "traceparent" in saved else None
        with tracer.start_as_current_span(
            name, context=parent, kind=trace.SpanKind.CONSUMER, links=links,
            attributes=attributes,
        ):  # fmt: skip
            yield
    finally:
        if token is not None:
            request_id_var.reset(token)


class TracedRequests:
    """OpenTelemetry's ASGI middleware, for an app whose process has tracing on (app.py adds
    it only then). The middleware is shown a copy of the scope with the tokens in the path and
    query redacted; the server span is named by the route template once routing found it."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.app = _RedactedScope(
            OpenTelemetryMiddleware(
                _Restored(app),
                default_span_details=_method_only,
                exclude_spans=["receive", "send"],
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


_ORIGINAL_SCOPE = "pagely.original_scope"
_CLIENT_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
_W3C = TraceContextTextMapPropagator()  # the trace context alone, never baggage


def _method_only(scope: Scope) -> tuple[str, dict[str, Any]]:
    return scope.get("method", "HTTP"), {}


class _RedactedScope:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from pagely.core.logging import redact_url

        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        shown = redact_url(f"{path}?{query}" if query else path)
        shown_path, _, shown_query = shown.partition("?")
        # The path is decoded text (it may hold any character): the raw form is re-quoted.
        raw_path = scope.get("raw_path") if shown_path == path else quote(shown_path).encode()
        copy = {
            **scope,
            "path": shown_path,
            "raw_path": raw_path,
            "query_string": shown_query.encode("latin-1"),
            # A public API's callers do not steer its traces: a client's traceparent would
            # force sampling, its baggage would travel into the outbox and the worker.
            "headers": [(k, v) for k, v in scope["headers"] if k not in _CLIENT_TRACE_HEADERS],
            _ORIGINAL_SCOPE: scope,
        }
        await self.app(copy, receive, send)


class _Restored:
    """Inside the span: the app gets the real scope; the span its route, once known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        original = scope.pop(_ORIGINAL_SCOPE, None)
        if original is None:
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()
        here = span.get_span_context()
        if here.is_valid:  # for the access log line, written after the span has ended
            state = original.setdefault("state", {})
            state["trace_id"] = format(here.trace_id, "032x")
            state["span_id"] = format(here.span_id, "016x")

        async def named(message: Message) -> None:
            # Routing is done when the response starts; the span ends with its last byte.
            if message["type"] == "http.response.start":
                route = original.get("route")
                template = getattr(route, "path", None) or (original.get("state") or {}).get(
                    "route_path"
                )
                if route is not None:
                    scope["route"] = route  # http.route on the span
                if template:
                    span.update_name(f"{original.get('method')} {template}")
                    span.set_attribute("http.route", template)
            await send(message)

        await self.app(original, receive, named)
