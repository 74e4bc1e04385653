"""Multi-sell: an offer sells a lead to up to N buyers as a shared lead, each sale with
its own price, cap units, reservation, delivery, bill, payout and return; an exclusive
sale wins only when its price beats the shares' sum."""

from __future__ import annotations

import asyncio

import pytest

from leadflood.core.uow import unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer
from tests.conftest import auth_headers
from tests.delivery.test_delivery import row, rows
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def shared_offer(runtime, buyer_server, *, exclusive_cents: int, **capped):
    """Priority order: D (exclusive only), then A, B, C (who also buy shared leads)."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await run(conn, "UPDATE offers SET max_sales = 3 WHERE id = :o", {"o": world.offer_id})
        await run(
            conn,
            "UPDATE sources SET payout_type = 'revenue_share', payout_share = 0.5 WHERE id = :s",
            {"s": world.source_id},
        )
        url = buyer_server.url
        buyers = {
            "D": await make_buyer(
                conn, world, name="D", priority=1, price_cents=exclusive_cents, webhook_url=url("d")
            ),
            "A": await make_buyer(
                conn,
                world,
                name="A",
                priority=2,
                price_cents=5000,
                webhook_url=url("a"),
                payment_method="prepaid",
                offer_fields={"shared_price_cents": 2000},
            ),
            "B": await make_buyer(
                conn,
                world,
                name="B",
                priority=3,
                price_cents=4000,
                webhook_url=url("b"),
                offer_fields={"shared_price_cents": 2000},
                **capped,
            ),
            "C": await make_buyer(
                conn,
                world,
                name="C",
                priority=4,
                price_cents=3000,
                webhook_url=url("c"),
                offer_fields={"shared_price_cents": 1500},
            ),
        }
        await run(
            conn, "UPDATE buyers SET balance_cents = 100000 WHERE id = :b", {"b": buyers["A"]}
        )
    return world, buyers


async def sales_of(runtime, lead):
    return await rows(
        runtime,
        "SELECT l.id, l.buyer_id, l.price_cents, l.status::text AS status FROM leads l "
        "WHERE l.id = :l OR l.sold_from_lead_id = :l ORDER BY l.sold_from_lead_id NULLS FIRST, "
        "l.price_cents DESC, l.id",
        l=lead,
    )


async def test_an_exclusive_price_above_the_shares_sum_buys_the_lead_alone(
    runtime, buyer_server
) -> None:
    world, buyers = await shared_offer(runtime, buyer_server, exclusive_cents=5600)
    async with unit_of_work(runtime.db) as conn:
        lead = await make_lead(conn, world)
    routed = await Router(runtime.db).route(lead)
    assert routed.buyer_id == buyers["D"] and routed.shared_with == []
    assert [(s["buyer_id"], s["price_cents"]) for s in await sales_of(runtime, lead)] == [
        (buyers["D"], 5600)
    ]


async def test_shares_win_a_tie_and_each_sale_stands_on_its_own(
    runtime, client, buyer_server
) -> None:
    world, buyers = await shared_offer(runtime, buyer_server, exclusive_cents=5500)
    async with unit_of_work(runtime.db) as conn:
        lead = await make_lead(conn, world, email="ana@example.com")
    routed = await Router(runtime.db).route(lead)
    # 20.00 + 20.00 + 15.00 = 55.00 ties D's exclusive 55.00: the lead is shared.
    assert routed.buyer_id == buyers["A"]
    assert routed.shared_with == [buyers["B"], buyers["C"]]
    sales = await sales_of(runtime, lead)
    assert [(s["buyer_id"], s["price_cents"], s["status"]) for s in sales] == [
        (buyers["A"], 2000, "routed"),
        (buyers["B"], 2000, "routed"),
        (buyers["C"], 1500, "routed"),
    ]
    # Each sale is delivered on its own, to its buyer, as a lead of its own.
    for sale in sales:
        assert (await DeliveryRun(runtime).deliver(sale["id"])).result == "delivered"
    assert sorted(r.path for r in buyer_server.received) == ["a", "b", "c"]
    # Billed on its own: the prepaid A is charged its shared price; each sale earns the
    # source its share.
    a = await row(
        runtime, "SELECT balance_cents, reserved_cents FROM buyers WHERE id = :b", b=buyers["A"]
    )
    assert a == {"balance_cents": 98000, "reserved_cents": 0}
    payouts = await rows(
        runtime,
        "SELECT amount_cents FROM ledger_transactions WHERE kind = 'source_payout' "
        "ORDER BY amount_cents DESC",
    )
    assert [p["amount_cents"] for p in payouts] == [1000, 1000, 750]
    # Returned on its own: B's share comes back; A's and C's stand.
    admin = await auth_headers(client, runtime, "admin")
    b_sale = sales[1]["id"]
    asked = await client.post(
        f"/v1/admin/leads/{b_sale}/return", json={"reason": "bad phone"}, headers=admin
    )
    assert asked.status_code == 201, asked.text
    accepted = await client.post(
        f"/v1/admin/billing/returns/{asked.json()['id']}/accept", headers=admin
    )
    assert accepted.status_code == 200, accepted.text
    statuses = {s["buyer_id"]: s["status"] for s in await sales_of(runtime, lead)}
    assert statuses == {buyers["A"]: "delivered", buyers["B"]: "returned", buyers["C"]: "delivered"}
    # The profit report counts one lead received and three sales.
    report = (await client.get("/v1/admin/reports/profit?group_by=offer", headers=admin)).json()
    (line,) = report["items"]
    assert line["leads"] == 1 and line["sold"] == 3
    # The lead's page lists its other sales.
    detail = (await client.get(f"/v1/admin/leads/{lead}", headers=admin)).json()
    assert [s["buyer_name"] for s in detail["other_sales"]] == ["B", "C"]
    share = (await client.get(f"/v1/admin/leads/{b_sale}", headers=admin)).json()
    assert [s["original"] for s in share["other_sales"]] == [True, False]


async def test_concurrent_routings_never_sell_a_capped_sharer_past_its_cap(
    runtime, buyer_server
) -> None:
    world, buyers = await shared_offer(runtime, buyer_server, exclusive_cents=100, daily_cap=3)
    async with unit_of_work(runtime.db) as conn:
        leads = [await make_lead(conn, world, email=f"c{n}@example.com") for n in range(12)]
    router = Router(runtime.db)
    results = await asyncio.gather(*(router.route(lead) for lead in leads))
    assert all(r.outcome == "routed" for r in results)
    counts = await rows(
        runtime,
        "SELECT buyer_id, count(*) AS n FROM leads WHERE status = 'routed' GROUP BY buyer_id",
    )
    sold = {r["buyer_id"]: r["n"] for r in counts}
    assert sold[buyers["B"]] == 3  # its cap, never more
    assert sold[buyers["A"]] == 12 and sold[buyers["C"]] == 12
    units = await row(runtime, "SELECT cap_day_count FROM buyers WHERE id = :b", b=buyers["B"])
    assert units["cap_day_count"] == 3


async def test_the_lead_page_lists_a_shared_leads_other_sales(runtime, buyer_server) -> None:
    from tests.web.test_pages import browser

    world, _buyers = await shared_offer(runtime, buyer_server, exclusive_cents=100)
    async with unit_of_work(runtime.db) as conn:
        lead = await make_lead(conn, world)
    await Router(runtime.db).route(lead)
    web = await browser(runtime, "manager")
    try:
        page = (await web.get(f"/leads/{lead}")).text
    finally:
        await web.aclose()
    assert 'id="sales"' in page and page.count('data-sale-status="routed"') == 2
    assert "20.00" in page and "15.00" in page


async def test_a_sharer_who_bought_the_consumer_gets_no_second_share(runtime, buyer_server) -> None:
    world, buyers = await shared_offer(runtime, buyer_server, exclusive_cents=100)
    async with unit_of_work(runtime.db) as conn:
        first = await make_lead(
            conn, world, email="ana@example.com", normalized_email="ana@example.com"
        )
    await Router(runtime.db).route(first)
    async with unit_of_work(runtime.db) as conn:
        # The same consumer again (the offer's policy let it through).
        again = await make_lead(
            conn, world, email="ana@example.com", normalized_email="ana@example.com"
        )
        await run(
            conn,
            "UPDATE buyer_offers SET shared_price_cents = 900 WHERE buyer_id = :d",
            {"d": buyers["D"]},
        )
    routed = await Router(runtime.db).route(again)
    assert routed.outcome == "routed"
    # A, B and C bought Ana: D (never sold her) buys her alone.
    assert routed.buyer_id == buyers["D"] and routed.shared_with == []
    trace = {c["buyer_id"]: c["reasons"] for c in routed.candidates}
    assert trace[str(buyers["A"])] == ["already_bought"]
