"""Parse a posted lead body: strict types for known fields, unknown fields kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from leadflood.core.errors import BadRequest
from leadflood.core.request_guard import parse_json

# The posting contract's vocabulary; every other domain imports it from here.
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "postal_code",
    "consent_text",
    "consent_certificate_url",
)
CONTROL_FIELDS = ("source_id", "source_key", "idempotency_key")
KNOWN_FIELDS = frozenset({*CONTACT_FIELDS, *CONTROL_FIELDS, "consent"})
MAX_FIELD_LENGTH = 2000


@dataclass(frozen=True)
class LeadPayload:
    raw: dict[str, Any]
    source_id: Any
    source_key: Any
    idempotency_key: Any
    fields: dict[str, str | None]
    consent: bool | None


def custom_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields a source posted beyond the known ones (kept, passed on to buyers)."""
    return {k: v for k, v in raw.items() if k not in KNOWN_FIELDS}


def parse_body(body: bytes) -> LeadPayload:
    if not body.strip():
        raise BadRequest("invalid_json", "request body must be a JSON object")
    try:
        data = parse_json(body)  # NUL characters and nesting depth: the shared guard
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            "invalid_json", "request body is not valid JSON", details={"reason": str(exc)}
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("invalid_body", "request body must be a JSON object")

    fields: dict[str, str | None] = {}
    for name in CONTACT_FIELDS:
        value = data.get(name)
        if value is None:
            fields[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadRequest(
                "invalid_field_type",
                f"{name} must be a string",
                details={"field": name, "expected": "string"},
            )
        text = str(value).strip()
        if len(text) > MAX_FIELD_LENGTH:
            raise BadRequest(
                "invalid_field_value",
                f"{name} is too long",
                details={"field": name, "max_length": MAX_FIELD_LENGTH},
            )
        fields[name] = text or None

    consent = data.get("consent")
    if consent is not None and not isinstance(consent, bool):
        raise BadRequest(
            "invalid_field_type",
            "consent must be a boolean",
            details={"field": "consent", "expected": "boolean"},
        )
    for name in ("source_id", "source_key"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            code = "invalid_source" if name == "source_id" else "invalid_source_key"
            raise BadRequest(code, f"{name} must be a string", details={"field": name})
    return LeadPayload(
        raw=data,
        source_id=data.get("source_id"),
        source_key=data.get("source_key"),
        idempotency_key=data.get("idempotency_key"),
        fields=fields,
        consent=consent,
    )
