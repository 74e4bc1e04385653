"""Outreach, second half (OUTREACH.md flows 3-5): sequences, messages, inbox.

* mailboxes: sender identities with a daily sending limit and a send window in their
  own timezone; mailbox_daily_counts takes one unit per sent email atomically.
* sequences / sequence_steps / enrollments (unique lead + sequence).
* messages: one row per outbound step (unique enrollment + step: a step is sent once),
  manual reply or inbound message; message_delivery_attempts: every send attempt.
* conversations: one per lead and channel, with unread state.
* suppressions: unsubscribed, bounced or manually blocked addresses.
* inbound_events: provider event ids already processed (webhook redelivery is a no-op).
* sink_messages: what the built-in catch-all SMTP sink caught (local development).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCRIPT = """
CREATE TABLE outreach.mailboxes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    from_email text NOT NULL UNIQUE,
    from_name text NOT NULL DEFAULT '',
    timezone text NOT NULL DEFAULT 'UTC',
    daily_limit integer NOT NULL DEFAULT 200 CHECK (daily_limit >= 0),
    window_start time NOT NULL DEFAULT '08:00',
    window_end time NOT NULL DEFAULT '18:00',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (window_end > window_start)
);

CREATE TABLE outreach.mailbox_daily_counts (
    mailbox_id uuid NOT NULL REFERENCES outreach.mailboxes (id) ON DELETE CASCADE,
    day date NOT NULL,
    sent integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
    PRIMARY KEY (mailbox_id, day)
);

CREATE TABLE outreach.sequences (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
    mailbox_id uuid REFERENCES outreach.mailboxes (id),
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outreach.sequence_steps (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sequence_id uuid NOT NULL REFERENCES outreach.sequences (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 1),
    channel text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'sms')),
    delay_minutes integer NOT NULL DEFAULT 0 CHECK (delay_minutes >= 0),
    subject_template text NOT NULL DEFAULT '',
    body_template text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sequence_id, position)
);

CREATE TABLE outreach.enrollments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sequence_id uuid NOT NULL REFERENCES outreach.sequences (id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES outreach.leads (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'completed', 'stopped')),
    next_position integer NOT NULL DEFAULT 1,
    next_step_at timestamptz,
    stop_reason text,
    enrolled_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (lead_id, sequence_id)
);
CREATE INDEX enrollments_due_idx ON outreach.enrollments (next_step_at) WHERE status = 'active';

CREATE TABLE outreach.conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id uuid NOT NULL REFERENCES outreach.leads (id) ON DELETE CASCADE,
    channel text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'sms')),
    subject text NOT NULL DEFAULT '',
    unread_count integer NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (lead_id, channel)
);
CREATE INDEX conversations_recent_idx ON outreach.conversations (last_message_at DESC);

CREATE TABLE outreach.messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES outreach.conversations (id) ON DELETE CASCADE,
    lead_id uuid NOT NULL REFERENCES outreach.leads (id) ON DELETE CASCADE,
    enrollment_id uuid REFERENCES outreach.enrollments (id) ON DELETE SET NULL,
    step_id uuid REFERENCES outreach.sequence_steps (id) ON DELETE SET NULL,
    mailbox_id uuid REFERENCES outreach.mailboxes (id),
    direction text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    channel text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'sms')),
    kind text NOT NULL CHECK (kind IN ('sequence', 'manual', 'reply', 'auto_reply', 'bounce')),
    status text NOT NULL
        CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'bounced', 'received')),
    from_address text,
    to_address text,
    subject text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    message_id_header text,
    in_reply_to text,
    provider_message_id text,
    error text,
    job_id uuid REFERENCES outreach.job_executions (id),
    sent_at timestamptz,
    received_at timestamptz,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_step_once ON outreach.messages (enrollment_id, step_id)
    WHERE enrollment_id IS NOT NULL AND step_id IS NOT NULL;
CREATE UNIQUE INDEX messages_message_id_key ON outreach.messages (message_id_header)
    WHERE message_id_header IS NOT NULL;
CREATE INDEX messages_conversation_idx ON outreach.messages (conversation_id, created_at);
CREATE INDEX messages_created_idx ON outreach.messages (created_at);

CREATE TABLE outreach.message_delivery_attempts (
    id bigserial PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES outreach.messages (id) ON DELETE CASCADE,
    attempt_no integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('success', 'retryable_error', 'permanent_error')),
    error text,
    response text,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, attempt_no)
);

CREATE TABLE outreach.suppressions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    address text NOT NULL UNIQUE CHECK (address = lower(address)),
    reason text NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'manual')),
    detail text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outreach.inbound_events (
    provider text NOT NULL,
    event_id text NOT NULL,
    message_id uuid,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE outreach.sink_messages (
    id bigserial PRIMARY KEY,
    mail_from text NOT NULL,
    rcpt_to text[] NOT NULL,
    subject text NOT NULL DEFAULT '',
    message_id_header text,
    raw text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
"""

MUTABLE = (
    "outreach.mailboxes",
    "outreach.sequences",
    "outreach.sequence_steps",
    "outreach.enrollments",
    "outreach.conversations",
    "outreach.messages",
)


def upgrade() -> None:
    run_script(SCRIPT)
    for table in MUTABLE:
        op.execute(
            f"CREATE TRIGGER {table.replace('.', '_')}_set_updated_at BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    for table in (
        "sink_messages",
        "inbound_events",
        "suppressions",
        "message_delivery_attempts",
        "messages",
        "conversations",
        "enrollments",
        "sequence_steps",
        "sequences",
        "mailbox_daily_counts",
        "mailboxes",
    ):
        op.execute(f"DROP TABLE IF EXISTS outreach.{table}")
