"""The webhook body: built only from stored facts, serialized canonically (§7)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from leadflood import __version__
from leadflood.ingestion.payload import custom_fields

if TYPE_CHECKING:
    from leadflood.delivery.repository import ClaimedAttempt


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def build_payload(row: ClaimedAttempt) -> dict[str, Any]:
    raw = row.raw_payload
    custom = custom_fields(raw or {})
    lead_id = str(row.lead_id)
    return {
        "lead_id": lead_id,
        "idempotency_key": f"lead:{lead_id}",
        "offer": {"id": str(row.offer_id), "slug": row.offer_slug, "name": row.offer_name},
        "market": {
            "id": str(row.market_id),
            "slug": row.market_slug,
            "name": row.market_name,
        },
        "vertical": {
            "id": str(row.vertical_id),
            "slug": row.vertical_slug,
            "name": row.vertical_name,
        },
        "contact": {
            "first_name": row.first_name,
            "last_name": row.last_name,
            "email": row.email,
            "phone": _phone(row),
            "address": row.address,
            "city": row.city,
            "state": row.state,
            "postal_code": row.postal_code,
        },
        "consent": {
            "given": row.consent,
            "text": row.consent_text,
            "certificate_url": row.consent_certificate_url,
        },
        "price_cents": row.price_cents,
        "currency": row.currency,
        "received_at": _ts(row.received_at),
        "routed_at": _ts(row.routed_at),
        "custom": custom,
    } | _auction(row)


def _auction(row: ClaimedAttempt) -> dict[str, Any]:
    """A lead sold by auction carries the ping id and the winner's bid token (the buyer
    matches the post to its bid by them); other leads' bodies are unchanged."""
    if row.auction_id is None:
        return {}
    return {"auction": {"ping_id": str(row.auction_id), "bid_token": row.bid_token}}


def _phone(row: ClaimedAttempt) -> str | None:
    normalized = row.normalized_phone
    if normalized and normalized.startswith("+"):
        return normalized  # E.164 when known
    return row.phone


def serialize(payload: dict[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace: the same lead gives the same bytes."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def base_headers(lead_id: str, *, idempotency_key: str | None = None) -> dict[str, str]:
    """Ours on every request, whatever the buyer's format: its templates cannot replace
    them. The key is the lead's, or another request's own (a ping's)."""
    return {
        "Idempotency-Key": idempotency_key or f"lead:{lead_id}",
        "User-Agent": f"leadflood/{__version__}",
    }


def headers(lead_id: str, body: bytes, secret: str | None) -> dict[str, str]:
    out = {"Content-Type": "application/json", **base_headers(lead_id)}
    if secret:
        out["X-Leadflood-Signature"] = signature(body, secret)
    return out


def template_context(row: ClaimedAttempt, payload: dict[str, Any]) -> dict[str, Any]:
    """What a buyer's templates may read: the contact fields by name, the lead's custom
    fields under `custom`, offer/market/vertical, consent, price, ids, times."""
    contact = payload["contact"]
    consent = payload["consent"]
    price = row.price_cents
    return {
        **contact,
        "lead_id": payload["lead_id"],
        "idempotency_key": payload["idempotency_key"],
        "offer": payload["offer"],
        "source": {"id": str(row.source_id) if row.source_id else None, "name": row.source_name},
        "market": payload["market"],
        "vertical": payload["vertical"],
        "consent": consent["given"],
        "consent_text": consent["text"],
        "consent_certificate_url": consent["certificate_url"],
        "price_cents": price,
        "price": f"{price / 100:.2f}" if price is not None else None,
        "currency": row.currency,
        "received_at": row.received_at,
        "routed_at": row.routed_at,
        "custom": payload["custom"],
        "ping_id": str(row.auction_id) if row.auction_id else None,
        "bid_token": row.bid_token,
        "lead": payload,
    }
