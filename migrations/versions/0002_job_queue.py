"""Job queue tables (pgqueuer, pinned version) in the same migration tree.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

from sqlscript import run_script  # type: ignore[import-not-found]

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(QueryBuilderEnvironment().build_install_query(create_schema=False))


def downgrade() -> None:
    run_script(QueryBuilderEnvironment().build_uninstall_query())
