"""Billing (DISTRIBUTION.md §8): a double-entry ledger, reservations, invoices, returns.

* ledger_transactions / ledger_entries: every movement of a buyer's prepaid funds is a
  transaction whose entries sum to zero across accounts (`buyer:<id>`,
  `platform:revenue`, `platform:topups`, `platform:adjustments`). `buyers.balance_cents`
  is a projection kept in the same transaction as each posting; a test checks it equals
  the sum of the buyer account's entries.
* buyers.reserved_cents: routing a lead to a prepaid buyer reserves its price in the
  routing commit itself, so concurrent routings can never promise more than the balance
  above min_balance_cents; delivery turns the reservation into a debit, failure
  releases it.
* offers.return_window_days, buyers.max_return_rate, buyers.api_key_hash (buyers file
  returns with their own key); lead_returns: one return per lead, pending → accepted /
  rejected.
* invoices: one non-void invoice per buyer and period.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE buyers
    ADD COLUMN reserved_cents bigint NOT NULL DEFAULT 0 CHECK (reserved_cents >= 0),
    ADD COLUMN max_return_rate numeric(5, 4) CHECK (max_return_rate BETWEEN 0 AND 1),
    ADD COLUMN api_key_hash text;
ALTER TABLE offers ADD COLUMN return_window_days integer NOT NULL DEFAULT 7
    CHECK (return_window_days >= 0);

CREATE TABLE ledger_transactions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('delivery_debit', 'return_credit', 'top_up', 'adjustment')),
    buyer_id uuid NOT NULL REFERENCES buyers (id),
    lead_id uuid REFERENCES leads (id),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    currency char(3) NOT NULL,
    description text NOT NULL DEFAULT '',
    idempotency_key text UNIQUE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transactions_buyer_idx ON ledger_transactions (buyer_id, created_at);

CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    account text NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents <> 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, created_at);
CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);

-- Double entry: at commit, every transaction's entries sum to zero.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries
        WHERE transaction_id = NEW.transaction_id) <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

CREATE TABLE lead_returns (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id uuid NOT NULL UNIQUE REFERENCES leads (id),
    buyer_id uuid NOT NULL REFERENCES buyers (id),
    reason text NOT NULL,
    note text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
    decision_note text,
    requested_via text NOT NULL CHECK (requested_via IN ('buyer', 'admin')),
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_by uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_at timestamptz,
    credit_transaction_id uuid REFERENCES ledger_transactions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_returns_status_idx ON lead_returns (status, created_at);
CREATE TRIGGER lead_returns_set_updated_at BEFORE UPDATE ON lead_returns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE UNIQUE INDEX invoices_buyer_period_live ON invoices (buyer_id, period_start)
    WHERE status <> 'void';
"""


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS invoices_buyer_period_live")
    op.execute("DROP TABLE IF EXISTS lead_returns")
    op.execute("DROP TABLE IF EXISTS ledger_entries")
    op.execute("DROP TABLE IF EXISTS ledger_transactions")
    op.execute("DROP FUNCTION IF EXISTS ledger_check_balanced()")
    op.execute("ALTER TABLE offers DROP COLUMN IF EXISTS return_window_days")
    for column in ("reserved_cents", "max_return_rate", "api_key_hash"):
        op.execute(f"ALTER TABLE buyers DROP COLUMN IF EXISTS {column}")
