"""Cap counters on the capped rows themselves (DISTRIBUTION.md §6 step 4).

`buyers` (buyer-wide caps) and `buyer_offers` (per-offer caps) carry the count of
the current local day and hour in the buyer's timezone. Routing takes a unit with
a conditional UPDATE of that row (`count < cap`, reset when the window changed),
so concurrent decisions serialize on the row and never exceed a cap. Decision
0004 explains why not a separate counter table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTER_COLUMNS = """
    ADD COLUMN cap_day_window timestamp,
    ADD COLUMN cap_day_count integer NOT NULL DEFAULT 0 CHECK (cap_day_count >= 0),
    ADD COLUMN cap_hour_window timestamp,
    ADD COLUMN cap_hour_count integer NOT NULL DEFAULT 0 CHECK (cap_hour_count >= 0)
"""


def upgrade() -> None:
    op.execute(f"ALTER TABLE buyers {COUNTER_COLUMNS}")
    op.execute(f"ALTER TABLE buyer_offers {COUNTER_COLUMNS}")
    # Routing reads every enrolment of an offer, active or not (inactive ones are traced
    # as not_enrolled); the spec's partial index covers only the active ones.
    op.execute("CREATE INDEX buyer_offers_offer_all_idx ON buyer_offers (offer_id, buyer_id)")
    # Lets one statement veto itself: raising rolls back every CTE in it, which is how a
    # routing commit undoes what it wrote when the lead moved or a cap filled.
    op.execute(
        """
        CREATE FUNCTION leadflood_abort(reason text) RETURNS integer
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING ERRCODE = 'LF001', MESSAGE = reason;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS leadflood_abort(text)")
    op.execute("DROP INDEX IF EXISTS buyer_offers_offer_all_idx")
    for table in ("buyers", "buyer_offers"):
        for column in ("cap_day_window", "cap_day_count", "cap_hour_window", "cap_hour_count"):
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")
