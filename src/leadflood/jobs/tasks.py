"""Housekeeping on a timer. system.prune_job_log: pgqueuer writes a log row at every state
of every job (about 1.5 KB per lead through the pipeline, decision 0024) and never removes
one; the rows past `job_log_retention_days` go, a batch per statement, every hour.
system.backup: `leadflood backup` every `backup_interval_hours`, when set."""

from __future__ import annotations

import asyncio

from leadflood.core import backup
from leadflood.core.jobs import BACKUP, PRUNE_JOB_LOG, JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.jobs.repository import prune_job_log

_BATCH = 10_000


@job(PRUNE_JOB_LOG, retry=NO_RETRY)
async def prune_job_log_job(ctx: JobContext) -> dict[str, int]:
    days = ctx.runtime.settings.job_log_retention_days
    pruned = 0
    while True:
        async with ctx.statements() as tx:
            removed = await prune_job_log(tx, days, _BATCH)
        pruned += removed
        if removed < _BATCH:
            return {"pruned": pruned}


@job(BACKUP, retry=NO_RETRY)
async def backup_job(ctx: JobContext) -> dict[str, object]:
    """A failed backup fails the job (its log line, error reporting and the failed-jobs
    metric say so); the next interval tries again."""
    settings = ctx.runtime.settings
    assert settings.backup_interval_hours is not None
    directory = settings.backup_directory
    # Every worker keeps the timer: the first to run it makes the interval's backup.
    age = await asyncio.to_thread(backup.newest_age_s, directory)
    if age is not None and age < 0.9 * settings.backup_interval_hours * 3600:
        return {"skipped": "a backup of this interval exists", "age_s": round(age)}
    url = settings.migration_database_url or ctx.runtime.db.url
    path = await backup.backup(url, directory)
    removed = await asyncio.to_thread(backup.prune, directory, settings.backup_keep)
    return {"backup": path.name, "bytes": path.stat().st_size, "removed": len(removed)}
