"""Login, refresh rotation with reuse detection, logout, rate limit, roles, CLI."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from leadflood.app import create_app
from leadflood.auth.policy import POLICY, Permission, Role
from leadflood.auth.service import create_user
from leadflood.auth.tokens import issue_access_token
from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import PASSWORD, auth_headers
from tests.routes import api_routes
from tests.sql import run

LOGIN = "/v1/auth/login"


async def make_user(runtime, email: str = "ops@example.com", role: str = "manager") -> dict:
    async with unit_of_work(runtime.db) as conn:
        return await create_user(conn, email=email, password=PASSWORD, role=role)


async def login(client, email: str = "ops@example.com", password: str = PASSWORD):
    return await client.post(LOGIN, json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_login_issues_tokens_and_stores_only_an_argon2_hash(client, runtime) -> None:
    await make_user(runtime)
    response = await login(client, "  OPS@example.com ")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 15 * 60
    assert body["user"] == {
        "id": body["user"]["id"],
        "email": "ops@example.com",
        "name": "",
        "role": "manager",
    }
    me = await client.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["role"] == "manager"
    async with single_statements(runtime.db) as conn:
        stored = (await run(conn, "SELECT password_hash FROM users")).scalar()
        token_hash = (await run(conn, "SELECT token_hash FROM refresh_tokens")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert token_hash != body["refresh_token"] and body["refresh_token"] not in token_hash


async def test_wrong_password_and_unknown_email_look_the_same(client, runtime) -> None:
    await make_user(runtime)
    wrong = await login(client, password="not the password")
    unknown = await login(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(client, runtime) -> None:
    await make_user(runtime)
    first = (await login(client)).json()
    second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        await client.get("/v1/auth/me", headers=bearer(second["access_token"]))
    ).status_code == 200

    # The spent token comes back (stolen copy): the session ends for everyone holding it.
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    after = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.json()["error"]["code"] == "refresh_token_revoked"
    me = await client.get("/v1/auth/me", headers=bearer(second["access_token"]))
    assert me.status_code == 401 and me.json()["error"]["code"] == "session_ended"
    # A new login starts a new, unaffected family.
    assert (await login(client)).status_code == 200


async def test_concurrent_refreshes_of_one_token_have_one_winner(client, runtime) -> None:
    await make_user(runtime)
    token = (await login(client)).json()["refresh_token"]
    responses = await asyncio.gather(
        *(client.post("/v1/auth/refresh", json={"refresh_token": token}) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and statuses.count(401) == 7


async def test_logout_ends_the_session(client, runtime) -> None:
    await make_user(runtime)
    pair = (await login(client)).json()
    response = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refresh.status_code == 401
    assert (
        await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    ).status_code == 401


async def test_failed_logins_are_rate_limited_per_email(client, runtime) -> None:
    await make_user(runtime)
    for _ in range(5):
        assert (await login(client, password="guess-guess")).status_code == 401
    blocked = await login(client)  # even the right password, until the window passes
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_login_attempts"
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE login_attempts SET created_at = created_at - interval '16 minutes'")
    assert (await login(client)).status_code == 200


@pytest.mark.parametrize("kind", ["expired", "forged", "garbage"])
async def test_expired_and_forged_access_tokens_are_refused(client, runtime, kind: str) -> None:
    user = await make_user(runtime)
    key = runtime.settings.secret_key.get_secret_value()
    if kind == "expired":
        token, _ = issue_access_token(key, user.id, "manager", uuid.uuid4(), timedelta(seconds=-5))
    elif kind == "forged":
        token, _ = issue_access_token(
            "another-key", user.id, "admin", uuid.uuid4(), timedelta(minutes=5)
        )
    else:
        token = "not.a.jwt"
    response = await client.get("/v1/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_roles_are_enforced_by_the_policy_map(client, runtime) -> None:
    agent = await auth_headers(client, runtime, "agent")
    manager = await auth_headers(client, runtime, "manager")
    admin = await auth_headers(client, runtime, "admin")
    body = {"slug": "vt", "name": "Vertical"}
    assert (await client.get("/v1/admin/verticals", headers=agent)).status_code == 200
    denied = await client.post("/v1/admin/verticals", json=body, headers=agent)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert (await client.post("/v1/admin/verticals", json=body, headers=manager)).status_code == 201
    assert (await client.get("/v1/users", headers=manager)).status_code == 403
    assert (await client.get("/v1/users", headers=admin)).status_code == 200
    assert (await client.get("/v1/admin/verticals")).status_code == 401


async def test_demoting_a_user_ends_their_sessions(client, runtime) -> None:
    admin = await auth_headers(client, runtime, "admin")
    user = await make_user(runtime)
    pair = (await login(client)).json()
    response = await client.patch(f"/v1/users/{user.id}", json={"role": "agent"}, headers=admin)
    assert response.status_code == 200 and response.json()["role"] == "agent"
    assert (
        await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    ).status_code == 401
    async with single_statements(runtime.db) as conn:
        action = (
            await run(
                conn, "SELECT action FROM audit_log WHERE entity_type = 'user' ORDER BY id DESC"
            )
        ).scalar()
    assert action == "update"


def test_every_v1_route_checks_a_permission(runtime) -> None:
    """The policy map is consulted on every /v1 route but the session ones."""
    # Session endpoints, and webhooks (authenticated by the provider's signature instead).
    public = {
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/me",
        "/v1/webhooks/{provider}",
    }
    unguarded = []
    routes = api_routes(create_app(runtime))
    assert len(routes) > 100, "the audit sees the routes (it once saw none, and passed)"
    for path, route in routes:
        if not path.startswith("/v1/") or path in public:
            continue
        calls = [d.call for d in route.dependant.dependencies]
        if not any(getattr(c, "permission", None) in set(Permission) for c in calls):
            unguarded.append(f"{sorted(route.methods)} {path}")
    assert unguarded == []
    assert POLICY[Role.admin] == frozenset(Permission)


def test_cli_creates_the_first_admin(database_url, runtime, monkeypatch, cli) -> None:
    monkeypatch.setenv("LEADFLOOD_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOOD_NEW_USER_PASSWORD", PASSWORD)
    result = cli("users", "create", "--email", "Boss@Example.com")
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.com" in result.output
    assert PASSWORD not in result.output
    again = cli("users", "create", "--email", "boss@example.com")
    assert again.exit_code == 2 and "email_taken" in again.output
    weak = cli("users", "create", "--email", "x@example.com", "--password", "short")
    assert weak.exit_code == 2 and "weak_password" in weak.output
