"""The contact fields of a lead, as the stages after ingestion read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadContact:
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    address: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    consent: bool | None
    consent_text: str | None
    consent_certificate_url: str | None
