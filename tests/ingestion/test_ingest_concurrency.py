"""Twenty truly concurrent identical POSTs over real HTTP produce one row."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import make_settings
from tests.factories import make_world
from tests.live import LiveServer
from tests.sql import run

LEAD = {"first_name": "Bo", "phone": "(480) 555-0199", "postal_code": "85004", "consent": True}


@pytest.mark.parametrize("explicit_key", [True, False])
async def test_twenty_concurrent_identical_posts(runtime, database_url, explicit_key) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    body = {**LEAD, "source_id": str(world.source_id)}
    if explicit_key:
        body["idempotency_key"] = "race-1"
    with LiveServer(make_settings(database_url), database_url) as server:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=server.url, limits=limits) as http:
            # Open all twenty connections first, then release every request at once.
            gate = asyncio.Event()

            async def post() -> httpx.Response:
                await gate.wait()
                return await http.post("/api/leads", json=body)

            tasks = [asyncio.create_task(post()) for _ in range(20)]
            await asyncio.sleep(0.05)
            gate.set()
            responses = await asyncio.gather(*tasks)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    lead_ids = {r.json()["lead_id"] for r in responses}
    assert len(lead_ids) == 1
    async with single_statements(runtime.db) as conn:
        rows = (await run(conn, "SELECT count(*) FROM leads")).scalar()
        jobs = (
            await run(conn, "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'validate_lead'")
        ).scalar()
    assert rows == 1
    assert jobs == 1
