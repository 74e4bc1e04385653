"""Issue 14: hostile text a user or a source supplied is escaped on every page showing it."""

from __future__ import annotations

from leadflood.core.uow import unit_of_work
from tests.factories import make_buyer, make_lead, make_world
from tests.sql import run
from tests.web.test_pages import web  # noqa: F401 - the signed-in browser fixture

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
RAW_MARKERS = ("<script>alert(1)</script>", "<img src=x onerror=alert(2)>")


async def test_hostile_names_are_escaped_on_every_page(web, runtime) -> None:  # noqa: F811
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        for table in ("markets", "offers", "sources", "verticals"):
            await run(conn, f"UPDATE {table} SET name = :h", {"h": HOSTILE})
        buyer = await make_buyer(conn, world, name=HOSTILE)
        lead = await make_lead(
            conn,
            world,
            first_name=HOSTILE,
            last_name=HOSTILE,
            email="x@example.com",
            city=HOSTILE,
            raw_payload='{"note": "' + HOSTILE.replace('"', '\\"') + '"}',
        )
    async with runtime.db.pool_connection() as conn:
        outreach_lead = await conn.fetchval(
            "INSERT INTO outreach.leads (email, normalized_email, first_name, last_name, company, "
            "title, source, source_ref) VALUES ('h@example.com', 'h@example.com', $1, $1, $1, $1, "
            "'manual', 'hostile') RETURNING id",
            HOSTILE,
        )
        icp = await conn.fetchval(
            "INSERT INTO outreach.icps (name) VALUES ($1) RETURNING id", HOSTILE
        )
    pages = [
        "/",
        "/leads",
        f"/leads/{lead}",
        "/config",
        "/config/markets",
        "/config/offers",
        "/config/sources",
        "/config/buyers",
        f"/config/buyers/{buyer}",
        f"/billing/buyers/{buyer}",
        "/billing",
        "/outreach/leads",
        f"/outreach/leads/{outreach_lead}",
        "/outreach/icps",
        f"/outreach/icps/{icp}",
    ]
    for path in pages:
        response = await web.get(path)
        assert response.status_code == 200, (path, response.status_code)
        for marker in RAW_MARKERS:
            assert marker not in response.text, path
