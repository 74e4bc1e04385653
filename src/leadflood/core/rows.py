"""Helpers for the typed rows repositories return (slotted dataclasses)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def as_fields(row: Any) -> dict[str, Any]:
    """A typed row's fields by name, one level deep (nested rows stay rows): for building
    a richer row from a plainer one."""
    return {f.name: getattr(row, f.name) for f in fields(row)}
