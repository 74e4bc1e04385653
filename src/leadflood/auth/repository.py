"""All SQL of users, refresh tokens, login attempts and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_USER_COLUMNS = "id, email, name, role::text AS role, active, last_login_at, created_at"


async def insert_user(
    conn: AsyncConnection, *, email: str, name: str, role: str, password_hash: str
) -> dict[str, Any]:
    row = await conn.execute(
        text(
            f"INSERT INTO users (email, name, role, password_hash) "
            f"VALUES (:email, :name, CAST(:role AS user_role), :hash) RETURNING {_USER_COLUMNS}"
        ),
        {"email": email, "name": name, "role": role, "hash": password_hash},
    )
    return dict(row.mappings().one())


async def user_for_login(conn: AsyncConnection, email: str) -> dict[str, Any] | None:
    row = await conn.execute(
        text(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = :email"),
        {"email": email},
    )
    found = row.mappings().first()
    return dict(found) if found else None


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.execute(
        text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"), {"id": user_id}
    )
    found = row.mappings().first()
    return dict(found) if found else None


async def list_users(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users ORDER BY email"))
    return [dict(r) for r in rows.mappings()]


async def lock_active_admins(conn: AsyncConnection) -> list[uuid.UUID]:
    """The active admins, locked: concurrent demotions serialize on them."""
    rows = await conn.execute(
        text("SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE")
    )
    return [r.id for r in rows]


async def update_user(conn: AsyncConnection, user_id: uuid.UUID, values: dict[str, Any]) -> bool:
    sets = ", ".join(
        f"{c} = CAST(:{c} AS user_role)" if c == "role" else f"{c} = :{c}" for c in values
    )
    result = await conn.execute(
        text(f"UPDATE users SET {sets} WHERE id = :_id"), {**values, "_id": user_id}
    )
    return result.rowcount == 1


async def set_password_hash(conn: AsyncConnection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(
        text("UPDATE users SET password_hash = :h WHERE id = :id"),
        {"h": password_hash, "id": user_id},
    )


async def touch_login(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE users SET last_login_at = now() WHERE id = :id"), {"id": user_id}
    )


# A session is live while its user is active and its refresh family exists (it was issued
# to this user at a login) and is not revoked. A token naming a family nobody issued is
# refused even when its signature verifies.
_SESSION = """
SELECT u.id, u.email, u.name, u.role::text AS role
FROM users u
WHERE u.id = :user_id AND u.active
  AND EXISTS (
      SELECT 1 FROM refresh_tokens t WHERE t.family_id = :family_id AND t.user_id = u.id
  )
  AND NOT EXISTS (
      SELECT 1 FROM refresh_tokens t WHERE t.family_id = :family_id AND t.revoked_at IS NOT NULL
  )
"""


async def live_session_user(
    conn: AsyncConnection, user_id: uuid.UUID, family_id: uuid.UUID
) -> dict[str, Any] | None:
    row = await conn.execute(text(_SESSION), {"user_id": user_id, "family_id": family_id})
    found = row.mappings().first()
    return dict(found) if found else None


async def recent_failures(conn: AsyncConnection, email: str, ip: str | None, since: datetime):
    row = await conn.execute(
        text(
            "SELECT count(*) FILTER (WHERE email = :email) AS by_email, "
            "       count(*) FILTER (WHERE ip = CAST(:ip AS inet)) AS by_ip, "
            "       min(created_at) FILTER (WHERE email = :email) AS oldest_email, "
            "       min(created_at) FILTER (WHERE ip = CAST(:ip AS inet)) AS oldest_ip "
            "FROM login_attempts "
            "WHERE NOT succeeded AND created_at > :since "
            "  AND (email = :email OR ip = CAST(:ip AS inet))"
        ),
        {"email": email, "ip": ip, "since": since},
    )
    return row.mappings().one()


async def record_login_attempt(
    conn: AsyncConnection, email: str, ip: str | None, succeeded: bool
) -> None:
    await conn.execute(
        text(
            "INSERT INTO login_attempts (email, ip, succeeded) "
            "VALUES (:email, CAST(:ip AS inet), :ok)"
        ),
        {"email": email, "ip": ip, "ok": succeeded},
    )


async def insert_refresh_token(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) "
            "VALUES (:user_id, :family_id, :token_hash, :expires_at)"
        ),
        {
            "user_id": user_id,
            "family_id": family_id,
            "token_hash": token_hash,
            "expires_at": expires_at,
        },
    )


async def lock_refresh_token(conn: AsyncConnection, token_hash: str) -> dict[str, Any] | None:
    """The presented token, locked so two concurrent refreshes of it serialize."""
    row = await conn.execute(
        text(
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, "
            "       u.role::text AS role, u.active "
            "FROM refresh_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = :hash FOR UPDATE OF t"
        ),
        {"hash": token_hash},
    )
    found = row.mappings().first()
    return dict(found) if found else None


async def mark_used(conn: AsyncConnection, token_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE refresh_tokens SET used_at = now() WHERE id = :id"), {"id": token_id}
    )


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID) -> None:
    await conn.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE family_id = :family AND revoked_at IS NULL"
        ),
        {"family": family_id},
    )


async def revoke_user_sessions(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(
        text(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE user_id = :user AND revoked_at IS NULL"
        ),
        {"user": user_id},
    )


async def insert_audit(conn: AsyncConnection, entry: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO audit_log (user_id, actor, action, entity_type, entity_id, changes, "
            "                       ip, request_id) "
            "VALUES (:user_id, :actor, :action, :entity_type, :entity_id, "
            "        CAST(:changes AS jsonb), CAST(:ip AS inet), :request_id)"
        ),
        {**entry, "changes": orjson.dumps(entry["changes"], default=str).decode()},
    )


async def list_audit(
    conn: AsyncConnection,
    *,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT id, user_id, actor, action, entity_type, entity_id, changes, "
            "       host(ip) AS ip, request_id, created_at FROM audit_log "
            "WHERE (CAST(:etype AS text) IS NULL OR entity_type = :etype) "
            "  AND (CAST(:eid AS uuid) IS NULL OR entity_id = :eid) "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {"etype": entity_type, "eid": entity_id, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]
