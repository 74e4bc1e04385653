"""Issue 14: a slow attempt's retry is never lost, nothing is held while a buyer is called,
an attempt cut off mid-send stays visible, DNS failures are retried in production."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import structlog

from leadflood.core.jobs import REGISTRY, JobSpec, run_worker
from leadflood.core.queue import enqueue as enqueue_raw
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Environment
from leadflood.core.uow import unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import make_settings
from tests.delivery.test_delivery import routed_lead, row, rows
from tests.sql import run


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def _run_worker_until(runtime, predicate, timeout_s: float = 20.0) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime, concurrency=4, stop=stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await predicate():
            assert asyncio.get_running_loop().time() < deadline, "work did not finish"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=15)


async def test_retry_after_a_slow_attempt_runs_and_delivers(database_url, buyer_server) -> None:
    """The bug: the retry job's delay was counted from a transaction opened before a slow
    call, so it ran early, was dropped as not_due, and the lead stayed routed forever."""
    from tests.conftest import truncate_all

    runtime = build_runtime(
        make_settings(database_url, delivery_retry_schedule_s=[3.0]), database_url
    )
    await truncate_all(runtime)
    try:
        buyer_server.script("leads", Reply(500, delay_s=2.0, body="busy"), Reply(200))
        lead = await routed_lead(runtime, buyer_server.url())
        async with unit_of_work(runtime.db) as conn:
            await run(conn, "DELETE FROM pgqueuer")
        outcome = await DeliveryRun(runtime).deliver(lead)
        assert outcome.result == "retry_scheduled"
        timing = await row(
            runtime,
            "SELECT d.next_attempt_at, j.execute_after FROM deliveries d, pgqueuer j "
            "WHERE j.entrypoint = 'deliver_lead' AND j.status = 'queued'",
        )
        # The job becomes due exactly when the delivery does: one clock, one transaction.
        assert timing["execute_after"] == timing["next_attempt_at"]

        async def delivered() -> bool:
            status = await row(runtime, "SELECT status::text AS s FROM leads")
            return status["s"] == "delivered"

        await _run_worker_until(runtime, delivered)
        attempts = await row(
            runtime, "SELECT count(*) AS n, count(finished_at) AS done FROM delivery_attempts"
        )
        assert attempts["n"] == 2 and attempts["done"] == 2
        assert buyer_server.count() == 2
    finally:
        await runtime.close()


async def test_a_slow_buyer_holds_no_lock_no_transaction_and_no_connection(
    runtime, buyer_server
) -> None:
    buyer_server.script("leads", Reply(200, delay_s=2.0))
    lead = await routed_lead(runtime, buyer_server.url())
    pool_size = runtime.settings.db_pool_size
    sending = asyncio.create_task(DeliveryRun(runtime).deliver(lead))
    while buyer_server.count() == 0:
        await asyncio.sleep(0.02)
    # Mid-send: the attempt is already recorded as started, and nothing is held.
    started = await row(
        runtime, "SELECT attempt_no, finished_at, outcome::text AS outcome FROM delivery_attempts"
    )
    assert started["attempt_no"] == 1 and started["finished_at"] is None
    assert started["outcome"] is None
    async with runtime.db.pool_connection() as conn:
        async with conn.transaction():
            locked = await conn.fetchval(
                "SELECT id FROM deliveries WHERE lead_id = $1 FOR UPDATE NOWAIT", lead
            )
        assert locked is not None
        idle_in_tx = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        )
        assert idle_in_tx == 0
    pool = runtime.db._raw_pool
    assert pool is not None and pool.get_size() - pool.get_idle_size() == 0 < pool_size
    assert (await sending).result == "delivered"


async def test_an_attempt_cut_off_mid_send_stays_visible_and_is_taken_over(
    runtime, buyer_server
) -> None:
    lead = await routed_lead(runtime, buyer_server.url())
    service = DeliveryRun(runtime)
    # A worker claims and starts attempt 1, then dies before recording anything.
    claimed = await service._claim(lead)
    assert not hasattr(claimed, "result")
    dead_row, _ = claimed
    dead_attempt = dead_row.attempt_no
    open_attempt = await row(runtime, "SELECT finished_at FROM delivery_attempts")
    assert open_attempt["finished_at"] is None
    # While its lease runs, nobody else sends.
    assert (await service.deliver(lead)).result == "busy"
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE deliveries SET lease_expires_at = now() - interval '1s'")
    outcome = await service.deliver(lead)
    assert outcome.result == "delivered" and outcome.attempt_no == 2
    attempts = await rows(
        runtime,
        "SELECT attempt_no, outcome::text AS outcome, error "
        "FROM delivery_attempts ORDER BY attempt_no",
    )
    assert [a["outcome"] for a in attempts] == ["retryable_error", "success"]
    assert attempts[0]["error"].startswith("interrupted")
    # The dead worker coming back records nothing over the new owner's result.
    from leadflood.delivery import repository as repo

    late = repo.AttemptRecord(
        dead_row.delivery_id, dead_attempt, 1.0, 500, "", "retryable_error", "x", "digest"
    )
    async with runtime.db.pool_connection() as conn:
        assert await repo.record_retry(conn, late, timedelta(seconds=30)) is False
    status = await row(runtime, "SELECT status::text AS s FROM deliveries")
    assert status["s"] == "succeeded"


async def test_dns_failure_is_retryable_in_production(database_url) -> None:
    from tests.conftest import truncate_all

    settings = make_settings(
        database_url,
        env=Environment.production,
        secret_key="x" * 48,
        allow_private_networks=False,
    )
    runtime = build_runtime(settings, database_url)
    await truncate_all(runtime)
    try:
        lead = await routed_lead(runtime, "https://buyer.does-not-exist.invalid/leads", secret=None)
        outcome = await DeliveryRun(runtime).deliver(lead)
        assert outcome.result == "retry_scheduled", outcome
        assert outcome.attempt.error.startswith("dns_error")
    finally:
        await runtime.close()


async def test_a_job_that_raises_is_logged_with_its_error(runtime) -> None:
    async def explode(ctx) -> None:
        raise RuntimeError("boom in the handler")

    REGISTRY["test.explode"] = JobSpec("test.explode", explode, NO_RETRY)
    try:
        async with runtime.db.pool_connection() as conn:
            await enqueue_raw(conn, "test.explode", {})
        with structlog.testing.capture_logs() as logs:
            await run_worker(runtime, concurrency=2, drain=True)
        failed = [e for e in logs if e["event"] == "job_failed"]
        assert failed and failed[0]["error"] == "RuntimeError: boom in the handler"
        assert failed[0]["exc_info"]
    finally:
        REGISTRY.pop("test.explode", None)


async def test_a_secret_stored_under_another_key_fails_the_delivery_not_the_job(
    runtime, buyer_server
) -> None:
    lead = await routed_lead(runtime, buyer_server.url())
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE buyers SET webhook_secret = 'v1:not-a-fernet-token'")
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "failed"
    assert outcome.attempt.error.startswith("webhook_secret_unreadable")
    assert buyer_server.count() == 0


async def test_an_offer_name_with_a_line_break_fails_an_email_delivery(runtime) -> None:
    runtime.settings.smtp_host = "127.0.0.1"  # never reached: the message cannot be built
    lead = await routed_lead(
        runtime, None, secret=None, delivery_channel="email", email="buyer@example.com"
    )
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE offers SET name = 'Solar\r\nBcc: victim@example.com'")
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "failed"
    assert outcome.attempt.error.startswith("invalid_header")


async def test_a_slow_buyer_holds_at_most_its_share_of_worker_slots(
    database_url, buyer_server
) -> None:
    from tests.conftest import truncate_all

    runtime = build_runtime(
        make_settings(database_url, delivery_max_in_flight_per_buyer=2), database_url
    )
    await truncate_all(runtime)
    try:
        buyer_server.default = Reply(200, delay_s=1.0)
        await routed_lead(runtime, buyer_server.url(), n=6, daily_cap=None)
        results = await asyncio.gather(
            *(DeliveryRun(runtime).deliver(lead) for lead in await _lead_ids(runtime))
        )
        outcomes = sorted(r.result for r in results)
        assert outcomes.count("delivered") == 2 and outcomes.count("throttled") == 4
        from tests.conftest import drain_jobs

        await drain_jobs(runtime, concurrency=6)
        delivered = await row(runtime, "SELECT count(*) AS n FROM leads WHERE status = 'delivered'")
        assert delivered["n"] == 6
        arrivals = sorted(r.at for r in buyer_server.received)
        # Never more than 2 requests at the buyer within one reply's time.
        assert all(arrivals[i + 2] - arrivals[i] >= 0.9 for i in range(len(arrivals) - 2))
    finally:
        await runtime.close()


async def _lead_ids(runtime):
    async with runtime.db.pool_connection() as conn:
        return [r["lead_id"] for r in await conn.fetch("SELECT lead_id FROM deliveries")]


async def test_an_attempt_in_flight_shows_on_the_lead_api_and_page(
    client, runtime, admin, buyer_server
) -> None:
    from tests.web.test_pages import browser

    lead = await routed_lead(runtime, buyer_server.url())
    await DeliveryRun(runtime)._claim(lead)  # started, not finished
    response = await client.get(f"/v1/admin/leads/{lead}/delivery", headers=admin)
    assert response.status_code == 200, response.text
    assert "attempt" in response.text
    web = await browser(runtime, "manager")
    try:
        page = await web.get(f"/leads/{lead}")
        assert page.status_code == 200 and "in progress" in page.text
    finally:
        await web.aclose()


async def test_a_worker_killed_mid_send_loses_nothing(runtime, database_url, buyer_server) -> None:
    """kill -9 of `leadflood worker` while a buyer is answering: the attempt stays on
    record as interrupted and a new worker delivers the lead once its lease runs out."""
    import os
    import signal
    import sys

    buyer_server.script("leads", Reply(200, delay_s=30.0))  # the first call never returns
    lead = await routed_lead(runtime, buyer_server.url(), delivery_timeout_ms=1000)
    env = {
        **os.environ,
        "LEADFLOOD_DATABASE_URL": database_url,
        "LEADFLOOD_ENV": "test",
        "LEADFLOOD_LOG_LEVEL": "WARNING",
        "LEADFLOOD_RECONCILE_INTERVAL_S": "1",
        # The killed worker's picked job goes to the next worker after this.
        "LEADFLOOD_JOB_HEARTBEAT_TIMEOUT_S": "2",
    }

    async def start_worker():
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "leadflood.cli", "worker", "--concurrency", "2", env=env
        )

    first = await start_worker()
    try:
        for _ in range(300):
            if buyer_server.count() >= 1:
                break
            await asyncio.sleep(0.05)
        assert buyer_server.count() == 1
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    # The lease is the buyer's timeout plus a margin; shorten the wait, not the logic.
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE deliveries SET lease_expires_at = now()")
    second = await start_worker()
    try:
        for _ in range(300):
            status = await row(runtime, "SELECT status::text AS s FROM leads")
            if status["s"] == "delivered":
                break
            await asyncio.sleep(0.05)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 20)
    assert status["s"] == "delivered"
    outcomes = await rows(
        runtime,
        "SELECT a.outcome::text AS outcome, a.error FROM delivery_attempts a "
        "JOIN deliveries d ON d.id = a.delivery_id WHERE d.lead_id = :l ORDER BY a.attempt_no",
        l=lead,
    )
    assert [o["outcome"] for o in outcomes] == ["retryable_error", "success"]
    assert outcomes[0]["error"].startswith("interrupted")
