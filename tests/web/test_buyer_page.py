"""The buyer's page: money as currency, caps with today's use, the schedule editor,
rates and recent deliveries with reasons, resume after a pause."""

from __future__ import annotations

from leadflood.core.uow import unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run
from tests.web.test_pages import ORIGIN, browser


async def test_the_buyer_page_shows_what_an_operator_works_from(runtime) -> None:
    with BuyerServer() as server:
        async with unit_of_work(runtime.db) as conn:
            world = await make_world(conn)
            buyer = await make_buyer(
                conn,
                world,
                name="Desert <Sun>",
                price_cents=4500,
                daily_cap=10,
                webhook_url=server.url("leads"),
                response_rules={"outcome_term": "DUPLICATE", "match_means": "rejected"},
            )
            leads = [await make_lead(conn, world, email=f"b{n}@example.com") for n in range(2)]
        server.script("leads", Reply(body="OK", media_type="text/plain"))
        server.script("leads", Reply(body="DUPLICATE", media_type="text/plain"))
        for lead in leads:
            await Router(runtime.db).route(lead)
            await DeliveryRun(runtime).deliver(lead)
    web = await browser(runtime, "admin")
    try:
        page = await web.get(f"/buyers/{buyer}")
        assert page.status_code == 200
        text = page.text
        assert "Desert &lt;Sun&gt;" in text and "<Sun>" not in text
        assert '<td class="price">$45.00</td>' in text  # money as currency, not cents
        # Today's use of the buyer's daily cap: two routed, one refused and given back.
        assert "daily 1 / 10" in text
        assert 'id="acceptance-rate">50%' in text and 'id="rejection-rate">50%' in text
        assert 'data-outcome="rejected"' in text and "DUPLICATE" in text
        assert 'id="always-open"' in text

        saved = await web.post(
            f"/buyers/{buyer}/schedule",
            data={
                "mon_start": "09:00",
                "mon_end": "17:00",
                "tue_start": "08:30",
                "tue_end": "12:00",
            },
            headers=ORIGIN,
        )
        assert saved.status_code == 303
        page = await web.get(saved.headers["location"])
        assert 'name="mon_start" value="09:00"' in page.text and "Saved." in page.text
        bad = await web.post(
            f"/buyers/{buyer}/schedule",
            data={"wed_start": "25:99", "wed_end": "26:00"},
            headers=ORIGIN,
        )
        assert bad.status_code == 400 and 'id="buyer-error"' in bad.text

        async with unit_of_work(runtime.db) as conn:
            await run(
                conn,
                "UPDATE buyers SET status = 'paused', paused_reason = 'failed attempts in a "
                "row; last: http_503', paused_at = now(), consecutive_failures = 10 "
                "WHERE id = :b",
                {"b": buyer},
            )
        paused = await web.get(f"/buyers/{buyer}")
        assert 'id="buyer-health"' in paused.text and "http_503" in paused.text
        resumed = await web.post(f"/buyers/{buyer}/resume", headers=ORIGIN)
        assert resumed.status_code == 303
        page = await web.get(f"/buyers/{buyer}")
        assert 'id="buyer-status">active' in page.text and 'id="buyer-health"' not in page.text
        missing = await web.get("/buyers/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
    finally:
        await web.aclose()
