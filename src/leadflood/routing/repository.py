"""All SQL of routing (asyncpg). A decision is 3 autocommit statements: read the lead
with its policy and exclusivity, read the candidates, commit everything in one
statement that vetoes itself (rolls back whole) if the lead moved or a cap filled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from leadflood.billing import ledger
from leadflood.core.jobs import DELIVER_LEAD
from leadflood.core.queue import fused_enqueue_ctes, jobs_written
from leadflood.core.tracing import job_headers_json
from leadflood.core.uow import Conn
from leadflood.routing import trace as stored_trace
from leadflood.routing.schedule import compile_schedule
from leadflood.routing.selection import Candidate


def _exclusivity(offer: str, market: str, postal: str, city: str, at: str) -> str:
    """The exclusivity in force for a place of an offer at a time: the most specific
    scope wins (postal code, then city, then market)."""
    return f"""
    SELECT e.id, e.buyer_id, e.scope_type
    FROM offer_exclusivities e JOIN markets m ON m.id = {market}
    WHERE e.offer_id = {offer} AND e.active
      AND e.starts_at <= {at} AND (e.ends_at IS NULL OR e.ends_at > {at})
      AND (   (e.scope_type = 'market'
               AND (e.scope_value = m.id::text OR lower(e.scope_value) = lower(m.slug)))
           OR (e.scope_type = 'postal_code' AND e.scope_value = btrim({postal}))
           OR (e.scope_type = 'city' AND lower(e.scope_value) = lower(btrim({city}))))
    ORDER BY CASE e.scope_type WHEN 'postal_code' THEN 0 WHEN 'city' THEN 1 ELSE 2 END,
             e.starts_at, e.id
    LIMIT 1"""


_LOCK_LEAD = f"""
SELECT l.id, l.status::text AS status, l.offer_id, l.market_id, l.buyer_id,
       btrim(l.postal_code) AS postal_code, btrim(l.city) AS city,
       rp.strategy::text AS strategy, rp.exclusive_fallback::text AS exclusive_fallback,
       ex.id AS exclusivity_id, ex.buyer_id AS exclusive_buyer_id,
       ex.scope_type AS exclusive_scope, l.auction_id, o.max_sales,
       o.post_auction AND l.auction_id IS NULL AS auction_due
FROM leads l
JOIN offers o ON o.id = l.offer_id
JOIN routing_policies rp ON rp.id = o.routing_policy_id
LEFT JOIN LATERAL ({_exclusivity("l.offer_id", "l.market_id", "l.postal_code", "l.city", "$2")}
) ex ON true
WHERE l.id = $1
"""

# A ping's place seen as routing sees a lead's (no lead yet: a fresh id stands in).
_PING_POLICY = f"""
SELECT $6::uuid AS id, 'validated' AS status, o.id AS offer_id, $2::uuid AS market_id,
       NULL::uuid AS buyer_id, btrim($3) AS postal_code, btrim($4) AS city,
       rp.strategy::text AS strategy, rp.exclusive_fallback::text AS exclusive_fallback,
       ex.id AS exclusivity_id, ex.buyer_id AS exclusive_buyer_id,
       ex.scope_type AS exclusive_scope, NULL::uuid AS auction_id, 1 AS max_sales,
       false AS auction_due
FROM offers o
JOIN routing_policies rp ON rp.id = o.routing_policy_id
LEFT JOIN LATERAL ({_exclusivity("o.id", "$2::uuid", "$3", "$4", "$5")}
) ex ON true
WHERE o.id = $1
"""

# The standing bids of the auction a lead was sold by, best first.
_AUCTION_BIDS = """
SELECT buyer_id, price_cents, rank FROM auction_bids
WHERE auction_id = $1 AND outcome = 'bid'
ORDER BY rank
"""

_CANDIDATES = """
SELECT b.id AS buyer_id, b.name, bo.active AS enrolled, b.status, b.timezone,
       b.schedule::text AS schedule,  -- text: compile_schedule caches by it
       EXISTS (
           SELECT 1 FROM buyer_service_areas sa
           WHERE sa.buyer_id = b.id AND sa.market_id = $2
             AND (   (sa.postal_code IS NULL AND sa.city IS NULL)
                  OR sa.postal_code = $3
                  OR lower(sa.city) = lower($4))
       ) AS covered,
       bo.priority, bo.weight, bo.price_cents, bo.last_routed_at,
       b.payment_method::text AS payment_method,
       b.balance_cents - b.reserved_cents AS balance_cents, b.min_balance_cents,
       b.delivery_channel::text AS delivery_channel,
       b.daily_cap, b.hourly_cap, bo.daily_cap AS offer_daily_cap,
       bo.hourly_cap AS offer_hourly_cap,
       b.cap_day_window, b.cap_day_count, b.cap_hour_window, b.cap_hour_count,
       bo.cap_day_window AS offer_day_window, bo.cap_day_count AS offer_day_count,
       bo.cap_hour_window AS offer_hour_window, bo.cap_hour_count AS offer_hour_count,
       EXISTS (SELECT 1 FROM lead_rejections r WHERE r.lead_id = $5 AND r.buyer_id = b.id)
           AS rejected_lead,
       bo.shared_price_cents
FROM buyer_offers bo
JOIN buyers b ON b.id = bo.buyer_id
WHERE bo.offer_id = $1
ORDER BY b.id
"""

# Counting one more unit in the current local window; a new window starts at 1.
_BUMP = """
    cap_day_window = $11, cap_hour_window = $12,
    cap_day_count = CASE WHEN cap_day_window = $11 THEN cap_day_count + 1 ELSE 1 END,
    cap_hour_count = CASE WHEN cap_hour_window = $12 THEN cap_hour_count + 1 ELSE 1 END"""
_UNDER_CAPS = """
      AND (daily_cap IS NULL
           OR (CASE WHEN cap_day_window = $11 THEN cap_day_count ELSE 0 END) < daily_cap)
      AND (hourly_cap IS NULL
           OR (CASE WHEN cap_hour_window = $12 THEN cap_hour_count ELSE 0 END) < hourly_cap)"""

# Take the cap units (buyer-wide and per-offer), stamp the rotation clock, move the lead
# (guarded), record the decision, create the delivery and its job: one statement, so one
# transaction. The row updates re-check the caps against the latest committed counts
# (READ COMMITTED re-evaluates a concurrently updated row), so a unit is never taken twice.
# A prepaid buyer's price is reserved in the same row update (decision 0010), so concurrent
# routings never promise more than the balance above min_balance_cents.
# If the lead is no longer `validated` or a cap filled meanwhile, leadflood_abort() raises
# and the whole statement rolls back.
_COMMIT_TEMPLATE = (
    f"""
WITH take_buyer AS (
    UPDATE buyers SET {_BUMP},
        {ledger.reserve("$4")}
    WHERE id = $2
      AND (daily_cap IS NOT NULL OR hourly_cap IS NOT NULL OR payment_method = 'prepaid')
      {_UNDER_CAPS}
      AND (payment_method <> 'prepaid' OR {ledger.funds_available("$4")})
    RETURNING 1
),
take_offer AS (
    UPDATE buyer_offers SET last_routed_at = $5, {_BUMP}
    WHERE buyer_id = $2 AND offer_id = $3 AND active {_UNDER_CAPS}
    RETURNING 1
),
{{moved}},
decision AS (
    INSERT INTO routing_decisions (lead_id, outcome, buyer_id, strategy, candidates,
                                   decided_at, duration_ms)
    SELECT moved.id, 'routed', $2, $6::routing_strategy, $7::jsonb, $5, $8 FROM moved
    RETURNING id
),
delivery AS (
    -- A lead a buyer refused comes back here for the next buyer: its delivery row (failed,
    -- by the refusal) is taken over with a fresh round of attempts.
    INSERT INTO deliveries (lead_id, buyer_id, channel, status, idempotency_key,
                            next_attempt_at)
    SELECT moved.id, $2, $9::delivery_channel, 'pending', 'lead:' || moved.id::text, $5
    FROM moved
    ON CONFLICT (lead_id) DO UPDATE SET
        buyer_id = EXCLUDED.buyer_id, channel = EXCLUDED.channel, status = 'pending',
        round_start = deliveries.attempt_count, next_attempt_at = EXCLUDED.next_attempt_at,
        last_error = NULL, reject_reason = NULL, lease_expires_at = NULL,
        buyer_reference = NULL, buyer_price_cents = NULL
    WHERE deliveries.status = 'failed'
    RETURNING lead_id
),"""
    + fused_enqueue_ctes(DELIVER_LEAD, "delivery", "lead_id", headers="$13")
    + """
SELECT CASE
         WHEN NOT EXISTS (SELECT 1 FROM moved) THEN leadflood_abort('lead_not_validated')
         WHEN NOT EXISTS (SELECT 1 FROM delivery) THEN leadflood_abort('lead_not_validated')
         WHEN NOT EXISTS (SELECT 1 FROM take_offer) THEN leadflood_abort('cap_race')
         WHEN $10 AND NOT EXISTS (SELECT 1 FROM take_buyer) THEN leadflood_abort('cap_race')
         ELSE 0
       END AS vetoed,
       (SELECT id FROM decision) AS decision_id
"""
)
_COMMIT_ROUTE = _COMMIT_TEMPLATE.replace(
    "{moved}",
    """moved AS (
    UPDATE leads SET status = 'routed', buyer_id = $2, price_cents = $4, routed_at = $5
    WHERE id = $1 AND status = 'validated'
    RETURNING id
)""",
)
# A further sale of a shared lead (multi-sell, migration 0014): the same statement, its
# lead a copy of the routed lead $1 for buyer $2 at its shared price, naming the lead it
# was sold from. It vetoes itself when $1 is no longer routed or $2 has a share already.
_LEAD_COPY = """source_id, offer_id, market_id, vertical_id, idempotency_key_derived,
    first_name, last_name, email, normalized_email, phone, normalized_phone, address, city,
    state, postal_code, consent, consent_text, consent_certificate_url, ip, user_agent,
    raw_payload, validated_at, created_at"""
_COMMIT_SHARE = _COMMIT_TEMPLATE.replace(
    "{moved}",
    f"""moved AS (
    INSERT INTO leads (idempotency_key, status, buyer_id, price_cents, routed_at,
                       sold_from_lead_id, {_LEAD_COPY})
    SELECT l.idempotency_key || ':share:' || $2::text, 'routed', $2, $4, $5, l.id,
           {_LEAD_COPY.replace("source_id,", "l.source_id,", 1)}
    FROM leads l WHERE l.id = $1 AND l.status = 'routed' AND l.buyer_id <> $2
    ON CONFLICT DO NOTHING
    RETURNING id
)""",
)

_NO_ROUTE = """
INSERT INTO routing_decisions (lead_id, outcome, buyer_id, strategy, candidates, decided_at,
                               duration_ms)
VALUES ($1, $2, NULL, $3::routing_strategy, $4::jsonb, $5, $6)
RETURNING id
"""

_DECISIONS = """
SELECT d.id, d.outcome, d.buyer_id, d.strategy::text AS strategy, d.candidates,
       d.decided_at, d.duration_ms
FROM routing_decisions d WHERE d.lead_id = $1 ORDER BY d.decided_at, d.created_at, d.id
"""
# Validated leads still inside their offer's shelf life (issue 14); with $2, only
# leads that routing already tried (a job of their own is on the way for the others).
_UNROUTED = """
SELECT l.id FROM leads l JOIN offers o ON o.id = l.offer_id
WHERE l.status = 'validated'
  AND l.created_at + make_interval(mins => o.shelf_life_minutes) > now()
  AND (NOT $2 OR EXISTS (SELECT 1 FROM routing_decisions d WHERE d.lead_id = l.id))
ORDER BY l.created_at, l.id LIMIT $1
"""

# Past its shelf life, a lead routing has tried and found no buyer for is unsold: a
# terminal state of its own (its decisions keep each buyer's reasons).
_EXPIRE_UNSOLD = """
UPDATE leads l SET status = 'unsold', unsold_at = now(), billing_status = 'non_billable'
FROM offers o
WHERE o.id = l.offer_id AND l.status = 'validated'
  AND l.created_at + make_interval(mins => o.shelf_life_minutes) <= now()
  AND EXISTS (SELECT 1 FROM routing_decisions d WHERE d.lead_id = l.id)
RETURNING l.id
"""


@dataclass(frozen=True, slots=True)
class LeadToRoute:
    """A lead as routing sees it at a moment (the columns of _LOCK_LEAD, in order): its
    place, its policy, and the exclusivity in force for it."""

    id: uuid.UUID
    status: str
    offer_id: uuid.UUID
    market_id: uuid.UUID
    buyer_id: uuid.UUID | None
    postal_code: str | None
    city: str | None
    strategy: str
    exclusive_fallback: str
    exclusivity_id: uuid.UUID | None = None
    exclusive_buyer_id: uuid.UUID | None = None
    exclusive_scope: str | None = None
    auction_id: uuid.UUID | None = None  # sold by auction: its bids decide, not the strategy
    max_sales: int = 1  # its offer sells a lead to up to this many buyers (multi-sell)
    auction_due: bool = False  # its offer auctions direct posts and it has not been yet


async def load_lead(conn: Conn, lead_id: uuid.UUID, at: datetime) -> LeadToRoute | None:
    row = await conn.fetchrow(_LOCK_LEAD, lead_id, at)
    return LeadToRoute(*row) if row else None


async def ping_place(
    conn: Conn,
    *,
    offer_id: uuid.UUID,
    market_id: uuid.UUID,
    postal_code: str | None,
    city: str | None,
    at: datetime,
    stand_in: uuid.UUID,
) -> LeadToRoute | None:
    """A ping's place as routing sees a lead: its offer's policy and the exclusivity in
    force there; `stand_in` is the id the (not yet existing) lead is judged under."""
    row = await conn.fetchrow(_PING_POLICY, offer_id, market_id, postal_code, city, at, stand_in)
    return LeadToRoute(*row) if row else None


@dataclass(frozen=True, slots=True)
class StandingBid:
    buyer_id: uuid.UUID
    price_cents: int
    rank: int


# Which of `buyer_ids` bought this lead's consumer (same email or phone) on its offer in
# the last 30 days: an auction's bidder or a shared lead's buyer does not buy it twice.
_BOUGHT_CONSUMER = """
SELECT DISTINCT p.buyer_id FROM leads l JOIN leads p
  ON p.offer_id = l.offer_id AND p.id <> l.id
 AND (p.normalized_email = l.normalized_email OR p.normalized_phone = l.normalized_phone)
WHERE l.id = $1 AND p.buyer_id = ANY($2::uuid[]) AND p.status IN ('routed', 'delivered')
  AND p.created_at > now() - interval '30 days'
"""


async def bought_consumer(
    conn: Conn, lead_id: uuid.UUID, buyer_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await conn.fetch(_BOUGHT_CONSUMER, lead_id, buyer_ids)
    return {r["buyer_id"] for r in rows}


async def auction_bids(conn: Conn, auction_id: uuid.UUID) -> list[StandingBid]:
    return [StandingBid(*r) for r in await conn.fetch(_AUCTION_BIDS, auction_id)]


async def candidates(conn: Conn, lead: LeadToRoute) -> list[Candidate]:
    """Every buyer enrolled in the lead's offer, with what eligibility needs to judge it."""
    rows = await conn.fetch(
        _CANDIDATES, lead.offer_id, lead.market_id, lead.postal_code, lead.city, lead.id
    )
    return [_candidate(row) for row in rows]


def _candidate(row: asyncpg.Record) -> Candidate:
    # Positional (the hot path): the query selects columns in Candidate's field order,
    # pinned by a test.
    values = list(row.values())
    values[5] = compile_schedule(values[5] or "")
    return Candidate(*values)


async def commit_route(
    conn: Conn,
    *,
    lead_id: uuid.UUID,
    buyer_id: uuid.UUID,
    offer_id: uuid.UUID,
    price_cents: int,
    at: datetime,
    strategy: str,
    trace: list[dict[str, Any]],
    duration_ms: float,
    channel: str,
    buyer_capped: bool,
    local_day: datetime,
    local_hour: datetime,
    share: bool = False,
) -> uuid.UUID | str:
    """The decision id, or why the statement vetoed itself ('lead_not_validated',
    'cap_race'); a vetoed statement changed nothing. `share`: a further sale of the routed
    lead `lead_id` to this buyer, as a lead of its own."""
    try:
        decision_id = await conn.fetchval(
            _COMMIT_SHARE if share else _COMMIT_ROUTE,
            lead_id,
            buyer_id,
            offer_id,
            price_cents,
            at,
            strategy,
            orjson.dumps(stored_trace.compact(trace)).decode(),
            duration_ms,
            channel,
            buyer_capped,
            local_day,
            local_hour,
            job_headers_json(),
            column=1,
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == "LF001":
            return exc.args[0] if exc.args else str(exc)
        raise
    jobs_written(conn)
    return decision_id


async def record_no_route(
    conn: Conn,
    *,
    lead_id: uuid.UUID,
    outcome: str,
    strategy: str,
    trace: list[dict[str, Any]],
    at: datetime,
    duration_ms: float,
) -> uuid.UUID:
    return await conn.fetchval(
        _NO_ROUTE,
        lead_id,
        outcome,
        strategy,
        orjson.dumps(stored_trace.compact(trace)).decode(),
        at,
        duration_ms,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """A recorded routing decision; `candidates` is its trace, one dict per buyer."""

    id: uuid.UUID
    outcome: str
    buyer_id: uuid.UUID | None
    strategy: str
    candidates: list[dict[str, Any]]
    decided_at: datetime
    duration_ms: float | None


async def decisions(conn: Conn, lead_id: uuid.UUID) -> list[Decision]:
    return [
        Decision(r[0], r[1], r[2], r[3], stored_trace.expand(r[4]), r[5], r[6])
        for r in await conn.fetch(_DECISIONS, lead_id)
    ]


async def unrouted_leads(conn: Conn, limit: int, *, tried_only: bool = False) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(_UNROUTED, limit, tried_only)]


async def reopen_unsold(conn: Conn, lead_id: uuid.UUID) -> bool:
    """An operator's re-route of an unsold lead: it may be routed once more."""
    return (
        await conn.fetchval(
            "UPDATE leads SET status = 'validated', unsold_at = NULL, billing_status = 'unbilled' "
            "WHERE id = $1 AND status = 'unsold' RETURNING id",
            lead_id,
        )
        is not None
    )


async def mark_unsold(conn: Conn, lead_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE leads SET status = 'unsold', unsold_at = now(), billing_status = 'non_billable' "
        "WHERE id = $1 AND status = 'validated'",
        lead_id,
    )


async def expire_unsold(conn: Conn) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(_EXPIRE_UNSOLD)]


async def lead_exists(conn: Conn, lead_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM leads WHERE id = $1", lead_id))


async def lead_state(conn: Conn, lead_id: uuid.UUID) -> tuple[str, uuid.UUID | None]:
    row = await conn.fetchrow("SELECT status::text, buyer_id FROM leads WHERE id = $1", lead_id)
    return row["status"], row["buyer_id"]
