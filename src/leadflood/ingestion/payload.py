"""Parse a posted lead body: strict types for known fields, unknown fields kept.

Sources post JSON, or what their systems can: an HTML form or a legacy affiliate system's
`application/x-www-form-urlencoded`, or XML (one element per field under any root, as
`<lead><first_name>Ana</first_name>...</lead>`). All three map to the same fields, the
same validation and the same error codes; any other declared type is 415. A body with no
Content-Type is read as JSON, as before (decision 0019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import ParseError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from leadflood.core.errors import AppError, BadRequest
from leadflood.core.request_guard import nul_error, parse_json

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
# The consumer's contact details: never in a ping, whatever an offer names (bidders who
# do not buy must not see them).
CONTACT_DETAILS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "consent_text",
        "consent_certificate_url",
    }
)
CONTROL_FIELDS = ("source_id", "source_key", "idempotency_key")
KNOWN_FIELDS = frozenset({*CONTACT_FIELDS, *CONTROL_FIELDS, "consent"})
MAX_FIELD_LENGTH = 2000


class UnsupportedMediaType(AppError, status=415, code="unsupported_media_type"): ...


MAX_FORM_FIELDS = 200
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


@dataclass(frozen=True)
class LeadPayload:
    raw: dict[str, Any]
    raw_text: str  # what is stored as the raw payload: the JSON posted, or the mapped one
    source_id: Any
    source_key: Any
    idempotency_key: Any
    fields: dict[str, str | None]
    consent: bool | None


def custom_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields a source posted beyond the known ones (kept, passed on to buyers)."""
    return {k: v for k, v in raw.items() if k not in KNOWN_FIELDS}


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None = None) -> LeadPayload:
    kind = media_type(content_type)
    if kind in ("", "application/json") or kind.endswith("+json"):
        data, text = _json_body(body), None
    elif kind == "application/x-www-form-urlencoded":
        data = _form_body(body)
        text = orjson.dumps(data).decode()
    elif kind in ("application/xml", "text/xml") or kind.endswith("+xml"):
        data = _xml_body(body)
        text = orjson.dumps(data).decode()
    else:
        raise UnsupportedMediaType(
            "unsupported_media_type",
            "post the lead as application/json, application/x-www-form-urlencoded or XML",
            details={"content_type": kind[:100]},
        )
    return _payload(data, text if text is not None else body.decode("utf-8"))


def _json_body(body: bytes) -> dict[str, Any]:
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
    return data


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("invalid_body", f"the {what} is not UTF-8") from None


def _form_body(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            _text(body, "form"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_body", f"the form cannot be read: {exc}"[:300]) from None
    return _fields(pairs, "form")


def _xml_body(body: bytes) -> dict[str, Any]:
    if b"\x00" in body:
        raise nul_error("XML")
    if not body.strip():
        raise BadRequest("invalid_xml", "request body must be an XML document")
    try:
        # No DTD, no entities, no external references: buyers' and sources' XML is
        # untrusted (billion laughs, XXE).
        root = parse_xml(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest("invalid_xml", f"request body is not valid XML: {exc}"[:300]) from None
    pairs = []
    for child in root:
        if not isinstance(child.tag, str) or len(child):
            raise BadRequest(
                "invalid_xml", "each field is one element with text, directly under the root"
            )
        pairs.append((child.tag.split("}", 1)[-1], (child.text or "").strip()))
    return _fields(pairs, "XML")


def _fields(pairs: list[tuple[str, str]], what: str) -> dict[str, Any]:
    """Text fields as the JSON contract types them: consent is a boolean."""
    data: dict[str, Any] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise nul_error(what)
        if name in data:
            raise BadRequest(
                "invalid_body", f"{name} appears twice in the {what}", details={"field": name}
            )
        data[name] = value
    if "consent" in data:
        word = str(data["consent"]).strip().lower()
        if word not in _TRUE | _FALSE:
            raise BadRequest(
                "invalid_field_type",
                "consent must be true or false",
                details={"field": "consent", "expected": "boolean"},
            )
        data["consent"] = word in _TRUE
    for name in ("source_id", "source_key", "idempotency_key"):
        if data.get(name) == "":
            data[name] = None  # an empty form field is no value
    return data


def _payload(data: dict[str, Any], raw_text: str) -> LeadPayload:
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
        raw_text=raw_text,
        source_id=data.get("source_id"),
        source_key=data.get("source_key"),
        idempotency_key=data.get("idempotency_key"),
        fields=fields,
        consent=consent,
    )
