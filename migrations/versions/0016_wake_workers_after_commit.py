"""Workers are woken after commit, not by a trigger inside every queue transaction
(decision 0024): pgqueuer's statement trigger sent a NOTIFY from each enqueue, pick and
completion, and PostgreSQL serializes notifying commits on one lock held through the WAL
flush. The application now sends one NOTIFY of the same shape after its commits
(core.db.Database.wake_workers), in a transaction that writes nothing.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("DROP TRIGGER IF EXISTS tg_pgqueuer_changed ON pgqueuer")


def downgrade() -> None:
    run_script(
        """
        CREATE TRIGGER tg_pgqueuer_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgqueuer
        EXECUTE FUNCTION fn_pgqueuer_changed()
        """
    )
