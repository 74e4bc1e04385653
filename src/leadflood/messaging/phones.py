"""Phone numbers for WhatsApp and SMS: E.164 (what Trengo and the carriers expect) and the
time zone a number belongs to (for quiet hours), by Google's libphonenumber data."""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as number_zones

from leadflood.ingestion.normalize import to_e164


def e164(raw: str | None, country: str | None = None) -> str | None:
    """`+<country code><number>`, or None when it is no valid number. A number without
    its country code is read in the lead's country (an ISO 3166 alpha-2 code)."""
    if not raw or not raw.strip():
        return None
    region = country.strip().upper() if country and len(country.strip()) == 2 else None
    return to_e164(raw, region)


def time_zone(number: str) -> str | None:
    """The number's zone when it has exactly one (a US number may span several)."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else None
