"""Outreach in a real browser: a sequence from the forms, enroll, tick, caught mail,
a simulated reply that stops the enrollment and lands in the inbox. Screenshots go to
test-artifacts/browser-outreach/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leadflood.prospecting import service as prospecting
from leadflood.prospecting.schemas import LeadIn
from tests.conftest import PASSWORD, make_settings
from tests.live import LiveServer, free_port
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip, fresh_dir, seed

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser-outreach"


async def _leads(tx) -> None:
    for first, email, company in (
        ("Ana", "ana@lead.example", "Acme"),
        ("Ben", "ben@lead.example", "Globex"),
    ):
        await prospecting.create_lead(
            tx, None, LeadIn(email=email, first_name=first, company=company)
        )


@pytest.mark.slow
def test_sequence_mail_reply_and_inbox_in_the_browser(database_url) -> None:
    sync_playwright = _browser_or_skip()
    seed(database_url, _leads)
    fresh_dir(ARTIFACTS)
    sink_port = free_port()
    settings = make_settings(
        database_url, smtp_sink_port=sink_port, smtp_host="127.0.0.1", smtp_port=sink_port
    )
    with LiveServer(settings, database_url, worker=True) as app, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        step = iter(range(1, 100))

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{next(step):02d}-{name}.png"), full_page=True)

        def wait_for(check, what: str, seconds: float = 20) -> None:
            deadline = time.monotonic() + seconds
            while not check():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.3)
                page.reload()

        try:
            page.goto(f"{app.url}/login?next=/outreach/mailboxes")
            page.fill("input[name=email]", "ops@example.com")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{app.url}/outreach/mailboxes")
            page.fill("#f-name", "Sales")
            page.fill("#f-from_email", "sales@seller.example")
            page.fill("#f-from_name", "Sam Seller")
            page.fill("#f-window_start", "00:00")
            page.fill("#f-window_end", "23:59")
            page.fill("#f-min_spacing_s", "0")  # both emails at once, for this test
            page.fill("#f-jitter_s", "0")
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("text=sales@seller.example")

            page.goto(f"{app.url}/outreach/sequences/new")
            page.fill("#f-name", "Intro")
            page.select_option("#f-mailbox_id", label="Sales <sales@seller.example>")
            page.fill("input[name=step1_subject]", "Idea for {{ company }}")
            page.fill("textarea[name=step1_body]", "Hi {{ firstname }}, a quick idea.")
            page.click("form.entity button[type=submit]")
            assert "unknown variable" in page.locator("p.error").inner_text()
            shot("sequence-template-error")
            page.fill(
                "textarea[name=step1_body]", "Hi {{ first_name }}, a quick idea for {{ company }}."
            )
            page.fill("input[name=step2_subject]", "Following up")
            page.fill("textarea[name=step2_body]", "Any thoughts, {{ first_name }}?")
            page.click("form.entity button[type=submit]")
            page.wait_for_selector("#activate")
            page.click("#activate")
            # A locator wait, not wait_for_function: the page's CSP forbids eval.
            page.wait_for_selector("#sequence-status:text-is('active')")

            for box in page.locator("input[name=lead_id]").all():
                box.check()
            page.click("#enroll")
            page.wait_for_selector("text=Enrolled 2 lead(s)")
            page.click("#run-tick")
            page.wait_for_selector("text=2 step(s) scheduled")
            shot("sequence-enrolled-and-ticked")

            page.goto(f"{app.url}/outreach/sink")
            wait_for(lambda: page.locator("#caught td.rcpt").count() == 2, "two caught emails")
            shot("sink-caught-mail")
            page.click("#caught a >> nth=0")
            recipient = (
                page.locator("text=/to \\w+@lead.example/")
                .inner_text()
                .split(" to ")[1]
                .split(" ")[0]
            )
            page.click("#simulate-reply")
            page.wait_for_selector("text=1 enrollment(s) stopped")
            shot("reply-simulated")

            page.goto(f"{app.url}/outreach/sequences")
            page.click("text=Intro")
            row = page.locator(f'#enrollments tr[data-lead="{recipient}"]')
            assert row.locator(".enrollment-status").inner_text() == "stopped"
            assert "replied" in row.inner_text()
            other = page.locator("#enrollments tr[data-lead] .enrollment-status").all_inner_texts()
            assert sorted(other) == ["active", "stopped"]
            shot("enrollment-stopped")

            page.goto(f"{app.url}/outreach/inbox")
            assert "1 new" in page.locator("#conversations").inner_text()
            page.click("#conversations a")
            assert page.locator('article[data-kind="reply"]').count() == 1
            assert "interested" in page.locator('article[data-kind="reply"]').inner_text()
            shot("inbox-thread")
            page.fill("#reply-body", "Great, Tuesday at 10?")
            page.click("#send-reply")
            wait_for(
                lambda: (
                    page.locator('article[data-kind="manual"] [data-message-status="sent"]').count()
                    == 1
                ),
                "the manual reply to be sent",
            )
            shot("manual-reply-sent")
        finally:
            browser.close()
