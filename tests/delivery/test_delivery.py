"""deliver_lead against a real local buyer HTTP server and a real SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from leadflood.core.runtime import build_runtime
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import drain_jobs, make_settings
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def routed_lead(
    runtime, url: str | None, *, secret: str | None = "whsec-1", n: int = 1, **buyer_fields
):
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, webhook_url=url, webhook_secret=secret, **buyer_fields)
        leads = [
            await make_lead(
                conn, world, email="ana@example.com", raw_payload='{"utm_source": "fb"}'
            )
            for _ in range(n)
        ]
    service = Router(runtime.db)
    for lead in leads:
        assert (await service.route(lead)).outcome == "routed"
    return leads if n > 1 else leads[0]


async def row(runtime, sql: str, **params):
    return (await rows(runtime, sql, **params) or [None])[0]


async def rows(runtime, sql: str, **params):
    async with single_statements(runtime.db) as conn:
        return (await run(conn, sql, params)).mappings().all()


async def make_due(runtime, lead) -> None:
    """Fast-forward: the scheduled retry is due now."""
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE deliveries SET next_attempt_at = now() - interval '1s' WHERE lead_id = :l",
            {"l": lead},
        )


async def test_success_sends_signed_deterministic_body_once(runtime, buyer_server) -> None:
    lead = await routed_lead(runtime, buyer_server.url())
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "delivered"
    (got,) = buyer_server.received
    assert got.headers["idempotency-key"] == f"lead:{lead}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("leadflood/")
    expected = hmac.new(b"whsec-1", got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-leadflood-signature"] == f"sha256={expected}"
    body = orjson.loads(got.body)
    assert body["lead_id"] == str(lead) and body["custom"] == {"utm_source": "fb"}
    assert got.body == orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    attempt = await row(runtime, "SELECT * FROM delivery_attempts")
    assert attempt["outcome"] == "success" and attempt["http_status"] == 200
    assert attempt["request_digest"] == hashlib.sha256(got.body).hexdigest()
    assert attempt["response_excerpt"] == '{"accepted": true}'
    lead_row = await row(
        runtime, "SELECT status::text, billing_status::text, delivered_at FROM leads"
    )
    assert lead_row["status"] == "delivered" and lead_row["billing_status"] == "billable"
    assert lead_row["delivered_at"] is not None
    # Reprocessing after success sends nothing and reports the delivered state.
    again = await DeliveryRun(runtime).deliver(lead)
    assert again.result == "already_delivered" and buyer_server.count() == 1


async def test_unreachable_buyer_schedules_a_retry(runtime) -> None:
    from tests.live import free_port

    lead = await routed_lead(runtime, f"http://127.0.0.1:{free_port()}/nobody")
    before = datetime.now(UTC)
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "retry_scheduled"
    assert outcome.attempt.outcome == "retryable_error"
    assert outcome.attempt.error.startswith("connection_error")
    delivery = await row(runtime, "SELECT * FROM deliveries")
    assert delivery["status"] == "pending" and delivery["attempt_count"] == 1
    wait = delivery["next_attempt_at"] - before
    assert timedelta(seconds=29) < wait < timedelta(seconds=32)
    job = await row(
        runtime,
        "SELECT execute_after - now() AS wait FROM pgqueuer "
        "WHERE entrypoint = 'deliver_lead' AND status = 'queued' "
        "ORDER BY id DESC LIMIT 1",
    )
    assert timedelta(seconds=28) < job["wait"] <= timedelta(seconds=30)
    assert (await row(runtime, "SELECT status::text FROM leads"))["status"] == "routed"
    # A duplicate job arriving before the retry is due sends nothing.
    assert (await DeliveryRun(runtime).deliver(lead)).result == "not_due"


async def test_non_2xx_then_success(runtime, buyer_server) -> None:
    buyer_server.script("leads", Reply(503, body="busy"), Reply(200))
    lead = await routed_lead(runtime, buyer_server.url())
    service = DeliveryRun(runtime)
    assert (await service.deliver(lead)).result == "retry_scheduled"
    await make_due(runtime, lead)
    assert (await service.deliver(lead)).result == "delivered"
    async with runtime.db.pool_connection() as conn:
        rows = await conn.fetch(
            "SELECT attempt_no, http_status, outcome::text, "
            "response_excerpt, request_digest FROM delivery_attempts "
            "ORDER BY attempt_no"
        )
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, 503, "retryable_error"), (2, 200, "success")]
    assert rows[0]["response_excerpt"] == "busy"
    assert rows[0]["request_digest"] == rows[1]["request_digest"]  # same bytes both times
    bodies = {r.body for r in buyer_server.received}
    assert len(bodies) == 1 and buyer_server.count() == 2


async def test_slow_buyer_hits_the_timeout(runtime, buyer_server) -> None:
    buyer_server.script("leads", Reply(200, delay_s=3))
    lead = await routed_lead(runtime, buyer_server.url(), delivery_timeout_ms=300)
    started = asyncio.get_running_loop().time()
    outcome = await DeliveryRun(runtime).deliver(lead)
    elapsed = asyncio.get_running_loop().time() - started
    assert outcome.result == "retry_scheduled" and outcome.attempt.error.startswith("timeout")
    assert elapsed < 2
    attempt = await row(runtime, "SELECT duration_ms, http_status FROM delivery_attempts")
    assert attempt["http_status"] is None and 250 <= attempt["duration_ms"] < 1500


async def test_retry_exhaustion_marks_delivery_failed(runtime, buyer_server) -> None:
    buyer_server.default = Reply(500, body="down")
    lead = await routed_lead(runtime, buyer_server.url())
    service = DeliveryRun(runtime)
    results = []
    for _ in range(5):
        results.append((await service.deliver(lead)).result)
        await make_due(runtime, lead)
    assert results == ["retry_scheduled"] * 4 + ["failed"]
    delivery = await row(runtime, "SELECT * FROM deliveries")
    assert delivery["status"] == "failed" and delivery["attempt_count"] == 5
    assert delivery["last_error"].startswith("http_500")
    assert (await row(runtime, "SELECT status::text FROM leads"))["status"] == "delivery_failed"
    assert (await service.deliver(lead)).result == "already_failed"
    assert buyer_server.count() == 5


async def test_permanent_4xx_fails_at_once(runtime, buyer_server) -> None:
    buyer_server.script("leads", Reply(422, body='{"error": "bad zip"}'))
    lead = await routed_lead(runtime, buyer_server.url())
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "failed" and outcome.attempt.http_status == 422


@pytest.mark.parametrize(("retry_after", "expected"), [("120", 120), ("7200", 3600), ("5", 30)])
async def test_429_retry_after(runtime, buyer_server, retry_after, expected) -> None:
    buyer_server.script("leads", Reply(429, headers={"Retry-After": retry_after}))
    lead = await routed_lead(runtime, buyer_server.url())
    before = datetime.now(UTC)
    assert (await DeliveryRun(runtime).deliver(lead)).result == "retry_scheduled"
    delivery = await row(runtime, "SELECT next_attempt_at FROM deliveries")
    wait = (delivery["next_attempt_at"] - before).total_seconds()
    assert expected - 1 < wait < expected + 2


async def test_unconfigured_channel_fails_permanently(runtime) -> None:
    lead = await routed_lead(runtime, None)
    outcome = await DeliveryRun(runtime).deliver(lead)
    assert outcome.result == "failed"
    assert outcome.attempt.error.startswith("delivery_channel_unconfigured")


async def test_private_targets_are_refused_outside_dev(runtime, database_url, buyer_server) -> None:
    strict = build_runtime(
        make_settings(database_url, env="production", secret_key="p" * 48), database_url
    )
    try:
        lead = await routed_lead(strict, buyer_server.url(), secret=None)
        outcome = await DeliveryRun(strict).deliver(lead)
        assert outcome.result == "failed"
        assert outcome.attempt.error.startswith("destination_not_allowed")
        assert buyer_server.count() == 0
    finally:
        await strict.close()


async def test_two_workers_racing_send_each_delivery_exactly_once(runtime, buyer_server) -> None:
    leads = await routed_lead(runtime, buyer_server.url(), n=200, daily_cap=None)
    # A duplicate job for every delivery makes the race harder than production's.
    async with runtime.db.pool_connection() as conn:
        await conn.execute(
            "INSERT INTO pgqueuer (priority, entrypoint, payload, status, headers) "
            "SELECT 0, 'deliver_lead', convert_to(json_build_object('lead_id', lead_id)::text, "
            "'UTF8'), 'queued', 'null'::jsonb FROM deliveries"
        )
    second = build_runtime(runtime.settings, runtime.db.url)
    try:
        await asyncio.gather(
            drain_jobs(runtime, concurrency=10), drain_jobs(second, concurrency=10)
        )
    finally:
        await second.close()
    per_lead = {}
    for request in buyer_server.received:
        lead_id = orjson.loads(request.body)["lead_id"]
        per_lead[lead_id] = per_lead.get(lead_id, 0) + 1
    assert len(per_lead) == 200 and set(per_lead.values()) == {1}
    assert {str(lead) for lead in leads} == set(per_lead)
    delivered = await row(runtime, "SELECT count(*) AS n FROM leads WHERE status='delivered'")
    assert delivered["n"] == 200
    attempts = await row(runtime, "SELECT count(*) AS n FROM delivery_attempts")
    assert attempts["n"] == 200


async def test_email_channel_over_real_smtp(runtime, database_url) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    from tests.live import free_port

    received = []

    class Collect(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    rt = build_runtime(
        make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port), database_url
    )
    try:
        lead = await routed_lead(rt, None, delivery_channel="email", email="buyer@example.com")
        outcome = await DeliveryRun(rt).deliver(lead)
        assert outcome.result == "delivered", outcome
        (mail,) = received
        assert mail["To"] == "buyer@example.com"
        assert mail["Idempotency-Key"] == f"lead:{lead}"
        parts = list(mail.walk())
        attachment = next(p for p in parts if p.get_filename() == "lead.json")
        body = attachment.get_payload(decode=True)
        assert orjson.loads(body)["lead_id"] == str(lead)
        digest = await row(rt, "SELECT request_digest FROM delivery_attempts")
        assert digest["request_digest"] == hashlib.sha256(body).hexdigest()
        text_part = next(p for p in parts if p.get_content_type() == "text/plain")
        summary = text_part.get_payload(decode=True).decode()
        assert "First Name   Test" in summary and "ana@example.com" in summary
    finally:
        controller.stop()
        await rt.close()


async def test_the_worker_command_delivers_and_stops_on_sigterm(
    runtime, database_url, buyer_server
) -> None:
    """`leadflood worker` as its own process (uvloop, warmed pool, signal handling)."""
    import os
    import signal
    import sys

    leads = await routed_lead(runtime, buyer_server.url(), n=3)
    env = {
        **os.environ,
        "LEADFLOOD_DATABASE_URL": database_url,
        "LEADFLOOD_ENV": "test",
        "LEADFLOOD_LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "leadflood.cli", "worker", "--concurrency", "2", env=env
    )
    try:
        for _ in range(300):
            if len(buyer_server.received) >= 3 or worker.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert sorted(orjson.loads(r.body)["lead_id"] for r in buyer_server.received) == sorted(
            str(lead) for lead in leads
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), 20)
    assert code == 0
