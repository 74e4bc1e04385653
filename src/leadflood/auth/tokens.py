"""Short-lived JWT access tokens and opaque, hashed, rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "leadflood"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    family_id: uuid.UUID
    expires_at: datetime


def _signing_key(secret_key: str) -> bytes:
    # Derived, so the token key differs from the key that encrypts buyer secrets.
    return hashlib.sha256(b"leadflood-access-token:" + secret_key.encode()).digest()


def issue_access_token(
    secret_key: str, user_id: uuid.UUID, role: str, family_id: uuid.UUID, ttl: timedelta
) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + ttl
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "role": role,
        "fam": str(family_id),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM), expires


def decode_access_token(secret_key: str, token: str) -> AccessClaims | None:
    """None for any token that is malformed, forged or expired."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(secret_key),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            role=str(claims["role"]),
            family_id=uuid.UUID(claims["fam"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def new_refresh_token() -> str:
    return "lfr_" + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # 256-bit random tokens: a fast hash suffices and keeps lookup by hash possible.
    return hashlib.sha256(token.encode()).hexdigest()
