"""Operating details: log lines name the service, environment and user; pages outside
production say which environment they are."""

from __future__ import annotations

import io

import httpx
import orjson

from leadflood.app import create_app
from leadflood.core.logging import configure_logging
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Environment
from tests.conftest import auth_headers, make_settings


async def test_log_lines_carry_service_env_and_the_signed_in_user(runtime, client) -> None:
    stream = io.StringIO()
    configure_logging("INFO", True, stream, service="leadflood-serve", env="test")
    try:
        headers = await auth_headers(client, runtime, "manager")
        await client.get("/v1/admin/markets", headers=headers)
    finally:
        configure_logging("INFO", True)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests and all(
        line["service"] == "leadflood-serve" and line["env"] == "test" for line in requests
    )
    markets = next(line for line in requests if line["path"] == "/v1/admin/markets")
    assert markets["user_id"] and markets["request_id"]


async def test_pages_outside_production_show_their_environment(database_url, client) -> None:
    page = (await client.get("/login")).text
    assert 'id="env-banner"' in page and "test environment" in page
    settings = make_settings(database_url, env=Environment.production, secret_key="p" * 48)
    runtime = build_runtime(settings, database_url)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
        production = (await http.get("/login")).text
    await runtime.close()
    assert "env-banner" not in production and "<form" in production


async def test_one_lead_id_follows_a_lead_from_its_request_to_its_jobs(runtime, client) -> None:
    from leadflood.core.uow import unit_of_work
    from tests.conftest import drain_jobs
    from tests.factories import POSTED_LEAD, make_world

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    stream = io.StringIO()
    configure_logging("INFO", True, stream, service="leadflood-serve", env="test")
    try:
        posted = await client.post(
            "/api/leads",
            json={"source_id": str(world.source_id), **POSTED_LEAD},
        )
        await drain_jobs(runtime)
    finally:
        configure_logging("INFO", True)
    lead_id = posted.json()["lead_id"]
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("event") == "request")
    assert request["lead_id"] == lead_id and request["request_id"]
    jobs = [line for line in lines if line.get("job") in ("validate_lead", "route_lead")]
    assert jobs and all(line["lead_id"] == lead_id and "attempt" in line for line in jobs)
