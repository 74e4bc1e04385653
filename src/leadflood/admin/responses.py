"""Response bodies of /v1/admin: leads, deliveries, routing traces, the dashboard, the audit
log, and one model per configuration resource built from its declaration."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import create_model

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.admin.repository import DayCounts as DayCounts
from leadflood.admin.repository import DeliveryListItem as DeliveryListItem
from leadflood.admin.repository import Funnel as Funnel
from leadflood.admin.repository import Lead as LeadOut
from leadflood.admin.repository import LeadListItem as LeadListItem
from leadflood.admin.repository import ReasonCount as ReasonCount
from leadflood.admin.resources import RESOURCES, Resource
from leadflood.core.api import ApiModel
from leadflood.delivery.repository import Attempt, Delivery


class LeadsPage(ApiModel):
    items: list[LeadListItem]
    next_cursor: str | None = None


class Normalized(ApiModel):
    email: str | None = None
    phone: str | None = None


class Validation(ApiModel):
    validated_at: datetime | None = None
    rejection_reasons: list[str]
    duplicate_of_lead_id: uuid.UUID | None = None


class CandidateOut(ApiModel):
    buyer_id: uuid.UUID | None = None
    buyer_name: str | None = None
    reasons: list[str]
    selected: bool = False
    priority: int | None = None
    weight: int | None = None
    price_cents: int | None = None
    last_routed_at: datetime | None = None


class DecisionOut(ApiModel):
    id: uuid.UUID
    outcome: str
    buyer_id: uuid.UUID | None = None
    strategy: str
    candidates: list[CandidateOut]
    decided_at: datetime
    duration_ms: float | None = None


class LeadDetail(ApiModel):
    lead: LeadOut
    raw_payload: dict[str, Any]
    normalized: Normalized
    validation: Validation
    routing: list[DecisionOut]
    delivery: Delivery | None = None
    attempts: list[Attempt]


class LeadRouting(ApiModel):
    lead_id: uuid.UUID
    decisions: list[DecisionOut]


class LeadDelivery(ApiModel):
    lead_id: uuid.UUID
    delivery: Delivery | None = None
    attempts: list[Attempt]


class LeadAction(ApiModel):
    lead_id: uuid.UUID
    result: str
    status: str


class Dashboard(ApiModel):
    today: Funnel
    days: list[DayCounts]


class AuditEntry(ApiModel):
    id: int
    user_id: uuid.UUID | None = None
    actor: str
    action: str
    entity_type: str
    entity_id: uuid.UUID | None = None
    changes: dict[str, Any]
    ip: str | None = None
    request_id: str | None = None
    created_at: datetime


class SourceKey(ApiModel):
    source_id: uuid.UUID
    api_key: str | None = None  # shown once; a replay of the request answers without it


class ServiceAreaImportOut(ApiModel):
    read: int
    inserted: int
    skipped: int
    removed: int


# ---- configuration resources ---------------------------------------------------------------

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
}
# Presence flags standing in for secrets, and one-time extras of a create.
_FLAGS: dict[str, dict[str, Any]] = {
    "sources": {"has_api_key": (bool, False)},
    "buyers": {"webhook_secret_set": (bool, False)},
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


def resource_model(resource: Resource, *, created: bool = False) -> type[ApiModel]:
    """The response model of one configuration resource: exactly its shown columns (and,
    for the answer to a create, its one-time extras)."""
    fields: dict[str, Any] = {}
    inputs = resource.create.model_fields
    for name in sorted(resource.shown - _NOT_COLUMNS):
        if name in inputs:
            fields[name] = (_output_type(inputs[name].annotation), None)
        else:
            fields[name] = (_EXTRA_TYPES.get(name, Any) | None, None)
    fields.update(_FLAGS.get(resource.table, {}))
    if created:
        fields.update(_CREATED.get(resource.table, {}))
    title = "".join(part.title() for part in resource.name.split("-"))
    return create_model(f"{title}{'Created' if created else 'Out'}", __base__=ApiModel, **fields)


def page_model(resource: Resource, item: type[ApiModel]) -> type[ApiModel]:
    title = "".join(part.title() for part in resource.name.split("-"))
    return create_model(
        f"{title}Page", __base__=ApiModel, items=(list[item], ...), total=(int, ...)
    )


RESOURCE_MODELS: dict[str, type[ApiModel]] = {
    name: resource_model(resource) for name, resource in RESOURCES.items()
}
RESOURCE_CREATED: dict[str, type[ApiModel]] = {
    name: resource_model(resource, created=True) for name, resource in RESOURCES.items()
}
RESOURCE_PAGES: dict[str, type[ApiModel]] = {
    name: page_model(RESOURCES[name], model) for name, model in RESOURCE_MODELS.items()
}
