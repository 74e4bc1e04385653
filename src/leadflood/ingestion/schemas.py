"""Response shapes of the ingestion API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel


class LeadAccepted(BaseModel):
    lead_id: str
    source_id: str
    offer_id: str
    market_id: str
    vertical_id: str
    idempotency_key: str
    idempotency_key_derived: bool
    status: str


class LeadState(LeadAccepted):
    rejection_reasons: list[str]
    routed_at: datetime | None
    delivered_at: datetime | None


if TYPE_CHECKING:
    from leadflood.ingestion.repository import AcceptedLead


def accepted(lead: AcceptedLead) -> dict[str, Any]:
    return {
        "lead_id": str(lead.lead_id),
        "source_id": str(lead.source_id),
        "offer_id": str(lead.offer_id),
        "market_id": str(lead.market_id),
        "vertical_id": str(lead.vertical_id),
        "idempotency_key": lead.idempotency_key,
        "idempotency_key_derived": lead.idempotency_key_derived,
        "status": lead.status,
    }


def state(lead: AcceptedLead) -> dict[str, Any]:
    return {
        **accepted(lead),
        "rejection_reasons": list(lead.rejection_reasons or []),
        "routed_at": lead.routed_at.isoformat() if lead.routed_at else None,
        "delivered_at": lead.delivered_at.isoformat() if lead.delivered_at else None,
    }
