"""Analytics SQL: counts over a period and daily series, for outreach and distribution."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True, kw_only=True)
class OutreachCounts:
    leads_total: int
    leads_new: int
    leads_enriched: int
    sent: int
    delivered: int
    failed: int
    bounced: int
    replied: int
    enrolled: int
    active: int
    completed: int
    enrollments_replied: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FunnelOf:
    """The distribution funnel of one source, offer or buyer over a period."""

    id: uuid.UUID | None  # None: leads no buyer took
    name: str | None
    received: int
    rejected: int
    routed: int
    delivered: int
    unsold: int


_OUTREACH = """
SELECT
  (SELECT count(*) FROM outreach.leads) AS leads_total,
  (SELECT count(*) FROM outreach.leads WHERE created_at >= $1 AND created_at < $2) AS leads_new,
  (SELECT count(*) FROM outreach.leads WHERE enriched_at >= $1 AND enriched_at < $2)
      AS leads_enriched,
  (SELECT count(*) FROM outreach.messages WHERE direction = 'outbound'
      AND status IN ('sent', 'delivered', 'bounced') AND sent_at >= $1 AND sent_at < $2) AS sent,
  (SELECT count(*) FROM outreach.messages WHERE direction = 'outbound'
      AND status IN ('sent', 'delivered') AND sent_at >= $1 AND sent_at < $2) AS delivered,
  (SELECT count(*) FROM outreach.messages WHERE direction = 'outbound' AND status = 'failed'
      AND updated_at >= $1 AND updated_at < $2) AS failed,
  (SELECT count(*) FROM outreach.messages WHERE direction = 'outbound' AND status = 'bounced'
      AND updated_at >= $1 AND updated_at < $2) AS bounced,
  (SELECT count(*) FROM outreach.messages WHERE direction = 'inbound' AND kind = 'reply'
      AND received_at >= $1 AND received_at < $2) AS replied,
  (SELECT count(*) FROM outreach.enrollments WHERE created_at >= $1 AND created_at < $2)
      AS enrolled,
  (SELECT count(*) FROM outreach.enrollments WHERE status = 'active') AS active,
  (SELECT count(*) FROM outreach.enrollments WHERE status = 'completed'
      AND finished_at >= $1 AND finished_at < $2) AS completed,
  (SELECT count(*) FROM outreach.enrollments WHERE stop_reason = 'replied'
      AND created_at >= $1 AND created_at < $2) AS enrollments_replied
"""

_DISTRIBUTION = """
SELECT {key} AS id, {label} AS name,
       count(*) AS received,
       count(*) FILTER (WHERE l.status = 'rejected') AS rejected,
       count(*) FILTER (WHERE l.routed_at IS NOT NULL) AS routed,
       count(*) FILTER (WHERE l.status IN ('delivered', 'returned')) AS delivered,
       count(*) FILTER (WHERE l.status = 'unsold') AS unsold
FROM leads l {join}
WHERE l.created_at >= $1 AND l.created_at < $2
GROUP BY 1, 2 ORDER BY received DESC, name
"""

_BREAKDOWNS = {
    "source": ("s.id", "s.name", "JOIN sources s ON s.id = l.source_id"),
    "offer": ("o.id", "o.name", "JOIN offers o ON o.id = l.offer_id"),
    "buyer": ("b.id", "coalesce(b.name, '(none)')", "LEFT JOIN buyers b ON b.id = l.buyer_id"),
}

# metric -> (table and timestamp, condition)
TREND_METRICS = {
    "leads": ("outreach.leads", "created_at", "true"),
    "messages_sent": ("outreach.messages", "sent_at", "direction = 'outbound'"),
    "messages_failed": (
        "outreach.messages",
        "updated_at",
        "direction = 'outbound' AND status = 'failed'",
    ),
    "replies": ("outreach.messages", "received_at", "direction = 'inbound' AND kind = 'reply'"),
    "bounces": ("outreach.messages", "updated_at", "status = 'bounced'"),
    "enrollments": ("outreach.enrollments", "created_at", "true"),
    "distribution_received": ("leads", "created_at", "true"),
    "distribution_delivered": ("leads", "delivered_at", "status IN ('delivered', 'returned')"),
    "distribution_unsold": ("leads", "unsold_at", "status = 'unsold'"),
}


async def outreach_counts(conn: Conn, since: datetime, until: datetime) -> OutreachCounts:
    return OutreachCounts(**await conn.fetchrow(_OUTREACH, since, until))


async def distribution_by(
    conn: Conn, dimension: str, since: datetime, until: datetime
) -> list[FunnelOf]:
    key, label, join = _BREAKDOWNS[dimension]
    rows = await conn.fetch(_DISTRIBUTION.format(key=key, label=label, join=join), since, until)
    return [FunnelOf(**r) for r in rows]


async def daily(conn: Conn, metric: str, since: date, until: date, tz: str) -> dict[date, int]:
    table, column, condition = TREND_METRICS[metric]
    rows = await conn.fetch(
        f"SELECT ({column} AT TIME ZONE $3)::date AS day, count(*) AS n FROM {table} "
        f"WHERE {condition} AND {column} IS NOT NULL "
        f"  AND ({column} AT TIME ZONE $3)::date BETWEEN $1 AND $2 GROUP BY 1",
        since,
        until,
        tz,
    )
    return {r["day"]: r["n"] for r in rows}
