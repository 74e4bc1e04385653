"""Outreach pages over HTTP: ICP editor with field errors, search status panel, leads, enrich."""

from __future__ import annotations

import re

import pytest

from tests.conftest import drain_jobs
from tests.outreach.helpers import scalar
from tests.web.test_pages import ORIGIN, browser


@pytest.fixture
async def web(runtime):
    runtime.settings.sample_providers = True
    runtime.settings.prospect_provider = "sample"
    runtime.settings.enrichment_provider = "sample"
    client = await browser(runtime, "manager")
    yield client
    await client.aclose()


async def test_icp_editor_search_panel_and_enrichment(web, runtime) -> None:
    bad = await web.post(
        "/outreach/icps/new",
        data={"name": "", "company_sizes": "lots", "titles": "VP"},
        headers=ORIGIN,
    )
    assert bad.status_code == 400
    for field in ("name", "company_sizes"):
        assert re.search(rf'data-field="{field}">.*?class="error"', bad.text, re.S), field

    made = await web.post(
        "/outreach/icps/new",
        data={
            "name": "Founders",
            "titles": "Founder\nChief Executive Officer",
            "company_sizes": "11,50",
        },
        headers=ORIGIN,
    )
    assert made.status_code == 303
    icp_url = made.headers["location"].split("?")[0]
    page = await web.get(made.headers["location"])
    assert "Saved." in page.text and "Run a search" in page.text

    panel = await web.post(
        f"{icp_url}/search",
        data={"provider": "sample", "pages": "1", "per_page": "100"},
        headers={**ORIGIN, "hx-request": "true"},
    )
    assert 'data-run-status="queued"' in panel.text and 'hx-trigger="every 1s"' in panel.text
    poll_url = re.search(r'hx-get="([^"]+)"', panel.text).group(1)
    await drain_jobs(runtime)
    done = await web.get(poll_url, headers={"hx-request": "true"})
    assert 'data-run-status="completed"' in done.text and "every 1s" not in done.text
    created = int(re.search(r"<strong>(\d+)</strong> new lead", done.text).group(1))
    assert created > 0

    listing = await web.get("/outreach/leads?sort=company")
    assert listing.status_code == 200
    lead_links = re.findall(r'href="(/outreach/leads/[0-9a-f-]{36})"', listing.text)
    assert len(lead_links) == created
    no_email = None
    for link in lead_links:
        detail = await web.get(link)
        if re.search(r'data-lead-field="email"></td>', detail.text):
            no_email = link
            break
    assert no_email, "the sample data has prospects without an email"
    job = await web.post(
        f"{no_email}/enrich", data={"provider": "sample"}, headers={**ORIGIN, "hx-request": "true"}
    )
    assert 'data-job-status="queued"' in job.text
    await drain_jobs(runtime)
    detail = await web.get(no_email)
    assert not re.search(r'data-lead-field="email"></td>', detail.text)
    assert "email_status" in detail.text and "→" in detail.text  # the recorded change


async def test_agents_cannot_define_icps(runtime) -> None:
    agent = await browser(runtime, "agent")
    try:
        assert (await agent.get("/outreach/icps")).status_code == 200
        denied = await agent.post("/outreach/icps/new", data={"name": "x"}, headers=ORIGIN)
        assert denied.status_code == 403
    finally:
        await agent.aclose()


async def test_analytics_inbox_and_sink_pages_render(web, runtime) -> None:
    for path in (
        "/outreach/analytics",
        "/outreach/inbox",
        "/outreach/sink",
        "/outreach/sequences",
        "/outreach/mailboxes",
        "/outreach/sequences/new",
    ):
        page = await web.get(path)
        assert page.status_code == 200, path
    analytics = await web.get("/outreach/analytics")
    assert 'data-metric="sent"' in analytics.text and analytics.text.count("<svg") == 6
    bad = await web.post(
        "/outreach/sequences/new",
        data={"name": "S", "step1_subject": "Hi", "step1_body": "{{ nope }}"},
        headers=ORIGIN,
    )
    assert bad.status_code == 400 and "unknown variable" in bad.text


async def test_a_lead_is_added_by_hand_and_enriched_from_the_leads_page(web, runtime) -> None:
    bad = await web.post(
        "/outreach/leads", data={"email": "not an address", "first_name": "Ana"}, headers=ORIGIN
    )
    assert bad.status_code == 400
    assert re.search(r'data-field="email">.*?class="error"', bad.text, re.S)
    assert 'value="Ana"' in bad.text  # what was typed stays
    made = await web.post(
        "/outreach/leads",
        data={
            "email": "ana@acme.example",
            "first_name": "<b>Ana</b>",
            "company": "Acme",
            "enrich": "on",
        },
        headers=ORIGIN,
    )
    assert made.status_code == 303
    page = await web.get(made.headers["location"])
    assert "&lt;b&gt;Ana&lt;/b&gt;" in page.text and "<b>Ana</b>" not in page.text
    await drain_jobs(runtime)
    page = await web.get(made.headers["location"])
    assert "enriched" in page.text
    again = await web.post("/outreach/leads", data={"email": "ana@acme.example"}, headers=ORIGIN)
    assert again.status_code == 400 and "a lead with this email exists" in again.text


async def test_a_whatsapp_step_is_set_up_with_its_template_on_the_sequence_form(
    web, runtime
) -> None:
    step = {"name": "WA", "step1_channel": "whatsapp", "step1_body": "Hi {{ first_name }}"}
    missing = await web.post("/outreach/sequences/new", data=step, headers=ORIGIN)
    assert missing.status_code == 400 and "approved" in missing.text
    made = await web.post(
        "/outreach/sequences/new",
        data={
            **step,
            "step1_whatsapp_template_id": "4711",
            "step1_template_params": "{{ first_name }}\n{{ company }}",
        },
        headers=ORIGIN,
    )
    assert made.status_code == 303, made.text
    assert await scalar(runtime, "SELECT whatsapp_template_id FROM outreach.sequence_steps") == 4711
    assert (
        await scalar(runtime, "SELECT template_params::text FROM outreach.sequence_steps")
        == '["{{ first_name }}", "{{ company }}"]'
    )
