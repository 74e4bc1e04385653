"""pgqueuer's job log is pruned past its retention (it grew by about 1.5 KB per lead
forever before, decision 0024); recent rows and every job's own row stay."""

from __future__ import annotations

from leadflood.core.jobs import PRUNE_JOB_LOG, periodic_jobs
from leadflood.core.uow import unit_of_work
from tests.conftest import drain_jobs

_OLD_ROWS = """
INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)
SELECT now() - ($1::float8 + g * 0.001) * interval '1 day', 1000000 + g, 'successful', 0,
       'deliver_lead'
FROM generate_series(1, $2) g
"""


async def test_log_rows_past_the_retention_are_pruned_in_batches(runtime) -> None:
    assert PRUNE_JOB_LOG in periodic_jobs(runtime.settings)
    days = runtime.settings.job_log_retention_days
    async with unit_of_work(runtime.db) as tx:
        await tx.execute(_OLD_ROWS, days + 1, 12_000)  # more than one batch
        await tx.execute(_OLD_ROWS, days - 1, 50)  # inside the retention
        await tx.enqueue(PRUNE_JOB_LOG, {})
    await drain_jobs(runtime)
    async with runtime.db.pool_connection() as conn:
        left_old = await conn.fetchval(
            "SELECT count(*) FROM pgqueuer_log WHERE created < now() - $1::float8 * "
            "interval '1 day'",
            days,
        )
        recent = await conn.fetchval(
            "SELECT count(*) FROM pgqueuer_log WHERE job_id > 1000000 AND created >= now() - "
            "$1::float8 * interval '1 day'",
            days,
        )
        prune_runs = await conn.fetchval(
            "SELECT count(*) FROM pgqueuer_log WHERE entrypoint = $1", PRUNE_JOB_LOG
        )
    assert left_old == 0
    assert recent == 50
    assert prune_runs >= 1  # its own rows are recent: they stay
