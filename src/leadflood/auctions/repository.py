"""All SQL of auctions: what a ping may carry and who is asked, the stored auction and
its bids, the post's claim of a ping, and the auction shown on a lead's page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from leadflood.core.uow import Conn, Tx


@dataclass(frozen=True, slots=True)
class SaleTerms:
    """The offer's auction settings and the source's payout rule."""

    ping_fields: list[str]
    ping_budget_ms: int
    ping_ttl_seconds: int
    post_auction: bool
    payout_type: str
    payout_cents: int | None
    payout_share: Decimal | None


_TERMS = """
SELECT o.ping_fields, o.ping_budget_ms, o.ping_ttl_seconds, o.post_auction,
       s.payout_type, s.payout_cents, s.payout_share
FROM sources s JOIN offers o ON o.id = s.offer_id
WHERE s.id = $1
"""


async def sale_terms(conn: Conn, source_id: uuid.UUID) -> SaleTerms | None:
    row = await conn.fetchrow(_TERMS, source_id)
    return SaleTerms(*row) if row else None


@dataclass(frozen=True, slots=True)
class BidderConfig:
    """How to ask a buyer for a bid (its ping integration) and read the answer."""

    buyer_id: uuid.UUID
    ping_integration: dict[str, Any]
    ping_rules: dict[str, Any] | None
    ping_timeout_ms: int
    webhook_secret: str | None  # encrypted
    integration_secret: str | None  # encrypted


_BIDDERS = """
SELECT id, ping_integration, ping_rules, ping_timeout_ms, webhook_secret, integration_secret
FROM buyers WHERE id = ANY($1::uuid[]) AND ping_integration IS NOT NULL
"""


async def bidder_configs(conn: Conn, buyer_ids: list[uuid.UUID]) -> list[BidderConfig]:
    return [BidderConfig(*r) for r in await conn.fetch(_BIDDERS, buyer_ids)]


# Buyers (of `buyer_ids`) who bought the consumer a ping names by hashed email or phone on
# this offer in the last 30 days (the expression indexes of migration 0013).
_BOUGHT = """
SELECT DISTINCT l.buyer_id FROM leads l
WHERE l.buyer_id = ANY($2::uuid[]) AND l.offer_id = $1
  AND l.status IN ('routed', 'delivered')
  AND l.created_at > now() - interval '30 days'
  AND (   ($3::text IS NOT NULL AND leadflood_contact_hash(l.normalized_email) = $3)
       OR ($4::text IS NOT NULL AND leadflood_contact_hash(l.normalized_phone) = $4))
"""


async def bought_before(
    conn: Conn,
    offer_id: uuid.UUID,
    buyer_ids: list[uuid.UUID],
    email_hash: str | None,
    phone_hash: str | None,
) -> set[uuid.UUID]:
    if not buyer_ids or (email_hash is None and phone_hash is None):
        return set()
    rows = await conn.fetch(_BOUGHT, offer_id, buyer_ids, email_hash, phone_hash)
    return {r["buyer_id"] for r in rows}


@dataclass(slots=True)
class BidRow:
    """One buyer's part in an auction (its rank set once the bids are in)."""

    buyer_id: uuid.UUID
    kind: str  # fixed | ping
    outcome: str  # bid | no_bid | timeout | error
    price_cents: int | None
    bid_token: str | None
    latency_ms: float | None
    detail: str | None
    rank: int | None


@dataclass(frozen=True, slots=True)
class NewAuction:
    id: uuid.UUID
    kind: str  # ping | post
    source_id: uuid.UUID
    offer_id: uuid.UUID
    market_id: uuid.UUID
    ping: dict[str, Any]
    accepted: bool
    price_cents: int | None
    payout_cents: int | None
    trace: list[dict[str, Any]]
    budget_ms: int
    duration_ms: float
    expires_at: datetime
    lead_id: uuid.UUID | None = None
    bid_count: int = 0  # standing bids, kept or not (service.KEPT_FIXED_BIDS)


_INSERT = """
WITH auction AS (
    -- Committed without waiting for the WAL flush (as a delivery claim is, decision 0014):
    -- a bid is a quote; were PostgreSQL itself to crash within ~0.6 s, the source's post
    -- finds no ping, and it pings again.
    INSERT INTO auctions (id, kind, source_id, offer_id, market_id, ping, accepted,
                          price_cents, payout_cents, trace, budget_ms, duration_ms,
                          expires_at, lead_id, posted_at, bid_count)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10::jsonb, $11, $12, $13, $14,
            CASE WHEN $14::uuid IS NULL THEN NULL ELSE now() END, $15)
    -- A lead's post auction once: a repeated job's second auction is not stored.
    ON CONFLICT (lead_id) DO NOTHING
    RETURNING id
),
async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
linked AS (
    UPDATE leads SET auction_id = a.id FROM auction a
    WHERE leads.id = $14 AND leads.auction_id IS NULL
)
SELECT id FROM auction, async_commit
"""
_BID_COLUMNS = [
    "auction_id",
    "buyer_id",
    "kind",
    "outcome",
    "price_cents",
    "bid_token",
    "latency_ms",
    "detail",
    "rank",
]


async def insert_auction(tx: Tx, auction: NewAuction, bids: list[BidRow]) -> bool:
    """The auction (a post auction also names its lead), then its bids by binary COPY:
    one unit of work (the caller's), so an auction is never stored without them. False
    when the lead had its auction already."""
    stored = await tx.fetchval(
        _INSERT,
        auction.id,
        auction.kind,
        auction.source_id,
        auction.offer_id,
        auction.market_id,
        orjson.dumps(auction.ping).decode(),
        auction.accepted,
        auction.price_cents,
        auction.payout_cents,
        orjson.dumps(auction.trace).decode(),
        auction.budget_ms,
        auction.duration_ms,
        auction.expires_at,
        auction.lead_id,
        auction.bid_count,
    )
    if stored is None:
        return False
    if bids:
        aid = auction.id
        records = [
            (
                aid,
                b.buyer_id,
                b.kind,
                b.outcome,
                b.price_cents,
                b.bid_token,
                b.latency_ms,
                b.detail,
                b.rank,
            )
            for b in bids
        ]
        await tx.copy_records("auction_bids", records, _BID_COLUMNS)
    return True


@dataclass(frozen=True, slots=True)
class PingToPost:
    """A ping as its post finds it (locked until the post's unit of work ends)."""

    id: uuid.UUID
    kind: str
    source_id: uuid.UUID
    accepted: bool
    price_cents: int | None
    payout_cents: int | None
    expires_at: datetime
    lead_id: uuid.UUID | None
    expired: bool


_FOR_POST = """
SELECT id, kind, source_id, accepted, price_cents, payout_cents, expires_at, lead_id,
       expires_at <= now() AS expired
FROM auctions WHERE id = $1 FOR UPDATE
"""


async def ping_for_post(conn: Conn, ping_id: uuid.UUID) -> PingToPost | None:
    row = await conn.fetchrow(_FOR_POST, ping_id)
    return PingToPost(*row) if row else None


async def link_lead(conn: Conn, ping_id: uuid.UUID, lead_id: uuid.UUID) -> None:
    await conn.execute(
        "WITH lead AS (UPDATE leads SET auction_id = $1 WHERE id = $2) "
        "UPDATE auctions SET lead_id = $2, posted_at = now() WHERE id = $1",
        ping_id,
        lead_id,
    )


@dataclass(frozen=True, slots=True)
class LeadForAuction:
    """A validated lead an offer with post auctions sells by auction (its full data)."""

    id: uuid.UUID
    source_id: uuid.UUID
    offer_id: uuid.UUID
    market_id: uuid.UUID
    postal_code: str | None
    city: str | None
    fields: dict[str, Any]
    raw_payload: dict[str, Any] | None


_LEAD_FOR_AUCTION = """
SELECT l.id, l.source_id, l.offer_id, l.market_id, btrim(l.postal_code), btrim(l.city),
       jsonb_build_object(
           'first_name', l.first_name, 'last_name', l.last_name, 'email', l.email,
           'phone', coalesce(l.normalized_phone, l.phone), 'address', l.address,
           'city', l.city, 'state', l.state, 'postal_code', l.postal_code,
           'consent', l.consent, 'consent_text', l.consent_text,
           'consent_certificate_url', l.consent_certificate_url) AS fields, l.raw_payload
FROM leads l JOIN offers o ON o.id = l.offer_id
WHERE l.id = $1 AND l.status = 'validated' AND l.auction_id IS NULL AND o.post_auction
"""


async def lead_for_post_auction(conn: Conn, lead_id: uuid.UUID) -> LeadForAuction | None:
    row = await conn.fetchrow(_LEAD_FOR_AUCTION, lead_id)
    return LeadForAuction(*row) if row else None


@dataclass(frozen=True, slots=True)
class ShownBid:
    buyer_id: uuid.UUID
    buyer_name: str
    kind: str
    outcome: str
    price_cents: int | None
    latency_ms: float | None
    detail: str | None
    rank: int | None
    bid_token_set: bool


@dataclass(frozen=True, slots=True)
class ShownAuction:
    id: uuid.UUID
    kind: str
    ping: dict[str, Any]
    accepted: bool
    price_cents: int | None
    payout_cents: int | None
    trace: list[dict[str, Any]]
    budget_ms: int
    duration_ms: float
    expires_at: datetime
    posted_at: datetime | None
    created_at: datetime
    bid_count: int


@dataclass(frozen=True, slots=True)
class AuctionWithBids(ShownAuction):
    """The auction a lead was sold by, with its bidders (the winner ranked 1)."""

    bids: list[ShownBid] = field(default_factory=list)


_AUCTION_OF_LEAD = """
SELECT a.id, a.kind, a.ping, a.accepted, a.price_cents, a.payout_cents, a.trace,
       a.budget_ms, a.duration_ms::float8, a.expires_at, a.posted_at, a.created_at,
       a.bid_count
FROM auctions a JOIN leads l ON l.auction_id = a.id WHERE l.id = $1
"""
_BIDS = """
SELECT ab.buyer_id, b.name, ab.kind, ab.outcome, ab.price_cents, ab.latency_ms,
       ab.detail, ab.rank, ab.bid_token IS NOT NULL
FROM auction_bids ab JOIN buyers b ON b.id = ab.buyer_id
WHERE ab.auction_id = $1
ORDER BY ab.rank NULLS LAST, ab.outcome, b.name
LIMIT 200
"""


async def auction_of_lead(conn: Conn, lead_id: uuid.UUID) -> AuctionWithBids | None:
    row = await conn.fetchrow(_AUCTION_OF_LEAD, lead_id)
    if row is None:
        return None
    bids = [ShownBid(*r) for r in await conn.fetch(_BIDS, row["id"])]
    return AuctionWithBids(**dict(row.items()), bids=bids)
