"""Buyer integrations (issue 16): each buyer's posting format and response rules.

- buyers.integration: method, URL, format, field templates, headers, auth (JSON; NULL:
  the signed canonical JSON of before); buyers.integration_secret: the credential the
  auth uses, encrypted, write-only; buyers.response_rules: how to read its answer (NULL:
  any 2xx is accepted, as before). buyer_offers.integration overrides per offer.
- A buyer may refuse a lead in a 200: attempts record `rejected`; the delivery keeps the
  reason, and on acceptance the buyer's reference and the price it reports.
- The waterfall: lead_rejections, delivery_attempts.buyer_id, offers.max_buyer_attempts.
- Buyer health: a buyer pauses itself after N failed attempts in a row.

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
    ADD COLUMN integration jsonb
        CHECK (integration IS NULL OR jsonb_typeof(integration) = 'object'),
    ADD COLUMN integration_secret text,
    ADD COLUMN response_rules jsonb
        CHECK (response_rules IS NULL OR jsonb_typeof(response_rules) = 'object');
ALTER TABLE buyer_offers
    ADD COLUMN integration jsonb
        CHECK (integration IS NULL OR jsonb_typeof(integration) = 'object');
ALTER TABLE deliveries
    ADD COLUMN buyer_reference text,
    ADD COLUMN buyer_price_cents bigint,
    ADD COLUMN reject_reason text;
-- The waterfall: a rejected lead goes to the next buyer on the same delivery row; each
-- attempt says which buyer it went to, and each refusal is kept (routing skips those
-- buyers). An offer bounds how many buyers a lead is offered to.
ALTER TABLE delivery_attempts ADD COLUMN buyer_id uuid REFERENCES buyers (id);
CREATE INDEX delivery_attempts_buyer_idx ON delivery_attempts (buyer_id, started_at DESC)
    WHERE buyer_id IS NOT NULL;
CREATE TABLE lead_rejections (
    lead_id uuid NOT NULL REFERENCES leads (id),
    buyer_id uuid NOT NULL REFERENCES buyers (id),
    reason text,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, buyer_id)
);
ALTER TABLE offers ADD COLUMN max_buyer_attempts integer NOT NULL DEFAULT 3
    CHECK (max_buyer_attempts BETWEEN 1 AND 20);
-- Buyer health: after pause_after_failures failed attempts in a row (0: never), or an
-- error rate over its last 20 attempts above pause_error_rate (NULL: off), the buyer
-- pauses itself, with the reason; an operator resumes it.
ALTER TABLE buyers
    ADD COLUMN pause_after_failures integer NOT NULL DEFAULT 10
        CHECK (pause_after_failures BETWEEN 0 AND 10000),
    ADD COLUMN pause_error_rate numeric(5, 4)
        CHECK (pause_error_rate IS NULL OR (pause_error_rate > 0 AND pause_error_rate <= 1)),
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN paused_reason text,
    ADD COLUMN paused_at timestamptz,
    -- Resume itself when a GET of health_url answers 2xx (checked every minute).
    ADD COLUMN auto_resume boolean NOT NULL DEFAULT false,
    ADD COLUMN health_url text;
"""


def upgrade() -> None:
    # PostgreSQL 12+ adds an enum value inside a transaction (usable once committed).
    run_script("ALTER TYPE attempt_outcome ADD VALUE IF NOT EXISTS 'rejected';" + SCRIPT)


def downgrade() -> None:
    run_script(
        """
ALTER TABLE buyers DROP COLUMN health_url, DROP COLUMN auto_resume,
    DROP COLUMN paused_at, DROP COLUMN paused_reason,
    DROP COLUMN consecutive_failures, DROP COLUMN pause_error_rate,
    DROP COLUMN pause_after_failures;
ALTER TABLE offers DROP COLUMN max_buyer_attempts;
DROP TABLE lead_rejections;
DROP INDEX delivery_attempts_buyer_idx;
ALTER TABLE delivery_attempts DROP COLUMN buyer_id;
ALTER TABLE deliveries DROP COLUMN reject_reason, DROP COLUMN buyer_price_cents,
    DROP COLUMN buyer_reference;
ALTER TABLE buyer_offers DROP COLUMN integration;
ALTER TABLE buyers DROP COLUMN response_rules, DROP COLUMN integration_secret,
    DROP COLUMN integration;
"""
    )
