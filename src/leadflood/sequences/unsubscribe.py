"""Signed unsubscribe links: /u/<lead id>.<HMAC>, valid without a login, unforgeable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid


def _mac(secret: str, lead_id: uuid.UUID) -> str:
    key = hashlib.sha256(b"leadflood-unsubscribe:" + secret.encode()).digest()
    return hmac.new(key, lead_id.bytes, hashlib.sha256).hexdigest()[:32]


def token(secret: str, lead_id: uuid.UUID) -> str:
    encoded = base64.urlsafe_b64encode(lead_id.bytes).decode().rstrip("=")
    return f"{encoded}.{_mac(secret, lead_id)}"


def lead_from_token(secret: str, value: str) -> uuid.UUID | None:
    encoded, _, mac = value.partition(".")
    try:
        lead_id = uuid.UUID(bytes=base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, TypeError):
        return None
    return lead_id if hmac.compare_digest(_mac(secret, lead_id), mac) else None
