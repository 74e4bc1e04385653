"""An offer's posting instructions: built from its configuration, and true: each example
body on the page, posted as the page says, is accepted."""

from __future__ import annotations

import html
import re

import orjson

from leadflood.core.uow import unit_of_work
from tests.factories import make_world
from tests.web.test_pages import browser


def _block(page: str, block_id: str) -> str:
    found = re.search(rf'<pre id="{block_id}">(.*?)</pre>', page, re.S)
    assert found, block_id
    return html.unescape(found.group(1))


async def test_the_instructions_match_the_offer_and_their_examples_are_accepted(
    runtime, client
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(
            conn, rules={"required_fields": ["postal_code", "city"], "require_consent": True}
        )
    web = await browser(runtime, "admin")
    try:
        form = await web.get(f"/config/offers/{world.offer_id}")
        assert f'href="/config/offers/{world.offer_id}/posting"' in form.text
        page = await web.get(f"/config/offers/{world.offer_id}/posting")
    finally:
        await web.aclose()
    assert page.status_code == 200
    text = page.text
    for field in ("postal_code", "city", "consent"):
        row = re.search(rf'<tr data-field="{field}">(.*?)</tr>', text, re.S).group(1)
        assert "required" in row and "optional" not in row, field
    assert str(world.source_id) in text and "/api/leads" in text
    assert "unsupported_media_type" in text and "unauthorized_source" in text

    as_json = orjson.loads(_block(text, "example-json"))
    as_json.update(source_id=str(world.source_id), idempotency_key="from-json")
    assert (await client.post("/api/leads", json=as_json)).status_code == 201
    as_form = _block(text, "example-form").replace("your-lead-id-123", "from-form")
    posted = await client.post(
        "/api/leads",
        content=f"{as_form}&source_id={world.source_id}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 201, posted.text
    as_xml = (
        _block(text, "example-xml")
        .replace("your-lead-id-123", "from-xml")
        .replace("</lead>", f"  <source_id>{world.source_id}</source_id>\n</lead>")
    )
    posted = await client.post(
        "/api/leads", content=as_xml, headers={"content-type": "application/xml"}
    )
    assert posted.status_code == 201, posted.text


async def test_an_unknown_offer_has_no_instructions(runtime) -> None:
    web = await browser(runtime, "admin")
    try:
        page = await web.get("/config/offers/00000000-0000-0000-0000-000000000000/posting")
    finally:
        await web.aclose()
    assert page.status_code == 404
