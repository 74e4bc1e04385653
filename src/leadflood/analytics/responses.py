"""Response bodies of /v1/analytics."""

from __future__ import annotations

from datetime import date

from pydantic import Field

# A typed row that is its own response (its fields are the allow-list).
from leadflood.analytics.repository import FunnelOf as FunnelOf
from leadflood.core.api import ApiModel


class LeadCounts(ApiModel):
    total: int
    new: int
    enriched: int


class MessageCounts(ApiModel):
    sent: int
    delivered: int
    failed: int
    replied: int
    bounced: int


class SequenceCounts(ApiModel):
    enrolled: int
    active: int
    completed: int
    reply_rate: float


class Funnel(ApiModel):
    received: int
    rejected: int
    routed: int
    delivered: int
    unsold: int


class Distribution(ApiModel):
    totals: Funnel
    by_source: list[FunnelOf]
    by_offer: list[FunnelOf]
    by_buyer: list[FunnelOf]


class Summary(ApiModel):
    from_: date = Field(alias="from")
    to: date
    leads: LeadCounts
    messages: MessageCounts
    sequences: SequenceCounts
    distribution: Distribution


class Point(ApiModel):
    day: date
    value: int


class Trend(ApiModel):
    metric: str
    from_: date = Field(alias="from")
    to: date
    points: list[Point]
