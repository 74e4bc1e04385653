"""Client idempotency keys and the derived key (DISTRIBUTION.md §3)."""

from __future__ import annotations

import hashlib
import json
import re

from leadflood.core.errors import BadRequest

_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DERIVED_PREFIX = "d1:"


def client_key(body_key: object, header_key: str | None) -> str | None:
    """The client's key after `strip()` (case kept), or None when neither is given."""
    if body_key is not None and not isinstance(body_key, str):
        raise BadRequest("invalid_idempotency_key_format", "idempotency_key must be a string")
    body = body_key.strip() if isinstance(body_key, str) else None
    header = header_key.strip() if header_key is not None else None
    if body is not None and header is not None and body != header:
        raise BadRequest(
            "idempotency_key_mismatch",
            "the Idempotency-Key header and the body's idempotency_key differ",
        )
    key = body if body is not None else header
    if key is None:
        return None
    if not _KEY.match(key):
        raise BadRequest(
            "invalid_idempotency_key_format",
            "idempotency_key must be 1-128 characters of A-Z a-z 0-9 . _ : -",
            details={"max_length": 128, "allowed": "[A-Za-z0-9._:-]"},
        )
    return key


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip().lower() or None


def derive_key(
    *,
    source_id: str,
    normalized_email: str | None,
    normalized_phone: str | None,
    first_name: str | None,
    last_name: str | None,
    postal_code: str | None,
) -> str:
    """'d1:' + sha256 of the canonical JSON of the identifying fields.

    Canonical JSON: sorted keys, no whitespace, UTF-8 (non-ASCII kept as is),
    names lower-cased and trimmed, postal code trimmed, absent values null.
    """
    if not normalized_email and not normalized_phone:
        raise BadRequest(
            "idempotency_derivation_failed",
            "no idempotency_key given and neither an email nor a phone to derive one from",
        )
    document = {
        "source_id": source_id,
        "normalized_email": normalized_email,
        "normalized_phone": normalized_phone,
        "first_name": _name(first_name),
        "last_name": _name(last_name),
        "postal_code": (postal_code.strip() or None) if postal_code else None,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DERIVED_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()
