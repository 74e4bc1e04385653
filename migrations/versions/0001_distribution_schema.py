"""Distribution schema: every enum, table, constraint and index of DISTRIBUTION.md §2.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ENUMS = {
    "lead_status": (
        "received",
        "validated",
        "rejected",
        "routed",
        "delivered",
        "delivery_failed",
        "returned",
    ),
    "billing_status": ("unbilled", "billable", "invoiced", "credited", "non_billable"),
    "invoice_status": ("draft", "issued", "paid", "void"),
    "payment_method": ("prepaid", "card", "ach", "wire", "check"),
    "routing_strategy": ("priority", "rotation", "weighted"),
    "exclusive_fallback": ("fail_closed", "fallback_allowed"),
    "delivery_channel": ("webhook", "email"),
    "delivery_status": ("pending", "in_progress", "succeeded", "failed"),
    "attempt_outcome": ("success", "retryable_error", "permanent_error"),
}

# Every mutable table gets updated_at maintained by one trigger function.
MUTABLE_TABLES = (
    "markets",
    "verticals",
    "validation_policies",
    "routing_policies",
    "offers",
    "sources",
    "buyers",
    "buyer_offers",
    "buyer_service_areas",
    "offer_exclusivities",
    "leads",
    "deliveries",
    "invoices",
)

TABLES = r"""
CREATE TABLE markets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL CONSTRAINT markets_slug_key UNIQUE,
    name text NOT NULL,
    country char(2) NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
    timezone text NOT NULL DEFAULT 'UTC',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE verticals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL CONSTRAINT verticals_slug_key UNIQUE,
    name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE validation_policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    rules jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(rules) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE routing_policies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    strategy routing_strategy NOT NULL DEFAULT 'priority',
    exclusive_fallback exclusive_fallback NOT NULL DEFAULT 'fallback_allowed',
    config jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL CONSTRAINT offers_slug_key UNIQUE,
    name text NOT NULL,
    market_id uuid NOT NULL REFERENCES markets(id),
    vertical_id uuid NOT NULL REFERENCES verticals(id),
    validation_policy_id uuid NOT NULL REFERENCES validation_policies(id),
    routing_policy_id uuid NOT NULL REFERENCES routing_policies(id),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sources (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    offer_id uuid NOT NULL REFERENCES offers(id),
    source_key text NOT NULL CONSTRAINT sources_source_key_key UNIQUE
        CHECK (source_key = lower(btrim(source_key)) AND source_key <> ''),
    hostname text CHECK (hostname IS NULL OR hostname = lower(hostname)),
    path_prefix text CHECK (path_prefix IS NULL OR path_prefix LIKE '/%'),
    api_key_hash text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((hostname IS NULL) = (path_prefix IS NULL))
);

CREATE TABLE buyers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    timezone text NOT NULL DEFAULT 'UTC',
    delivery_channel delivery_channel NOT NULL DEFAULT 'webhook',
    webhook_url text,
    webhook_secret text,
    email text,
    schedule jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(schedule) = 'object'),
    daily_cap integer CHECK (daily_cap IS NULL OR daily_cap >= 0),
    hourly_cap integer CHECK (hourly_cap IS NULL OR hourly_cap >= 0),
    payment_method payment_method NOT NULL DEFAULT 'prepaid',
    currency char(3) NOT NULL DEFAULT 'USD',
    balance_cents bigint NOT NULL DEFAULT 0,
    min_balance_cents bigint NOT NULL DEFAULT 0,
    delivery_timeout_ms integer CHECK (delivery_timeout_ms IS NULL OR delivery_timeout_ms > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE buyer_offers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id uuid NOT NULL REFERENCES buyers(id),
    offer_id uuid NOT NULL REFERENCES offers(id),
    active boolean NOT NULL DEFAULT true,
    priority integer NOT NULL DEFAULT 100,
    weight integer NOT NULL DEFAULT 1 CONSTRAINT buyer_offers_weight_check CHECK (weight > 0),
    price_cents integer NOT NULL DEFAULT 0
        CONSTRAINT buyer_offers_price_cents_check CHECK (price_cents >= 0),
    daily_cap integer CHECK (daily_cap IS NULL OR daily_cap >= 0),
    hourly_cap integer CHECK (hourly_cap IS NULL OR hourly_cap >= 0),
    last_routed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT buyer_offers_buyer_id_offer_id_key UNIQUE (buyer_id, offer_id)
);

CREATE TABLE buyer_service_areas (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id uuid NOT NULL REFERENCES buyers(id) ON DELETE CASCADE,
    market_id uuid NOT NULL REFERENCES markets(id),
    postal_code text,
    city text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offer_exclusivities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    offer_id uuid NOT NULL REFERENCES offers(id),
    buyer_id uuid NOT NULL REFERENCES buyers(id),
    scope_type text NOT NULL CHECK (scope_type IN ('market', 'postal_code', 'city')),
    scope_value text NOT NULL,
    starts_at timestamptz NOT NULL DEFAULT now(),
    ends_at timestamptz,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

CREATE TABLE leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_id uuid NOT NULL REFERENCES sources(id),
    offer_id uuid NOT NULL REFERENCES offers(id),
    market_id uuid NOT NULL REFERENCES markets(id),
    vertical_id uuid NOT NULL REFERENCES verticals(id),
    idempotency_key text NOT NULL,
    idempotency_key_derived boolean NOT NULL DEFAULT false,
    status lead_status NOT NULL DEFAULT 'received',
    buyer_id uuid REFERENCES buyers(id),
    first_name text,
    last_name text,
    email text,
    normalized_email text,
    phone text,
    normalized_phone text,
    address text,
    city text,
    state text,
    postal_code text,
    consent boolean,
    consent_text text,
    consent_certificate_url text,
    ip inet,
    user_agent text,
    raw_payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    rejection_reasons text[] NOT NULL DEFAULT '{}',
    duplicate_of_lead_id uuid REFERENCES leads(id),
    price_cents integer,
    billing_status billing_status NOT NULL DEFAULT 'unbilled',
    validated_at timestamptz,
    routed_at timestamptz,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leads_source_id_idempotency_key_key UNIQUE (source_id, idempotency_key)
);

CREATE TABLE routing_decisions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id uuid NOT NULL REFERENCES leads(id),
    outcome text NOT NULL
        CHECK (outcome IN ('routed', 'no_route', 'no_route_exclusive_fail_closed')),
    buyer_id uuid REFERENCES buyers(id),
    strategy routing_strategy NOT NULL,
    candidates jsonb NOT NULL DEFAULT '[]'::jsonb,
    decided_at timestamptz NOT NULL DEFAULT now(),
    duration_ms double precision NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'routed') = (buyer_id IS NOT NULL))
);

CREATE TABLE deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id uuid NOT NULL REFERENCES leads(id) CONSTRAINT deliveries_lead_id_key UNIQUE,
    buyer_id uuid NOT NULL REFERENCES buyers(id),
    channel delivery_channel NOT NULL,
    status delivery_status NOT NULL DEFAULT 'pending',
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    idempotency_key text NOT NULL,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE delivery_attempts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    delivery_id uuid NOT NULL REFERENCES deliveries(id),
    attempt_no integer NOT NULL CHECK (attempt_no >= 1),
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    request_digest text NOT NULL,
    http_status integer,
    response_excerpt text CHECK (octet_length(response_excerpt) <= 1024),
    outcome attempt_outcome NOT NULL,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT delivery_attempts_delivery_id_attempt_no_key UNIQUE (delivery_id, attempt_no)
);

CREATE TABLE invoices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id uuid NOT NULL REFERENCES buyers(id),
    period_start date NOT NULL,
    period_end date NOT NULL,
    status invoice_status NOT NULL DEFAULT 'draft',
    currency char(3) NOT NULL DEFAULT 'USD',
    total_cents bigint NOT NULL DEFAULT 0,
    issued_at timestamptz,
    due_at timestamptz,
    paid_at timestamptz,
    payment_method payment_method NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end >= period_start)
);

CREATE TABLE invoice_line_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES leads(id) CONSTRAINT invoice_line_items_lead_id_key UNIQUE,
    amount_cents bigint NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

INDEXES = r"""
CREATE INDEX leads_email_dup_idx ON leads (normalized_email, offer_id, created_at);
CREATE INDEX leads_phone_dup_idx ON leads (normalized_phone, offer_id, created_at);
CREATE INDEX leads_status_idx ON leads (status);
CREATE INDEX leads_created_at_idx ON leads (created_at);
CREATE INDEX buyer_offers_offer_active_idx ON buyer_offers (offer_id) WHERE active;
CREATE INDEX buyer_service_areas_market_postal_idx ON buyer_service_areas (market_id, postal_code);
CREATE INDEX buyer_service_areas_buyer_idx ON buyer_service_areas (buyer_id, market_id);
CREATE INDEX deliveries_status_next_attempt_idx ON deliveries (status, next_attempt_at);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id);
CREATE INDEX routing_decisions_lead_idx ON routing_decisions (lead_id, decided_at);
CREATE INDEX sources_host_idx ON sources (hostname) WHERE active AND hostname IS NOT NULL;
CREATE INDEX offer_exclusivities_offer_idx ON offer_exclusivities (offer_id) WHERE active;
CREATE INDEX invoices_buyer_period_idx ON invoices (buyer_id, period_start);
"""


def upgrade() -> None:
    for name, values in ENUMS.items():
        labels = ", ".join(f"'{v}'" for v in values)
        op.execute(f"CREATE TYPE {name} AS ENUM ({labels})")
    run_script(TABLES)
    run_script(INDEXES)
    op.execute(
        """
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END $$;
        """
    )
    for table in MUTABLE_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    tables = (
        "invoice_line_items",
        "invoices",
        "delivery_attempts",
        "deliveries",
        "routing_decisions",
        "leads",
        "offer_exclusivities",
        "buyer_service_areas",
        "buyer_offers",
        "buyers",
        "sources",
        "offers",
        "routing_policies",
        "validation_policies",
        "verticals",
        "markets",
    )
    for table in tables:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS set_updated_at()")
    for name in ENUMS:
        op.execute(f"DROP TYPE IF EXISTS {name}")
