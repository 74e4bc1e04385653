"""A buyer's own posting format and how to read its answer (issue 16, decision 0020).

Posting: method, URL, format (JSON, form, XML or query string) and fields rendered from
templates over the lead in Jinja2's SandboxedEnvironment (no attribute access to Python
internals, no imports), with StrictUndefined so a field the lead lacks is a clear
configuration error rather than a blank post; `| default('')` makes a field optional.

Reading the answer: which statuses can mean success, an outcome term (exact or regex) at
a JSON path (jsonpath-ng), an XPath (lxml, DTDs and entities off, no network) or in the
whole body, whether a match means accepted or rejected, and where the reason, the buyer's
reference and the price they pay are.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import orjson
import phonenumbers
from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from jsonpath_ng import parse as jsonpath
from lxml import etree
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_RESPONSE_BYTES = 64 * 1024  # of a buyer's answer read for its rules
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")


class ConfigError(ValueError):
    """The buyer's integration cannot produce a request for this lead."""


# ---- the sandbox ------------------------------------------------------------------------


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _e164(value: Any) -> str:
    if isinstance(value, str) and _E164.match(value):
        return value  # the lead's phone is stored in E.164 when it could be read
    number = _number(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else ""


def _national(value: Any) -> str:
    number = _number(value)
    if number is None:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def _number(value: Any) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(str(value or ""), "US")
    except phonenumbers.NumberParseException:
        return None


def _date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if isinstance(value, datetime):
        return value.strftime(fmt)
    try:
        return datetime.fromisoformat(str(value)).strftime(fmt)
    except ValueError:
        return ""


MAX_RENDERED = 100_000  # characters a multiplication may build


class _Sandbox(SandboxedEnvironment):
    """The sandbox, also bounding what `*` and `**` may build (a template must not be
    able to allocate gigabytes: `{{ 'a' * 10**9 }}`)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 100:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_RENDERED:
                    raise SecurityError("the result would be too large")
        return super().call_binop(context, operator, left, right)


def _environment() -> SandboxedEnvironment:
    # A field the lead has empty (None) renders empty, never "None".
    env = _Sandbox(
        undefined=StrictUndefined, autoescape=False, finalize=lambda v: "" if v is None else v
    )
    env.filters.update(e164=_e164, national=_national, digits=_digits, date=_date)
    return env


_ENV = _environment()


@lru_cache(maxsize=4096)
def _template(text: str):
    return _ENV.from_string(text)


def check_template(text: str) -> None:
    try:
        _template(text)
    except TemplateError as exc:
        raise ValueError(f"template error: {exc}") from None


def render(text: str, context: dict[str, Any]) -> str:
    try:
        return _template(text).render(context)
    except TemplateError as exc:
        # StrictUndefined: "'x' is undefined"; the sandbox: "access to attribute ... unsafe".
        raise ConfigError(str(exc)) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"{type(exc).__name__}: {exc}") from None


# ---- configuration ----------------------------------------------------------------------

Template = Annotated[str, StringConstraints(max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Integration(Strict):
    """How this buyer wants a lead posted. Field names may be dotted (`contact.email`) to
    nest in JSON and XML."""

    method: Literal["POST", "PUT", "GET"] = "POST"
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    format: Literal["json", "form", "xml", "query"] = "json"
    fields: dict[str, Template] = Field(default_factory=dict, max_length=200)
    headers: dict[str, Template] = Field(default_factory=dict, max_length=50)
    # Credentials: the secret value is `integration_secret` (write-only, encrypted).
    auth: Literal["none", "basic", "bearer", "api_key_header"] = "none"
    auth_username: Annotated[str, StringConstraints(max_length=200)] | None = None
    api_key_header: Annotated[str, StringConstraints(max_length=100)] | None = None
    xml_root: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")] = "lead"
    sign: bool = True  # X-Leadflood-Signature over the body, with the webhook secret

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError("one line")
        check_template(value)
        if not re.match(r"^https?://", value, re.IGNORECASE):
            raise ValueError("an absolute http(s) URL (placeholders may follow the host)")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _NAME.match(name):
                raise ValueError(f"field name {name!r}: letters, digits, _ . - only")
            check_template(text)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if any(ch in text for ch in "\r\n\x00"):
                raise ValueError(f"header {name}: one line")
            check_template(text)
        return value

    @field_validator("api_key_header")
    @classmethod
    def _key_header(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER.match(value):
            raise ValueError("not a valid HTTP header name")
        return value


class ResponseRules(Strict):
    """How to read this buyer's answer. Paths: `$...` a JSON path, `/...` an XPath,
    empty the whole body."""

    success_statuses: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: list(range(200, 300)), max_length=100
    )
    outcome_term: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    outcome_regex: bool = False
    outcome_path: Annotated[str, StringConstraints(max_length=500)] | None = None
    match_means: Literal["accepted", "rejected"] = "accepted"
    reason_path: Annotated[str, StringConstraints(max_length=500)] | None = None
    reference_path: Annotated[str, StringConstraints(max_length=500)] | None = None
    price_path: Annotated[str, StringConstraints(max_length=500)] | None = None

    @field_validator("outcome_path", "reason_path", "reference_path", "price_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value:
            _compiled_path(value)
        return value

    @model_validator(mode="after")
    def _regex(self) -> ResponseRules:
        if self.outcome_term and self.outcome_regex:
            try:
                re.compile(self.outcome_term)
            except re.error as exc:
                raise ValueError(f"outcome_term is not a regular expression: {exc}") from None
        return self


@lru_cache(maxsize=1024)
def _parsed(kind: str, text: str) -> Integration | ResponseRules:
    data = orjson.loads(text)
    return Integration.model_validate(data) if kind == "i" else ResponseRules.model_validate(data)


def integration_of(value: dict[str, Any]) -> Integration:
    """A stored integration, validated once per distinct configuration (not per lead)."""
    return _parsed("i", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())  # type: ignore[return-value]


def rules_of(value: dict[str, Any]) -> ResponseRules:
    return _parsed("r", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())  # type: ignore[return-value]


def validate_integration(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else Integration.model_validate(value).model_dump()


def validate_rules(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else ResponseRules.model_validate(value).model_dump()


# ---- building the request ---------------------------------------------------------------

# One render per lead instead of one per field (Jinja2 builds a context per render, which
# was most of a templated buyer's cost): the URL and fields joined by a separator no
# template writes, split after. A value that carries it is rendered field by field.
_SEP = "\x1e\x1f\x1e"


def _render_all(config: Integration, context: dict[str, Any]) -> tuple[str, dict[str, str]]:
    texts = [config.url, *config.fields.values()]
    parts = render(_SEP.join(texts), context).split(_SEP)
    if len(parts) != len(texts):
        parts = [render(text, context) for text in texts]
    return parts[0], dict(zip(config.fields, parts[1:], strict=True))


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secret_headers: frozenset[str]  # names whose values are secrets (masked in previews)


def _nest(pairs: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs.items():
        *parents, last = name.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"field {name} nests under a value")
            node = child
        node[last] = value
    return out


def _xml(node: dict[str, Any]) -> str:
    parts = []
    for key, value in node.items():
        if isinstance(value, dict):
            parts.append(f"<{key}>{_xml(value)}</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    return "".join(parts)


def build_request(
    config: Integration,
    context: dict[str, Any],
    *,
    secret: str | None,
    base_headers: dict[str, str],
) -> Request:
    """The request for one lead. `base_headers` are ours (Idempotency-Key, User-Agent);
    the buyer's headers come after and may not replace them."""
    url, values = _render_all(config, context)
    if any(ch in url for ch in "\r\n\x00 "):
        raise ConfigError("the rendered URL has spaces or line breaks")
    headers = dict(base_headers)
    body = b""
    if config.format == "json":
        body = orjson.dumps(_nest(values))
        headers["Content-Type"] = "application/json"
    elif config.format == "form":
        body = urlencode(values).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif config.format == "xml":
        xml = f"<{config.xml_root}>{_xml(_nest(values))}</{config.xml_root}>"
        body = ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()
        headers["Content-Type"] = "application/xml"
    if config.format == "query" or config.method == "GET":
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(values)) if q)
        url, body = urlunsplit(parts._replace(query=query)), b""
        headers.pop("Content-Type", None)
    for name, text in config.headers.items():
        value = render(text, context)
        if any(ch in value for ch in "\r\n\x00"):
            raise ConfigError(f"header {name} renders with a line break")
        if name.lower() not in {h.lower() for h in base_headers}:
            headers[name] = value
    hidden: set[str] = set()
    if config.auth != "none":
        if not secret:
            raise ConfigError(f"auth {config.auth} needs the buyer's integration_secret")
        if config.auth == "basic":
            token = base64.b64encode(f"{config.auth_username or ''}:{secret}".encode()).decode()
            headers["Authorization"], name = f"Basic {token}", "Authorization"
        elif config.auth == "bearer":
            headers["Authorization"], name = f"Bearer {secret}", "Authorization"
        else:
            name = config.api_key_header or "X-API-Key"
            headers[name] = secret
        hidden.add(name)
    return Request(config.method, url, headers, body, frozenset(hidden))


# ---- reading the answer -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: str  # accepted | rejected | error
    reason: str | None = None
    reference: str | None = None
    price_cents: int | None = None


@lru_cache(maxsize=1024)
def _compiled_path(path: str):
    try:
        if path.startswith("$"):
            return jsonpath(path)
        if path.startswith("/"):
            return etree.XPath(path)
    except Exception as exc:
        # jsonpath-ng raises plain Exceptions (not only JsonPathParserError) for some
        # malformed paths; lxml raises XPathSyntaxError.
        raise ValueError(f"path {path!r}: {exc}") from None
    raise ValueError(f"path {path!r}: a JSON path starts with $, an XPath with /")


_SIMPLE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_\-]*)+$")
_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False
)


def _parse_xml(raw: bytes) -> Any:
    """The answer as XML, or None: unreadable, or carrying a DTD or entities (a buyer's
    answer is untrusted input)."""
    if b"<!DOCTYPE" in raw[:2048].upper() or b"<!ENTITY" in raw.upper():
        return None
    try:
        return etree.fromstring(raw, _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None


class _Body:
    """The answer, parsed once per form it is asked in."""

    def __init__(self, raw: bytes) -> None:
        self.text = raw.decode("utf-8", "replace")
        self._raw = raw
        self._json: tuple[str, Any] | None = None
        self._xml: tuple[str, Any] | None = None

    def json(self) -> Any:
        if self._json is None:
            try:
                self._json = ("ok", orjson.loads(self._raw))
            except orjson.JSONDecodeError:
                self._json = ("bad", None)
        return self._json[1]

    def xml(self) -> Any:
        if self._xml is None:
            self._xml = ("read", _parse_xml(self._raw))
        return self._xml[1]

    def at(self, path: str | None) -> str | None:
        """The first value at `path` as text (the whole body without a path)."""
        if not path:
            return self.text
        if _SIMPLE_PATH.match(path):  # $.a.b: a plain walk, no JSONPath engine needed
            value = self.json()
            for key in path[2:].split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, dict | list):
                return orjson.dumps(value).decode()
            return None if value is None else str(value)
        compiled = _compiled_path(path)
        if path.startswith("$"):
            data = self.json()
            found = [m.value for m in compiled.find(data)] if data is not None else []
        else:
            root = self.xml()
            found = compiled(root) if root is not None else []
            if not isinstance(found, list):
                found = [found]
        if not found:
            return None
        value = found[0]
        if isinstance(value, etree._Element):
            value = value.text
        if isinstance(value, dict | list):
            return orjson.dumps(value).decode()
        return None if value is None else str(value)


def _cents(text: str | None) -> int | None:
    if not text:
        return None
    try:
        amount = Decimal(re.sub(r"[^\d.\-]", "", text))
    except InvalidOperation:
        return None
    return int((amount * 100).to_integral_value()) if amount.is_finite() else None


def read_answer(rules: ResponseRules, status: int, raw: bytes) -> Verdict:
    """A success status read by the rules: accepted or rejected, with what it says."""
    if status not in rules.success_statuses:
        return Verdict("error", reason=f"http_{status}")
    body = _Body(raw[:MAX_RESPONSE_BYTES])
    accepted = True
    if rules.outcome_term:
        target = body.at(rules.outcome_path) or ""
        if rules.outcome_regex:
            matched = re.search(rules.outcome_term, target, re.IGNORECASE) is not None
        else:
            matched = target.strip().lower() == rules.outcome_term.strip().lower()
        accepted = matched == (rules.match_means == "accepted")
    reason = body.at(rules.reason_path) if rules.reason_path else None
    if not accepted and reason is None:
        reason = body.text.strip()[:200] or f"http_{status}"
    return Verdict(
        "accepted" if accepted else "rejected",
        reason=(reason or None) and reason[:500],
        reference=(body.at(rules.reference_path) or None) if rules.reference_path else None,
        price_cents=_cents(body.at(rules.price_path)) if rules.price_path else None,
    )
