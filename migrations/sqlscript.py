"""Run a multi-statement SQL script inside the migration's transaction.

asyncpg prepares each statement, which refuses several commands at once; its
simple-query `execute()` without arguments runs a whole script (dollar-quoted
function bodies included) on the same connection and transaction.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.util.concurrency import await_


def run_script(sql: str) -> None:
    raw = op.get_bind().connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
    await_(raw.execute(sql))
