"""All SQL of users, refresh tokens, login attempts and the audit log; typed rows out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    name: str
    role: str
    active: bool
    last_login_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoginUser(User):
    password_hash: str


@dataclass(frozen=True, slots=True)
class SessionUser:
    id: uuid.UUID
    email: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed logins in the window, by email and by client address, and the oldest."""

    by_email: int
    by_ip: int
    oldest_email: datetime | None
    oldest_ip: datetime | None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    role: str
    active: bool


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    user_id: uuid.UUID | None
    actor: str
    action: str
    entity_type: str
    entity_id: uuid.UUID | None
    changes: dict[str, Any]
    ip: str | None
    request_id: str | None
    created_at: datetime


_USER_COLUMNS = "id, email, name, role::text AS role, active, last_login_at, created_at"


def _one(kind: Any, row: Any) -> Any:
    return kind(**row) if row is not None else None


async def insert_user(conn: Conn, *, email: str, name: str, role: str, password_hash: str) -> User:
    row = await conn.fetchrow(
        "INSERT INTO users (email, name, role, password_hash) "
        f"VALUES ($1, $2, $3::user_role, $4) RETURNING {_USER_COLUMNS}",
        email,
        name,
        role,
        password_hash,
    )
    return User(**row)


async def user_for_login(conn: Conn, email: str) -> LoginUser | None:
    return _one(
        LoginUser,
        await conn.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = $1", email
        ),
    )


async def user_by_id(conn: Conn, user_id: uuid.UUID) -> User | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return _one(User, row)


async def list_users(conn: Conn) -> list[User]:
    return [
        User(**r) for r in await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY email")
    ]


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
) -> SessionUser | None:
    return _one(SessionUser, await conn.fetchrow(_SESSION, user_id, family_id))


async def recent_failures(conn: Conn, email: str, ip: str | None, since: datetime) -> Failures:
    row = await conn.fetchrow(
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
    return Failures(**row)


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


async def lock_refresh_token(conn: Conn, token_hash: str) -> RefreshToken | None:
    """The presented token, locked so two concurrent refreshes of it serialize."""
    return _one(
        RefreshToken,
        await conn.fetchrow(
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, "
            "       u.role::text AS role, u.active "
            "FROM refresh_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = $1 FOR UPDATE OF t",
            token_hash,
        ),
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
) -> list[AuditRow]:
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
    return [AuditRow(**r) for r in rows]
