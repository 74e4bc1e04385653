"""Issue 14, security: no known secret in production, no forged session, no stored XSS,
no secret in any response, security headers on every page."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from leadflood.core.settings import DEV_SECRET_KEY, Environment, Settings
from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import auth_headers
from tests.factories import make_buyer, make_world
from tests.sql import run


@pytest.mark.parametrize("key", [None, DEV_SECRET_KEY, "short-but-not-empty"])
def test_production_refuses_a_missing_public_or_short_secret(key) -> None:
    values = {"env": Environment.production, "database_url": "postgresql://x/y"}
    if key is not None:
        values["secret_key"] = key
    with pytest.raises(ValidationError, match="LEADFLOOD_SECRET_KEY"):
        Settings(**values)


def test_production_starts_with_a_strong_secret() -> None:
    settings = Settings(
        env=Environment.production, database_url="postgresql://x/y", secret_key="k" * 48
    )
    assert settings.env == Environment.production


def test_the_cli_names_the_problem_and_exits_2(monkeypatch, cli) -> None:
    monkeypatch.setenv("LEADFLOOD_ENV", "production")
    monkeypatch.delenv("LEADFLOOD_SECRET_KEY", raising=False)
    result = cli("migrate")
    assert result.exit_code == 2
    assert "LEADFLOOD_SECRET_KEY" in result.output
    assert DEV_SECRET_KEY not in result.output


async def test_a_token_for_a_session_nobody_issued_is_refused(client, runtime) -> None:
    """The public dev key used to let anyone mint an admin token: a valid signature with
    a made-up session family must not be enough."""
    headers = await auth_headers(client, runtime, "admin")
    me = (await client.get("/v1/auth/me", headers=headers)).json()
    real = jwt.decode(
        headers["authorization"].split()[1],
        options={"verify_signature": False},
    )
    forged_claims = {
        **real,
        "fam": str(uuid.uuid4()),
        "exp": int((datetime.now(UTC) + timedelta(minutes=10)).timestamp()),
    }
    key = hashlib.sha256(
        b"leadflood-access-token:" + runtime.settings.secret_key.get_secret_value().encode()
    ).digest()
    forged = jwt.encode(forged_claims, key, algorithm="HS256")
    response = await client.get("/v1/auth/me", headers={"authorization": f"Bearer {forged}"})
    assert me["role"] == "admin"
    assert response.status_code == 401, (real, response.text)


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


async def test_the_unsubscribe_page_escapes_the_address(client, runtime) -> None:
    from leadflood.sequences.unsubscribe import token as token_for

    async with runtime.db.pool_connection() as conn:
        lead_id = await conn.fetchval(
            "INSERT INTO outreach.leads (email, normalized_email, first_name, source, source_ref) "
            "VALUES ($1, $1, $2, 'manual', 'xss') "
            "RETURNING id",
            f"{HOSTILE}@example.com",
            HOSTILE,
        )
    token = token_for(runtime.settings.secret_key.get_secret_value(), lead_id)
    page = await client.post(f"/u/{token}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    form = await client.get(f"/u/{token}")
    assert form.status_code == 200 and "<script>alert" not in form.text


@pytest.mark.parametrize("path", ["/login", "/health", "/v1/auth/me", "/api/leads/x", "/nope"])
async def test_security_headers_on_every_response(client, path) -> None:
    response = await client.get(path)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_no_template_uses_inline_script(client) -> None:
    from pathlib import Path

    import leadflood.web

    root = Path(leadflood.web.__file__).parent / "templates"
    for template in root.rglob("*.html"):
        body = template.read_text()
        assert not re.search(r"\son[a-z]+=", body), template
        assert "javascript:" not in body, template
        assert not re.search(r"<script(?![^>]*\ssrc=)", body), template


@pytest.mark.parametrize("role", ["admin", "manager", "agent"])
async def test_no_response_carries_a_key_hash_or_secret(client, runtime, role: str) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, source_api_key=True)
        buyer = await make_buyer(conn, world, webhook_secret="whsec-visible-never")
    admin = await auth_headers(client, runtime, "admin")
    rotated = await client.post(f"/v1/admin/billing/buyers/{buyer}/rotate-key", headers=admin)
    assert rotated.status_code in (200, 201), rotated.text
    async with single_statements(runtime.db) as conn:
        hashes = [
            h
            for (h,) in (
                await run(
                    conn,
                    "SELECT api_key_hash FROM sources WHERE api_key_hash IS NOT NULL "
                    "UNION ALL SELECT api_key_hash FROM buyers WHERE api_key_hash IS NOT NULL "
                    "UNION ALL SELECT webhook_secret FROM buyers "
                    "WHERE webhook_secret IS NOT NULL "
                    "UNION ALL SELECT password_hash FROM users",
                )
            ).all()
        ]
    assert len(hashes) >= 4
    paths = [
        "/v1/admin/sources",
        f"/v1/admin/sources/{world.source_id}",
        "/v1/admin/buyers",
        f"/v1/admin/buyers/{buyer}",
        "/v1/admin/billing/buyers",
        f"/v1/admin/billing/buyers/{buyer}",
        "/v1/users",
        "/v1/auth/me",
        "/v1/admin/audit",
    ]
    headers = admin if role == "admin" else await auth_headers(client, runtime, role)
    for path in paths:
        body = (await client.get(path, headers=headers)).text
        for secret in (*hashes, "whsec-visible-never"):
            assert secret not in body, path
        assert "api_key_hash" not in body and "password_hash" not in body, path


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client, runtime) -> None:
    admin = await auth_headers(client, runtime, "admin")
    me = (await client.get("/v1/auth/me", headers=admin)).json()
    for change in ({"role": "manager"}, {"active": False}):
        response = await client.patch(f"/v1/users/{me['id']}", json=change, headers=admin)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "last_admin"
    second = await client.post(
        "/v1/users",
        json={"email": "second@example.com", "password": "another long pw", "role": "admin"},
        headers=admin,
    )
    assert second.status_code == 201
    # With a second active admin, either one may step down, but not both.
    response = await client.patch(f"/v1/users/{me['id']}", json={"role": "manager"}, headers=admin)
    assert response.status_code == 200
    other = await auth_headers(client, runtime, "admin", email="third@example.com")
    await client.patch(f"/v1/users/{second.json()['id']}", json={"active": False}, headers=other)
    third = (await client.get("/v1/auth/me", headers=other)).json()
    response = await client.patch(f"/v1/users/{third['id']}", json={"active": False}, headers=other)
    assert response.status_code == 409


async def test_concurrent_demotions_leave_one_admin(client, runtime) -> None:
    import asyncio

    first = await auth_headers(client, runtime, "admin", email="a1@example.com")
    second = await auth_headers(client, runtime, "admin", email="a2@example.com")
    ids = [(await client.get("/v1/auth/me", headers=h)).json()["id"] for h in (first, second)]
    results = await asyncio.gather(
        client.patch(f"/v1/users/{ids[0]}", json={"active": False}, headers=second),
        client.patch(f"/v1/users/{ids[1]}", json={"active": False}, headers=first),
    )
    assert sorted(r.status_code for r in results) in ([200, 409], [200, 401])
    async with single_statements(runtime.db) as conn:
        active = (
            await run(conn, "SELECT count(*) FROM users WHERE role = 'admin' AND active")
        ).scalar()
    assert active == 1


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/leads", "http://169.254.169.254/latest", "http://10.0.0.5/x"],
)
async def test_production_refuses_a_private_webhook_url_when_saved(database_url, url) -> None:
    import httpx

    from leadflood.app import create_app
    from leadflood.core.runtime import build_runtime
    from tests.conftest import make_settings, truncate_all

    runtime = build_runtime(
        make_settings(database_url, env="production", secret_key="s" * 48), database_url
    )
    await truncate_all(runtime)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await auth_headers(client, runtime, "admin")
            body = {"name": "B", "webhook_url": url, "payment_method": "ach"}
            response = await client.post("/v1/admin/buyers", json=body, headers=admin)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "destination_not_allowed"
    finally:
        await runtime.close()


async def test_config_posts_honour_idempotency_keys(client, runtime) -> None:
    admin = await auth_headers(client, runtime, "admin")
    headers = {**admin, "idempotency-key": "create-buyer-1"}
    body = {"name": "Once", "webhook_url": "https://buyer.example/leads", "payment_method": "ach"}
    first = await client.post("/v1/admin/buyers", json=body, headers=headers)
    again = await client.post("/v1/admin/buyers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = (await client.get("/v1/admin/buyers", headers=admin)).json()
    assert listed["total"] == 1
    # A source's API key is shown once and never stored with the replayable response.
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    src = {"name": "S", "offer_id": str(world.offer_id), "source_key": "src-idem"}
    key_headers = {**admin, "idempotency-key": "create-source-1"}
    made = await client.post("/v1/admin/sources", json=src, headers=key_headers)
    replay = await client.post("/v1/admin/sources", json=src, headers=key_headers)
    assert made.json()["api_key"] and replay.json()["api_key"] is None
    assert made.json()["id"] == replay.json()["id"]
    async with single_statements(runtime.db) as conn:
        stored = (await run(conn, "SELECT response_body::text FROM idempotency_keys")).all()
    assert all(made.json()["api_key"] not in row[0] for row in stored)


async def test_billing_posts_honour_idempotency_keys(client, runtime) -> None:
    admin = await auth_headers(client, runtime, "admin")
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world)
    for path, body in (
        ("/v1/admin/billing/invoices", {"period": "2026-10"}),
        (f"/v1/admin/billing/buyers/{buyer}/rotate-key", None),
    ):
        headers = {**admin, "idempotency-key": f"k-{path}"}
        first = await client.post(path, json=body, headers=headers)
        again = await client.post(path, json=body, headers=headers)
        assert first.status_code == again.status_code == 200, (path, first.text)
        assert again.headers.get("idempotent-replayed") == "true", path
    # The rotated key was shown once; the replay does not carry it.
    assert first.json()["api_key"] and again.json()["api_key"] is None


async def test_keyed_posts_beyond_the_pool_size_do_not_starve_it(database_url) -> None:
    """The replay store held a pooled connection while the work took a second one from
    the same pool: as many keyed POSTs as connections deadlocked every one of them."""
    import asyncio

    import httpx

    from leadflood.app import create_app
    from leadflood.core.runtime import build_runtime
    from tests.conftest import make_settings, truncate_all
    from tests.factories import make_lead

    runtime = build_runtime(make_settings(database_url, db_pool_size=2), database_url)
    await truncate_all(runtime)
    try:
        async with unit_of_work(runtime.db) as conn:
            world = await make_world(conn)
            leads = [await make_lead(conn, world) for _ in range(6)]
        transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await auth_headers(client, runtime, "admin")
            responses = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.post(
                            f"/v1/admin/leads/{lead}/reroute",
                            headers={**admin, "idempotency-key": f"reroute-{lead}"},
                        )
                        for lead in leads
                    )
                ),
                timeout=30,
            )
        assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    finally:
        await runtime.close()
