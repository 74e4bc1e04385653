"""Validation policy rules (validation_policies.rules, DISTRIBUTION.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from leadflood.core.errors import BadRequest
from leadflood.ingestion.payload import CONTACT_FIELDS

EmailRule = Literal["optional", "required", "forbidden-invalid"]
PhoneRule = Literal["optional", "required"]
Scope = Literal["offer", "vertical", "global"]

MATCH_FIELDS = ("normalized_email", "normalized_phone")


@dataclass(frozen=True)
class ValidationRules:
    """Defaults accept everything; each rule tightens one thing.

    email: `optional` — not checked; `required` — must be present and valid;
    `forbidden-invalid` — may be absent, but a present email must be valid.
    phone: `optional` — not checked; `required` — present and valid for the market.
    """

    required_fields: tuple[str, ...] = ()
    email: EmailRule = "optional"
    phone: PhoneRule = "optional"
    require_consent: bool = False
    duplicate_window_hours: int = 0
    duplicate_scope: Scope = "offer"
    duplicate_match: tuple[str, ...] = ()

    @property
    def checks_duplicates(self) -> bool:
        return self.duplicate_window_hours > 0 and bool(self.duplicate_match)


def parse_rules(raw: dict[str, Any]) -> ValidationRules:
    """Strict parse: a policy that cannot be understood is refused, never half-applied."""

    def fail(field: str, message: str) -> BadRequest:
        return BadRequest("invalid_validation_rules", message, details={"field": field})

    unknown = set(raw) - {
        "required_fields",
        "email",
        "phone",
        "require_consent",
        "duplicate_window_hours",
        "duplicate_scope",
        "duplicate_match",
    }
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown rule(s): {', '.join(sorted(unknown))}")
    required = raw.get("required_fields", [])
    if not isinstance(required, list) or any(f not in CONTACT_FIELDS for f in required):
        raise fail("required_fields", f"required_fields must be a list of {CONTACT_FIELDS}")
    email = raw.get("email", "optional")
    if email not in ("optional", "required", "forbidden-invalid"):
        raise fail("email", "email must be optional, required or forbidden-invalid")
    phone = raw.get("phone", "optional")
    if phone not in ("optional", "required"):
        raise fail("phone", "phone must be optional or required")
    consent = raw.get("require_consent", False)
    if not isinstance(consent, bool):
        raise fail("require_consent", "require_consent must be a boolean")
    window = raw.get("duplicate_window_hours", 0)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise fail("duplicate_window_hours", "duplicate_window_hours must be an integer >= 0")
    scope = raw.get("duplicate_scope", "offer")
    if scope not in ("offer", "vertical", "global"):
        raise fail("duplicate_scope", "duplicate_scope must be offer, vertical or global")
    match = raw.get("duplicate_match", list(MATCH_FIELDS) if window else [])
    if not isinstance(match, list) or any(f not in MATCH_FIELDS for f in match):
        raise fail("duplicate_match", f"duplicate_match must be a list of {MATCH_FIELDS}")
    return ValidationRules(
        required_fields=tuple(dict.fromkeys(required)),
        email=email,
        phone=phone,
        require_consent=consent,
        duplicate_window_hours=window,
        duplicate_scope=scope,
        duplicate_match=tuple(dict.fromkeys(match)),
    )
