"""All SQL of delivery (asyncpg). The claim holds the delivery row lock for the attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

# SKIP LOCKED: a delivery another worker is attempting right now is left to it.
_CLAIM = """
SELECT d.id AS delivery_id, d.status::text AS delivery_status, d.attempt_count, d.round_start,
       d.next_attempt_at, d.channel::text AS channel,
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

_ATTEMPT = """
INSERT INTO delivery_attempts (delivery_id, attempt_no, started_at, finished_at, duration_ms,
                               request_digest, http_status, response_excerpt, outcome, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::attempt_outcome, $10)
"""

# Success: the attempt, the delivery and the guarded routed → delivered move together.
# A prepaid buyer is charged in the same statement (DISTRIBUTION.md §8): the price reserved
# at routing becomes a balanced ledger transaction (buyer account -P, revenue +P).
_SUCCEEDED = f"""
WITH attempt AS ({_ATTEMPT} RETURNING 1),
delivery AS (
    UPDATE deliveries SET status = 'succeeded', attempt_count = $2, delivered_at = $4,
                          next_attempt_at = NULL, last_error = NULL
    WHERE id = $1
),
delivered AS (
    UPDATE leads SET status = 'delivered', delivered_at = $4, billing_status = 'billable'
    WHERE id = $11 AND status = 'routed'
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
)
INSERT INTO ledger_entries (transaction_id, account, amount_cents)
SELECT id, 'buyer:' || buyer_id::text, -amount_cents FROM txn
UNION ALL
SELECT id, 'platform:revenue', amount_cents FROM txn
"""

_RETRY = f"""
WITH attempt AS ({_ATTEMPT} RETURNING 1)
UPDATE deliveries SET status = 'pending', attempt_count = $2, next_attempt_at = $11,
                      last_error = $10
WHERE id = $1
"""

# Failure releases the prepaid reservation taken at routing.
_FAILED = f"""
WITH attempt AS ({_ATTEMPT} RETURNING 1),
delivery AS (
    UPDATE deliveries SET status = 'failed', attempt_count = $2, next_attempt_at = NULL,
                          last_error = $10
    WHERE id = $1
),
failed AS (
    UPDATE leads SET status = 'delivery_failed', billing_status = 'non_billable'
    WHERE id = $11 AND status = 'routed'
    RETURNING buyer_id, coalesce(price_cents, 0) AS price
)
UPDATE buyers b SET reserved_cents = greatest(b.reserved_cents - f.price, 0)
FROM failed f WHERE b.id = f.buyer_id AND b.payment_method = 'prepaid'
"""


async def claim(conn: asyncpg.Connection, lead_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(_CLAIM, lead_id)
    return dict(row) if row else None


async def delivery_exists(conn: asyncpg.Connection, lead_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM deliveries WHERE lead_id = $1", lead_id))


def _attempt_args(attempt: dict[str, Any]) -> list[Any]:
    return [
        attempt["delivery_id"],
        attempt["attempt_no"],
        attempt["started_at"],
        attempt["finished_at"],
        attempt["duration_ms"],
        attempt["request_digest"],
        attempt["http_status"],
        attempt["response_excerpt"],
        attempt["outcome"],
        attempt["error"],
    ]


async def record_success(
    conn: asyncpg.Connection, attempt: dict[str, Any], lead_id: uuid.UUID
) -> None:
    await conn.execute(_SUCCEEDED, *_attempt_args(attempt), lead_id)


async def record_retry(
    conn: asyncpg.Connection, attempt: dict[str, Any], next_attempt_at: datetime
) -> None:
    await conn.execute(_RETRY, *_attempt_args(attempt), next_attempt_at)


async def record_failure(
    conn: asyncpg.Connection, attempt: dict[str, Any], lead_id: uuid.UUID
) -> None:
    await conn.execute(_FAILED, *_attempt_args(attempt), lead_id)


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
                          next_attempt_at = now(), last_error = NULL
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
