"""All SQL of alerts: each rule's query (what is wrong now, one row per subject), the
alerts table (one live alert per rule and subject), and the workers' heartbeat."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition a rule found: its subject, a title and the figures behind it."""

    subject: str
    title: str
    detail: str


RULE_SQL: dict[str, str] = {
    # The oldest job that is due and not taken, by kind, older than $1 minutes.
    "queue_backlog": """
SELECT entrypoint,
       'Jobs waiting: ' || entrypoint,
       count(*) || ' due job(s), the oldest waiting '
           || round(extract(epoch FROM now() - min(execute_after)) / 60) || ' min'
FROM pgqueuer WHERE status = 'queued' AND execute_after <= now() - $1::float8 * interval '1 minute'
GROUP BY entrypoint
""",
    # A buyer that paused itself, or failed more than $1 of its last 20 attempts (10+).
    "buyer_failing": """
WITH recent AS (
    SELECT a.buyer_id, a.outcome,
           row_number() OVER (PARTITION BY a.buyer_id ORDER BY a.started_at DESC) AS n
    FROM delivery_attempts a
    WHERE a.buyer_id IS NOT NULL AND a.outcome IS NOT NULL
      AND a.started_at > now() - interval '1 day'
), rates AS (
    SELECT buyer_id, count(*) AS total,
           count(*) FILTER (WHERE outcome IN ('retryable_error', 'permanent_error')) AS failed
    FROM recent WHERE n <= 20 GROUP BY buyer_id
)
SELECT b.id::text, 'Buyer failing: ' || b.name,
       CASE WHEN b.status = 'paused' AND b.paused_reason IS NOT NULL
            THEN 'paused itself: ' || b.paused_reason
            ELSE r.failed || ' of its last ' || r.total || ' attempts failed' END
FROM buyers b LEFT JOIN rates r ON r.buyer_id = b.id
WHERE (b.status = 'paused' AND b.paused_reason IS NOT NULL)
   OR (r.total >= 10 AND r.failed::float8 / r.total > $1)
""",
    # An active source that usually posts at this hour (on 2+ of the last 7 days) and has
    # posted nothing for $1 hours.
    "source_silent": """
SELECT s.id::text, 'Source silent: ' || s.name,
       'no lead for ' || round(extract(epoch FROM now() - max(l.created_at)) / 3600, 1)
           || ' h; it usually posts at this hour'
FROM sources s
JOIN leads l ON l.source_id = s.id AND l.created_at > now() - interval '7 days'
WHERE s.active AND l.sold_from_lead_id IS NULL
GROUP BY s.id, s.name
HAVING max(l.created_at) < now() - $1::float8 * interval '1 hour'
   AND count(DISTINCT date_trunc('day', l.created_at)) FILTER (
           WHERE extract(hour FROM l.created_at AT TIME ZONE 'UTC')
               = extract(hour FROM now() AT TIME ZONE 'UTC')) >= 2
""",
    # $1 or more leads of one offer ended unsold in the last hour.
    "unsold_piling": """
SELECT o.id::text, 'Unsold leads: ' || o.name, count(*) || ' unsold in the last hour'
FROM leads l JOIN offers o ON o.id = l.offer_id
WHERE l.status = 'unsold' AND l.unsold_at > now() - interval '1 hour'
GROUP BY o.id, o.name HAVING count(*) >= $1
""",
    # A provider account whose quota is used up.
    "provider_quota": """
SELECT provider, 'Provider quota used up: ' || provider,
       coalesce('not called until ' || to_char(retry_at AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD HH24:MI') || ' UTC', 'until reset')
           || coalesce(': ' || message, '')
FROM outreach.provider_quotas WHERE retry_at IS NULL OR retry_at > now()
""",
    # A mailbox that paused itself, or bounced more than $1 of 20+ emails in 24 h.
    "mailbox_bounces": """
WITH sent AS (
    SELECT mailbox_id, count(*) AS total, count(*) FILTER (WHERE status = 'bounced') AS bounced
    FROM outreach.messages
    WHERE direction = 'outbound' AND mailbox_id IS NOT NULL
      AND coalesce(sent_at, created_at) > now() - interval '24 hours'
    GROUP BY mailbox_id
)
SELECT m.id::text, 'Mailbox bouncing: ' || m.name,
       coalesce('paused itself: ' || m.paused_reason,
                s.bounced || ' of ' || s.total || ' emails bounced in 24 h')
FROM outreach.mailboxes m LEFT JOIN sent s ON s.mailbox_id = m.id
WHERE m.paused_reason IS NOT NULL OR (s.total >= 20 AND s.bounced::float8 / s.total > $1)
""",
}


async def findings(conn: Conn, rule: str, threshold: float | None) -> list[Finding]:
    """What the rule finds now; a rule without a threshold (None) takes no parameter."""
    args = () if threshold is None else (threshold,)
    return [Finding(*r) for r in await conn.fetch(RULE_SQL[rule], *args)]


_RAISE = """
INSERT INTO alerts (rule, subject, title, detail) VALUES ($1, $2, $3, $4)
ON CONFLICT (rule, subject) WHERE status <> 'resolved'
DO UPDATE SET last_seen_at = now(), detail = EXCLUDED.detail, title = EXCLUDED.title
RETURNING id, xmax = 0 AS opened
"""


async def raise_alert(conn: Conn, rule: str, finding: Finding) -> tuple[uuid.UUID, bool]:
    """(its id, whether it is new): a condition that persists is the same live alert."""
    row = await conn.fetchrow(_RAISE, rule, finding.subject, finding.title, finding.detail)
    return row["id"], row["opened"]


async def resolve_cleared(conn: Conn, rule: str, live: list[str]) -> int:
    """Resolve the rule's live alerts whose condition was not found this time."""
    done = await conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = now() "
        "WHERE rule = $1 AND status <> 'resolved' AND NOT (subject = ANY($2::text[]))",
        rule,
        live,
    )
    return int(done.split()[-1])


@dataclass(frozen=True, slots=True)
class Alert:
    id: uuid.UUID
    rule: str
    subject: str
    title: str
    detail: str
    status: str
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    acknowledged_by_email: str | None


_LIST = """
SELECT a.id, a.rule, a.subject, a.title, a.detail, a.status, a.opened_at, a.last_seen_at,
       a.acknowledged_at, a.resolved_at, u.email
FROM alerts a LEFT JOIN users u ON u.id = a.acknowledged_by
WHERE ($1::text IS NULL OR a.status = $1 OR ($1 = 'live' AND a.status <> 'resolved'))
ORDER BY a.status = 'resolved', a.opened_at DESC
LIMIT $2
"""


async def list_alerts(conn: Conn, status: str | None, limit: int) -> list[Alert]:
    return [Alert(*r) for r in await conn.fetch(_LIST, status, limit)]


async def set_status(
    conn: Conn, alert_id: uuid.UUID, status: str, user_id: uuid.UUID | None
) -> bool:
    """Acknowledge a live alert, or resolve it (by a person)."""
    if status == "acknowledged":
        sql = (
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by = $2 WHERE id = $1 AND status = 'open'"
        )
    else:
        sql = (
            "UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = $2 "
            "WHERE id = $1 AND status <> 'resolved'"
        )
    return (await conn.execute(sql, alert_id, user_id)) == "UPDATE 1"


async def alert_status(conn: Conn, alert_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id)


async def beat(conn: Conn) -> None:
    await conn.execute(
        "INSERT INTO worker_heartbeat (id, seen_at) VALUES (true, now()) "
        "ON CONFLICT (id) DO UPDATE SET seen_at = now()"
    )


async def heartbeat_age_s(conn: Conn) -> float | None:
    """Seconds since a worker last stamped the heartbeat (None: never)."""
    return await conn.fetchval(
        "SELECT extract(epoch FROM now() - seen_at)::float8 FROM worker_heartbeat"
    )
