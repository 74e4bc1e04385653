"""Field checks of one lead against its rules; pure functions, no database."""

from __future__ import annotations

from typing import Any, Protocol

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from leadflood.validation.rules import ValidationRules


def email_is_valid(email: str) -> bool:
    try:
        validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def phone_is_valid(phone: str, country: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(phone, country.upper()))
    except phonenumbers.NumberParseException:
        return False


def field_reasons(lead: Fields, rules: ValidationRules, country: str) -> set[str]:
    """Every failing reason except duplicates (which need the database)."""
    reasons: set[str] = set()
    for field in rules.required_fields:
        if not _present(lead.field(field)):
            reasons.add(f"missing_{field}")

    email = lead.field("email")
    if rules.email == "required" and not _present(email):
        reasons.add("missing_email")
    checked = rules.email in ("required", "forbidden-invalid")
    if checked and _present(email) and not email_is_valid(email):
        reasons.add("invalid_email")

    phone = lead.field("phone")
    if rules.phone == "required":
        if not _present(phone):
            reasons.add("missing_phone")
        elif not phone_is_valid(phone, country):
            reasons.add("invalid_phone")

    if rules.require_consent and lead.field("consent") is not True:
        reasons.add("consent_missing")
    return reasons


class Fields(Protocol):
    def field(self, name: str) -> Any: ...


def _present(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or value.strip() != "")
