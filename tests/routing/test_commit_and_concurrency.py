"""Steps 4-5: atomic caps under concurrency, one winner per lead, the commit's rows."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from leadflood.core.uow import unit_of_work
from leadflood.routing.tasks import Router
from leadflood.routing.trace import expand
from tests.conftest import drain_jobs
from tests.factories import make_buyer, make_lead, make_world
from tests.routing.helpers import WINTER_NOON_UTC, route, scalar


@pytest.fixture
async def world(runtime):
    async with unit_of_work(runtime.db) as conn:
        return await make_world(conn)


async def test_routed_commit_writes_everything_in_one_transaction(runtime, world) -> None:
    async with unit_of_work(runtime.db) as conn:
        buyer = await make_buyer(
            conn, world, price_cents=4200, delivery_channel="email", email="buyer@example.com"
        )
        lead = await make_lead(conn, world)
    result = await route(runtime, lead)
    assert result.outcome == "routed" and result.statements == 3
    async with runtime.db.pool_connection() as conn:
        row = await conn.fetchrow(
            "SELECT status::text, buyer_id, price_cents, routed_at FROM leads WHERE id = $1", lead
        )
        delivery = await conn.fetchrow("SELECT * FROM deliveries WHERE lead_id = $1", lead)
        decision = await conn.fetchrow("SELECT * FROM routing_decisions WHERE lead_id = $1", lead)
        job = await conn.fetchrow("SELECT payload FROM pgqueuer WHERE entrypoint='deliver_lead'")
        routed_at = await conn.fetchval(
            "SELECT last_routed_at FROM buyer_offers WHERE buyer_id = $1", buyer
        )
    assert dict(row) == {
        "status": "routed",
        "buyer_id": buyer,
        "price_cents": 4200,
        "routed_at": WINTER_NOON_UTC,
    }
    assert delivery["status"] == "pending" and delivery["channel"] == "email"
    assert delivery["idempotency_key"] == f"lead:{lead}"
    assert decision["outcome"] == "routed" and decision["buyer_id"] == buyer
    assert expand(decision["candidates"])[0]["selected"] is True
    assert orjson.loads(job["payload"]) == {"lead_id": str(lead)}
    assert routed_at == WINTER_NOON_UTC


async def test_fifty_concurrent_routings_never_exceed_a_cap(runtime, world) -> None:
    async with unit_of_work(runtime.db) as conn:
        capped = await make_buyer(
            conn, world, priority=1, daily_cap=7, offer_fields={"hourly_cap": 9}
        )
        overflow = await make_buyer(conn, world, priority=2)
        leads = [await make_lead(conn, world) for _ in range(50)]
    service = Router(runtime.db)
    results = await asyncio.gather(*(service.route(lead, now=WINTER_NOON_UTC) for lead in leads))
    winners = [r.buyer_id for r in results]
    assert winners.count(capped) == 7
    assert winners.count(overflow) == 43
    assert await scalar(runtime, "SELECT count(*) FROM leads WHERE buyer_id = :b", b=capped) == 7
    assert await scalar(runtime, "SELECT cap_day_count FROM buyers WHERE id = :b", b=capped) == 7
    assert (
        await scalar(
            runtime, "SELECT cap_hour_count FROM buyer_offers WHERE buyer_id = :b", b=capped
        )
        == 7
    )
    # Every lead that lost the race to the cap records the reason in its decision.
    late = [r for r in results if r.buyer_id == overflow and r.rounds > 1]
    for r in late:
        reasons = {c["buyer_id"]: c["reasons"] for c in r.candidates}
        assert reasons[str(capped)] == ["daily_cap_reached"]


async def test_ten_concurrent_routings_of_one_lead_have_one_winner(runtime, world) -> None:
    async with unit_of_work(runtime.db) as conn:
        for priority in (1, 2, 3):
            await make_buyer(conn, world, priority=priority, daily_cap=100)
        lead = await make_lead(conn, world)
    service = Router(runtime.db)
    results = await asyncio.gather(*(service.route(lead, now=WINTER_NOON_UTC) for _ in range(10)))
    assert sorted(r.outcome for r in results) == ["noop"] * 9 + ["routed"]
    assert len({r.buyer_id for r in results}) == 1
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 1
    assert await scalar(runtime, "SELECT count(*) FROM deliveries") == 1
    assert (
        await scalar(runtime, "SELECT count(*) FROM pgqueuer WHERE entrypoint = 'deliver_lead'")
        == 1
    )
    assert await scalar(runtime, "SELECT sum(cap_day_count) FROM buyers") == 1
    assert await scalar(runtime, "SELECT sum(cap_day_count) FROM buyer_offers") == 1


async def test_route_job_is_a_noop_for_routed_and_unknown_leads(runtime, world) -> None:
    import uuid

    async with unit_of_work(runtime.db) as conn:
        await make_buyer(conn, world)
        lead = await make_lead(conn, world)
    assert (await route(runtime, lead)).outcome == "routed"
    again = await route(runtime, lead)
    assert again.outcome == "noop" and again.status == "routed"
    assert (await route(runtime, uuid.uuid4())).outcome == "not_found"
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 1


async def test_pipeline_posts_validate_and_route_through_jobs(client, runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world)
    body = {
        "source_id": str(world.source_id),
        "first_name": "Ana",
        "phone": "602 253 1234",
        "postal_code": "85001",
        "consent": True,
    }
    lead_id = (await client.post("/api/leads", json=body)).json()["lead_id"]
    await drain_jobs(runtime)
    state = (await client.get(f"/api/leads/{lead_id}")).json()
    assert state["status"] in ("routed", "delivered", "delivery_failed")
    assert state["routed_at"] is not None
    assert await scalar(runtime, "SELECT buyer_id FROM leads") == buyer


async def test_admin_routing_trace(client, runtime, world, admin) -> None:
    async with unit_of_work(runtime.db) as conn:
        winner = await make_buyer(conn, world, priority=1)
        paused = await make_buyer(conn, world, status="paused")
        lead = await make_lead(conn, world)
    await route(runtime, lead)
    url = f"/v1/admin/leads/{lead}/routing"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers={"authorization": "Bearer wrong"})).status_code == 401
    response = await client.get(url, headers=admin)
    assert response.status_code == 200
    (decision,) = response.json()["decisions"]
    assert decision["outcome"] == "routed" and decision["buyer_id"] == str(winner)
    by_buyer = {c["buyer_id"]: c for c in decision["candidates"]}
    assert by_buyer[str(paused)]["reasons"] == ["paused"]
    assert by_buyer[str(winner)]["selected"] is True
    missing = await client.get(
        "/v1/admin/leads/00000000-0000-0000-0000-000000000000/routing", headers=admin
    )
    assert missing.status_code == 404
