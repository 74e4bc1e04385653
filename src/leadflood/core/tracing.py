"""Correlation from a request to every job it leads to, and optional OpenTelemetry traces.

Every job row carries headers (pgqueuer's `headers` column): the `request_id` of the
request that started its chain and, when tracing is on, the W3C trace context under
`otel`. A job binds that request id to its log lines and, with tracing, opens its span as
a child of the span that enqueued it, so one trace runs request → validate → route →
deliver, each span naming its lead (`leadflood.lead_id`).

Tracing is off unless `LEADFLOOD_OTLP_ENDPOINT` is set (OTLP over HTTP, protobuf); off, the
spans below are no-ops that cost a context-variable read.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
import structlog

from leadflood.core.settings import Settings

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "leadflood_request_id", default=None
)
_tracer: Any = None  # an opentelemetry Tracer while tracing is configured
_provider: Any = None
_propagator: Any = None

LEAD_ATTRIBUTE = "leadflood.lead_id"


def init_tracing(settings: Settings, service: str) -> None:
    """Export spans to the configured OTLP endpoint (nothing set up without one)."""
    global _tracer, _provider, _propagator
    shutdown_tracing()
    if not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from leadflood import __version__

    headers = {}
    if settings.otlp_headers is not None:
        for pair in settings.otlp_headers.get_secret_value().split(","):
            name, _, value = pair.partition("=")
            if name.strip():
                headers[name.strip()] = value.strip()
    resource = Resource.create(
        {
            "service.name": service,
            "service.version": __version__,
            "deployment.environment.name": settings.env.value,
        }
    )
    _provider = TracerProvider(resource=resource)
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    _provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=10))
    )
    _tracer = _provider.get_tracer("leadflood", __version__)
    _propagator = TraceContextTextMapPropagator()


def shutdown_tracing() -> None:
    """Send what is buffered and stop (at process exit; tests reconfigure)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def tracing_enabled() -> bool:
    return _tracer is not None


def flush_tracing() -> None:
    """Blocks until the buffered spans are sent (at most 5 s): call it off the loop."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


@contextmanager
def _correlated(request_id: str | None) -> Iterator[None]:
    """The chain's request id for what runs inside: on its log lines and in the headers
    of the jobs it enqueues."""
    token = _request_id.set(request_id)
    try:
        if request_id is None:
            yield
        else:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                yield
    finally:
        _request_id.reset(token)


@contextmanager
def request_span(method: str, request_id: str) -> Iterator[Any]:
    """The request's correlation (and server span, named by its route template once
    routing matched one): jobs enqueued inside carry both."""
    with _correlated(request_id):
        if _tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind

        with _tracer.start_as_current_span(
            method,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "leadflood.request_id": request_id},
        ) as span:
            yield span


def finish_request_span(span: Any, route: str, method: str, status: int) -> None:
    if span is not None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR))


@contextmanager
def job_span(name: str, headers: Mapping[str, Any] | None, lead_id: str | None) -> Iterator[Any]:
    """A job runs under the request id of its chain and as a child of its enqueuer's span."""
    headers = headers or {}
    request_id = headers.get("request_id")
    with _correlated(request_id if isinstance(request_id, str) else None):
        if _tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind

        carrier = headers.get("otel")
        parent = _propagator.extract(carrier) if isinstance(carrier, dict) else None
        attributes = {"leadflood.job": name}
        if lead_id:
            attributes[LEAD_ATTRIBUTE] = lead_id
        with _tracer.start_as_current_span(
            f"job {name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span


def annotate_lead(lead_id: Any) -> None:
    """Name the lead on the current span (the ingestion request learns it late)."""
    if _tracer is not None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute(LEAD_ATTRIBUTE, str(lead_id))


def job_headers() -> dict[str, Any] | None:
    """What a job enqueued here carries: the chain's request id and the trace context."""
    request_id = _request_id.get()
    headers: dict[str, Any] = {"request_id": request_id} if request_id else {}
    if _tracer is not None:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        if carrier:
            headers["otel"] = carrier
    return headers or None


def job_headers_json() -> str:
    """`job_headers()` as the jsonb text the fused enqueue statements bind ('null': none)."""
    return orjson.dumps(job_headers()).decode()
