"""One correlation from a request to the last job it leads to: the request id on every job
log line (a delivery retry's included), and, with LEADFLOOD_OTLP_ENDPOINT set, one
OpenTelemetry trace request -> validate -> route -> deliver exported over OTLP/HTTP to a
real local collector, each span naming its lead."""

from __future__ import annotations

import asyncio
import io
import threading

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadflood.app import create_app
from leadflood.core.logging import configure_logging
from leadflood.core.runtime import build_runtime
from leadflood.core.tracing import flush_tracing, shutdown_tracing
from leadflood.core.uow import unit_of_work
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import drain_jobs, make_settings, truncate_all
from tests.factories import POSTED_LEAD, make_buyer, make_world
from tests.live import ThreadedServer


class Collector(ThreadedServer):
    """An OTLP/HTTP trace receiver: protobuf ExportTraceServiceRequest in, spans kept."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        super().__init__(Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])]))

    async def _traces(self, request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        with self._lock:
            self.headers.append(dict(request.headers))
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {}
                        for a in span.attributes:
                            value = a.value
                            attributes[a.key] = (
                                value.string_value
                                if value.HasField("string_value")
                                else value.int_value
                            )
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "attributes": attributes,
                                "resource": resource,
                            }
                        )
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


async def test_the_request_id_is_on_every_job_line_of_its_lead_a_retry_included(
    database_url,
) -> None:
    runtime = build_runtime(
        make_settings(database_url, delivery_retry_schedule_s=[0.2]), database_url
    )
    await truncate_all(runtime)
    stream = io.StringIO()
    try:
        with BuyerServer() as buyer:
            buyer.script("leads", Reply(503, body="busy"), Reply(200))
            async with unit_of_work(runtime.db) as conn:
                world = await make_world(conn)
                await make_buyer(conn, world, webhook_url=buyer.url())
            app = create_app(runtime)
            transport = httpx.ASGITransport(app=app)
            configure_logging("INFO", True, stream, service="leadflood-serve", env="test")
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                posted = await client.post(
                    "/api/leads",
                    json={"source_id": str(world.source_id), **POSTED_LEAD},
                    headers={"X-Request-ID": "req-from-the-source-1"},
                )
            assert posted.status_code == 201, posted.text
            for _ in range(30):
                await drain_jobs(runtime)
                if buyer.count() >= 2:
                    break
                await asyncio.sleep(0.1)
            await drain_jobs(runtime)
            assert buyer.count() == 2
    finally:
        configure_logging("INFO", True)
        await runtime.close()
    lead_id = posted.json()["lead_id"]
    lines = [line for line in _lines(stream) if line.get("lead_id") == lead_id]
    jobs = [line for line in lines if "job" in line]
    kinds = {line["job"] for line in jobs}
    assert {"validate_lead", "route_lead", "deliver_lead"} <= kinds
    # The second delivery attempt ran from the retry job the first one enqueued.
    assert len({line["job_id"] for line in jobs if line["job"] == "deliver_lead"}) == 2
    assert all(line.get("request_id") == "req-from-the-source-1" for line in lines), [
        (line.get("job"), line.get("event"), line.get("request_id")) for line in lines
    ]


@pytest.fixture
def collector():
    with Collector() as server:
        yield server


async def test_one_trace_runs_from_the_request_to_the_delivery(database_url, collector) -> None:
    settings = make_settings(
        database_url,
        otlp_endpoint=collector.base,
        otlp_headers="x-collector-key=k-123",
    )
    runtime = build_runtime(settings, database_url)
    await truncate_all(runtime)
    try:
        with BuyerServer() as buyer:
            async with unit_of_work(runtime.db) as conn:
                world = await make_world(conn)
                await make_buyer(conn, world, webhook_url=buyer.url())
            transport = httpx.ASGITransport(app=create_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                posted = await client.post(
                    "/api/leads", json={"source_id": str(world.source_id), **POSTED_LEAD}
                )
                assert posted.status_code == 201
                await drain_jobs(runtime)
                # A request that carries no lead: a span of its own trace, not the lead's.
                assert (await client.get("/health")).status_code == 200
            assert buyer.count() == 1
        await asyncio.to_thread(flush_tracing)
    finally:
        await runtime.close()
        shutdown_tracing()
    lead_id = posted.json()["lead_id"]
    spans = {s["name"]: s for s in collector.spans}
    request = spans["POST /api/leads"]
    chain = [request] + [spans[f"job {k}"] for k in ("validate_lead", "route_lead", "deliver_lead")]
    assert {s["trace_id"] for s in chain} == {request["trace_id"]}
    # Each job is the child of the span that enqueued it.
    assert [s["parent"] for s in chain[1:]] == [s["span_id"] for s in chain[:-1]]
    assert all(s["attributes"]["leadflood.lead_id"] == lead_id for s in chain)
    assert request["attributes"]["http.route"] == "/api/leads"
    assert request["attributes"]["http.response.status_code"] == 201
    assert request["resource"]["service.name"]
    assert spans["GET /health"]["trace_id"] != request["trace_id"]
    assert all(h.get("x-collector-key") == "k-123" for h in collector.headers)


async def test_without_an_endpoint_nothing_is_traced_and_jobs_carry_only_the_request_id(
    runtime, client
) -> None:
    from leadflood.core.tracing import job_headers, request_span, tracing_enabled

    assert not tracing_enabled()
    with request_span("POST", "req-7"):
        assert job_headers() == {"request_id": "req-7"}
    assert job_headers() is None
