"""Response bodies: every /v1 and /api route declares one (tests/core/test_api_contract.py).

A response model is an allow-list: only its declared fields leave the server, so a column
added to a table later (a key hash, a secret) reaches no client until a model names it,
and the OpenAPI document describes what each route returns. Field names are snake_case,
the one casing of the JSON API (decision 0015); the few camelCase names published before
are still sent beside them as deprecated aliases.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, computed_field

T = TypeVar("T")


class ApiModel(BaseModel):
    """A response body; undeclared keys of what a service returns are dropped."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)


class Items(ApiModel, Generic[T]):
    items: list[T]


class Success(ApiModel):
    success: bool = True


def shaped(model: type[ApiModel] | None, payload: Any) -> Any:
    """`payload` as `model` allows it, ready for JSON (for responses built by hand)."""
    if model is None:
        return payload
    return model.model_validate(payload).model_dump(mode="json", by_alias=True)


def deprecated_alias(field: str, type_: Any) -> Any:
    """A camelCase name published before decision 0015, still sent beside `field` and
    marked deprecated in the OpenAPI document."""
    return computed_field(  # type: ignore[call-overload]
        property(lambda self: getattr(self, field)),
        return_type=type_,
        deprecated=f"use {field} (decision 0015)",
    )
