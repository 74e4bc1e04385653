"""Users, sessions and the audit trail: login, refresh rotation with reuse detection."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflood.auth import repository as repo
from leadflood.auth.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from leadflood.auth.policy import Role
from leadflood.auth.tokens import (
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from leadflood.core.db import Database
from leadflood.core.errors import AppError, BadRequest, Conflict, RateLimited, Unauthorized
from leadflood.core.settings import Settings

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=14)
# Failed logins allowed per window, per email and per client address.
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    family_id: uuid.UUID
    ip: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": int((self.access_expires_at - datetime.now(UTC)).total_seconds()),
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at.isoformat(),
            "user": public_user(self.user),
        }


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(user["id"]),
        "email": user["email"],
        "name": user.get("name", ""),
        "role": user["role"],
    }


def normalize_login_email(email: str) -> str:
    return email.strip().lower()


def _check_new_user(email: str, password: str, role: str) -> str:
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BadRequest("invalid_email", str(exc)) from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            "weak_password", f"passwords need at least {MIN_PASSWORD_LENGTH} characters"
        )
    if role not in Role.__members__:
        raise BadRequest("invalid_role", f"role must be one of {', '.join(Role)}")
    return email


async def create_user(
    conn: AsyncConnection, *, email: str, password: str, role: str, name: str = ""
) -> dict[str, Any]:
    email = _check_new_user(email, password, role)
    try:
        async with conn.begin_nested():
            return await repo.insert_user(
                conn, email=email, name=name, role=role, password_hash=hash_password(password)
            )
    except IntegrityError:
        raise Conflict("email_taken", "a user with this email exists") from None


async def audit(
    conn: AsyncConnection,
    principal: Principal | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
) -> None:
    """One audit row per privileged change, in the change's own transaction."""
    await repo.insert_audit(
        conn,
        {
            "user_id": principal.user_id if principal else None,
            "actor": principal.email if principal else "system",
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "changes": changes or {},
            "ip": principal.ip if principal else None,
            "request_id": principal.request_id if principal else None,
        },
    )


class AuthService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    @property
    def _key(self) -> str:
        return self.settings.secret_key.get_secret_value()

    async def login(self, email: str, password: str, ip: str | None) -> TokenPair:
        email = normalize_login_email(email)
        async with self.db.transaction() as conn:
            await self._enforce_rate_limit(conn, email, ip)
            user = await repo.user_for_login(conn, email)
            stored = user["password_hash"] if user else None
            ok = verify_password(password, stored) and bool(user and user["active"])
            await repo.record_login_attempt(conn, email, ip, ok)
            if not ok or user is None:
                failure: AppError = Unauthorized(
                    "invalid_credentials", "email or password is wrong"
                )
            else:
                if needs_rehash(user["password_hash"]):
                    await repo.set_password_hash(conn, user["id"], hash_password(password))
                await repo.touch_login(conn, user["id"])
                return await self._issue(conn, user, uuid.uuid4())
        # Raised after the commit so the failed attempt counts toward the limit.
        raise failure

    async def _enforce_rate_limit(self, conn: AsyncConnection, email: str, ip: str | None) -> None:
        now = datetime.now(UTC)
        seen = await repo.recent_failures(conn, email, ip, now - LOGIN_WINDOW)
        blocked_since = None
        if seen["by_email"] >= MAX_FAILURES_PER_EMAIL:
            blocked_since = seen["oldest_email"]
        elif ip and seen["by_ip"] >= MAX_FAILURES_PER_IP:
            blocked_since = seen["oldest_ip"]
        if blocked_since is not None:
            retry_after = max(1, math.ceil((blocked_since + LOGIN_WINDOW - now).total_seconds()))
            raise RateLimited(
                "too_many_login_attempts",
                "too many failed logins; try again later",
                details={"retry_after_s": retry_after},
            )

    async def refresh(self, token: str) -> TokenPair:
        async with self.db.transaction() as conn:
            row = await repo.lock_refresh_token(conn, hash_refresh_token(token))
            failure: AppError | None = None
            if row is None:
                failure = Unauthorized("invalid_refresh_token", "refresh token not recognised")
            elif row["revoked_at"] is not None:
                failure = Unauthorized("refresh_token_revoked", "this session has ended")
            elif row["used_at"] is not None:
                # A rotated-away token came back: someone holds a copy. End the session.
                await repo.revoke_family(conn, row["family_id"])
                failure = Unauthorized(
                    "refresh_token_reused", "refresh token reuse detected; session revoked"
                )
            elif row["expires_at"] <= datetime.now(UTC) or not row["active"]:
                failure = Unauthorized("refresh_token_expired", "sign in again")
            else:
                await repo.mark_used(conn, row["id"])
                user = await repo.user_by_id(conn, row["user_id"])
                assert user is not None
                return await self._issue(conn, user, row["family_id"])
        assert failure is not None
        raise failure

    async def logout(self, token: str) -> None:
        async with self.db.transaction() as conn:
            row = await repo.lock_refresh_token(conn, hash_refresh_token(token))
            if row is not None:
                await repo.revoke_family(conn, row["family_id"])

    async def authenticate(
        self, access_token: str, *, ip: str | None = None, request_id: str | None = None
    ) -> Principal:
        claims = decode_access_token(self._key, access_token)
        if claims is None:
            raise Unauthorized("invalid_token", "access token is invalid or expired")
        async with self.db.connect() as conn:
            user = await repo.live_session_user(conn, claims.user_id, claims.family_id)
        if user is None:
            raise Unauthorized("session_ended", "this session has ended")
        return Principal(
            user_id=user["id"],
            email=user["email"],
            name=user["name"],
            role=user["role"],
            family_id=claims.family_id,
            ip=ip,
            request_id=request_id,
        )

    async def _issue(
        self, conn: AsyncConnection, user: dict[str, Any], family_id: uuid.UUID
    ) -> TokenPair:
        refresh = new_refresh_token()
        refresh_expires = datetime.now(UTC) + REFRESH_TTL
        await repo.insert_refresh_token(
            conn,
            user_id=user["id"],
            family_id=family_id,
            token_hash=hash_refresh_token(refresh),
            expires_at=refresh_expires,
        )
        access, access_expires = issue_access_token(
            self._key, user["id"], user["role"], family_id, ACCESS_TTL
        )
        return TokenPair(access, access_expires, refresh, refresh_expires, user)
