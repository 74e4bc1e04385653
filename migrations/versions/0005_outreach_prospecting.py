"""Outreach, first half (OUTREACH.md flows 1-2), in schema `outreach`.

* icps: the filters a prospect search runs with.
* search_runs / search_results: one run per (icp, provider, normalized params, UTC day)
  via `dedupe_key`; every provider record kept with its mapping and the lead it became.
* leads: unique normalized email; prospects found without an email (Apollo's people
  search hides them) are unique per (source, source_ref) until enrichment finds one.
* enrichment_runs: what an enrichment changed, field by field.
* job_executions: every background job with its domain links, status, attempts,
  payload, result and error; `dedupe_key` is unique among queued/running executions.
* public.idempotency_keys: replay store for mutating POSTs with an Idempotency-Key.

Users, sessions and the audit log are shared with the distribution side (decision 0008).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCRIPT = """
CREATE SCHEMA outreach;

CREATE TABLE outreach.icps (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    titles text[] NOT NULL DEFAULT '{}',
    seniorities text[] NOT NULL DEFAULT '{}',
    locations text[] NOT NULL DEFAULT '{}',
    industries text[] NOT NULL DEFAULT '{}',
    company_sizes text[] NOT NULL DEFAULT '{}',
    keywords text NOT NULL DEFAULT '',
    domains text[] NOT NULL DEFAULT '{}',
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outreach.job_executions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    result jsonb,
    error text,
    dedupe_key text,
    lead_id uuid,
    icp_id uuid,
    search_run_id uuid,
    next_attempt_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX job_executions_active_dedupe_key ON outreach.job_executions (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX job_executions_lead_idx ON outreach.job_executions (lead_id, created_at);
CREATE INDEX job_executions_status_idx ON outreach.job_executions (status, created_at);

CREATE TABLE outreach.search_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    icp_id uuid NOT NULL REFERENCES outreach.icps (id) ON DELETE CASCADE,
    provider text NOT NULL,
    params jsonb NOT NULL,
    dedupe_key text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    job_id uuid REFERENCES outreach.job_executions (id),
    results_count integer NOT NULL DEFAULT 0,
    leads_created integer NOT NULL DEFAULT 0,
    leads_updated integer NOT NULL DEFAULT 0,
    pages_fetched integer NOT NULL DEFAULT 0,
    total_available integer,
    error text,
    started_at timestamptz,
    finished_at timestamptz,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_runs_icp_idx ON outreach.search_runs (icp_id, created_at);

CREATE TABLE outreach.leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    icp_id uuid REFERENCES outreach.icps (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'processing', 'enriched', 'failed')),
    email text,
    normalized_email text CHECK (normalized_email = lower(normalized_email)),
    email_status text NOT NULL DEFAULT 'unknown',
    first_name text,
    last_name text,
    title text,
    seniority text,
    phone text,
    linkedin_url text,
    company text,
    company_domain text,
    company_size text,
    industry text,
    city text,
    state text,
    country text,
    source text NOT NULL,
    source_ref text,
    do_not_contact boolean NOT NULL DEFAULT false,
    enrichment_data jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    enriched_at timestamptz,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX leads_normalized_email_key ON outreach.leads (normalized_email);
CREATE UNIQUE INDEX leads_source_ref_key ON outreach.leads (source, source_ref)
    WHERE source_ref IS NOT NULL;
CREATE INDEX leads_icp_idx ON outreach.leads (icp_id, created_at);
CREATE INDEX leads_created_idx ON outreach.leads (created_at, id);
CREATE INDEX leads_status_idx ON outreach.leads (status);

CREATE TABLE outreach.search_results (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id uuid NOT NULL REFERENCES outreach.search_runs (id) ON DELETE CASCADE,
    provider_ref text NOT NULL,
    payload jsonb NOT NULL,
    mapped jsonb NOT NULL,
    lead_id uuid REFERENCES outreach.leads (id) ON DELETE SET NULL,
    outcome text NOT NULL CHECK (outcome IN ('created', 'updated', 'unchanged')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, provider_ref)
);

CREATE TABLE outreach.enrichment_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id uuid NOT NULL REFERENCES outreach.leads (id) ON DELETE CASCADE,
    provider text NOT NULL,
    overwrite boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    outcome text,
    changes jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    job_id uuid REFERENCES outreach.job_executions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrichment_runs_lead_idx ON outreach.enrichment_runs (lead_id, created_at);

CREATE TABLE idempotency_keys (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    request_hash text NOT NULL,
    response_status integer NOT NULL,
    response_body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, key)
);
"""

MUTABLE = (
    "outreach.icps",
    "outreach.job_executions",
    "outreach.search_runs",
    "outreach.leads",
    "outreach.enrichment_runs",
)


def upgrade() -> None:
    run_script(SCRIPT)
    for table in MUTABLE:
        name = table.replace(".", "_")
        op.execute(
            f"CREATE TRIGGER {name}_set_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_keys")
    op.execute("DROP SCHEMA IF EXISTS outreach CASCADE")
