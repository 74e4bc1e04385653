"""Posting instructions an operator hands to a source: where to post, the fields and
which the offer's policy requires, the three body formats with examples, the answers and
error codes. Built from the configuration, so they never drift from what is enforced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import orjson

from leadflood.catalog.repository import OfferForPosting, SourceForPosting
from leadflood.ingestion.payload import CONTACT_FIELDS
from leadflood.validation.rules import parse_rules

FIELD_NOTES = {
    "first_name": "text",
    "last_name": "text",
    "email": "an email address",
    "phone": "a phone number; without a country code it is read in the market's country",
    "address": "street address",
    "city": "text",
    "state": "state or region code",
    "postal_code": "postal or ZIP code",
    "consent_text": "the consent language the person agreed to",
    "consent_certificate_url": "the consent certificate (TrustedForm, Jornaya) URL",
    "consent": "true or false (forms and XML: true/false, yes/no, 1/0)",
    "idempotency_key": "your id for this lead: a repeat with the same key is the same lead "
    "(also as an Idempotency-Key header)",
    "source_id": "this source's id, when the URL does not name the source",
}

ERRORS = [
    (201, "", "accepted: a new lead (lead_id in the answer)"),
    (200, "", "the same lead again (same idempotency key): the first answer"),
    (400, "invalid_json / invalid_xml / invalid_body", "the body cannot be read"),
    (400, "invalid_field_type / invalid_field_value", "a field has the wrong type or length"),
    (400, "nul_character", "a NUL character anywhere"),
    (401, "unauthorized_source", "missing or wrong API key"),
    (400, "unmapped_source", "the URL, host or source_id names no source"),
    (409, "ambiguous_source_mapping", "the URL and source_id disagree"),
    (413, "payload_too_large", "the body is over the size limit"),
    (415, "unsupported_media_type", "a Content-Type other than JSON, form or XML"),
    (429, "rate_limited", "too many requests: wait Retry-After seconds"),
]


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    note: str


@dataclass(frozen=True)
class Instructions:
    offer: OfferForPosting
    sources: list[SourceForPosting]
    fields: list[Field]
    example_json: str
    example_form: str
    example_xml: str
    errors: list[tuple[int, str, str]]
    urls: dict[Any, str]  # source id -> where it posts


def _example(required: set[str]) -> dict[str, Any]:
    sample = {
        "first_name": "Ana",
        "last_name": "Lopez",
        "email": "ana.lopez@example.com",
        "phone": "+1 602 555 0101",
        "address": "100 Main St",
        "city": "Phoenix",
        "state": "AZ",
        "postal_code": "85001",
        "consent_text": "I agree to be contacted about my request.",
        "consent_certificate_url": "https://cert.trustedform.com/0123456789abcdef",
    }
    keep = {"first_name", "last_name", "email", "phone", "postal_code"} | required
    example: dict[str, Any] = {k: v for k, v in sample.items() if k in keep}
    example["consent"] = True
    example["idempotency_key"] = "your-lead-id-123"
    return example


def build(offer: OfferForPosting, sources: list[SourceForPosting], base_url: str) -> Instructions:
    rules = parse_rules(offer.rules or {})
    required = set(rules.required_fields)
    if rules.email == "required":
        required.add("email")
    if rules.phone == "required":
        required.add("phone")
    fields = [Field(name, name in required, FIELD_NOTES[name]) for name in CONTACT_FIELDS]
    fields.append(Field("consent", rules.require_consent, FIELD_NOTES["consent"]))
    fields += [Field(n, False, FIELD_NOTES[n]) for n in ("idempotency_key", "source_id")]
    example = _example(required)
    form = {k: ("true" if v is True else v) for k, v in example.items()}
    xml = "".join(f"  <{k}>{escape(str(v))}</{k}>\n" for k, v in form.items())
    return Instructions(
        offer=offer,
        sources=sources,
        fields=fields,
        example_json=orjson.dumps(example, option=orjson.OPT_INDENT_2).decode(),
        example_form=urlencode(form),
        example_xml=f'<?xml version="1.0" encoding="UTF-8"?>\n<lead>\n{xml}</lead>',
        errors=ERRORS,
        # A source with its own host and path posts there; the others to the shared URL,
        # naming themselves with source_id.
        urls={
            s.id: (
                f"https://{s.hostname}{s.path_prefix}"
                if s.hostname and s.path_prefix
                else f"{base_url}/api/leads"
            )
            for s in sources
        },
    )
