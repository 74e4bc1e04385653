"""Source payouts (issue 17, first part): a sold lead earns its source a payout, posted to
the ledger as a payable in the delivery's own statement, taken back on an accepted return;
the profit report shows revenue, payouts and margin by day, source, buyer and offer."""

from __future__ import annotations

import csv
import io

from leadflood.core.uow import unit_of_work
from tests.billing.test_billing import (
    B,
    assert_ledger_consistent,
    buyer_server,  # noqa: F401 - a fixture
    deliver_postpaid,
    scalar,
    world_with_buyer,
)
from tests.sql import run
from tests.web.test_pages import browser

REPORT = "/v1/admin/reports/profit"


async def test_payouts_follow_each_sources_rule_and_are_taken_back_on_a_return(
    client,
    runtime,
    admin,
    buyer_server,  # noqa: F811
) -> None:
    world, buyer = await world_with_buyer(runtime, buyer_server.url(), price_cents=2500)
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE sources SET payout_type = 'fixed', payout_cents = 800 WHERE id = :s",
            {"s": world.source_id},
        )
    fixed = await deliver_postpaid(runtime, world, 2)
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE sources SET payout_type = 'revenue_share', payout_share = 0.4 WHERE id = :s",
            {"s": world.source_id},
        )
    shared = await deliver_postpaid(runtime, world, 1)
    amounts = [
        await scalar(
            runtime,
            "SELECT amount_cents FROM ledger_transactions WHERE kind = 'source_payout' "
            "AND lead_id = :l",
            l=lead,
        )
        for lead in [*fixed, *shared]
    ]
    assert amounts == [800, 800, 1000]  # fixed 8.00 twice, then 40 % of 25.00
    assert (
        await scalar(
            runtime,
            "SELECT sum(amount_cents) FROM ledger_entries WHERE account = :a",
            a=f"source:{world.source_id}",
        )
        == -2600
    )  # what is owed to the source
    await assert_ledger_consistent(runtime)

    # An accepted return takes the payout back (once).
    asked = await client.post(
        f"/v1/admin/leads/{fixed[0]}/return", json={"reason": "bad phone"}, headers=admin
    )
    assert asked.status_code == 201, asked.text
    accepted = await client.post(f"{B}/returns/{asked.json()['id']}/accept", headers=admin)
    assert accepted.status_code == 200
    assert (
        await scalar(
            runtime,
            "SELECT amount_cents FROM ledger_transactions WHERE kind = 'payout_reversal' "
            "AND lead_id = :l",
            l=fixed[0],
        )
        == 800
    )
    await assert_ledger_consistent(runtime)

    by_source = (await client.get(f"{REPORT}?group_by=source", headers=admin)).json()["items"]
    (line,) = by_source
    assert line["key"] == str(world.source_id) and line["label"]
    assert (line["leads"], line["sold"], line["returned"]) == (3, 3, 1)
    assert line["revenue_cents"] == 3 * 2500 - 2500  # the returned sale comes off
    assert line["payouts_cents"] == 800 + 1000  # the returned lead's payout was taken back
    assert line["margin_cents"] == 5000 - 1800
    assert abs(line["return_rate"] - 1 / 3) < 1e-9
    by_buyer = (await client.get(f"{REPORT}?group_by=buyer", headers=admin)).json()["items"]
    assert [b["key"] for b in by_buyer] == [str(buyer)]

    exported = await client.get(f"{REPORT}?group_by=day&format=csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1 and rows[0]["margin"] == "32.00" and rows[0]["sold"] == "3"

    bad = await client.get(f"{REPORT}?group_by=planet", headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_group_by"
    backwards = await client.get(f"{REPORT}?from=2026-12-10&to=2026-12-01", headers=admin)
    assert backwards.status_code == 400

    web = await browser(runtime, "manager")
    try:
        page = await web.get("/billing/profit?group_by=source")
    finally:
        await web.aclose()
    assert page.status_code == 200
    assert 'id="margin-chart"' in page.text and '<td class="margin">$32.00</td>' in page.text


async def test_a_source_payout_rule_is_validated_when_saved(client, runtime, admin) -> None:
    async with unit_of_work(runtime.db) as conn:
        from tests.factories import make_world

        world = await make_world(conn)
    base = {"name": "Aff", "offer_id": str(world.offer_id), "source_key": "aff-77"}
    missing = await client.post(
        "/v1/admin/sources", json={**base, "payout_type": "fixed"}, headers=admin
    )
    assert missing.status_code == 400
    made = await client.post(
        "/v1/admin/sources",
        json={**base, "payout_type": "revenue_share", "payout_share": 0.35},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["payout_type"] == "revenue_share" and made.json()["payout_share"] == 0.35
