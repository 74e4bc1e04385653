"""Web UI over HTTP: sessions in cookies, pages, forms with field errors, CSRF, roles."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from leadflood.app import create_app
from leadflood.auth.dependencies import ACCESS_COOKIE
from leadflood.auth.service import create_user
from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import PASSWORD, drain_jobs
from tests.factories import make_buyer, make_world
from tests.sql import run

ORIGIN = {"origin": "http://testserver"}


async def browser(runtime, role: str = "admin") -> httpx.AsyncClient:
    """A client that signs in through the login form, as a browser would."""
    async with unit_of_work(runtime.db) as conn:
        await create_user(conn, email=f"{role}@example.com", password=PASSWORD, role=role)
    app = create_app(runtime)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    response = await client.post(
        "/login",
        data={"email": f"{role}@example.com", "password": PASSWORD, "next": "/leads"},
        headers=ORIGIN,
    )
    assert response.status_code == 303 and response.headers["location"] == "/leads"
    assert "httponly" in response.headers["set-cookie"].lower()
    return client


@pytest.fixture
async def web(runtime):
    client = await browser(runtime)
    yield client
    await client.aclose()


async def test_pages_need_a_session_and_login_shows_errors(client, runtime) -> None:
    response = await client.get("/leads?status=rejected")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/leads?status=rejected"
    page = await client.get("/login?next=//evil.example.com")
    assert 'value="/"' in page.text  # no open redirect
    bad = await client.post(
        "/login", data={"email": "x@example.com", "password": "nope"}, headers=ORIGIN
    )
    assert bad.status_code == 401 and "email or password is wrong" in bad.text
    # Login CSRF: a sign-in form posted from another site, or with no origin, is refused.
    for headers in ({"origin": "https://evil.example.com"}, {}):
        forged = await client.post(
            "/login", data={"email": "x@example.com", "password": "nope"}, headers=headers
        )
        assert forged.status_code == 403, headers


async def test_dashboard_shows_todays_funnel(web, runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules={"phone": "required"})
        await make_buyer(conn, world, webhook_url="http://127.0.0.1:9/never", payment_method="ach")
    for phone in ("602-253-0101", "602-253-0102", "bad"):
        body = {
            "source_id": str(world.source_id),
            "phone": phone,
            "postal_code": "85001",
            "idempotency_key": phone,
        }
        response = await web.post("/api/leads", json=body)
        assert response.status_code == 201, response.text
    await drain_jobs(runtime)
    page = await web.get("/")
    assert page.status_code == 200
    stages = dict(re.findall(r'data-stage="(\w+)">(\d+)<', page.text))
    assert stages == {"received": "3", "validated": "2", "routed": "2", "delivered": "0"}
    assert "<code>invalid_phone</code>" in page.text
    assert "<svg" in page.text and "Rejected" in page.text


async def test_config_forms_create_show_field_errors_and_edit(web, runtime) -> None:
    form = await web.get("/config/markets/new")
    assert form.status_code == 200 and 'name="timezone"' in form.text
    bad = await web.post(
        "/config/markets/new",
        data={"slug": "Not A Slug", "name": "", "timezone": "Mars/Base", "country": "US"},
        headers=ORIGIN,
    )
    assert bad.status_code == 400
    for field in ("slug", "name", "timezone"):
        assert re.search(rf'data-field="{field}">.*?class="error"', bad.text, re.S), field
    made = await web.post(
        "/config/markets/new",
        data={
            "slug": "phx",
            "name": "Phoenix",
            "timezone": "America/Phoenix",
            "country": "us",
            "active": "on",
        },
        headers=ORIGIN,
    )
    assert made.status_code == 303
    edit_url = made.headers["location"].split("?")[0]
    page = await web.get(made.headers["location"])
    assert (
        "Saved." in page.text
        and 'value="America/Phoenix"' in page.text
        and 'value="US"' in page.text
    )
    changed = await web.post(
        edit_url,
        data={"slug": "phx", "name": "Phoenix AZ", "timezone": "America/Phoenix", "country": "US"},
        headers=ORIGIN,
    )
    assert changed.status_code == 303
    listing = await web.get("/config/markets")
    assert "Phoenix AZ" in listing.text


async def test_cookie_writes_must_be_same_origin(web) -> None:
    body = {"slug": "x", "name": "X"}
    cross = await web.post(
        "/config/verticals/new", data=body, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403 and "cross_origin_request" in cross.text
    bare = await web.post("/config/verticals/new", data=body)
    assert bare.status_code == 403


async def test_agents_read_but_cannot_change(runtime) -> None:
    agent = await browser(runtime, "agent")
    try:
        listing = await agent.get("/config/verticals")
        assert listing.status_code == 200 and "New vertical" not in listing.text
        denied = await agent.post(
            "/config/verticals/new", data={"slug": "x", "name": "X"}, headers=ORIGIN
        )
        assert denied.status_code == 403 and "permission_denied" in denied.text
    finally:
        await agent.aclose()


async def test_expired_access_cookie_is_renewed_with_the_refresh_cookie(web) -> None:
    web.cookies.set(ACCESS_COOKIE, "expired.or.garbage", domain="testserver.local")
    web.cookies.delete(ACCESS_COOKIE)
    response = await web.get("/leads")
    assert response.status_code == 303 and response.headers["location"].startswith("/auth/renew")
    renewed = await web.get(response.headers["location"])
    assert renewed.status_code == 303 and renewed.headers["location"] == "/leads"
    assert (await web.get("/leads")).status_code == 200


async def test_logout_ends_the_browser_session(web) -> None:
    out = await web.post("/logout", headers=ORIGIN)
    assert out.status_code == 303
    assert (await web.get("/leads")).status_code == 303


def test_every_page_checks_a_permission(runtime) -> None:
    public = {"/login", "/logout", "/auth/renew", "/u/{token}"}  # /u: signed unsubscribe links
    unguarded = []
    for route in create_app(runtime).routes:
        if not isinstance(route, APIRoute) or route.include_in_schema or route.path in public:
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if not any(getattr(c, "permission", None) for c in calls):
            unguarded.append(route.path)
    assert unguarded == []


async def test_config_forms_take_and_show_money_as_amounts(runtime) -> None:
    """Prices are typed and shown as amounts (25.00), stored in cents."""
    from leadflood.web.forms import parse_amount

    assert [parse_amount(t) for t in ("25", "25.00", "$1,200.50", "0.5", "-3")] == [
        2500,
        2500,
        120050,
        50,
        -300,
    ]
    for bad in ("25.001", "abc", "1e400", "NaN", "9" * 30):
        with pytest.raises(ValueError):
            parse_amount(bad)
    web = await browser(runtime, "admin")
    try:
        made = await web.post(
            "/config/buyers/new",
            data={
                "name": "Amounts",
                "payment_method": "ach",
                "min_balance_cents": "12.50",
                "webhook_url": "https://crm.example.com/leads",
            },
            headers=ORIGIN,
        )
        assert made.status_code == 303, made.text
        page = await web.get(made.headers["location"])
        assert 'name="min_balance_cents" value="12.50"' in page.text
        assert "Min balance (amount)" in page.text
        bad = await web.post(
            "/config/buyers/new",
            data={"name": "Bad", "min_balance_cents": "12.345"},
            headers=ORIGIN,
        )
        assert bad.status_code == 400 and "at most 2 decimals" in bad.text
    finally:
        await web.aclose()
    async with single_statements(runtime.db) as conn:
        stored = (
            await run(conn, "SELECT min_balance_cents FROM buyers WHERE name = 'Amounts'", {})
        ).scalar()
    assert stored == 1250
