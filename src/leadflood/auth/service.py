"""Users, sessions and the audit trail: login, refresh rotation with reuse detection."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from email_validator import EmailNotValidError, validate_email

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
from leadflood.core.errors import BadRequest, Conflict, NotFound, RateLimited, Unauthorized
from leadflood.core.principal import Principal
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=14)
# Failed logins allowed per window, per email and per client address.
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    user: repo.User

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": int((self.access_expires_at - datetime.now(UTC)).total_seconds()),
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at.isoformat(),
            "user": public_user(self.user),
        }


def public_user(user: repo.User | repo.SessionUser) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "role": user.role,
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


async def create_user(tx: Tx, *, email: str, password: str, role: str, name: str = "") -> repo.User:
    email = _check_new_user(email, password, role)
    try:
        async with tx.savepoint():
            return await repo.insert_user(
                tx, email=email, name=name, role=role, password_hash=hash_password(password)
            )
    except asyncpg.UniqueViolationError:
        raise Conflict("email_taken", "a user with this email exists") from None


async def add_user(tx: Tx, principal: Principal | None, body: Any) -> repo.User:
    user = await create_user(
        tx, email=body.email, password=body.password, role=body.role, name=body.name
    )
    await tx.audit(principal, "create", "user", user.id, {"email": user.email, "role": user.role})
    return user


async def change_user(
    tx: Tx, principal: Principal | None, user_id: uuid.UUID, values: dict[str, Any]
) -> repo.User:
    if "role" in values and values["role"] not in Role.__members__:
        raise BadRequest("invalid_role", f"role must be one of {', '.join(Role)}")
    admins = await repo.lock_active_admins(tx)
    demoting = values.get("active") is False or values.get("role", "admin") != "admin"
    if demoting and admins == [user_id]:
        raise Conflict("last_admin", "the last active admin cannot be demoted or deactivated")
    if values and not await repo.update_user(tx, user_id, values):
        raise NotFound("user_not_found", "no user with this id")
    if values.get("active") is False or "role" in values:
        # A demoted or deactivated user's sessions end now, not at token expiry.
        await repo.revoke_user_sessions(tx, user_id)
    user = await repo.user_by_id(tx, user_id)
    if user is None:
        raise NotFound("user_not_found", "no user with this id")
    await tx.audit(principal, "update", "user", user_id, values)
    return user


class AuthService:
    """Sessions, on the caller's unit of work."""

    def __init__(self, tx: Tx, settings: Settings) -> None:
        self.tx = tx
        self.settings = settings

    @property
    def _key(self) -> str:
        return self.settings.secret_key.get_secret_value()

    async def login(self, email: str, password: str, ip: str | None) -> TokenPair:
        email = normalize_login_email(email)
        conn = self.tx
        await self._enforce_rate_limit(conn, email, ip)
        user = await repo.user_for_login(conn, email)
        stored = user.password_hash if user else None
        ok = verify_password(password, stored) and bool(user and user.active)
        await repo.record_login_attempt(conn, email, ip, ok)
        if not ok or user is None:
            # keeps_work: the failed attempt is committed and counts toward the limit.
            raise Unauthorized("invalid_credentials", "email or password is wrong", keeps_work=True)
        if needs_rehash(user.password_hash):
            await repo.set_password_hash(conn, user.id, hash_password(password))
        await repo.touch_login(conn, user.id)
        return await self._issue(conn, user, uuid.uuid4())

    async def _enforce_rate_limit(self, conn: Tx, email: str, ip: str | None) -> None:
        now = datetime.now(UTC)
        seen = await repo.recent_failures(conn, email, ip, now - LOGIN_WINDOW)
        blocked_since = None
        if seen.by_email >= MAX_FAILURES_PER_EMAIL:
            blocked_since = seen.oldest_email
        elif ip and seen.by_ip >= MAX_FAILURES_PER_IP:
            blocked_since = seen.oldest_ip
        if blocked_since is not None:
            retry_after = max(1, math.ceil((blocked_since + LOGIN_WINDOW - now).total_seconds()))
            raise RateLimited(
                "too_many_login_attempts",
                "too many failed logins; try again later",
                details={"retry_after_s": retry_after},
            )

    async def refresh(self, token: str) -> TokenPair:
        conn = self.tx
        row = await repo.lock_refresh_token(conn, hash_refresh_token(token))
        if row is None:
            raise Unauthorized("invalid_refresh_token", "refresh token not recognised")
        if row.revoked_at is not None:
            raise Unauthorized("refresh_token_revoked", "this session has ended")
        if row.used_at is not None:
            # A rotated-away token came back: someone holds a copy. End the session
            # (keeps_work: the revocation commits with the refusal).
            await repo.revoke_family(conn, row.family_id)
            raise Unauthorized(
                "refresh_token_reused",
                "refresh token reuse detected; session revoked",
                keeps_work=True,
            )
        if row.expires_at <= datetime.now(UTC) or not row.active:
            raise Unauthorized("refresh_token_expired", "sign in again")
        await repo.mark_used(conn, row.id)
        user = await repo.user_by_id(conn, row.user_id)
        assert user is not None
        return await self._issue(conn, user, row.family_id)

    async def logout(self, token: str) -> None:
        row = await repo.lock_refresh_token(self.tx, hash_refresh_token(token))
        if row is not None:
            await repo.revoke_family(self.tx, row.family_id)

    async def authenticate(
        self, access_token: str, *, ip: str | None = None, request_id: str | None = None
    ) -> Principal:
        claims = decode_access_token(self._key, access_token)
        if claims is None:
            raise Unauthorized("invalid_token", "access token is invalid or expired")
        user = await repo.live_session_user(self.tx, claims.user_id, claims.family_id)
        if user is None:
            raise Unauthorized("session_ended", "this session has ended")
        return Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            family_id=claims.family_id,
            ip=ip,
            request_id=request_id,
        )

    async def _issue(self, conn: Tx, user: repo.User, family_id: uuid.UUID) -> TokenPair:
        refresh = new_refresh_token()
        refresh_expires = datetime.now(UTC) + REFRESH_TTL
        await repo.insert_refresh_token(
            conn,
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh),
            expires_at=refresh_expires,
        )
        access, access_expires = issue_access_token(
            self._key, user.id, user.role, family_id, ACCESS_TTL
        )
        return TokenPair(access, access_expires, refresh, refresh_expires, user)
