"""HTML forms for the configuration entities, derived from the API's own models.

The page validates with the same Create/Patch models as the API, so a form shows
exactly the errors the API would return, next to the field they concern.
"""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from leadflood.admin.resources import Resource

# Which table a reference field picks from, and the column that names a row.
REFERENCES: dict[str, tuple[str, str]] = {
    "market_id": ("markets", "slug"),
    "vertical_id": ("verticals", "slug"),
    "validation_policy_id": ("validation_policies", "name"),
    "routing_policy_id": ("routing_policies", "name"),
    "offer_id": ("offers", "slug"),
    "buyer_id": ("buyers", "name"),
}
WRITE_ONLY = frozenset({"webhook_secret", "integration_secret"})


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # text | number | checkbox | select | json | password | datetime | reference
    required: bool
    choices: list[tuple[str, str]] = field(default_factory=list)
    value: Any = None
    error: str | None = None
    help: str = ""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and types.NoneType in args:
        rest = [a for a in args if a is not types.NoneType]
        return rest[0], True
    return annotation, False


def _base(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def form_fields(model: type[BaseModel], *, editing: bool) -> list[FormField]:
    fields = []
    for name, info in model.model_fields.items():
        annotation, _ = _unwrap(info.annotation)
        base = _base(annotation)
        kind, choices = "text", []
        if name in REFERENCES:
            kind = "reference"
        elif name in WRITE_ONLY:
            kind = "password"
        elif base is bool:
            kind = "checkbox"
        elif base is int and name.endswith("_cents"):
            kind = "money"  # typed and shown as an amount (25.00), stored in cents
        elif base is int:
            kind = "number"
        elif typing.get_origin(base) is Literal:
            kind, choices = "select", [(str(v), str(v)) for v in typing.get_args(base)]
        elif typing.get_origin(base) is dict or base is dict:
            kind = "json"
        elif typing.get_origin(base) is list:
            kind = "list"  # typed as comma-separated names
        elif base is datetime or "datetime" in str(base).lower():
            kind = "datetime"
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, datetime):
            default = None
        fields.append(
            FormField(
                name=name,
                label=_label(name, kind),
                kind=kind,
                required=info.is_required() and not editing,
                choices=choices,
                value=default,
                help="write-only: leave blank to keep the current value"
                if name in WRITE_ONLY and editing
                else "",
            )
        )
    return fields


def _label(name: str, kind: str) -> str:
    if kind == "money":
        return name.removesuffix("_cents").replace("_", " ").capitalize() + " (amount)"
    return name.removesuffix("_id").replace("_", " ").capitalize()


def parse_amount(text: str) -> int:
    """An amount as people type it ("25", "25.00", "$1,200.50", "-3") → cents."""
    cleaned = text.strip().replace(",", "").lstrip("$€£").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("must be an amount like 25.00") from None
    if not amount.is_finite() or abs(amount) >= Decimal(2**62) / 100:
        raise ValueError("must be an amount like 25.00 (and not that large)")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("must be an amount with at most 2 decimals, like 25.00")
    return int(amount * 100)


def fill(fields: list[FormField], row: dict[str, Any]) -> None:
    for f in fields:
        if f.name in WRITE_ONLY or f.name not in row:
            continue
        f.value = row[f.name]


def display(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "money" and isinstance(value, int):
        return f"{value / 100:.2f}"
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if kind == "list" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _message(field_name: str, err: Mapping[str, Any]) -> str:
    if err["type"] == "string_pattern_mismatch":
        if field_name == "slug":
            return "use lowercase letters, digits and dashes (e.g. solar-phoenix)"
        return "has the wrong format"
    return str(err["msg"]).removeprefix("Value error, ")


def validation_errors(exc: ValidationError, *, whole_path: bool = False) -> dict[str, str]:
    """Field name (or dotted path, for nested bodies such as sequence steps) -> message."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        loc = (".".join(parts) if whole_path else parts[0]) if parts else "__all__"
        errors.setdefault(loc, _message(loc, err))
    return errors


def parse_form(
    resource: Resource, form: dict[str, str], *, editing: bool
) -> tuple[BaseModel | None, list[FormField], dict[str, Any]]:
    """Form strings → a validated model, or the fields with errors to show again."""
    model = resource.patch if editing else resource.create
    fields = form_fields(model, editing=editing)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.name)
        if f.kind == "checkbox":
            values[f.name] = raw is not None
            f.value = raw is not None
            continue
        f.value = raw
        text = (raw or "").strip()
        if f.kind == "password" and not text:
            continue  # keep the stored secret
        if not text:
            if editing and f.name in resource.nullable:
                values[f.name] = None
            elif editing:
                continue
            continue  # create: the model's default applies
        if f.kind == "json":
            try:
                values[f.name] = orjson.loads(text)
            except orjson.JSONDecodeError:
                errors[f.name] = "must be valid JSON"
            continue
        if f.kind == "list":
            values[f.name] = [part.strip() for part in text.split(",") if part.strip()]
            continue
        if f.kind == "reference":
            try:
                values[f.name] = uuid.UUID(text)
            except ValueError:
                errors[f.name] = "choose one"
            continue
        if f.kind == "money":
            try:
                values[f.name] = parse_amount(text)
            except ValueError as exc:
                errors[f.name] = str(exc)
            continue
        values[f.name] = text
    body = None
    if not errors:
        try:
            body = model.model_validate(values)
        except ValidationError as exc:
            errors.update(validation_errors(exc))
    for f in fields:
        f.error = errors.pop(f.name, None)
    return body, fields, errors


def nested(values: dict[str, str], groups: tuple[str, ...]) -> dict[str, Any]:
    """Flat form fields `smtp_host`, `smtp_port`... as `{"smtp": {"host": ..., ...}}` for
    the groups named; a group whose host is empty is left out (its other fields carry
    defaults)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        group = next((g for g in groups if key.startswith(g + "_")), None)
        if group is None:
            out[key] = value
        elif values.get(f"{group}_host"):
            out.setdefault(group, {})[key[len(group) + 1 :]] = value
    return out


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$"}


def money(cents: int | None, currency: str | None = "USD") -> str:
    """Cents as the currency amount people read: $45.00, €1,200.50, 12.00 CHF."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) / 100:,.2f}"
    code = (currency or "USD").upper()
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {code}"
