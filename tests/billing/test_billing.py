"""Billing on a ledger: top-ups, prepaid debits under concurrency, invoices, returns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from leadflood.core.uow import single_statements, unit_of_work
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import drain_jobs
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run

B = "/v1/admin/billing"
PERIOD = datetime.now(UTC).strftime("%Y-%m")


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def scalar(runtime, sql: str, **params):
    async with single_statements(runtime.db) as conn:
        return (await run(conn, sql, params)).scalar()


async def assert_ledger_consistent(runtime) -> None:
    """Every transaction balances, and each balance equals its ledger account."""
    assert await scalar(runtime, "SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries") == 0
    drift = await scalar(
        runtime,
        "SELECT count(*) FROM buyers b WHERE b.balance_cents <> coalesce((SELECT sum(amount_cents) "
        "FROM ledger_entries e WHERE e.account = 'buyer:' || b.id::text), 0)",
    )
    assert drift == 0


async def world_with_buyer(runtime, url: str, **buyer_fields):
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world, webhook_url=url, **buyer_fields)
    return world, buyer


async def leads(runtime, world, n: int) -> list:
    async with unit_of_work(runtime.db) as conn:
        return [await make_lead(conn, world) for _ in range(n)]


async def test_top_ups_and_adjustments_post_balanced_transactions(client, runtime, admin) -> None:
    _, buyer = await world_with_buyer(runtime, "http://127.0.0.1:9/x", payment_method="prepaid")
    url = f"{B}/buyers/{buyer}/top-ups"
    once = {**admin, "Idempotency-Key": "wire-42"}
    first = await client.post(
        url, json={"amount_cents": 5000, "reference": "wire 42"}, headers=once
    )
    again = await client.post(
        url, json={"amount_cents": 5000, "reference": "wire 42"}, headers=once
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["balance_cents"] == again.json()["balance_cents"] == 5000
    assert again.json()["replayed"] is True
    fix = await client.post(
        f"{B}/buyers/{buyer}/adjustments",
        json={"delta_cents": -700, "reason": "refund fee"},
        headers=admin,
    )
    assert fix.json()["balance_cents"] == 4300
    bad = await client.post(url, json={"amount_cents": -5}, headers=admin)
    assert bad.status_code == 400
    account = (await client.get(f"{B}/buyers/{buyer}", headers=admin)).json()
    assert account["balance_cents"] == account["ledger_balance"] == 4300
    assert [e["kind"] for e in account["ledger"]] == ["adjustment", "top_up"]
    assert account["ledger"][0]["running_balance"] == 4300
    await assert_ledger_consistent(runtime)


async def test_prepaid_delivery_debits_the_reserved_price(
    client, runtime, admin, buyer_server
) -> None:
    world, buyer = await world_with_buyer(runtime, buyer_server.url(), payment_method="prepaid")
    await client.post(f"{B}/buyers/{buyer}/top-ups", json={"amount_cents": 5000}, headers=admin)
    (lead,) = await leads(runtime, world, 1)
    assert (await Router(runtime.db).route(lead)).outcome == "routed"
    assert await scalar(runtime, "SELECT reserved_cents FROM buyers WHERE id = :b", b=buyer) == 2500
    await drain_jobs(runtime)
    account = (await client.get(f"{B}/buyers/{buyer}", headers=admin)).json()
    assert (account["balance_cents"], account["reserved_cents"]) == (2500, 0)
    assert (
        account["ledger"][0]["kind"] == "delivery_debit"
        and account["ledger"][0]["delta_cents"] == -2500
    )
    await assert_ledger_consistent(runtime)


async def test_concurrent_routings_never_spend_more_than_the_balance(
    client, runtime, admin, buyer_server
) -> None:
    world, buyer = await world_with_buyer(
        runtime, buyer_server.url(), payment_method="prepaid", min_balance_cents=500
    )
    # 8,000 above a 500 minimum pays for 3 leads at 2,500, not 4.
    await client.post(f"{B}/buyers/{buyer}/top-ups", json={"amount_cents": 8000}, headers=admin)
    batch = await leads(runtime, world, 10)
    routing = Router(runtime.db)
    results = await asyncio.gather(*(routing.route(lead) for lead in batch))
    assert sorted(r.outcome for r in results).count("routed") == 3
    await drain_jobs(runtime, concurrency=8)
    assert buyer_server.count() == 3
    balance, reserved = (
        await scalar(runtime, "SELECT balance_cents FROM buyers WHERE id = :b", b=buyer),
        await scalar(runtime, "SELECT reserved_cents FROM buyers WHERE id = :b", b=buyer),
    )
    assert (balance, reserved) == (500, 0)
    reasons = await scalar(
        runtime,
        "SELECT count(DISTINCT lead_id) FROM routing_decisions WHERE outcome = 'no_route' "
        "AND candidates::text LIKE '%insufficient_balance%'",
    )
    # The top-up queued an unrouted sweep, so each lead may carry more than one decision.
    assert reasons == 7
    await assert_ledger_consistent(runtime)


async def test_failed_delivery_releases_the_reservation(
    client, runtime, admin, buyer_server
) -> None:
    world, buyer = await world_with_buyer(runtime, buyer_server.url(), payment_method="prepaid")
    await client.post(f"{B}/buyers/{buyer}/top-ups", json={"amount_cents": 2500}, headers=admin)
    buyer_server.script("leads", Reply(status=400))
    (lead,) = await leads(runtime, world, 1)
    await Router(runtime.db).route(lead)
    await drain_jobs(runtime)
    assert (
        await scalar(runtime, "SELECT status::text FROM leads WHERE id = :l", l=lead)
        == "delivery_failed"
    )
    assert await scalar(runtime, "SELECT reserved_cents FROM buyers WHERE id = :b", b=buyer) == 0
    # The money is spent elsewhere; a re-delivery now needs funds again.
    await client.post(
        f"{B}/buyers/{buyer}/adjustments",
        json={"delta_cents": -1000, "reason": "chargeback"},
        headers=admin,
    )
    refused = await client.post(f"/v1/admin/leads/{lead}/redeliver", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "insufficient_balance"


async def deliver_postpaid(runtime, world, n: int) -> list:
    batch = await leads(runtime, world, n)
    for lead in batch:
        await Router(runtime.db).route(lead)
    await drain_jobs(runtime)
    return batch


async def test_invoices_bill_each_lead_once(client, runtime, admin, buyer_server) -> None:
    world, _ = await world_with_buyer(
        runtime, buyer_server.url(), payment_method="ach", price_cents=1000
    )
    await deliver_postpaid(runtime, world, 3)
    run = (await client.post(f"{B}/invoices", json={"period": PERIOD}, headers=admin)).json()
    (first,) = run["invoices"]
    assert (first["lines"], first["total_cents"], first["added"]) == (3, 3000, 3)
    rerun = (await client.post(f"{B}/invoices", json={"period": PERIOD}, headers=admin)).json()
    assert rerun["invoices"][0]["added"] == 0 and rerun["invoices"][0]["total_cents"] == 3000
    assert await scalar(runtime, "SELECT count(*) FROM invoice_line_items") == 3

    await deliver_postpaid(runtime, world, 1)  # a draft takes late leads of its period
    grown = (await client.post(f"{B}/invoices", json={"period": PERIOD}, headers=admin)).json()
    assert (grown["invoices"][0]["lines"], grown["invoices"][0]["total_cents"]) == (4, 4000)

    invoice_id = first["invoice_id"]
    issued = await client.post(f"{B}/invoices/{invoice_id}/issue", headers=admin)
    assert issued.json()["status"] == "issued" and issued.json()["due_at"]
    assert (await client.post(f"{B}/invoices/{invoice_id}/issue", headers=admin)).status_code == 409
    voided = (await client.post(f"{B}/invoices/{invoice_id}/void", headers=admin)).json()
    assert voided["status"] == "void" and voided["lines"] == []
    again = (await client.post(f"{B}/invoices", json={"period": PERIOD}, headers=admin)).json()
    assert again["invoices"][0]["invoice_id"] != invoice_id and again["invoices"][0]["lines"] == 4
    paid = await client.post(
        f"{B}/invoices/{again['invoices'][0]['invoice_id']}/pay", headers=admin
    )
    assert paid.status_code == 409  # a draft is issued before it is paid
    assert (
        await client.post(f"{B}/invoices", json={"period": "2026-13"}, headers=admin)
    ).status_code == 400


async def test_concurrent_invoice_runs_never_bill_twice(
    client, runtime, admin, buyer_server
) -> None:
    world, _ = await world_with_buyer(
        runtime, buyer_server.url(), payment_method="wire", price_cents=700
    )
    await deliver_postpaid(runtime, world, 5)
    runs = await asyncio.gather(
        *(client.post(f"{B}/invoices", json={"period": PERIOD}, headers=admin) for _ in range(4))
    )
    assert all(r.status_code == 200 for r in runs)
    assert await scalar(runtime, "SELECT count(*) FROM invoices") == 1
    assert await scalar(runtime, "SELECT count(*) FROM invoice_line_items") == 5
    assert await scalar(runtime, "SELECT total_cents FROM invoices") == 3500


def test_cli_invoice_run(database_url, runtime, monkeypatch, cli) -> None:
    monkeypatch.setenv("LEADFLOOD_DATABASE_URL", database_url)
    result = cli("billing", "invoice", "--period", PERIOD)
    assert result.exit_code == 0 and "nothing to invoice" in result.output
    bad = cli("billing", "invoice", "--period", "May")
    assert bad.exit_code == 2 and "invalid_period" in bad.output


async def test_returns_window_rate_cap_and_credit(client, runtime, admin, buyer_server) -> None:
    world, buyer = await world_with_buyer(
        runtime, buyer_server.url(), payment_method="prepaid", max_return_rate=0.5
    )
    await client.post(f"{B}/buyers/{buyer}/top-ups", json={"amount_cents": 10000}, headers=admin)
    batch = await deliver_postpaid(runtime, world, 3)
    assert await scalar(runtime, "SELECT balance_cents FROM buyers WHERE id = :b", b=buyer) == 2500

    key = (await client.post(f"{B}/buyers/{buyer}/rotate-key", headers=admin)).json()["api_key"]
    filed = await client.post(
        "/api/returns",
        json={"lead_id": str(batch[0]), "reason": "disconnected number"},
        headers={"x-api-key": key},
    )
    assert filed.status_code == 201 and filed.json()["status"] == "pending"
    assert (
        await client.post(
            "/api/returns",
            json={"lead_id": str(batch[1]), "reason": "x"},
            headers={"x-api-key": "nope"},
        )
    ).status_code == 401
    dup = await client.post(
        "/api/returns",
        json={"lead_id": str(batch[0]), "reason": "again"},
        headers={"x-api-key": key},
    )
    assert dup.status_code == 409

    # 2 of 3 returned would be 67% > the 50% cap.
    capped = await client.post(
        f"/v1/admin/leads/{batch[1]}/return", json={"reason": "bad email"}, headers=admin
    )
    assert capped.status_code == 409 and capped.json()["error"]["code"] == "return_rate_exceeded"
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE buyers SET max_return_rate = NULL")
        await run(
            conn,
            "UPDATE leads SET delivered_at = now() - interval '8 days' WHERE id = :l",
            {"l": batch[2]},
        )
    late = await client.post(
        f"/v1/admin/leads/{batch[2]}/return", json={"reason": "late"}, headers=admin
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "return_window_closed"

    queue = (await client.get(f"{B}/returns?status=pending", headers=admin)).json()["items"]
    (pending,) = queue
    accepted = await client.post(f"{B}/returns/{pending['id']}/accept", headers=admin)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert (
        await client.post(f"{B}/returns/{pending['id']}/accept", headers=admin)
    ).status_code == 409
    state = (await client.get(f"/v1/admin/leads/{batch[0]}", headers=admin)).json()["lead"]
    assert (state["status"], state["billing_status"]) == ("returned", "credited")
    account = (await client.get(f"{B}/buyers/{buyer}", headers=admin)).json()
    assert account["balance_cents"] == 5000 and account["ledger"][0]["kind"] == "return_credit"
    await assert_ledger_consistent(runtime)

    second = (
        await client.post(
            f"/v1/admin/leads/{batch[1]}/return", json={"reason": "bad email"}, headers=admin
        )
    ).json()
    rejected = await client.post(
        f"{B}/returns/{second['id']}/reject", json={"note": "number works"}, headers=admin
    )
    assert rejected.json()["status"] == "rejected"
    assert (
        await scalar(runtime, "SELECT status::text FROM leads WHERE id = :l", l=batch[1])
        == "delivered"
    )
