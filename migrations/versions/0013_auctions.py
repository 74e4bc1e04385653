"""Ping-post auctions (issue 17): pings, bids, posts; post auctions; the margin payout.

- offers: ping_fields (what a ping may carry: no contact details), ping_budget_ms (the
  whole auction's time budget), ping_ttl_seconds (how long a ping's bids stand),
  post_auction (a direct post runs an auction too).
- buyers: ping_integration / ping_rules / ping_timeout_ms: how to ask this buyer for a
  bid and read its answer (accepted, price, bid token); a buyer without one bids its
  contract price (buyer_offers.price_cents).
- auctions: one per ping (or post auction), with its bidders in auction_bids; a posted
  ping names its lead, and the lead its auction.
- sources.payout_type 'bid_margin': the winning price less payout_cents.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE offers
    ADD COLUMN ping_fields text[] NOT NULL DEFAULT '{postal_code,state,city}',
    ADD COLUMN ping_budget_ms integer NOT NULL DEFAULT 300
        CHECK (ping_budget_ms BETWEEN 10 AND 10000),
    ADD COLUMN ping_ttl_seconds integer NOT NULL DEFAULT 120
        CHECK (ping_ttl_seconds BETWEEN 5 AND 86400),
    ADD COLUMN post_auction boolean NOT NULL DEFAULT false;
ALTER TABLE buyers
    ADD COLUMN ping_integration jsonb
        CHECK (ping_integration IS NULL OR jsonb_typeof(ping_integration) = 'object'),
    ADD COLUMN ping_rules jsonb
        CHECK (ping_rules IS NULL OR jsonb_typeof(ping_rules) = 'object'),
    ADD COLUMN ping_timeout_ms integer NOT NULL DEFAULT 250
        CHECK (ping_timeout_ms BETWEEN 10 AND 10000);
ALTER TABLE sources DROP CONSTRAINT sources_payout_type_check;
ALTER TABLE sources ADD CONSTRAINT sources_payout_type_check
    CHECK (payout_type IN ('none', 'fixed', 'revenue_share', 'bid_margin'));

CREATE TABLE auctions (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('ping', 'post')),
    source_id uuid NOT NULL REFERENCES sources (id),
    offer_id uuid NOT NULL REFERENCES offers (id),
    market_id uuid NOT NULL REFERENCES markets (id),
    ping jsonb NOT NULL,  -- the partial lead the bidders saw (a post auction: none)
    accepted boolean NOT NULL,
    price_cents bigint,   -- the best bid
    payout_cents bigint,  -- what the source was offered
    trace jsonb NOT NULL DEFAULT '[]',  -- each buyer not asked, and why
    budget_ms integer NOT NULL,
    duration_ms numeric(10, 3) NOT NULL,
    expires_at timestamptz NOT NULL,
    lead_id uuid UNIQUE REFERENCES leads (id),
    posted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    bid_count integer NOT NULL DEFAULT 0  -- standing bids (the best 100 fixed ones kept)
);
CREATE INDEX auctions_source_idx ON auctions (source_id, created_at DESC);
-- A ping judges every buyer of its offer (a thousand fixed-price contracts bid at once):
-- its bids are written by one binary COPY in the auction's own unit of work, so they
-- carry no foreign keys (a per-row check doubled a ping's time) and one index. Buyers
-- are never deleted, and bids are never written apart from their auction.
CREATE TABLE auction_bids (
    auction_id uuid NOT NULL,
    buyer_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('fixed', 'ping')),
    outcome text NOT NULL CHECK (outcome IN ('bid', 'no_bid', 'timeout', 'error')),
    price_cents bigint,
    bid_token text,
    latency_ms double precision,  -- NULL: not asked (a fixed-price contract)
    detail text,
    rank integer,  -- 1 = the winning bid; NULL without a bid
    PRIMARY KEY (auction_id, buyer_id)
);
ALTER TABLE leads ADD COLUMN auction_id uuid REFERENCES auctions (id);
-- Which of an offer's buyers are asked (the few), found without a lookup per contract.
CREATE INDEX buyers_pinged_idx ON buyers (id) WHERE ping_integration IS NOT NULL;
-- A ping may carry the consumer's email and phone hashed (SHA-256 hex of the normalized
-- value): a buyer who bought that consumer on the offer does not bid. Immutable: the
-- database encoding (UTF8) is fixed, so the digest of a text never changes.
CREATE FUNCTION leadflood_contact_hash(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT encode(sha256(convert_to(value, 'UTF8')), 'hex') $$;
CREATE INDEX leads_email_hash_idx ON leads (leadflood_contact_hash(normalized_email), offer_id)
    WHERE buyer_id IS NOT NULL;
CREATE INDEX leads_phone_hash_idx ON leads (leadflood_contact_hash(normalized_phone), offer_id)
    WHERE buyer_id IS NOT NULL;
"""


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    run_script(
        """
DROP INDEX buyers_pinged_idx;
DROP INDEX leads_phone_hash_idx;
DROP INDEX leads_email_hash_idx;
DROP FUNCTION leadflood_contact_hash(text);
ALTER TABLE leads DROP COLUMN auction_id;
DROP TABLE auction_bids;
DROP TABLE auctions;
UPDATE sources SET payout_type = 'none' WHERE payout_type = 'bid_margin';
ALTER TABLE sources DROP CONSTRAINT sources_payout_type_check;
ALTER TABLE sources ADD CONSTRAINT sources_payout_type_check
    CHECK (payout_type IN ('none', 'fixed', 'revenue_share'));
ALTER TABLE buyers DROP COLUMN ping_timeout_ms, DROP COLUMN ping_rules,
    DROP COLUMN ping_integration;
ALTER TABLE offers DROP COLUMN post_auction, DROP COLUMN ping_ttl_seconds,
    DROP COLUMN ping_budget_ms, DROP COLUMN ping_fields;
"""
    )
