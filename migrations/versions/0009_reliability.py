"""Reliability (issue 14): leased delivery attempts, unsold leads, offer shelf life.

- A delivery attempt is recorded when it starts (outcome NULL) and completed after the
  send; `deliveries.lease_expires_at` bounds how long a claimed attempt may stay open
  before another worker may take the delivery over (a crash mid-send).
- `unsold`: a lead that found no buyer within its offer's shelf life.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE deliveries ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE delivery_attempts ALTER COLUMN finished_at DROP NOT NULL;
ALTER TABLE delivery_attempts ALTER COLUMN duration_ms DROP NOT NULL;
ALTER TABLE delivery_attempts ALTER COLUMN outcome DROP NOT NULL;
ALTER TABLE offers ADD COLUMN shelf_life_minutes integer NOT NULL DEFAULT 15
    CHECK (shelf_life_minutes BETWEEN 0 AND 43200);
ALTER TABLE leads ADD COLUMN unsold_at timestamptz;
-- An Idempotency-Key is claimed (no response yet) before its work runs, so no connection
-- is held while the work takes its own.
ALTER TABLE idempotency_keys ALTER COLUMN response_status DROP NOT NULL;
ALTER TABLE idempotency_keys ALTER COLUMN response_body DROP NOT NULL;
CREATE INDEX leads_validated_idx ON leads (created_at) WHERE status = 'validated';
CREATE INDEX deliveries_open_idx ON deliveries (lead_id) WHERE status IN ('pending', 'in_progress');
CREATE INDEX deliveries_in_flight_idx ON deliveries (buyer_id, lease_expires_at)
    WHERE status = 'in_progress';

-- May one more attempt go to this buyer now? Claims for one buyer serialize on a
-- transaction lock, and the count runs after it is granted: a statement of its own
-- inside the function, so it sees every claim committed meanwhile (READ COMMITTED takes
-- a new snapshot per statement). Exact without a counter row that every record would
-- have to update (a hot row held through each commit's flush).
CREATE FUNCTION leadflood_delivery_in_flight(p_buyer uuid)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM deliveries
    WHERE buyer_id = p_buyer AND status = 'in_progress' AND lease_expires_at > now()
$$;

CREATE FUNCTION leadflood_delivery_slot_free(p_buyer uuid, p_limit integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_buyer::text, 14));
    RETURN leadflood_delivery_in_flight(p_buyer) < p_limit;
END $$;
"""


def upgrade() -> None:
    # PostgreSQL 12+ adds an enum value inside a transaction (it is usable once committed).
    run_script("ALTER TYPE lead_status ADD VALUE IF NOT EXISTS 'unsold';" + SCRIPT)


def downgrade() -> None:
    run_script(
        """
DROP FUNCTION IF EXISTS leadflood_delivery_slot_free(uuid, integer);
DROP FUNCTION IF EXISTS leadflood_delivery_in_flight(uuid);
DROP INDEX IF EXISTS deliveries_in_flight_idx;
DROP INDEX IF EXISTS deliveries_open_idx;
DROP INDEX IF EXISTS leads_validated_idx;
ALTER TABLE leads DROP COLUMN unsold_at;
ALTER TABLE offers DROP COLUMN shelf_life_minutes;
ALTER TABLE deliveries DROP COLUMN lease_expires_at;
"""
    )
