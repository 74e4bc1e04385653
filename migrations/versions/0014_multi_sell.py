"""Multi-sell (issue 17): a lead sold to several buyers as a shared lead.

- offers.max_sales: up to how many buyers a lead is sold to (1: exclusive only, as before).
- buyer_offers.shared_price_cents: what the buyer pays for a shared lead (NULL: it buys
  exclusive leads only; price_cents stays its exclusive price).
- leads.sold_from_lead_id: each further sale of a shared lead is a lead row of its own
  (same received lead, its own buyer, price, delivery, bill and return), naming the lead
  it was sold from.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
ALTER TABLE offers ADD COLUMN max_sales integer NOT NULL DEFAULT 1
    CHECK (max_sales BETWEEN 1 AND 10);
ALTER TABLE buyer_offers ADD COLUMN shared_price_cents bigint
    CHECK (shared_price_cents IS NULL OR shared_price_cents >= 0);
ALTER TABLE leads ADD COLUMN sold_from_lead_id uuid REFERENCES leads (id);
CREATE INDEX leads_sold_from_idx ON leads (sold_from_lead_id)
    WHERE sold_from_lead_id IS NOT NULL;
"""
    )


def downgrade() -> None:
    run_script(
        """
DROP INDEX leads_sold_from_idx;
ALTER TABLE leads DROP COLUMN sold_from_lead_id;
ALTER TABLE buyer_offers DROP COLUMN shared_price_cents;
ALTER TABLE offers DROP COLUMN max_sales;
"""
    )
