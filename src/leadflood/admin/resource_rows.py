"""The typed row of each configuration resource, built from its declaration: exactly its
shown columns (an allow-list: a column added later stays unread until it is named) and a
presence flag for each secret. The row is also the resource's response body."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import create_model

from leadflood.admin.resources import RESOURCES, Resource
from leadflood.core.api import ApiModel

# Columns a resource shows beyond its create model's fields: types of the table's own.
_EXTRA_TYPES: dict[str, Any] = {
    "id": uuid.UUID,
    "created_at": datetime,
    "updated_at": datetime,
    "balance_cents": int,
    "reserved_cents": int,
    "cap_day_window": datetime,
    "cap_day_count": int,
    "cap_hour_window": datetime,
    "cap_hour_count": int,
    "last_routed_at": datetime,
    "consecutive_failures": int,
    "paused_reason": str,
    "paused_at": datetime,
}
# Presence flags standing in for secrets: name -> the SQL that computes it.
FLAGS: dict[str, dict[str, str]] = {
    "sources": {"has_api_key": "coalesce(api_key_hash, '') <> ''"},
    "buyers": {
        "webhook_secret_set": "coalesce(webhook_secret, '') <> ''",
        "integration_secret_set": "coalesce(integration_secret, '') <> ''",
    },
}
# The flag that tells whether a write-only secret is set (for the audit's "from").
SECRET_FLAGS = {
    "webhook_secret": "webhook_secret_set",
    "integration_secret": "integration_secret_set",
}
# Shown once, in the answer to the create (a replay of it answers without).
_CREATED: dict[str, dict[str, Any]] = {"sources": {"api_key": (str | None, None)}}

# Create-model fields that steer the create and are no columns.
_NOT_COLUMNS = frozenset({"with_api_key"})


def _output_type(annotation: Any) -> Any:
    """An input field's type without its input constraints, optional on output (rows
    stored before a constraint was added must still be shown)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is typing.Literal:
        annotation = str
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return annotation if types.NoneType in typing.get_args(annotation) else annotation | None
    return annotation | None


def columns(resource: Resource) -> list[str]:
    return sorted(resource.shown - _NOT_COLUMNS)


def select_list(resource: Resource) -> str:
    """The columns and flags of the resource's row, for a SELECT on its table."""
    flags = [f"({sql}) AS {name}" for name, sql in FLAGS.get(resource.table, {}).items()]
    return ", ".join([*columns(resource), *flags])


def _model(resource: Resource, *, created: bool = False) -> type[ApiModel]:
    fields: dict[str, Any] = {}
    inputs = resource.create.model_fields
    for name in columns(resource):
        if name in inputs:
            fields[name] = (_output_type(inputs[name].annotation), None)
        else:
            fields[name] = (_EXTRA_TYPES.get(name, Any) | None, None)
    fields.update({flag: (bool, False) for flag in FLAGS.get(resource.table, {})})
    if created:
        fields.update(_CREATED.get(resource.table, {}))
    title = "".join(part.title() for part in resource.name.split("-"))
    return create_model(f"{title}{'Created' if created else 'Out'}", __base__=ApiModel, **fields)


ROW_MODELS: dict[str, type[ApiModel]] = {
    name: _model(resource) for name, resource in RESOURCES.items()
}
CREATED_MODELS: dict[str, type[ApiModel]] = {
    name: _model(resource, created=True) for name, resource in RESOURCES.items()
}
