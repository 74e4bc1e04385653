"""All SQL of delivery (asyncpg): claim and start an attempt, then record it, each in a
short transaction of its own; the send happens between them with no connection held."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflood.billing import ledger
from leadflood.core.jobs import DELIVER_LEAD, ROUTE_LEAD
from leadflood.core.queue import fused_enqueue_ctes, jobs_written
from leadflood.core.tracing import job_headers_json
from leadflood.core.uow import Conn
from leadflood.ingestion.lead_fields import LeadContact

_LEASE_MARGIN_S = 60  # on top of the buyer's own timeout, for recording the result

# Claim and start an attempt in one autocommit statement (issue 14). A due delivery —
# pending, or in progress under a lease that ran out (its worker stopped mid-send) — is
# locked (SKIP LOCKED: another worker's claim is left to it); a pending one also takes
# one of its buyer's in-flight slots, exactly (migration 0009's function).
# An attempt cut off earlier is closed as interrupted, and the new attempt is recorded
# as started before anything is sent. Nothing returned: see `claim_state`.
_CLAIM = f"""
WITH target AS (
    SELECT d.id, d.buyer_id, d.status
    FROM deliveries d
    -- The claim commits asynchronously (decision 0014): a worker crash still finds the
    -- started attempt; only a crash of PostgreSQL itself within ~0.6 s can lose it, and
    -- then the delivery is simply pending again (re-sent under the same Idempotency-Key).
    CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
    WHERE d.lead_id = $1
      AND (d.status = 'pending' OR (d.status = 'in_progress' AND d.lease_expires_at <= now()))
      AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now() + $3::interval)
    FOR UPDATE OF d SKIP LOCKED
),
slot AS (
    SELECT 1 FROM target
    WHERE status = 'pending' AND leadflood_delivery_slot_free(buyer_id, $2)
),
claimed AS (
    UPDATE deliveries d
    SET status = 'in_progress', attempt_count = d.attempt_count + 1,
        lease_expires_at = now() + make_interval(
            secs => coalesce(b.delivery_timeout_ms, 10000) / 1000.0 + {_LEASE_MARGIN_S})
    FROM target t JOIN buyers b ON b.id = t.buyer_id
    WHERE d.id = t.id AND (t.status = 'in_progress' OR EXISTS (SELECT 1 FROM slot))
    RETURNING d.id, d.lead_id, d.attempt_count, d.round_start, d.channel, d.buyer_id
),
interrupted AS (
    UPDATE delivery_attempts a
    SET finished_at = now(), outcome = 'retryable_error',
        duration_ms = extract(epoch FROM now() - a.started_at) * 1000,
        error = 'interrupted: the attempt was cut off before its result was recorded'
    FROM claimed c WHERE a.delivery_id = c.id AND a.finished_at IS NULL
),
started AS (
    INSERT INTO delivery_attempts (delivery_id, attempt_no, started_at, request_digest,
                                   buyer_id)
    SELECT id, attempt_count, now(), '', buyer_id FROM claimed
)
SELECT c.id AS delivery_id, c.attempt_count AS attempt_no, c.round_start,
       c.channel::text AS channel,
       l.id AS lead_id, l.status::text AS lead_status, l.first_name, l.last_name, l.email,
       l.phone, l.normalized_phone, l.address, l.city, l.state, l.postal_code, l.consent,
       l.consent_text, l.consent_certificate_url, l.price_cents, l.raw_payload,
       l.created_at AS received_at, l.routed_at,
       o.id AS offer_id, o.slug AS offer_slug, o.name AS offer_name,
       m.id AS market_id, m.slug AS market_slug, m.name AS market_name,
       v.id AS vertical_id, v.slug AS vertical_slug, v.name AS vertical_name,
       b.id AS buyer_id, b.webhook_url, b.webhook_secret, b.email AS buyer_email,
       b.delivery_timeout_ms, b.currency,
       coalesce(bo.integration, b.integration) AS integration, b.integration_secret,
       b.response_rules, b.consecutive_failures,
       l.source_id, (SELECT name FROM sources WHERE id = l.source_id) AS source_name,
       l.auction_id,
       (SELECT ab.bid_token FROM auction_bids ab
        WHERE ab.auction_id = l.auction_id AND ab.buyer_id = b.id) AS bid_token
FROM claimed c
JOIN leads l ON l.id = c.lead_id
JOIN buyers b ON b.id = c.buyer_id
LEFT JOIN buyer_offers bo ON bo.buyer_id = b.id AND bo.offer_id = l.offer_id
JOIN offers o ON o.id = l.offer_id
JOIN markets m ON m.id = l.market_id
JOIN verticals v ON v.id = l.vertical_id
"""

# Why nothing was claimed (the rare path): the delivery's state, how long its attempt's
# live lease still runs (NULL: none), how long until it is due, and whether its buyer is
# at its limit.
_CLAIM_STATE = """
SELECT d.status::text AS status,
       CASE WHEN d.status = 'in_progress' AND d.lease_expires_at > now()
            THEN d.lease_expires_at - now() END AS lease_left,
       greatest(d.next_attempt_at - now(), interval '0') AS due_in,
       $2 > 0 AND leadflood_delivery_in_flight(d.buyer_id) >= $2 AS throttled
FROM deliveries d WHERE d.lead_id = $1
"""

# Recording is guarded by the claimed attempt (a worker whose lease another took over
# records nothing) and completes the attempt row, in the same statement as the outcome.
_GUARD = """
claimed AS (
    SELECT id FROM deliveries
    WHERE id = $1 AND status = 'in_progress' AND attempt_count = $2
    FOR UPDATE
),
attempt AS (
    UPDATE delivery_attempts a
    SET finished_at = now(), duration_ms = $3, http_status = $4, response_excerpt = $5,
        outcome = $6::attempt_outcome, error = $7, request_digest = $8
    FROM claimed c WHERE a.delivery_id = c.id AND a.attempt_no = $2
)"""

# Success: the attempt, the delivery and the guarded routed → delivered move together.
# A prepaid buyer is charged in the same statement (DISTRIBUTION.md §8): the price reserved
# at routing becomes a balanced ledger transaction (buyer account -P, revenue +P).
_SUCCEEDED = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'succeeded', delivered_at = now(),
                            next_attempt_at = NULL, last_error = NULL, lease_expires_at = NULL,
                            buyer_reference = $9, buyer_price_cents = $10
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id
),
sold AS (
    SELECT id, coalesce(price_cents, 0) AS reserved,
           -- A lead sold by auction is billed at its bid, or at the lower price the
           -- buyer confirms when the lead is posted (never at a higher one).
           CASE WHEN auction_id IS NOT NULL AND $10::bigint >= 0
                THEN least(coalesce(price_cents, 0), $10::bigint)
                ELSE coalesce(price_cents, 0) END AS price
    FROM leads WHERE id IN (SELECT lead_id FROM delivery) AND status = 'routed'
),
delivered AS (
    UPDATE leads l SET status = 'delivered', delivered_at = now(), billing_status = 'billable',
                       price_cents = CASE WHEN l.price_cents IS NULL THEN NULL ELSE s.price END
    FROM sold s WHERE l.id = s.id AND l.status = 'routed'
    RETURNING l.id, l.buyer_id, s.price, s.reserved
),
{ledger.charge_ctes("delivered")},
{ledger.payout_ctes("delivered")}
SELECT count(*) FROM claimed
"""

# The next attempt's time and its job's execute_after are one expression of one
# statement's clock: the job can never come early (it did, after a slow attempt).
_RETRY = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'pending', next_attempt_at = now() + $9::interval,
                            last_error = $7, lease_expires_at = NULL
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id
),
{fused_enqueue_ctes(DELIVER_LEAD, "delivery", "lead_id", "now() + $9::interval", headers="$10")}
SELECT count(*) FROM claimed
"""

# Failure releases the prepaid reservation taken at routing.
_FAILED = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, last_error = $7,
                            lease_expires_at = NULL, reject_reason = $9
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id, d.buyer_id
),
-- A buyer that failed the lead for good is not offered it again if it is routed again
-- (an operator's re-route); a re-delivery to the same buyer stays the operator's choice.
excluded AS (
    INSERT INTO lead_rejections (lead_id, buyer_id, reason)
    SELECT lead_id, buyer_id, 'failed: ' || left($7, 200) FROM delivery
    ON CONFLICT DO NOTHING
),
failed AS (
    UPDATE leads SET status = 'delivery_failed', billing_status = 'non_billable'
    WHERE id IN (SELECT lead_id FROM delivery) AND status = 'routed'
    RETURNING buyer_id, coalesce(price_cents, 0) AS price
),
{ledger.release_cte("failed")}
SELECT count(*) FROM claimed
"""


# The buyer refused the lead (issue 16, the waterfall): the refusal is kept, the cap units
# and the prepaid reservation taken at routing are given back (units only while their
# window is still the current one), and the lead goes back to `validated` with a route job
# for the next buyer (routing skips buyers who refused it), or ends `unsold` once the
# offer's max_buyer_attempts buyers have refused it. One statement, guarded by the claim.
_REJECTED = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, last_error = $7,
                            lease_expires_at = NULL, reject_reason = $9
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id, d.buyer_id
),
before AS (
    SELECT l.id, l.buyer_id, coalesce(l.price_cents, 0) AS price, l.offer_id,
           -- The buyer's local day and hour of the routing: the windows its units are in.
           date_trunc('day', l.routed_at AT TIME ZONE x.timezone) AS day_window,
           date_trunc('hour', l.routed_at AT TIME ZONE x.timezone) AS hour_window,
           (SELECT count(*) FROM lead_rejections r WHERE r.lead_id = l.id) + 1
               >= o.max_buyer_attempts AS last_try
    FROM leads l JOIN delivery d ON d.lead_id = l.id
    JOIN offers o ON o.id = l.offer_id JOIN buyers x ON x.id = l.buyer_id
    WHERE l.status = 'routed'
),
noted AS (
    INSERT INTO lead_rejections (lead_id, buyer_id, reason)
    SELECT lead_id, buyer_id, $9 FROM delivery ON CONFLICT DO NOTHING
),
returned AS (
    UPDATE leads l SET
        status = (CASE WHEN b.last_try THEN 'unsold' ELSE 'validated' END)::lead_status,
        unsold_at = CASE WHEN b.last_try THEN now() END,
        billing_status = (CASE WHEN b.last_try THEN 'non_billable'
                               ELSE l.billing_status::text END)::billing_status,
        buyer_id = NULL, price_cents = NULL, routed_at = NULL
    FROM before b WHERE l.id = b.id
    RETURNING l.id AS lead_id, l.status::text AS status
),
buyer_released AS (
    UPDATE buyers x SET
        reserved_cents = CASE WHEN x.payment_method = 'prepaid'
                              THEN greatest(x.reserved_cents - b.price, 0)
                              ELSE x.reserved_cents END,
        cap_day_count = CASE WHEN x.cap_day_window = b.day_window
                             THEN greatest(x.cap_day_count - 1, 0) ELSE x.cap_day_count END,
        cap_hour_count = CASE WHEN x.cap_hour_window = b.hour_window
                              THEN greatest(x.cap_hour_count - 1, 0) ELSE x.cap_hour_count END
    FROM before b
    WHERE x.id = b.buyer_id
      AND (x.daily_cap IS NOT NULL OR x.hourly_cap IS NOT NULL OR x.payment_method = 'prepaid')
),
offer_released AS (
    UPDATE buyer_offers bo SET
        cap_day_count = CASE WHEN bo.cap_day_window = b.day_window
                             THEN greatest(bo.cap_day_count - 1, 0) ELSE bo.cap_day_count END,
        cap_hour_count = CASE WHEN bo.cap_hour_window = b.hour_window
                              THEN greatest(bo.cap_hour_count - 1, 0) ELSE bo.cap_hour_count END
    FROM before b WHERE bo.buyer_id = b.buyer_id AND bo.offer_id = b.offer_id
),
rerouting AS (SELECT lead_id FROM returned WHERE status = 'validated'),
{fused_enqueue_ctes(ROUTE_LEAD, "rerouting", "lead_id", headers="$10")}
SELECT (SELECT count(*) FROM claimed) AS recorded, (SELECT status FROM returned) AS lead_status
"""


@dataclass(frozen=True, slots=True)
class ClaimState:
    status: str
    lease_left: timedelta | None  # set while another worker's attempt is in flight
    due_in: timedelta
    throttled: bool


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one finished attempt recorded (the attempt row was written at its start)."""

    delivery_id: uuid.UUID
    attempt_no: int
    duration_ms: float
    http_status: int | None
    response_excerpt: str | None
    outcome: str
    error: str | None
    request_digest: str

    def args(self) -> list[Any]:
        return [
            self.delivery_id,
            self.attempt_no,
            self.duration_ms,
            self.http_status,
            self.response_excerpt,
            self.outcome,
            self.error,
            self.request_digest,
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedAttempt(LeadContact):
    """A claimed attempt with everything its send needs (the columns of _CLAIM)."""

    delivery_id: uuid.UUID
    attempt_no: int
    round_start: int
    channel: str
    lead_id: uuid.UUID
    lead_status: str
    normalized_phone: str | None
    price_cents: int | None
    raw_payload: dict[str, Any] | None
    received_at: datetime
    routed_at: datetime | None
    offer_id: uuid.UUID
    offer_slug: str
    offer_name: str
    market_id: uuid.UUID
    market_slug: str
    market_name: str
    vertical_id: uuid.UUID
    vertical_slug: str
    vertical_name: str
    buyer_id: uuid.UUID
    webhook_url: str | None
    webhook_secret: str | None
    buyer_email: str | None
    delivery_timeout_ms: int | None
    currency: str
    integration: dict[str, Any] | None = None  # the buyer's (or this offer's) posting format
    integration_secret: str | None = None  # encrypted
    response_rules: dict[str, Any] | None = None
    consecutive_failures: int = 0  # the buyer's failed attempts in a row (its health)
    source_id: uuid.UUID | None = None
    source_name: str | None = None
    auction_id: uuid.UUID | None = None  # the ping (or post auction) the lead was sold by
    bid_token: str | None = None  # the winning bidder's token, sent back with the lead


async def claim(
    conn: Conn, lead_id: uuid.UUID, per_buyer_limit: int, tolerance: timedelta
) -> ClaimedAttempt | None:
    """The claimed attempt with everything the send needs, or None (see claim_state)."""
    row = await conn.fetchrow(_CLAIM, lead_id, per_buyer_limit, tolerance)
    return ClaimedAttempt(**row) if row else None


async def claim_state(conn: Conn, lead_id: uuid.UUID, per_buyer_limit: int) -> ClaimState | None:
    row = await conn.fetchrow(_CLAIM_STATE, lead_id, per_buyer_limit)
    return ClaimState(*row) if row else None


async def record_success(
    conn: Conn,
    attempt: AttemptRecord,
    reference: str | None = None,
    price_cents: int | None = None,
) -> bool:
    """False when the claim was taken over (nothing written). The buyer's reference and
    the price it reported, when its answer carries them."""
    return bool(await conn.fetchval(_SUCCEEDED, *attempt.args(), reference, price_cents))


async def record_retry(conn: Conn, attempt: AttemptRecord, delay: timedelta) -> bool:
    """The retry and its delayed job, in one statement."""
    recorded = bool(await conn.fetchval(_RETRY, *attempt.args(), delay, job_headers_json()))
    if recorded:
        jobs_written(conn)
    return recorded


async def record_failure(conn: Conn, attempt: AttemptRecord) -> bool:
    return bool(await conn.fetchval(_FAILED, *attempt.args(), None))


async def record_rejection(
    conn: Conn, attempt: AttemptRecord, reason: str | None
) -> tuple[bool, str | None]:
    """(recorded, the lead's status after: validated — on to the next buyer — or unsold)."""
    row = await conn.fetchrow(_REJECTED, *attempt.args(), reason, job_headers_json())
    jobs_written(conn)  # a lead going back to routing has its job
    return bool(row["recorded"]), row["lead_status"]


# Manual re-delivery of a failed delivery: a fresh round of the retry schedule after the
# attempts already made; the lead goes back to `routed` (guarded on both rows).
# A prepaid buyer's price is reserved again; without the funds nothing is reopened.
_REOPEN = f"""
WITH lead AS (
    SELECT l.id, l.buyer_id, coalesce(l.price_cents, 0) AS price, b.payment_method
    FROM leads l JOIN buyers b ON b.id = l.buyer_id
    WHERE l.id = $1 AND l.status = 'delivery_failed'
),
reserved AS (
    UPDATE buyers b SET reserved_cents = b.reserved_cents + l.price
    FROM lead l
    WHERE b.id = l.buyer_id AND l.payment_method = 'prepaid'
      AND {ledger.funds_available("l.price", "b")}
    RETURNING b.id
),
allowed AS (
    SELECT id FROM lead
    WHERE payment_method <> 'prepaid' OR EXISTS (SELECT 1 FROM reserved)
),
delivery AS (
    UPDATE deliveries SET status = 'pending', round_start = attempt_count,
                          next_attempt_at = now(), last_error = NULL, lease_expires_at = NULL
    WHERE lead_id IN (SELECT id FROM allowed) AND status = 'failed'
    RETURNING lead_id
)
UPDATE leads SET status = 'routed', billing_status = 'unbilled'
WHERE id IN (SELECT lead_id FROM delivery) AND status = 'delivery_failed'
RETURNING id
"""


async def reopen_failed(conn: Conn, lead_id: uuid.UUID) -> bool:
    return await conn.fetchval(_REOPEN, lead_id) is not None


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_no: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    request_digest: str | None
    http_status: int | None
    response_excerpt: str | None
    outcome: str | None
    error: str | None
    buyer_id: uuid.UUID | None = None  # whom it went to (a waterfall tries several)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    channel: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    idempotency_key: str
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


async def attempts(conn: Conn, lead_id: uuid.UUID) -> list[Attempt]:
    rows = await conn.fetch(
        "SELECT a.attempt_no, a.started_at, a.finished_at, a.duration_ms, a.request_digest, "
        "a.http_status, a.response_excerpt, a.outcome::text AS outcome, a.error, a.buyer_id "
        "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE d.lead_id = $1 ORDER BY a.attempt_no",
        lead_id,
    )
    return [Attempt(*r) for r in rows]


async def delivery(conn: Conn, lead_id: uuid.UUID) -> Delivery | None:
    row = await conn.fetchrow(
        "SELECT id, lead_id, buyer_id, channel::text AS channel, status::text AS status, "
        "attempt_count, next_attempt_at, idempotency_key, last_error, delivered_at, created_at "
        "FROM deliveries WHERE lead_id = $1",
        lead_id,
    )
    return Delivery(*row) if row else None


# Health (issue 16): one more failed attempt in a row; at the buyer's threshold (in a row,
# or an error rate over its last attempts) it pauses itself with the reason. Returns
# whether this failure paused it.
_BUYER_FAILED = """
UPDATE buyers SET
    consecutive_failures = consecutive_failures + 1,
    status = CASE WHEN pause THEN 'paused' ELSE status END,
    paused_reason = CASE WHEN pause THEN $2 ELSE paused_reason END,
    paused_at = CASE WHEN pause THEN now() ELSE paused_at END
FROM (SELECT status = 'active' AND (
                 (pause_after_failures > 0
                  AND consecutive_failures + 1 >= pause_after_failures)
              OR (pause_error_rate IS NOT NULL AND recent.n >= $3
                  AND recent.errors::numeric / recent.n > pause_error_rate)) AS pause
      FROM buyers,
           LATERAL (SELECT count(*) AS n,
                           count(*) FILTER (WHERE outcome IN ('retryable_error',
                                                               'permanent_error')) AS errors
                    FROM (SELECT a.outcome FROM delivery_attempts a
                          WHERE a.buyer_id = $1 AND a.outcome IS NOT NULL
                          ORDER BY a.started_at DESC LIMIT $3) last) AS recent
      WHERE id = $1) AS verdict
WHERE id = $1
RETURNING verdict.pause
"""


ERROR_RATE_WINDOW = 20  # attempts an error rate is judged on


async def buyer_failed(conn: Conn, buyer_id: uuid.UUID, reason: str) -> bool:
    return bool(await conn.fetchval(_BUYER_FAILED, buyer_id, reason[:500], ERROR_RATE_WINDOW))


async def buyer_answered(conn: Conn, buyer_id: uuid.UUID) -> None:
    """The buyer answered (sold or refused): its failure streak ends."""
    await conn.execute(
        "UPDATE buyers SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures > 0",
        buyer_id,
    )


# A buyer and one of its offers, as a claim would read them, for a sample lead.
_SAMPLE = """
SELECT b.id AS buyer_id, b.webhook_url, b.webhook_secret, b.email AS buyer_email,
       b.delivery_timeout_ms, b.currency, b.delivery_channel::text AS channel,
       coalesce(bo.integration, b.integration) AS integration, b.integration_secret,
       b.response_rules, bo.price_cents,
       o.id AS offer_id, o.slug AS offer_slug, o.name AS offer_name,
       m.id AS market_id, m.slug AS market_slug, m.name AS market_name,
       v.id AS vertical_id, v.slug AS vertical_slug, v.name AS vertical_name
FROM buyers b
JOIN buyer_offers bo ON bo.buyer_id = b.id
JOIN offers o ON o.id = bo.offer_id
JOIN markets m ON m.id = o.market_id
JOIN verticals v ON v.id = o.vertical_id
WHERE b.id = $1 AND ($2::uuid IS NULL OR o.id = $2)
ORDER BY bo.active DESC, o.slug LIMIT 1
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuyerSample:
    """A buyer with one of its offers: the parts of a claimed attempt a sample lead lacks."""

    buyer_id: uuid.UUID
    webhook_url: str | None
    webhook_secret: str | None
    buyer_email: str | None
    delivery_timeout_ms: int | None
    currency: str
    channel: str
    integration: dict[str, Any] | None
    integration_secret: str | None
    response_rules: dict[str, Any] | None
    price_cents: int
    offer_id: uuid.UUID
    offer_slug: str
    offer_name: str
    market_id: uuid.UUID
    market_slug: str
    market_name: str
    vertical_id: uuid.UUID
    vertical_slug: str
    vertical_name: str


async def sample_for_buyer(
    conn: Conn, buyer_id: uuid.UUID, offer_id: uuid.UUID | None
) -> BuyerSample | None:
    row = await conn.fetchrow(_SAMPLE, buyer_id, offer_id)
    return BuyerSample(**row) if row else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTarget:
    buyer_id: uuid.UUID
    health_url: str


async def buyers_to_probe(conn: Conn) -> list[ProbeTarget]:
    """Buyers their health paused (not an operator) that may resume themselves."""
    rows = await conn.fetch(
        "SELECT id AS buyer_id, health_url FROM buyers WHERE status = 'paused' "
        "AND auto_resume AND health_url IS NOT NULL AND paused_reason IS NOT NULL"
    )
    return [ProbeTarget(**r) for r in rows]


async def resume_buyer(conn: Conn, buyer_id: uuid.UUID) -> bool:
    done = await conn.execute(
        "UPDATE buyers SET status = 'active', consecutive_failures = 0, paused_reason = NULL, "
        "paused_at = NULL WHERE id = $1 AND status = 'paused' AND paused_reason IS NOT NULL",
        buyer_id,
    )
    return done != "UPDATE 0"
