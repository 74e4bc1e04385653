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


def to_e164(phone: str, region: str | None) -> str | None:
    """E.164 when the number is valid (read in `region` when it carries no country code)."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(phone: str | None, country: str) -> str | None:
    """E.164 when valid for the market's country, else digits only; < 7 digits → None."""
    if phone is None:
        return None
    raw = phone.strip()
    if not raw:
        return None
    e164 = to_e164(raw, country.upper())
    if e164 is not None:
        return e164
    digits = _NON_DIGITS.sub("", raw)
    return digits if len(digits) >= MIN_PHONE_DIGITS else None
