"""Response bodies: every /v1 and /api route declares one (tests/core/test_api_contract.py).

A response model is an allow-list: only its declared fields leave the server, so a column
added to a table later (a key hash, a secret) reaches no client until a model names it,
and the OpenAPI document describes what each route returns. Field names are snake_case,
the one casing of the JSON API (decision 0015); the few camelCase names published before
are still sent beside them as deprecated aliases.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, WithJsonSchema, computed_field

T = TypeVar("T")


# A wall-clock time in some timezone named beside it (a mailbox's send window). JSON
# Schema's "time" format is RFC 3339's full-time and requires an offset, which such a
# time has not: the schema says what the API sends and takes, "HH:MM" or "HH:MM:SS".
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "a wall-clock time, HH:MM[:SS], in the timezone given beside it",
        }
    ),
]


class ApiModel(BaseModel):
    """A response body; undeclared keys of what a service returns are dropped."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)


class Items(ApiModel, Generic[T]):
    items: list[T]


class Success(ApiModel):
    success: bool = True


def shaped(model: Any, payload: Any) -> Any:
    """`payload` as `model` (a response model or a typed row) allows it, ready for JSON
    (for responses built by hand)."""
    if model is None:
        return payload
    adapter = _adapter(model)
    value = adapter.validate_python(payload, from_attributes=True)
    return adapter.dump_python(value, mode="json", by_alias=True)


@lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def deprecated_alias(field: str, type_: Any) -> Any:
    """A camelCase name published before decision 0015, still sent beside `field` and
    marked deprecated in the OpenAPI document."""
    return computed_field(  # type: ignore[call-overload]
        property(lambda self: getattr(self, field)),
        return_type=type_,
        deprecated=f"use {field} (decision 0015)",
    )
