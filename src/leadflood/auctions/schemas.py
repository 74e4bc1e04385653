"""Response shapes of ping and post."""

from __future__ import annotations

from pydantic import BaseModel


class PingAnswer(BaseModel):
    ping_id: str
    accepted: bool
    price_cents: int | None  # what the source is offered (its payout rule over the best bid)
    price: str | None
    expires_at: str
    ignored_fields: list[str]  # posted but not pinged (contact details, unnamed fields)


class PostAnswer(BaseModel):
    ping_id: str
    lead_id: str
    status: str | None
    accepted: bool  # placed with a bidder; its delivery follows (GET /api/leads/{id})
    rejection_reasons: list[str]
    price_cents: int | None  # what the source earns when the sale completes
    price: str | None
