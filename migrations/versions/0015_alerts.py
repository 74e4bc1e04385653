"""Alerts (issue 19): rules evaluated in the app, each open alert once per subject,
acknowledged and resolved by people (or resolved when its condition clears); and the
workers' heartbeat.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
CREATE TABLE alerts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule text NOT NULL,
    subject text NOT NULL,  -- what it is about (a job kind, a buyer id, …)
    title text NOT NULL,
    detail text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by uuid REFERENCES users (id),
    resolved_at timestamptz,
    resolved_by uuid REFERENCES users (id)  -- NULL with resolved_at: its condition cleared
);
-- One live alert per rule and subject: a condition that persists is the same alert.
CREATE UNIQUE INDEX alerts_live_idx ON alerts (rule, subject) WHERE status <> 'resolved';
CREATE INDEX alerts_recent_idx ON alerts (opened_at DESC);
-- The workers' heartbeat: the system.heartbeat job stamps it every minute.
CREATE TABLE worker_heartbeat (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seen_at timestamptz NOT NULL
);
"""
    )


def downgrade() -> None:
    run_script("DROP TABLE worker_heartbeat; DROP TABLE alerts;")
