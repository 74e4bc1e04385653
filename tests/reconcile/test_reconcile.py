"""Issue 14: the reconciler re-enqueues work no job can move, exactly once per stage, and
unrouted leads are retried until their shelf life ends, then end `unsold`."""

from __future__ import annotations

import uuid

import pytest

from leadflood.core.executions import create_execution
from leadflood.core.jobs import load_job_modules
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.reconcile.service import reconcile
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer
from tests.conftest import drain_jobs
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run

load_job_modules()


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def _scalar(runtime, sql: str, **params):
    async with single_statements(runtime.db) as conn:
        return (await run(conn, sql, params)).scalar()


async def _jobs(runtime, entrypoint: str) -> int:
    return await _scalar(
        runtime,
        "SELECT count(*) FROM pgqueuer WHERE entrypoint = :e AND status = 'queued'",
        e=entrypoint,
    )


async def _reconcile(runtime) -> dict[str, int]:
    async with unit_of_work(runtime.db) as tx:
        return await reconcile(tx)


async def _delete_jobs(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "DELETE FROM pgqueuer")


@pytest.mark.parametrize(
    ("status", "stage"), [("received", "validate_lead"), ("validated", "route_lead")]
)
async def test_a_lead_without_its_stage_job_is_recovered_once(
    runtime, buyer_server, status, stage
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, webhook_url=buyer_server.url(), webhook_secret=None)
        await make_lead(conn, world, status=status, email="a@example.com")
    assert await _jobs(runtime, stage) == 0
    assert await _reconcile(runtime) == {stage: 1}
    assert await _jobs(runtime, stage) == 1
    # A second run finds the job it queued: nothing more.
    assert await _reconcile(runtime) == {}
    assert await _jobs(runtime, stage) == 1
    await drain_jobs(runtime)
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "delivered"
    assert buyer_server.count() == 1


async def _routed(runtime, url: str) -> uuid.UUID:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, webhook_url=url, webhook_secret=None)
        lead = await make_lead(conn, world)
    assert (await Router(runtime.db).route(lead)).outcome == "routed"
    return lead


async def test_a_pending_delivery_without_its_job_is_recovered_once(runtime, buyer_server) -> None:
    await _routed(runtime, buyer_server.url())
    await _delete_jobs(runtime)
    assert await _reconcile(runtime) == {"deliver_lead": 1}
    assert await _reconcile(runtime) == {}
    await drain_jobs(runtime)
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "delivered"
    assert buyer_server.count() == 1


async def test_a_delivery_cut_off_mid_send_is_recovered_after_its_lease(
    runtime, buyer_server
) -> None:
    from leadflood.delivery.tasks import DeliveryRun

    lead = await _routed(runtime, buyer_server.url())
    await _delete_jobs(runtime)
    await DeliveryRun(runtime)._claim(lead)  # claimed, then the worker "died"
    # While the lease runs, the delivery is somebody's: nothing to repair.
    assert await _reconcile(runtime) == {}
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE deliveries SET lease_expires_at = now()")
    assert await _reconcile(runtime) == {"deliver_lead": 1}
    assert await _reconcile(runtime) == {}
    await drain_jobs(runtime)
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "delivered"
    outcomes = await _scalar(
        runtime, "SELECT string_agg(outcome::text, ',' ORDER BY attempt_no) FROM delivery_attempts"
    )
    assert outcomes == "retryable_error,success"


async def test_a_scheduled_retry_keeps_its_time_when_recovered(runtime) -> None:
    from tests.live import free_port

    await _routed(runtime, f"http://127.0.0.1:{free_port()}/gone")
    await drain_jobs(runtime)  # attempt 1 fails; retry queued in 30 s
    await _delete_jobs(runtime)
    assert await _reconcile(runtime) == {"deliver_lead": 1}
    wait = await _scalar(
        runtime,
        "SELECT extract(epoch FROM j.execute_after - d.next_attempt_at) "
        "FROM pgqueuer j, deliveries d",
    )
    assert abs(wait) < 1.0


async def test_a_tracked_execution_without_its_job_is_recovered_once(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        execution_id, _ = await create_execution(
            conn, "icp.search.run", {"icp_id": str(uuid.uuid4())}, max_attempts=3
        )
    await _delete_jobs(runtime)
    assert await _reconcile(runtime) == {"icp.search.run": 1}
    assert await _reconcile(runtime) == {}
    payload = await _scalar(
        runtime, "SELECT convert_from(payload, 'UTF8') FROM pgqueuer WHERE status = 'queued'"
    )
    assert str(execution_id) in payload


async def test_dead_letters_are_left_to_the_operator(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_lead(conn, world, status="received")
    await _reconcile(runtime)
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE pgqueuer SET status = 'failed'")
    assert await _reconcile(runtime) == {}


async def test_two_reconcilers_at_once_repair_once(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_lead(conn, world, status="received")
    async with unit_of_work(runtime.db) as first:
        assert await reconcile(first) == {"validate_lead": 1}
        async with unit_of_work(runtime.db) as second:
            assert await reconcile(second) == {"skipped_concurrent_run": 1}
    assert await _jobs(runtime, "validate_lead") == 1


async def _unrouted_lead(runtime, url: str, *, shelf_life: int = 15):
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await run(
            conn,
            "UPDATE offers SET shelf_life_minutes = :m WHERE id = :o",
            {"m": shelf_life, "o": world.offer_id},
        )
        buyer = await make_buyer(conn, world, webhook_url=url, webhook_secret=None, status="paused")
        lead = await make_lead(conn, world)
    assert (await Router(runtime.db).route(lead)).outcome == "no_route"
    return lead, buyer


async def test_resuming_a_buyer_retries_unrouted_leads_promptly(
    client, runtime, admin, buyer_server
) -> None:
    _lead, buyer = await _unrouted_lead(runtime, buyer_server.url())
    response = await client.patch(
        f"/v1/admin/buyers/{buyer}", json={"status": "active"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert await _jobs(runtime, "routing.retry_unrouted") == 1
    await drain_jobs(runtime)
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "delivered"
    assert buyer_server.count() == 1


async def test_the_periodic_sweep_routes_when_capacity_opens_without_an_api_call(
    database_url, buyer_server
) -> None:
    """A cap window rolling over or a schedule opening changes nothing in the database:
    only the periodic sweep can notice. A worker's timer must run it."""
    import asyncio

    from leadflood.core.jobs import run_worker
    from leadflood.core.runtime import build_runtime
    from tests.conftest import make_settings, truncate_all

    runtime = build_runtime(
        make_settings(database_url, unrouted_retry_interval_s=0.3), database_url
    )
    await truncate_all(runtime)
    try:
        await _unrouted_lead(runtime, buyer_server.url())
        async with unit_of_work(runtime.db) as conn:  # as psql would: no trigger, no job
            await run(conn, "UPDATE buyers SET status = 'active'")
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(runtime, concurrency=2, stop=stop))
        try:
            for _ in range(100):
                if await _scalar(runtime, "SELECT status::text FROM leads") == "delivered":
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 15)
        assert await _scalar(runtime, "SELECT status::text FROM leads") == "delivered"
    finally:
        await runtime.close()


async def test_past_its_shelf_life_an_unrouted_lead_ends_unsold_and_is_counted(
    client, runtime, admin
) -> None:
    await _unrouted_lead(runtime, "http://127.0.0.1:9/x", shelf_life=0)
    assert await Router(runtime.db).retry_unrouted() == {"unsold": 1}
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "unsold"
    # Terminal: a later sweep leaves it alone.
    assert await Router(runtime.db).retry_unrouted() == {}
    funnel = (await client.get("/v1/admin/dashboard", headers=admin)).json()
    assert funnel["today"]["unsold"] == 1, funnel
    listed = await client.get("/v1/admin/leads?status=unsold", headers=admin)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1
    summary = (await client.get("/v1/analytics/summary", headers=admin)).json()
    assert summary["distribution"]["totals"]["unsold"] == 1


async def test_inside_its_shelf_life_an_unrouted_lead_stays_and_is_retried(runtime) -> None:
    await _unrouted_lead(runtime, "http://127.0.0.1:9/x", shelf_life=15)
    assert await Router(runtime.db).retry_unrouted() == {"no_route": 1}
    assert await _scalar(runtime, "SELECT status::text FROM leads") == "validated"


@pytest.mark.parametrize(("position", "repair"), [(3, "completed"), (2, "resumed")])
async def test_an_enrollment_waiting_on_nothing_is_repaired_once(runtime, position, repair) -> None:
    """Its last send's job ended without the completion check (or a step was lost)."""
    async with runtime.db.pool_connection() as conn:
        lead = await conn.fetchval(
            "INSERT INTO outreach.leads (email, source, source_ref) "
            "VALUES ('e@example.com', 'manual', 'e') RETURNING id"
        )
        seq = await conn.fetchval(
            "INSERT INTO outreach.sequences (name, status) VALUES ('S', 'active') RETURNING id"
        )
        for n in (1, 2):
            await conn.execute(
                "INSERT INTO outreach.sequence_steps (sequence_id, position, channel, "
                "body_template) VALUES ($1, $2, 'email', 'Hi')",
                seq,
                n,
            )
        await conn.execute(
            "INSERT INTO outreach.enrollments (sequence_id, lead_id, next_position, next_step_at) "
            "VALUES ($1, $2, $3, NULL)",
            seq,
            lead,
            position,
        )
    assert await _reconcile(runtime) == {f"enrollment_{repair}": 1}
    assert await _reconcile(runtime) == {}
    state = await _scalar(
        runtime, "SELECT status || ':' || (next_step_at IS NOT NULL) FROM outreach.enrollments"
    )
    assert state == ("completed:false" if repair == "completed" else "active:true")


async def test_an_operator_can_reroute_an_unsold_lead(client, runtime, admin, buyer_server) -> None:
    lead, buyer = await _unrouted_lead(runtime, buyer_server.url(), shelf_life=0)
    await Router(runtime.db).retry_unrouted()
    response = await client.post(f"/v1/admin/leads/{lead}/reroute", headers=admin)
    assert response.json()["status"] == "unsold"  # still no buyer: it stays unsold
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE buyers SET status = 'active'")
    response = await client.post(f"/v1/admin/leads/{lead}/reroute", headers=admin)
    assert response.status_code == 200 and response.json()["status"] == "routed", response.text
    assert buyer
