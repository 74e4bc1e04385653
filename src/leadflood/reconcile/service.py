"""The reconciler: re-enqueue every piece of work no job is able to move (issue 14).

Stage hand-offs commit the state change and the next job together, so stranded work
comes only from outside that promise: a job row deleted by hand or by a restore, a
crash between a tracked execution's claim and its result, an enrollment whose last
send ended without its completion check. Each repair is logged and counted.
"""

from __future__ import annotations

from collections import Counter

import structlog

from leadflood.core.uow import Tx
from leadflood.reconcile import repository as repo

log = structlog.get_logger("leadflood.reconcile")

BATCH = 1000


async def reconcile(conn: Tx, *, limit: int = BATCH) -> dict[str, int]:
    """Run inside one transaction: the repairs and their jobs commit together."""
    if not await repo.take_lock(conn):
        return {"skipped_concurrent_run": 1}
    counts: Counter[str] = Counter()
    for item in await repo.stranded_leads(conn, limit):
        await conn.enqueue(item.stage, {"lead_id": str(item.lead_id)}, delay=item.delay)
        counts[item.stage] += 1
        log.warning("reconcile_repair", stage=item.stage, lead_id=str(item.lead_id))
    for execution in await repo.stranded_executions(conn, limit):
        await conn.enqueue(
            execution.type, {"execution_id": str(execution.execution_id)}, delay=execution.delay
        )
        counts[execution.type] += 1
        log.warning(
            "reconcile_repair", stage=execution.type, execution_id=str(execution.execution_id)
        )
    for repair in await repo.repair_enrollments(conn, limit):
        counts[f"enrollment_{repair.repair}"] += 1
        log.warning(
            "reconcile_repair",
            stage="enrollment",
            enrollment_id=str(repair.enrollment_id),
            repair=repair.repair,
        )
    if counts:
        log.warning("reconcile_done", repairs=sum(counts.values()), **counts)
    return dict(counts)
