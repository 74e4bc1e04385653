"""All SQL of users, refresh tokens, login attempts and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflood.core.uow import Conn

_USER_COLUMNS = "id, email, name, role::text AS role, active, last_login_at, created_at"


def _one(row: Any) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


async def insert_user(
    conn: Conn, *, email: str, name: str, role: str, password_hash: str
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO users (email, name, role, password_hash) "
        f"VALUES ($1, $2, $3::user_role, $4) RETURNING {_USER_COLUMNS}",
        email,
        name,
        role,
        password_hash,
    )
    return dict(row)


async def user_for_login(conn: Conn, email: str) -> dict[str, Any] | None:
    return _one(
        await conn.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = $1", email
        )
    )


async def user_by_id(conn: Conn, user_id: uuid.UUID) -> dict[str, Any] | None:
    return _one(await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id))


async def list_users(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY email")]


async def lock_active_admins(conn: Conn) -> list[uuid.UUID]:
    """The active admins, locked: concurrent demotions serialize on them."""
    rows = await conn.fetch(
        "SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE"
    )
    return [r["id"] for r in rows]


async def update_user(conn: Conn, user_id: uuid.UUID, values: dict[str, Any]) -> bool:
    # Column names come from the service's schema, never from the request's keys.
    columns = list(values)
    sets = ", ".join(
        f"{c} = ${i}::user_role" if c == "role" else f"{c} = ${i}"
        for i, c in enumerate(columns, start=2)
    )
    status = await conn.execute(
        f"UPDATE users SET {sets} WHERE id = $1", user_id, *(values[c] for c in columns)
    )
    return status == "UPDATE 1"


async def set_password_hash(conn: Conn, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def touch_login(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE users SET last_login_at = now() WHERE id = $1", user_id)


# A session is live while its user is active and its refresh family exists (it was issued
# to this user at a login) and is not revoked. A token naming a family nobody issued is
# refused even when its signature verifies.
_SESSION = """
SELECT u.id, u.email, u.name, u.role::text AS role
FROM users u
WHERE u.id = $1 AND u.active
  AND EXISTS (
      SELECT 1 FROM refresh_tokens t WHERE t.family_id = $2 AND t.user_id = u.id
  )
  AND NOT EXISTS (
      SELECT 1 FROM refresh_tokens t WHERE t.family_id = $2 AND t.revoked_at IS NOT NULL
  )
"""


async def live_session_user(
    conn: Conn, user_id: uuid.UUID, family_id: uuid.UUID
) -> dict[str, Any] | None:
    return _one(await conn.fetchrow(_SESSION, user_id, family_id))


async def recent_failures(conn: Conn, email: str, ip: str | None, since: datetime) -> Any:
    return await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE email = $1) AS by_email, "
        "       count(*) FILTER (WHERE ip = $2::inet) AS by_ip, "
        "       min(created_at) FILTER (WHERE email = $1) AS oldest_email, "
        "       min(created_at) FILTER (WHERE ip = $2::inet) AS oldest_ip "
        "FROM login_attempts "
        "WHERE NOT succeeded AND created_at > $3 "
        "  AND (email = $1 OR ip = $2::inet)",
        email,
        ip,
        since,
    )


async def record_login_attempt(conn: Conn, email: str, ip: str | None, succeeded: bool) -> None:
    await conn.execute(
        "INSERT INTO login_attempts (email, ip, succeeded) VALUES ($1, $2::inet, $3)",
        email,
        ip,
        succeeded,
    )


async def insert_refresh_token(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        user_id,
        family_id,
        token_hash,
        expires_at,
    )


async def lock_refresh_token(conn: Conn, token_hash: str) -> dict[str, Any] | None:
    """The presented token, locked so two concurrent refreshes of it serialize."""
    return _one(
        await conn.fetchrow(
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, "
            "       u.role::text AS role, u.active "
            "FROM refresh_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = $1 FOR UPDATE OF t",
            token_hash,
        )
    )


async def mark_used(conn: Conn, token_id: uuid.UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", token_id)


async def revoke_family(conn: Conn, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


async def revoke_user_sessions(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )


async def list_audit(
    conn: Conn,
    *,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, user_id, actor, action, entity_type, entity_id, changes, "
        "       host(ip) AS ip, request_id, created_at FROM audit_log "
        "WHERE ($1::text IS NULL OR entity_type = $1) "
        "  AND ($2::uuid IS NULL OR entity_id = $2) "
        "ORDER BY id DESC LIMIT $3",
        entity_type,
        entity_id,
        limit,
    )
    return [dict(r) for r in rows]
