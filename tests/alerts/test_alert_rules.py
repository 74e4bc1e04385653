"""Each alert rule driven with real data: it opens once per subject, stays one alert
while the condition lasts, is sent to the operator once, and resolves itself when the
condition clears; people acknowledge and resolve alerts in the API and the UI."""

from __future__ import annotations

import orjson

from leadflood.alerts import service
from leadflood.alerts.tasks import check_heartbeat
from leadflood.core.runtime import build_runtime
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import auth_headers, make_settings
from tests.delivery.test_delivery import row, rows
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run


async def evaluate(runtime) -> service.Evaluation:
    async with unit_of_work(runtime.db) as tx:
        return await service.evaluate(tx, runtime.settings)


async def live(runtime) -> dict[str, str]:
    return {
        r["rule"]: r["status"]
        for r in await rows(runtime, "SELECT rule, status FROM alerts WHERE status <> 'resolved'")
    }


async def sql(runtime, statement: str, **params) -> None:
    async with unit_of_work(runtime.db) as conn:
        await run(conn, statement, params)


async def test_every_rule_opens_once_and_resolves_when_its_condition_clears(runtime) -> None:
    with BuyerServer() as buyers:
        buyers.default = Reply(status=500, body="down")
        async with unit_of_work(runtime.db) as conn:
            world = await make_world(conn)
            failing = await make_buyer(conn, world, name="Flaky", webhook_url=buyers.url())
            leads = [await make_lead(conn, world, email=f"f{n}@example.com") for n in range(10)]
            # unsold_piling: 20 leads of the offer ended unsold in the last hour
            for n in range(20):
                await make_lead(
                    conn,
                    world,
                    status="unsold",
                    email=f"u{n}@example.com",
                )
            # source_silent: the source posted at this hour yesterday and the day before
            for days in (1, 2):
                await make_lead(conn, world, email=f"s{days}@example.com", status="delivered")
            await conn.enqueue("validate_lead", {"lead_id": "00000000-0000-0000-0000-000000000000"})
        await sql(runtime, "UPDATE leads SET unsold_at = now() WHERE status = 'unsold'")
        await sql(
            runtime,
            "UPDATE leads SET created_at = now() - make_interval(days => "
            "CASE email WHEN 's1@example.com' THEN 1 ELSE 2 END) "
            "WHERE email IN ('s1@example.com', 's2@example.com')",
        )
        await sql(
            runtime,
            "UPDATE leads SET created_at = now() - interval '5 hours' "
            "WHERE email NOT IN ('s1@example.com', 's2@example.com')",
        )
        # queue_backlog: a due job nobody took for 10 minutes
        await sql(
            runtime,
            "UPDATE pgqueuer SET execute_after = now() - interval '10 minutes' "
            "WHERE entrypoint = 'validate_lead'",
        )
        # buyer_failing: ten attempts, all failed
        for lead in leads:
            await Router(runtime.db).route(lead)
            assert (await DeliveryRun(runtime).deliver(lead)).result == "retry_scheduled"
    # provider_quota and mailbox_bounces
    await sql(
        runtime,
        "INSERT INTO outreach.provider_quotas (provider, exhausted_at, retry_at, "
        "message) VALUES ('apollo', now(), now() + interval '1 hour', 'credits')",
    )
    await sql(
        runtime,
        "INSERT INTO outreach.mailboxes (name, from_email, paused_reason) "
        "VALUES ('Sales', 'sales@example.com', 'bounce rate 9% over 5%')",
    )

    first = await evaluate(runtime)
    opened = {rule for rule, _ in first.opened}
    assert opened == {
        "queue_backlog",
        "buyer_failing",
        "source_silent",
        "unsold_piling",
        "provider_quota",
        "mailbox_bounces",
    }
    titles = {f.title for _, f in first.opened}
    assert "Buyer failing: Flaky" in titles
    sent = [
        bytes(r["payload"])
        for r in await rows(
            runtime, "SELECT payload FROM pgqueuer WHERE entrypoint = 'alerts.send'"
        )
        if b'"kind":"alert"' in bytes(r["payload"])
    ]
    assert len(sent) == 6  # one per new alert (besides the buyer's own "paused" notice)
    assert any(b"Buyer failing: Flaky" in payload for payload in sent)

    # The same conditions again: the same alerts, nothing sent twice.
    again = await evaluate(runtime)
    assert again.opened == [] and again.resolved == 0
    assert (await row(runtime, "SELECT count(*) AS n FROM alerts"))["n"] == 6

    # Conditions clear: their alerts resolve themselves.
    await sql(runtime, "DELETE FROM pgqueuer WHERE entrypoint = 'validate_lead'")
    await sql(runtime, "DELETE FROM outreach.provider_quotas")
    await sql(runtime, "UPDATE outreach.mailboxes SET paused_reason = NULL")
    cleared = await evaluate(runtime)
    assert cleared.resolved == 3
    assert set(await live(runtime)) == {"buyer_failing", "source_silent", "unsold_piling"}
    assert failing  # the buyer's alert stays while its attempts keep failing


async def test_the_heartbeat_alert_is_raised_and_sent_by_the_serve_process(database_url) -> None:
    with BuyerServer() as hook:
        settings = make_settings(database_url, alert_webhook_url=hook.url("alerts"))
        runtime = build_runtime(settings, database_url)
        try:
            async with unit_of_work(runtime.db) as conn:
                await run(conn, "DELETE FROM worker_heartbeat")
                await run(conn, "DELETE FROM alerts")
            assert await check_heartbeat(runtime, up_s=10) is False  # just started: wait
            assert await check_heartbeat(runtime, up_s=600) is True  # never seen: alert
            assert await check_heartbeat(runtime, up_s=660) is False  # the same alert
            (posted,) = [r for r in hook.received if r.path == "alerts"]
            assert "No worker is running" in orjson.loads(posted.body)["text"]
            async with single_statements(runtime.db) as tx:
                from leadflood.alerts import repository as repo

                await repo.beat(tx)
            await check_heartbeat(runtime, up_s=720)
            async with single_statements(runtime.db) as tx:
                status = await tx.fetchval(
                    "SELECT status FROM alerts WHERE rule = 'worker_heartbeat'"
                )
            assert status == "resolved"
        finally:
            await runtime.close()


async def test_people_acknowledge_and_resolve_alerts(runtime, client) -> None:
    await sql(
        runtime,
        "INSERT INTO outreach.provider_quotas (provider, exhausted_at, retry_at, message) "
        "VALUES ('hunter', now(), now() + interval '1 hour', 'monthly searches used')",
    )
    await evaluate(runtime)
    manager = await auth_headers(client, runtime, "manager")
    listed = (await client.get("/v1/admin/alerts?status=live", headers=manager)).json()["items"]
    (alert,) = listed
    assert alert["rule"] == "provider_quota" and alert["status"] == "open"
    acked = await client.post(f"/v1/admin/alerts/{alert['id']}/acknowledge", headers=manager)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    twice = await client.post(f"/v1/admin/alerts/{alert['id']}/acknowledge", headers=manager)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "invalid_transition"
    await evaluate(runtime)  # still exhausted: still the one acknowledged alert
    assert await live(runtime) == {"provider_quota": "acknowledged"}
    agent = await auth_headers(client, runtime, "agent")
    refused = await client.post(f"/v1/admin/alerts/{alert['id']}/resolve", headers=agent)
    assert refused.status_code == 403
    from tests.web.test_pages import ORIGIN, browser

    web = await browser(runtime, "admin")
    try:
        page = (await web.get("/alerts")).text
        assert 'data-alert-status="acknowledged"' in page and "Provider quota used up" in page
        done = await web.post(f"/alerts/{alert['id']}/resolve", headers=ORIGIN)
        assert "alert resolved" in done.text
    finally:
        await web.aclose()
    audit = await rows(
        runtime, "SELECT action FROM audit_log WHERE entity_type = 'alert' ORDER BY created_at"
    )
    assert [a["action"] for a in audit] == ["acknowledge", "resolve"]
    missing = await client.post(
        "/v1/admin/alerts/00000000-0000-0000-0000-000000000000/resolve", headers=manager
    )
    assert missing.status_code == 404
