"""Secrets at rest: API key hashing and symmetric encryption of buyer secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken


def new_api_key(prefix: str = "lf") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> str:
    # API keys are 256-bit random tokens: a fast hash is enough and keeps auth O(1).
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def verify_api_key(key: str, stored: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), stored)


def presented_api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a client presents: `Authorization: Bearer <key>`, else `X-Api-Key`."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def _fernet(master_key: str) -> Fernet:
    derived = hashlib.sha256(b"leadflood-secrets:" + master_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(plaintext: str, master_key: str) -> str:
    return "v1:" + _fernet(master_key).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str, master_key: str) -> str:
    if not token.startswith("v1:"):
        raise ValueError("unknown secret format")
    try:
        return _fernet(master_key).decrypt(token[3:].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret failed authentication") from exc
