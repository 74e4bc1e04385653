"""Response bodies of /v1/admin: leads, deliveries, routing traces, the dashboard, the audit
log, and one model per configuration resource built from its declaration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import create_model

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.admin.repository import DayCounts as DayCounts
from leadflood.admin.repository import DeliveryListItem as DeliveryListItem
from leadflood.admin.repository import Funnel as Funnel
from leadflood.admin.repository import Lead as LeadOut
from leadflood.admin.repository import LeadListItem as LeadListItem
from leadflood.admin.repository import ReasonCount as ReasonCount
from leadflood.admin.repository import Sale
from leadflood.admin.resource_rows import CREATED_MODELS, ROW_MODELS
from leadflood.admin.resources import RESOURCES, Resource
from leadflood.auctions.repository import AuctionWithBids
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
    auction: AuctionWithBids | None = None
    other_sales: list[Sale] = []  # a shared lead's other sales (multi-sell)
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


def page_model(resource: Resource, item: type[ApiModel]) -> type[ApiModel]:
    title = "".join(part.title() for part in resource.name.split("-"))
    return create_model(
        f"{title}Page",
        __base__=ApiModel,
        items=(list[item], ...),  # type: ignore[valid-type]  # the resource's row model
        total=(int, ...),
    )


# A resource's typed row is its response: built from its declaration (resource_rows).
RESOURCE_MODELS: dict[str, type[ApiModel]] = ROW_MODELS
RESOURCE_CREATED: dict[str, type[ApiModel]] = CREATED_MODELS
RESOURCE_PAGES: dict[str, type[ApiModel]] = {
    name: page_model(RESOURCES[name], model) for name, model in RESOURCE_MODELS.items()
}


class BuyerTestRequest(ApiModel):
    method: str
    url: str | None
    headers: dict[str, str]
    body: str


class BuyerTestResponse(ApiModel):
    status: int | None
    body: str | None
    outcome: str  # accepted | rejected | retryable_error | permanent_error
    reason: str | None
    reference: str | None
    price_cents: int | None
    error: str | None


class BuyerTest(ApiModel):
    """A buyer's request for a sample lead (secrets masked) and, when sent, its answer."""

    channel: str
    request: BuyerTestRequest
    problem: str | None
    sent: bool
    response: BuyerTestResponse | None
