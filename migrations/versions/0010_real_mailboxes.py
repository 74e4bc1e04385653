"""Real mailboxes (issue 18): per-mailbox SMTP and IMAP, cadence, rotation, what comes back.

- mailboxes: their own SMTP server and credentials, an IMAP inbox polled for replies and
  bounces (the last UID and UIDVALIDITY kept), a minimum spacing between sends with
  jitter (`next_send_at` is the next free slot), a warm-up ramp, and a bounce rate above
  which the mailbox pauses itself (`paused_reason`). Passwords are encrypted at rest.
- sequences.mailbox_ids: the mailboxes a sequence rotates over; enrollments.mailbox_id
  keeps one lead's thread on one mailbox. Quiet hours for its WhatsApp/SMS steps.
- sequence_steps: the approved WhatsApp template (Trengo's HSM id) and its parameters.
- messages: `opt_out` replies, `full_body` beside the stripped reply, `not_before` (the
  send slot a message holds), `soft_bounces`; attempts record bounces.
- unmatched_inbound: mail from senders no lead matches, kept for a person to look at.
- provider_quotas: a provider account whose quota is used up, for every worker to see.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCRIPT = """
ALTER TABLE outreach.mailboxes
    ADD COLUMN smtp_host text,
    ADD COLUMN smtp_port integer CHECK (smtp_port BETWEEN 1 AND 65535),
    ADD COLUMN smtp_security text NOT NULL DEFAULT 'starttls'
        CHECK (smtp_security IN ('starttls', 'tls', 'none')),
    ADD COLUMN smtp_username text,
    ADD COLUMN smtp_password_enc text,
    ADD COLUMN imap_host text,
    ADD COLUMN imap_port integer CHECK (imap_port BETWEEN 1 AND 65535),
    ADD COLUMN imap_security text NOT NULL DEFAULT 'tls'
        CHECK (imap_security IN ('starttls', 'tls', 'none')),
    ADD COLUMN imap_username text,
    ADD COLUMN imap_password_enc text,
    ADD COLUMN imap_folder text NOT NULL DEFAULT 'INBOX',
    ADD COLUMN imap_uidvalidity bigint,
    ADD COLUMN imap_last_uid bigint NOT NULL DEFAULT 0,
    ADD COLUMN imap_checked_at timestamptz,
    ADD COLUMN imap_error text,
    ADD COLUMN min_spacing_s integer NOT NULL DEFAULT 60 CHECK (min_spacing_s >= 0),
    ADD COLUMN jitter_s integer NOT NULL DEFAULT 30 CHECK (jitter_s >= 0),
    ADD COLUMN next_send_at timestamptz,
    ADD COLUMN warmup_start integer CHECK (warmup_start > 0),
    ADD COLUMN warmup_step integer NOT NULL DEFAULT 0 CHECK (warmup_step >= 0),
    ADD COLUMN warmup_started_on date,
    ADD COLUMN bounce_pause_rate numeric(5, 4) NOT NULL DEFAULT 0.05
        CHECK (bounce_pause_rate > 0 AND bounce_pause_rate <= 1),
    ADD COLUMN paused_reason text;

ALTER TABLE outreach.sequences ADD COLUMN mailbox_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN quiet_start time DEFAULT '20:00', ADD COLUMN quiet_end time DEFAULT '09:00',
    ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE outreach.sequence_steps ADD COLUMN whatsapp_template_id bigint,
    ADD COLUMN template_params jsonb NOT NULL DEFAULT '[]';
ALTER TABLE outreach.enrollments
    ADD COLUMN mailbox_id uuid REFERENCES outreach.mailboxes (id) ON DELETE SET NULL;

ALTER TABLE outreach.messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE outreach.messages ADD CONSTRAINT messages_kind_check
    CHECK (kind IN ('sequence', 'manual', 'reply', 'auto_reply', 'bounce', 'opt_out'));
ALTER TABLE outreach.messages
    ADD COLUMN full_body text,
    ADD COLUMN not_before timestamptz,
    ADD COLUMN soft_bounces integer NOT NULL DEFAULT 0;
ALTER TABLE outreach.message_delivery_attempts
    DROP CONSTRAINT message_delivery_attempts_outcome_check;
ALTER TABLE outreach.message_delivery_attempts
    ADD CONSTRAINT message_delivery_attempts_outcome_check
    CHECK (outcome IN ('success', 'retryable_error', 'permanent_error', 'soft_bounce',
                       'hard_bounce', 'delivered'));
CREATE INDEX messages_mailbox_sent_idx ON outreach.messages (mailbox_id, sent_at DESC)
    WHERE direction = 'outbound' AND sent_at IS NOT NULL;

CREATE TABLE outreach.unmatched_inbound (
    id bigserial PRIMARY KEY,
    channel text NOT NULL,
    mailbox_id uuid REFERENCES outreach.mailboxes (id) ON DELETE SET NULL,
    kind text NOT NULL,
    reason text NOT NULL DEFAULT '',
    from_address text NOT NULL DEFAULT '',
    to_address text NOT NULL DEFAULT '',
    subject text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    message_id_header text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unmatched_inbound_recent_idx ON outreach.unmatched_inbound (received_at DESC);

-- An account-level state of a provider: its plan's quota used up (Hunter's monthly
-- requests, say). Every worker reads it before calling; it is probed again after retry_at.
CREATE TABLE outreach.provider_quotas (
    provider text PRIMARY KEY,
    exhausted_at timestamptz NOT NULL,
    retry_at timestamptz NOT NULL,
    message text NOT NULL
);
"""


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    run_script(
        """
DROP TABLE outreach.provider_quotas;
DROP TABLE outreach.unmatched_inbound;
DROP INDEX outreach.messages_mailbox_sent_idx;
ALTER TABLE outreach.message_delivery_attempts
    DROP CONSTRAINT message_delivery_attempts_outcome_check;
ALTER TABLE outreach.message_delivery_attempts
    ADD CONSTRAINT message_delivery_attempts_outcome_check
    CHECK (outcome IN ('success', 'retryable_error', 'permanent_error'));
ALTER TABLE outreach.messages DROP COLUMN soft_bounces, DROP COLUMN not_before,
    DROP COLUMN full_body;
DELETE FROM outreach.messages WHERE kind = 'opt_out';
ALTER TABLE outreach.messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE outreach.messages ADD CONSTRAINT messages_kind_check
    CHECK (kind IN ('sequence', 'manual', 'reply', 'auto_reply', 'bounce'));
ALTER TABLE outreach.enrollments DROP COLUMN mailbox_id;
ALTER TABLE outreach.sequence_steps DROP COLUMN whatsapp_template_id,
    DROP COLUMN template_params;
ALTER TABLE outreach.sequences DROP COLUMN mailbox_ids, DROP COLUMN quiet_start,
    DROP COLUMN quiet_end, DROP COLUMN timezone;
ALTER TABLE outreach.mailboxes
    DROP COLUMN smtp_host, DROP COLUMN smtp_port, DROP COLUMN smtp_security,
    DROP COLUMN smtp_username, DROP COLUMN smtp_password_enc, DROP COLUMN imap_host,
    DROP COLUMN imap_port, DROP COLUMN imap_security, DROP COLUMN imap_username,
    DROP COLUMN imap_password_enc, DROP COLUMN imap_folder, DROP COLUMN imap_uidvalidity,
    DROP COLUMN imap_last_uid, DROP COLUMN imap_checked_at, DROP COLUMN imap_error,
    DROP COLUMN min_spacing_s, DROP COLUMN jitter_s, DROP COLUMN next_send_at,
    DROP COLUMN warmup_start, DROP COLUMN warmup_step, DROP COLUMN warmup_started_on,
    DROP COLUMN bounce_pause_rate, DROP COLUMN paused_reason;
"""
    )
