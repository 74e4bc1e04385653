"""The web UI in a real browser: Playwright driving Debian's chromium.

Signs in, creates an offer, a source and a buyer through the forms (enrolls the buyer
and gives it a service area, also through forms), posts a lead to the API with the
key the page showed once, and watches the lead's page report it delivered to the
local buyer server. Screenshots of each step go to test-artifacts/browser/.

Without /usr/bin/chromium the test is skipped, unless LEADFLOOD_REQUIRE_BROWSER=1
(CI sets it, and installs chromium) turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from leadflood.auth.service import create_user
from leadflood.catalog import service as catalog
from leadflood.core.runtime import build_runtime
from leadflood.core.uow import unit_of_work
from tests.buyer_server import BuyerServer
from tests.conftest import PASSWORD, make_settings, truncate_all
from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# As root and on a closed network chromium needs these (see the machine notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package")
        sync_playwright = None
    if missing:
        if os.environ.get("LEADFLOOD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but missing: {', '.join(missing)}")
        pytest.skip(f"no browser here ({', '.join(missing)}); apt-get install chromium")
    return sync_playwright


def seed(database_url: str, work) -> None:
    """Empty the database, then run `work(tx)` in one committed unit of work (a served app
    and its worker read it from other connections)."""

    async def run() -> None:
        runtime = build_runtime(make_settings(database_url), database_url)
        try:
            await truncate_all(runtime)
            async with unit_of_work(runtime.db) as tx:
                await create_user(tx, email="ops@example.com", password=PASSWORD, role="admin")
                await work(tx)
        finally:
            await runtime.close()

    asyncio.run(run())


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def _configuration(tx) -> None:
    await catalog.create_market(tx, slug="phoenix", name="Phoenix", timezone="America/Phoenix")
    await catalog.create_vertical(tx, slug="solar", name="Solar")
    await catalog.create_validation_policy(tx, name="Phone required", rules={"phone": "required"})
    await catalog.create_routing_policy(tx, name="Priority")


@pytest.mark.slow
def test_configure_in_the_browser_and_see_a_lead_delivered(database_url) -> None:
    sync_playwright = _browser_or_skip()
    seed(database_url, _configuration)
    fresh_dir(ARTIFACTS)

    with (
        BuyerServer() as buyer,
        LiveServer(make_settings(database_url), database_url, worker=True) as app,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        step = iter(range(1, 100))

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{next(step):02d}-{name}.png"), full_page=True)

        try:
            page.goto(f"{app.url}/config/offers")
            assert "/login" in page.url
            page.fill("input[name=email]", "ops@example.com")
            page.fill("input[name=password]", PASSWORD)
            shot("login")
            page.click("button[type=submit]")
            page.wait_for_url(f"{app.url}/config/offers")

            # Offer: a bad slug first, to see the field error, then a good one.
            page.goto(f"{app.url}/config/offers/new")
            page.fill("#f-slug", "Solar Phoenix!")
            page.fill("#f-name", "Solar — Phoenix")
            page.select_option("#f-market_id", label="phoenix")
            page.select_option("#f-vertical_id", label="solar")
            page.select_option("#f-validation_policy_id", label="Phone required")
            page.select_option("#f-routing_policy_id", label="Priority")
            page.click("form.entity button[type=submit]")
            error = page.locator('[data-field="slug"] .error')
            assert error.is_visible()
            shot("offer-field-error")
            page.fill("#f-slug", "solar-phx")
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("text=Saved.")
            shot("offer-created")

            page.goto(f"{app.url}/config/sources/new")
            page.fill("#f-name", "Landing page")
            page.select_option("#f-offer_id", label="solar-phx")
            page.fill("#f-source_key", "landing")
            page.check("input[name=with_api_key]")
            page.click("form.entity button[type=submit]")
            api_key = page.locator("#api-key").inner_text().strip()
            source_id = page.locator("#source-id").inner_text().strip()
            assert api_key.startswith("lfsrc_")
            shot("source-key-shown-once")

            page.goto(f"{app.url}/config/buyers/new")
            page.fill("#f-name", "SunCo")
            page.fill("#f-timezone", "America/Phoenix")
            page.fill("#f-webhook_url", buyer.url("sunco"))
            page.fill("#f-webhook_secret", "whsec-browser-test")
            page.select_option("#f-payment_method", "ach")
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("text=Saved.")
            assert page.locator("text=Webhook secret: set").is_visible()
            shot("buyer-created")

            page.click("text=Enroll in an offer")
            page.select_option("#f-offer_id", label="solar-phx")
            page.fill("#f-price_cents", "25.00")  # an amount, stored as 2500 cents
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("text=Saved.")
            page.goto(f"{app.url}/config/buyers")
            page.click("text=edit")
            page.click("text=Add a service area")
            page.select_option("#f-market_id", label="phoenix")
            page.fill("#f-postal_code", "85001")
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("text=Saved.")
            shot("service-area-added")

            response = httpx.post(
                f"{app.url}/api/leads",
                json={
                    "source_id": source_id,
                    "first_name": "Ana",
                    "phone": "602-253-0101",
                    "postal_code": "85001",
                },
                headers={"x-api-key": api_key},
            )
            assert response.status_code == 201, response.text
            lead_id = response.json()["lead_id"]

            page.goto(f"{app.url}/leads")
            page.click(f'a[href="/leads/{lead_id}"]')
            deadline = time.monotonic() + 20
            while page.locator("#lead-status").inner_text() != "delivered":
                assert time.monotonic() < deadline, "lead was not delivered in 20 s"
                time.sleep(0.3)
                page.reload()
            assert page.locator("#delivery-status").inner_text() == "succeeded"
            assert page.locator("#routing tr.selected").inner_text().startswith("SunCo")
            shot("lead-delivered")
            assert buyer.count("sunco") == 1

            page.goto(f"{app.url}/")
            assert page.locator('[data-stage="delivered"]').inner_text() == "1"
            shot("dashboard")
        finally:
            browser.close()
