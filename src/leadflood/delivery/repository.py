"""All SQL of delivery (asyncpg): claim and start an attempt, then record it, each in a
short transaction of its own; the send happens between them with no connection held."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

# SKIP LOCKED: a delivery another worker is claiming right now is left to it. The claim
# is a short transaction of its own; the send happens after it commits (issue 14).
_CLAIM = """
SELECT d.id AS delivery_id, d.status::text AS delivery_status, d.attempt_count, d.round_start,
       d.next_attempt_at, d.channel::text AS channel,
       d.lease_expires_at IS NOT NULL AND d.lease_expires_at > now() AS leased,
       l.id AS lead_id, l.status::text AS lead_status, l.first_name, l.last_name, l.email,
       l.phone, l.normalized_phone, l.address, l.city, l.state, l.postal_code, l.consent,
       l.consent_text, l.consent_certificate_url, l.price_cents, l.raw_payload,
       l.created_at AS received_at, l.routed_at,
       o.id AS offer_id, o.slug AS offer_slug, o.name AS offer_name,
       m.id AS market_id, m.slug AS market_slug, m.name AS market_name,
       v.id AS vertical_id, v.slug AS vertical_slug, v.name AS vertical_name,
       b.id AS buyer_id, b.webhook_url, b.webhook_secret, b.email AS buyer_email,
       b.delivery_timeout_ms, b.currency
FROM deliveries d
JOIN leads l ON l.id = d.lead_id
JOIN buyers b ON b.id = d.buyer_id
JOIN offers o ON o.id = l.offer_id
JOIN markets m ON m.id = l.market_id
JOIN verticals v ON v.id = l.vertical_id
WHERE d.lead_id = $1
FOR UPDATE OF d SKIP LOCKED
"""

# An attempt left open by a worker that stopped mid-send is closed as interrupted (the
# buyer may have received it: the Idempotency-Key lets it tell), then the new attempt is
# recorded as started, before anything is sent.
_START = """
WITH interrupted AS (
    UPDATE delivery_attempts
    SET finished_at = now(), outcome = 'retryable_error',
        duration_ms = extract(epoch FROM now() - started_at) * 1000,
        error = 'interrupted: the attempt was cut off before its result was recorded'
    WHERE delivery_id = $1 AND finished_at IS NULL
),
claimed AS (
    UPDATE deliveries SET status = 'in_progress', attempt_count = $2,
                          lease_expires_at = now() + $3::interval
    WHERE id = $1
)
INSERT INTO delivery_attempts (delivery_id, attempt_no, started_at, request_digest)
VALUES ($1, $2, now(), $4)
"""

# Recording is guarded by the claimed attempt: a worker whose lease another took over
# records nothing. The attempt row is completed in the same statement.
_GUARD = """
claimed AS (
    SELECT id FROM deliveries
    WHERE id = $1 AND status = 'in_progress' AND attempt_count = $2
    FOR UPDATE
),
attempt AS (
    UPDATE delivery_attempts a
    SET finished_at = now(), duration_ms = $3, http_status = $4, response_excerpt = $5,
        outcome = $6::attempt_outcome, error = $7
    FROM claimed c WHERE a.delivery_id = c.id AND a.attempt_no = $2
)"""

# Success: the attempt, the delivery and the guarded routed → delivered move together.
# A prepaid buyer is charged in the same statement (DISTRIBUTION.md §8): the price reserved
# at routing becomes a balanced ledger transaction (buyer account -P, revenue +P).
_SUCCEEDED = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'succeeded', delivered_at = now(),
                            next_attempt_at = NULL, last_error = NULL, lease_expires_at = NULL
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id
),
delivered AS (
    UPDATE leads SET status = 'delivered', delivered_at = now(), billing_status = 'billable'
    WHERE id IN (SELECT lead_id FROM delivery) AND status = 'routed'
    RETURNING id, buyer_id, coalesce(price_cents, 0) AS price
),
charged AS (
    UPDATE buyers b SET balance_cents = b.balance_cents - d.price,
                        reserved_cents = greatest(b.reserved_cents - d.price, 0)
    FROM delivered d
    WHERE b.id = d.buyer_id AND b.payment_method = 'prepaid' AND d.price > 0
    RETURNING b.id AS buyer_id, d.id AS lead_id, d.price, b.currency
),
txn AS (
    INSERT INTO ledger_transactions (kind, buyer_id, lead_id, amount_cents, currency,
                                     description, idempotency_key)
    SELECT 'delivery_debit', buyer_id, lead_id, price, currency, 'lead delivered',
           'debit:lead:' || lead_id::text
    FROM charged
    RETURNING id, buyer_id, amount_cents
),
entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_cents)
    SELECT id, 'buyer:' || buyer_id::text, -amount_cents FROM txn
    UNION ALL
    SELECT id, 'platform:revenue', amount_cents FROM txn
)
SELECT count(*) FROM claimed
"""

# The next attempt's time is counted from this transaction's now(), the same clock the
# retry job's execute_after is counted from (enqueued in this transaction).
_RETRY = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'pending', next_attempt_at = now() + $8::interval,
                            last_error = $7, lease_expires_at = NULL
    FROM claimed c WHERE d.id = c.id
)
SELECT count(*) FROM claimed
"""

# Failure releases the prepaid reservation taken at routing.
_FAILED = f"""
WITH {_GUARD},
delivery AS (
    UPDATE deliveries d SET status = 'failed', next_attempt_at = NULL, last_error = $7,
                            lease_expires_at = NULL
    FROM claimed c WHERE d.id = c.id
    RETURNING d.lead_id
),
failed AS (
    UPDATE leads SET status = 'delivery_failed', billing_status = 'non_billable'
    WHERE id IN (SELECT lead_id FROM delivery) AND status = 'routed'
    RETURNING buyer_id, coalesce(price_cents, 0) AS price
),
released AS (
    UPDATE buyers b SET reserved_cents = greatest(b.reserved_cents - f.price, 0)
    FROM failed f WHERE b.id = f.buyer_id AND b.payment_method = 'prepaid'
)
SELECT count(*) FROM claimed
"""


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

    def args(self) -> list[Any]:
        return [
            self.delivery_id,
            self.attempt_no,
            self.duration_ms,
            self.http_status,
            self.response_excerpt,
            self.outcome,
            self.error,
        ]


async def claim(conn: asyncpg.Connection, lead_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_CLAIM, lead_id)
    return dict(row) if row else None


async def in_flight(conn: asyncpg.Connection, buyer_id: uuid.UUID) -> int:
    """Attempts being sent to the buyer right now (live leases). Claims for one buyer
    serialize on a transaction lock first, so the count is exact: the next claim runs
    after this one commits, and counts it (a statement of its own, a fresh snapshot)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 14))", str(buyer_id))
    return await conn.fetchval(
        "SELECT count(*) FROM deliveries "
        "WHERE buyer_id = $1 AND status = 'in_progress' AND lease_expires_at > now()",
        buyer_id,
    )


async def delivery_exists(conn: asyncpg.Connection, lead_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM deliveries WHERE lead_id = $1", lead_id))


async def start_attempt(
    conn: asyncpg.Connection,
    delivery_id: uuid.UUID,
    attempt_no: int,
    lease: timedelta,
    request_digest: str,
) -> None:
    await conn.execute(_START, delivery_id, attempt_no, lease, request_digest)


async def record_success(conn: asyncpg.Connection, attempt: AttemptRecord) -> bool:
    """False when the claim was taken over (nothing written)."""
    return bool(await conn.fetchval(_SUCCEEDED, *attempt.args()))


async def record_retry(conn: asyncpg.Connection, attempt: AttemptRecord, delay: timedelta) -> bool:
    return bool(await conn.fetchval(_RETRY, *attempt.args(), delay))


async def record_failure(conn: asyncpg.Connection, attempt: AttemptRecord) -> bool:
    return bool(await conn.fetchval(_FAILED, *attempt.args()))


# Manual re-delivery of a failed delivery: a fresh round of the retry schedule after the
# attempts already made; the lead goes back to `routed` (guarded on both rows).
# A prepaid buyer's price is reserved again; without the funds nothing is reopened.
_REOPEN = """
WITH lead AS (
    SELECT l.id, l.buyer_id, coalesce(l.price_cents, 0) AS price, b.payment_method
    FROM leads l JOIN buyers b ON b.id = l.buyer_id
    WHERE l.id = $1 AND l.status = 'delivery_failed'
),
reserved AS (
    UPDATE buyers b SET reserved_cents = b.reserved_cents + l.price
    FROM lead l
    WHERE b.id = l.buyer_id AND l.payment_method = 'prepaid'
      AND b.balance_cents - b.reserved_cents - l.price >= b.min_balance_cents
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


async def reopen_failed(conn: asyncpg.Connection, lead_id: uuid.UUID) -> bool:
    return await conn.fetchval(_REOPEN, lead_id) is not None


async def attempts(conn: asyncpg.Connection, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT a.attempt_no, a.started_at, a.finished_at, a.duration_ms, a.request_digest, "
        "a.http_status, a.response_excerpt, a.outcome::text AS outcome, a.error "
        "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE d.lead_id = $1 ORDER BY a.attempt_no",
        lead_id,
    )
    return [dict(r) for r in rows]


async def delivery(conn: asyncpg.Connection, lead_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, lead_id, buyer_id, channel::text AS channel, status::text AS status, "
        "attempt_count, next_attempt_at, idempotency_key, last_error, delivered_at, created_at "
        "FROM deliveries WHERE lead_id = $1",
        lead_id,
    )
    return dict(row) if row else None
