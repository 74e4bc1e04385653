"""SQL over pgqueuer's own tables that is ours to run (its log's retention)."""

from __future__ import annotations

from leadflood.core.uow import Conn

# A batch at a time: one statement never holds many row locks or a long transaction.
_PRUNE_LOG = """
WITH old AS (
    SELECT id FROM pgqueuer_log
    WHERE created < now() - $1::float8 * interval '1 day'
    ORDER BY created
    LIMIT $2
)
DELETE FROM pgqueuer_log l USING old WHERE l.id = old.id
"""


async def prune_job_log(conn: Conn, older_than_days: float, batch: int) -> int:
    """Delete up to `batch` log rows older than the retention; how many went."""
    done = await conn.execute(_PRUNE_LOG, older_than_days, batch)
    return int(done.split()[-1])
