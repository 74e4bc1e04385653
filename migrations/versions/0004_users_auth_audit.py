"""Users, refresh-token families, login attempts, the audit log; delivery rounds.

* `refresh_tokens` stores only a hash of each opaque token. Every refresh rotates the
  token inside its `family_id`; presenting a token that was already used revokes the
  whole family (reuse detection).
* `login_attempts` backs the login rate limit across processes.
* `audit_log` gets one row per privileged change, with who, what and the changed fields.
* `deliveries.round_start`: a manual re-delivery starts a fresh round of the retry
  schedule after the attempts already made (attempt numbers stay unique per delivery).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCRIPT = """
CREATE TYPE user_role AS ENUM ('admin', 'manager', 'agent');

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    role user_role NOT NULL,
    password_hash text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    token_hash text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE login_attempts (
    id bigserial PRIMARY KEY,
    email text NOT NULL,
    ip inet,
    succeeded boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, created_at);
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, created_at);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    actor text NOT NULL,
    action text NOT NULL,
    entity_type text NOT NULL,
    entity_id uuid,
    changes jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip inet,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, created_at);
CREATE INDEX audit_log_created_idx ON audit_log (created_at);

ALTER TABLE deliveries ADD COLUMN round_start integer NOT NULL DEFAULT 0
    CHECK (round_start >= 0);
"""


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries DROP COLUMN IF EXISTS round_start")
    for table in ("audit_log", "login_attempts", "refresh_tokens", "users"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP TYPE IF EXISTS user_role")
