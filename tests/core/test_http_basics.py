"""Health, readiness, the shared error body and request ids."""

from __future__ import annotations

import io

import httpx
import orjson
from fastapi import APIRouter

from leadflood.app import create_app
from leadflood.core.logging import configure_logging
from leadflood.core.runtime import build_runtime
from tests.conftest import make_settings


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "db": "ok"}


async def test_ready_reports_db_fail_when_database_is_unreachable() -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    runtime = build_runtime(make_settings(url), url)
    app = create_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ready")
    await runtime.close()
    assert response.status_code == 503
    assert response.json()["db"] == "fail"


async def test_unknown_route_and_wrong_method_use_the_error_body(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert set(missing.json()["error"]) == {"code", "message", "details"}
    wrong = await client.delete("/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_unexpected_exception_is_a_500_without_a_stack_trace(runtime) -> None:
    app = create_app(runtime)
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.include_router(boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/boom", headers={"x-request-id": "req-500"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "unexpected server error", "details": {}}
    }
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"] == "req-500"


async def test_request_id_is_echoed_generated_and_logged(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        echoed = await client.get("/health", headers={"x-request-id": "abc-123"})
        generated = await client.get("/health")
    finally:
        configure_logging("INFO", json=True)
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    requests = [entry for entry in lines if entry.get("event") == "request"]
    assert {"abc-123", generated.headers["x-request-id"]} <= {e["request_id"] for e in requests}
    assert all(e["level"] == "info" and "timestamp" in e for e in requests)


async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"x-request-id": "bad id with spaces"})
    assert response.headers["x-request-id"] != "bad id with spaces"
