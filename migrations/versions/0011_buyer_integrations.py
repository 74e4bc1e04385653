"""Buyer integrations (issue 16): each buyer's posting format and response rules.

- buyers.integration: method, URL, format, field templates, headers, auth (JSON; NULL:
  the signed canonical JSON of before); buyers.integration_secret: the credential the
  auth uses, encrypted, write-only; buyers.response_rules: how to read its answer (NULL:
  any 2xx is accepted, as before). buyer_offers.integration overrides per offer.
- A buyer may refuse a lead in a 200: attempts record `rejected`; the delivery keeps the
  reason, and on acceptance the buyer's reference and the price it reports.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE buyers
    ADD COLUMN integration jsonb CHECK (integration IS NULL OR jsonb_typeof(integration) = 'object'),
    ADD COLUMN integration_secret text,
    ADD COLUMN response_rules jsonb
        CHECK (response_rules IS NULL OR jsonb_typeof(response_rules) = 'object');
ALTER TABLE buyer_offers
    ADD COLUMN integration jsonb CHECK (integration IS NULL OR jsonb_typeof(integration) = 'object');
ALTER TABLE deliveries
    ADD COLUMN buyer_reference text,
    ADD COLUMN buyer_price_cents bigint,
    ADD COLUMN reject_reason text;
"""


def upgrade() -> None:
    # PostgreSQL 12+ adds an enum value inside a transaction (usable once committed).
    run_script("ALTER TYPE attempt_outcome ADD VALUE IF NOT EXISTS 'rejected';" + SCRIPT)


def downgrade() -> None:
    run_script(
        """
ALTER TABLE deliveries DROP COLUMN reject_reason, DROP COLUMN buyer_price_cents,
    DROP COLUMN buyer_reference;
ALTER TABLE buyer_offers DROP COLUMN integration;
ALTER TABLE buyers DROP COLUMN response_rules, DROP COLUMN integration_secret,
    DROP COLUMN integration;
"""
    )
