"""The waterfall: a buyer's refusal sends the lead to the next eligible buyer, with caps
and reservations given back, up to the offer's limit of buyers; every buyer tried is on
record in order."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from leadflood.core.uow import unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import auth_headers, drain_jobs
from tests.delivery.test_delivery import row, rows
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run

RULES = {"outcome_term": "DUPLICATE", "match_means": "rejected"}


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def three_buyers(runtime, buyer_server, *, max_buyer_attempts: int = 3, **first):
    """Three buyers by priority, each at its own path, all reading DUPLICATE as a refusal."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await run(
            conn,
            "UPDATE offers SET max_buyer_attempts = :n WHERE id = :o",
            {"n": max_buyer_attempts, "o": world.offer_id},
        )
        buyers = [
            await make_buyer(
                conn,
                world,
                name=f"B{n}",
                priority=n,
                price_cents=1000 * n,
                webhook_url=buyer_server.url(f"b{n}"),
                response_rules=RULES,
                **(first if n == 1 else {}),
            )
            for n in (1, 2, 3)
        ]
        lead = await make_lead(conn, world, email="ana@example.com")
    return world, buyers, lead


async def route_and_deliver(runtime, lead) -> list[str]:
    """Route, deliver, and follow the waterfall until the lead settles."""
    outcomes = []
    for _ in range(6):
        routed = await Router(runtime.db).route(lead)
        if routed.outcome != "routed":
            outcomes.append(routed.outcome)
            break
        result = (await DeliveryRun(runtime).deliver(lead)).result
        for _ in range(50):
            # Under load a claim can find the buyer's slots taken for an instant (its job
            # is re-queued): try again, as that job would.
            if result not in ("busy", "throttled"):
                break
            await asyncio.sleep(0.05)
            result = (await DeliveryRun(runtime).deliver(lead)).result
        outcomes.append(result)
        if result != "rejected":
            break
    return outcomes


async def test_refused_twice_sold_to_the_third_buyer(runtime, client, buyer_server) -> None:
    _, buyers, lead = await three_buyers(runtime, buyer_server)
    buyer_server.script("b1", Reply(body="DUPLICATE", media_type="text/plain"))
    buyer_server.script("b2", Reply(body="DUPLICATE", media_type="text/plain"))
    buyer_server.script("b3", Reply(body="OK", media_type="text/plain"))
    assert await route_and_deliver(runtime, lead) == ["rejected", "rejected", "delivered"]
    assert [r.path for r in buyer_server.received] == ["b1", "b2", "b3"]
    final = await row(
        runtime,
        "SELECT l.status::text AS status, l.buyer_id, l.price_cents, "
        "l.billing_status::text AS billing, d.status::text AS delivery FROM leads l "
        "JOIN deliveries d ON d.lead_id = l.id WHERE l.id = :l",
        l=lead,
    )
    assert final == {
        "status": "delivered",
        "buyer_id": buyers[2],
        "price_cents": 3000,
        "billing": "billable",
        "delivery": "succeeded",
    }
    # Every buyer tried is on record, in order: the decisions and the attempts.
    decisions = await rows(
        runtime,
        "SELECT buyer_id FROM routing_decisions WHERE lead_id = :l ORDER BY decided_at, id",
        l=lead,
    )
    assert [d["buyer_id"] for d in decisions] == buyers
    attempts = await rows(
        runtime,
        "SELECT a.buyer_id, a.outcome::text AS outcome FROM delivery_attempts a "
        "JOIN deliveries d ON d.id = a.delivery_id WHERE d.lead_id = :l ORDER BY a.attempt_no",
        l=lead,
    )
    assert [(a["buyer_id"], a["outcome"]) for a in attempts] == [
        (buyers[0], "rejected"),
        (buyers[1], "rejected"),
        (buyers[2], "success"),
    ]
    admin = await auth_headers(client, runtime, "admin")
    detail = (await client.get(f"/v1/admin/leads/{lead}", headers=admin)).json()
    assert "rejected_this_lead" in str(detail)  # the trace says why B1 and B2 were skipped
    # The lead's page shows each buyer tried, in order, with its outcome.
    from tests.web.test_pages import browser

    web = await browser(runtime, "manager")
    try:
        page = (await web.get(f"/leads/{lead}")).text
    finally:
        await web.aclose()
    rows_html = re.findall(r'<tr data-attempt-outcome="(\w+)"><td>\d+</td><td>([^<]*)</td>', page)
    assert rows_html == [("rejected", "B1"), ("rejected", "B2"), ("success", "B3")]


async def test_caps_and_reservations_are_given_back_on_a_refusal(runtime, buyer_server) -> None:
    _, buyers, lead = await three_buyers(
        runtime, buyer_server, daily_cap=1, payment_method="prepaid"
    )
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE buyers SET balance_cents = 100000 WHERE id = :b", {"b": buyers[0]})
    buyer_server.script("b1", Reply(body="DUPLICATE", media_type="text/plain"))
    buyer_server.script("b2", Reply(body="OK", media_type="text/plain"))
    assert await route_and_deliver(runtime, lead) == ["rejected", "delivered"]
    b1 = await row(
        runtime,
        "SELECT reserved_cents, balance_cents, cap_day_count FROM buyers WHERE id = :b",
        b=buyers[0],
    )
    # Nothing reserved or charged at B1, and its one daily unit is free again.
    assert b1 == {"reserved_cents": 0, "balance_cents": 100000, "cap_day_count": 0}
    offer_units = await row(
        runtime,
        "SELECT cap_day_count FROM buyer_offers WHERE buyer_id = :b",
        b=buyers[0],
    )
    assert offer_units == {"cap_day_count": 0}


async def test_refused_by_as_many_buyers_as_the_offer_allows_it_ends_unsold(
    runtime, buyer_server
) -> None:
    _, buyers, lead = await three_buyers(runtime, buyer_server, max_buyer_attempts=2)
    buyer_server.default = Reply(body="DUPLICATE", media_type="text/plain")
    assert await route_and_deliver(runtime, lead) == ["rejected", "rejected_unsold"]
    assert buyer_server.count() == 2  # the third buyer was never offered it
    final = await row(
        runtime,
        "SELECT status::text AS status, billing_status::text AS billing, unsold_at IS NOT NULL "
        "AS unsold FROM leads WHERE id = :l",
        l=lead,
    )
    assert final == {"status": "unsold", "billing": "non_billable", "unsold": True}
    refusals = await rows(
        runtime,
        "SELECT buyer_id, reason FROM lead_rejections WHERE lead_id = :l ORDER BY rejected_at",
        l=lead,
    )
    assert [(r["buyer_id"], r["reason"]) for r in refusals] == [
        (buyers[0], "DUPLICATE"),
        (buyers[1], "DUPLICATE"),
    ]


async def test_a_failing_buyer_pauses_itself_and_its_leads_go_to_others(
    runtime, client, buyer_server
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        failing = await make_buyer(
            conn, world, priority=1, webhook_url=buyer_server.url("down"), pause_after_failures=3
        )
        healthy = await make_buyer(conn, world, priority=2, webhook_url=buyer_server.url("up"))
        leads = [await make_lead(conn, world, email=f"p{n}@example.com") for n in range(5)]
    buyer_server.script("down", *[Reply(status=503, body="down") for _ in range(3)])
    runtime.settings.alert_webhook_url = buyer_server.url("alerts")
    router = Router(runtime.db)
    for lead in leads[:2]:
        assert (await router.route(lead)).buyer_id == failing
        assert (await DeliveryRun(runtime).deliver(lead)).result == "retry_scheduled"
    state = await row(
        runtime, "SELECT status, consecutive_failures FROM buyers WHERE id = :b", b=failing
    )
    assert state == {"status": "active", "consecutive_failures": 2}
    assert (await router.route(leads[2])).buyer_id == failing
    assert (await DeliveryRun(runtime).deliver(leads[2])).result == "retry_scheduled"
    paused = await row(
        runtime,
        "SELECT status, paused_reason, paused_at IS NOT NULL AS at FROM buyers WHERE id = :b",
        b=failing,
    )
    assert paused["status"] == "paused" and paused["at"]
    assert "http_503" in paused["paused_reason"]  # the reason names the last error
    # The operator is told, by a Slack-compatible webhook (a job: nothing sent in the unit).
    assert buyer_server.count("alerts") == 0
    await drain_jobs(runtime)
    (alert,) = [r for r in buyer_server.received if r.path == "alerts"]
    text = orjson.loads(alert.body)["text"]
    assert "paused itself" in text and "http_503" in text
    runtime.settings.alert_webhook_url = None
    # Its next lead goes to the healthy buyer; the pause is on record as the system's.
    assert (await router.route(leads[3])).buyer_id == healthy
    audit = await row(
        runtime,
        "SELECT actor FROM audit_log WHERE action = 'pause' AND entity_id = :b",
        b=failing,
    )
    assert audit == {"actor": "system"}
    admin = await auth_headers(client, runtime, "admin")
    shown = (await client.get(f"/v1/admin/buyers/{failing}", headers=admin)).json()
    assert shown["status"] == "paused" and "http_503" in shown["paused_reason"]
    resumed = await client.patch(
        f"/v1/admin/buyers/{failing}", json={"status": "active"}, headers=admin
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["consecutive_failures"] == 0 and resumed.json()["paused_reason"] is None
    # Back in rotation; an answer (here a sale) ends a failure streak.
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE buyers SET consecutive_failures = 2 WHERE id = :b", {"b": failing})
    assert (await router.route(leads[4])).buyer_id == failing
    assert (await DeliveryRun(runtime).deliver(leads[4])).result == "delivered"
    assert await row(
        runtime, "SELECT consecutive_failures FROM buyers WHERE id = :b", b=failing
    ) == {"consecutive_failures": 0}


async def test_a_buyer_over_its_error_rate_pauses_itself(runtime, buyer_server) -> None:
    """Never 10 failures in a row, but more than half of its last 20 attempts failed."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(
            conn,
            world,
            webhook_url=buyer_server.url("flaky"),
            pause_after_failures=0,
            pause_error_rate=0.5,
        )
        leads = [await make_lead(conn, world, email=f"e{n}@example.com") for n in range(21)]
    # ok, fail, fail, ok, fail, fail, ...: 2 failures in every 3 attempts, never 3 in a row.
    replies = [Reply(status=200) if n % 3 == 0 else Reply(status=500) for n in range(21)]
    buyer_server.script("flaky", *replies)
    statuses = []
    for lead in leads:
        if (await Router(runtime.db).route(lead)).outcome != "routed":
            break
        await DeliveryRun(runtime).deliver(lead)
        statuses.append(
            (await row(runtime, "SELECT status FROM buyers WHERE id = :b", b=buyer))["status"]
        )
    # Judged from its 20th attempt on: paused then, not before.
    assert statuses[:19] == ["active"] * 19 and statuses[19] == "paused"
    reason = (await row(runtime, "SELECT paused_reason FROM buyers WHERE id = :b", b=buyer))[
        "paused_reason"
    ]
    assert "http_500" in reason


async def test_a_paused_buyer_resumes_itself_after_a_healthy_probe(runtime, buyer_server) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        auto = await make_buyer(
            conn,
            world,
            webhook_url=buyer_server.url("leads"),
            auto_resume=True,
            health_url=buyer_server.url("health"),
        )
        manual = await make_buyer(
            conn, world, webhook_url=buyer_server.url("leads"), health_url=buyer_server.url("h2")
        )
        await run(
            conn,
            "UPDATE buyers SET status = 'paused', paused_reason = 'failing', paused_at = now(), "
            "consecutive_failures = 10 WHERE id = :b",
            {"b": auto},
        )
        # Paused by an operator (no health reason): never resumed by a probe.
        await run(conn, "UPDATE buyers SET status = 'paused' WHERE id = :b", {"b": manual})

    async def probe_round() -> None:
        async with unit_of_work(runtime.db) as tx:
            await tx.enqueue("buyers.probe", {})
        await drain_jobs(runtime)

    buyer_server.script("health", Reply(status=503, body="still down"))
    await probe_round()
    assert (await row(runtime, "SELECT status FROM buyers WHERE id = :b", b=auto)) == {
        "status": "paused"
    }
    buyer_server.script("health", Reply(status=200, body="ok"))
    await probe_round()
    state = await row(
        runtime,
        "SELECT status, consecutive_failures, paused_reason FROM buyers WHERE id = :b",
        b=auto,
    )
    assert state == {"status": "active", "consecutive_failures": 0, "paused_reason": None}
    assert (await row(runtime, "SELECT status FROM buyers WHERE id = :b", b=manual)) == {
        "status": "paused"
    }
    assert buyer_server.count("h2") == 0
    audit = await row(
        runtime, "SELECT actor FROM audit_log WHERE action = 'resume' AND entity_id = :b", b=auto
    )
    assert audit == {"actor": "system"}


async def test_refused_by_every_buyer_of_the_offer_it_ends_unsold_at_once(
    runtime, buyer_server
) -> None:
    """Two buyers, a limit of three: after both refused, no shelf life can sell it."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        for n in (1, 2):
            await make_buyer(
                conn,
                world,
                priority=n,
                webhook_url=buyer_server.url(f"w{n}"),
                response_rules=RULES,
            )
        lead = await make_lead(conn, world, email="all@example.com")
    buyer_server.default = Reply(body="DUPLICATE", media_type="text/plain")
    assert await route_and_deliver(runtime, lead) == ["rejected", "rejected", "unsold"]
    final = await row(
        runtime,
        "SELECT status::text AS status, billing_status::text AS billing FROM leads WHERE id = :l",
        l=lead,
    )
    assert final == {"status": "unsold", "billing": "non_billable"}


async def test_concurrent_refusals_and_routings_never_exceed_a_cap(runtime, buyer_server) -> None:
    """Twenty leads routed and delivered concurrently to a buyer with a daily cap of 5
    that refuses every other lead, a second buyer behind it: the first buyer never holds
    more than 5 units, never sells more than 5, and each lead ends sold once or unsold."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        capped = await make_buyer(
            conn,
            world,
            priority=1,
            daily_cap=5,
            webhook_url=buyer_server.url("capped"),
            response_rules=RULES,
        )
        await make_buyer(
            conn, world, priority=2, webhook_url=buyer_server.url("other"), response_rules=RULES
        )
        leads = [await make_lead(conn, world, email=f"c{n}@example.com") for n in range(20)]
    buyer_server.script(
        "capped",
        *[Reply(body="DUPLICATE" if n % 2 else "OK", media_type="text/plain") for n in range(40)],
    )
    buyer_server.script("other", *[Reply(body="OK", media_type="text/plain") for _ in range(40)])
    outcomes = await asyncio.gather(*(route_and_deliver(runtime, lead) for lead in leads))
    sold_by_capped = await row(
        runtime,
        "SELECT count(*) AS n FROM deliveries WHERE buyer_id = :b AND status = 'succeeded'",
        b=capped,
    )
    units = await row(runtime, "SELECT cap_day_count FROM buyers WHERE id = :b", b=capped)
    assert sold_by_capped["n"] <= 5 and units["cap_day_count"] <= 5
    assert units["cap_day_count"] == sold_by_capped["n"]  # refusals gave their units back
    final = await rows(runtime, "SELECT status::text AS status FROM leads")
    assert {r["status"] for r in final} <= {"delivered", "validated", "unsold"}
    assert sum(1 for r in final if r["status"] == "delivered") == sum(
        1 for o in outcomes if o and o[-1] == "delivered"
    )
    # No lead sold twice: one succeeded delivery per delivered lead.
    twice = await row(
        runtime,
        "SELECT count(*) AS n FROM (SELECT lead_id FROM delivery_attempts a JOIN deliveries d "
        "ON d.id = a.delivery_id WHERE a.outcome = 'success' GROUP BY lead_id "
        "HAVING count(*) > 1) x",
    )
    assert twice == {"n": 0}
