"""Announce changes to what classifies a lead, for in-process source caches.

Any write to sources, offers or markets (API, CLI, demo, psql alike) sends one NOTIFY on
`leadflood_sources_changed` when its transaction commits; ingestion's source cache
listens and drops everything it holds (decision 0013).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from alembic import op

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("sources", "offers", "markets")

SCRIPT = """
CREATE FUNCTION leadflood_sources_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Identical payloads in one transaction are folded into one notification.
    PERFORM pg_notify('leadflood_sources_changed', '');
    RETURN NULL;
END $$;
""" + "".join(
    f"""
CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION leadflood_sources_changed();
"""
    for table in TABLES
)


def upgrade() -> None:
    run_script(SCRIPT)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS leadflood_sources_changed()")
