"""Issue 14: no web form answers 500, whatever its fields hold."""

from __future__ import annotations

import uuid

import pytest

from leadflood.core.uow import unit_of_work
from tests.factories import make_buyer, make_world
from tests.web.test_pages import ORIGIN, web  # noqa: F401 - the signed-in browser fixture

ODD_VALUES = [
    "",
    "99999999999999999999999",
    "-1",
    "1e400",
    "x" * 5000,
    "<script>alert(1)</script>",
    "\u202e\ufeff\U0001f600",
    "a\r\nb",
    "null",
    "[]",
]

FIELDS = [
    "name",
    "slug",
    "country",
    "timezone",
    "email",
    "webhook_url",
    "daily_cap",
    "hourly_cap",
    "priority",
    "weight",
    "price_cents",
    "market_id",
    "offer_id",
    "buyer_id",
    "postal_code",
    "city",
    "rules",
    "schedule",
    "amount",
    "reference",
    "period",
    "reason",
    "note",
    "body",
    "subject",
    "from_email",
    "from_name",
    "daily_limit",
    "window_start",
    "window_end",
    "pages",
    "per_page",
    "provider",
    "titles",
    "lead_id",
    "csv",
    "status",
    "strategy",
]


def _paths(ids: dict[str, str]) -> list[str]:
    some = str(uuid.uuid4())
    return [
        "/config/markets/new",
        "/config/buyers/new",
        "/config/offers/new",
        "/config/validation-policies/new",
        "/config/routing-policies/new",
        f"/config/buyers/{ids['buyer']}",
        f"/config/buyers/{ids['buyer']}/import-areas",
        f"/config/markets/{some}",
        f"/leads/{some}/redeliver",
        f"/leads/{some}/reroute",
        f"/billing/buyers/{ids['buyer']}/top-up",
        f"/billing/buyers/{ids['buyer']}/adjust",
        "/billing/invoices/run",
        f"/billing/invoices/{some}/pay",
        f"/billing/returns/{some}/accept",
        f"/billing/leads/{some}/return",
        "/outreach/mailboxes",
        "/outreach/sequences/new",
        f"/outreach/sequences/{some}/status",
        f"/outreach/sequences/{some}/enroll",
        f"/outreach/inbox/{some}/reply",
        "/outreach/icps/new",
        f"/outreach/icps/{some}",
        f"/outreach/icps/{some}/search",
        f"/outreach/leads/{some}/enrich",
    ]


@pytest.mark.parametrize("value", ODD_VALUES)
async def test_odd_form_values_never_answer_500(web, runtime, value) -> None:  # noqa: F811
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world)
    form = {field: value for field in FIELDS}
    form["market_id"] = form["market_id"] if value else str(world.market_id)
    for path in _paths({"buyer": str(buyer)}):
        response = await web.post(path, data=form, headers=ORIGIN)
        assert response.status_code < 500, (path, value, response.text[:300])


async def test_invalid_utf8_in_a_form_never_answers_500(web, runtime) -> None:  # noqa: F811
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world)
    body = b"&".join(f"{f}=%ff%fe%c3%28".encode() for f in FIELDS)
    headers = {**ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    for path in _paths({"buyer": str(buyer)}):
        response = await web.post(path, content=body, headers=headers)
        assert response.status_code < 500, (path, response.text[:300])


QUERY_VALUES = ["", "%ff%fe", "99999999999999999999", "9999-99-99", "-1", "x" * 3000, "%27--"]
PARAMS = [
    "buyer_id",
    "created_from",
    "created_to",
    "cursor",
    "icp_id",
    "offer_id",
    "q",
    "saved",
    "sort",
    "status",
    "unread",
    "limit",
    "offset",
    "next",
]
PAGES = [
    "/",
    "/leads",
    "/config",
    "/config/buyers",
    "/config/markets",
    "/billing",
    "/billing/invoices",
    "/billing/returns",
    "/outreach/leads",
    "/outreach/icps",
    "/outreach/sequences",
    "/outreach/inbox",
    "/outreach/sink",
    "/outreach/analytics",
    "/outreach/mailboxes",
    "/login",
]


@pytest.mark.parametrize("value", QUERY_VALUES)
async def test_odd_query_values_never_answer_500_on_any_page(web, value) -> None:  # noqa: F811
    query = "&".join(f"{p}={value}" for p in PARAMS)
    for page in PAGES:
        response = await web.get(f"{page}?{query}")
        assert response.status_code < 500, (page, value, response.text[:300])
