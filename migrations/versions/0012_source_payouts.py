"""Source payouts (issue 17, first part): what a source earns for a lead that sells.

- sources.payout_type: none | fixed (payout_cents per sold lead) | revenue_share
  (payout_share of the sale price). A source posts to one offer, so this is per
  source-offer too.
- The payout is a ledger transaction of its own (`source_payout`: platform:payouts +P,
  source:<id> -P, a payable to the source), posted in the delivery's success statement,
  and reversed (`payout_reversal`) when a return of that lead is accepted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE sources
    ADD COLUMN payout_type text NOT NULL DEFAULT 'none'
        CHECK (payout_type IN ('none', 'fixed', 'revenue_share')),
    ADD COLUMN payout_cents integer CHECK (payout_cents >= 0),
    ADD COLUMN payout_share numeric(5, 4) CHECK (payout_share > 0 AND payout_share <= 1);
ALTER TABLE ledger_transactions ALTER COLUMN buyer_id DROP NOT NULL;
ALTER TABLE ledger_transactions ADD COLUMN source_id uuid REFERENCES sources (id);
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
    CHECK (kind IN ('delivery_debit', 'return_credit', 'top_up', 'adjustment',
                    'source_payout', 'payout_reversal'));
CREATE INDEX ledger_transactions_source_idx ON ledger_transactions (source_id, created_at)
    WHERE source_id IS NOT NULL;
"""


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    run_script(
        """
DROP INDEX ledger_transactions_source_idx;
DELETE FROM ledger_entries WHERE transaction_id IN (
    SELECT id FROM ledger_transactions WHERE kind IN ('source_payout', 'payout_reversal'));
DELETE FROM ledger_transactions WHERE kind IN ('source_payout', 'payout_reversal');
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
    CHECK (kind IN ('delivery_debit', 'return_credit', 'top_up', 'adjustment'));
ALTER TABLE ledger_transactions DROP COLUMN source_id;
ALTER TABLE ledger_transactions ALTER COLUMN buyer_id SET NOT NULL;
ALTER TABLE sources DROP COLUMN payout_share, DROP COLUMN payout_cents,
    DROP COLUMN payout_type;
"""
    )
