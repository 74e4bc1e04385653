"""Normalized contact fields stored beside the raw values (DISTRIBUTION.md §3)."""

from __future__ import annotations

import re

import phonenumbers

_NON_DIGITS = re.compile(r"\D")
MIN_PHONE_DIGITS = 7


def normalize_email(email: str | None) -> str | None:
    if email is None:
        return None
    value = email.strip().lower()
    return value or None


def normalize_phone(phone: str | None, country: str) -> str | None:
    """E.164 when valid for the market's country, else digits only; < 7 digits → None."""
    if phone is None:
        return None
    raw = phone.strip()
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, country.upper())
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = _NON_DIGITS.sub("", raw)
    return digits if len(digits) >= MIN_PHONE_DIGITS else None
