"""Billing pages over HTTP: balance and ledger, top-up form, invoices, returns queue."""

from __future__ import annotations

import re

import pytest

from leadflood.routing.tasks import Router
from tests.billing.test_billing import PERIOD, leads, world_with_buyer
from tests.buyer_server import BuyerServer
from tests.conftest import drain_jobs
from tests.web.test_pages import ORIGIN, browser

HX = {**ORIGIN, "hx-request": "true"}


@pytest.fixture
async def web(runtime):
    client = await browser(runtime, "manager")
    yield client
    await client.aclose()


async def test_balance_invoice_and_returns_pages(web, runtime) -> None:
    with BuyerServer() as buyer_server:
        world, prepaid = await world_with_buyer(
            runtime, buyer_server.url(), payment_method="prepaid", name="Prepaid Co"
        )
        top = await web.post(
            f"/billing/buyers/{prepaid}/top-up",
            data={"amount": "100.00", "note": "wire"},
            headers=HX,
        )
        assert top.status_code == 204 and top.headers["hx-redirect"] == f"/billing/buyers/{prepaid}"
        bad = await web.post(
            f"/billing/buyers/{prepaid}/top-up", data={"amount": "ten"}, headers=HX
        )
        assert "amount looks like" in bad.text
        (lead,) = await leads(runtime, world, 1)
        await Router(runtime.db).route(lead)
        await drain_jobs(runtime)
        page = await web.get(f"/billing/buyers/{prepaid}")
        assert re.search(r'data-amount="balance">75.00<', page.text)
        assert "delivery debit" in page.text and "-25.00" in page.text

        post_world, _ = await world_with_buyer(
            runtime, buyer_server.url(), payment_method="ach", name="Postpaid Co", price_cents=1200
        )
        for lead_id in await leads(runtime, post_world, 2):
            await Router(runtime.db).route(lead_id)
        await drain_jobs(runtime)
        ran = await web.post("/billing/invoices/run", data={"period": PERIOD}, headers=HX)
        assert "1 invoice(s), 2 new line(s)" in ran.text
        listing = await web.get("/billing/invoices")
        invoice_url = re.search(r'href="(/billing/invoices/[0-9a-f-]{36})"', listing.text).group(1)
        invoice = await web.get(invoice_url)
        assert (
            re.search(r'id="invoice-total">24.00 USD<', invoice.text)
            and 'id="issue"' in invoice.text
        )
        issued = await web.post(f"{invoice_url}/issue", headers=HX)
        assert issued.status_code == 204
        assert 'id="invoice-status">issued<' in (await web.get(invoice_url)).text

        filed = await web.post(
            f"/billing/leads/{lead}/return", data={"reason": "duplicate"}, headers=HX
        )
        assert "Return filed" in filed.text
        queue = await web.get("/billing/returns")
        return_id = re.search(
            r'hx-post="/billing/returns/([0-9a-f-]{36})/accept"', queue.text
        ).group(1)
        accepted = await web.post(f"/billing/returns/{return_id}/accept", headers=HX)
        assert accepted.status_code == 204
        assert re.search(
            r'data-amount="balance">100.00<', (await web.get(f"/billing/buyers/{prepaid}")).text
        )
        overview = await web.get("/billing")
        assert "Prepaid Co" in overview.text and "Postpaid Co" in overview.text


async def test_agents_cannot_see_billing(runtime) -> None:
    agent = await browser(runtime, "agent")
    try:
        assert (await agent.get("/billing")).status_code == 403
    finally:
        await agent.aclose()
