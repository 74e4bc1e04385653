"""All SQL of the reconciler: work in a non-terminal state with no job able to move it.

A job is able to move work while it is queued or picked (pgqueuer hands a picked job to
another worker when its holder stops heartbeating). A stage held as a dead letter
(`failed` job) is left to the operator (`leadflood jobs replay`), not retried forever.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from leadflood.core.uow import Conn

# One reconciler at a time across every worker; the others skip their turn.
_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('leadflood.reconcile'))"

_LEAD_JOBS = """
SELECT entrypoint, status, convert_from(payload, 'UTF8')::jsonb ->> 'lead_id' AS lead_id
FROM pgqueuer
WHERE entrypoint IN ('validate_lead', 'route_lead', 'deliver_lead')
"""

_STRANDED_LEADS = f"""
WITH jobs AS MATERIALIZED ({_LEAD_JOBS}),
stranded AS (
    SELECT 'validate_lead' AS stage, l.id AS lead_id, interval '0' AS delay
    FROM leads l WHERE l.status = 'received'
    UNION ALL
    -- Leads routing never decided on (a decided, unrouted lead is the unrouted sweep's).
    SELECT 'route_lead', l.id, interval '0'
    FROM leads l
    WHERE l.status = 'validated'
      AND NOT EXISTS (SELECT 1 FROM routing_decisions d WHERE d.lead_id = l.id)
    UNION ALL
    SELECT 'deliver_lead', d.lead_id, greatest(d.next_attempt_at - now(), interval '0')
    FROM deliveries d
    WHERE d.status = 'pending'
       OR (d.status = 'in_progress' AND d.lease_expires_at <= now())
)
SELECT s.stage, s.lead_id, coalesce(s.delay, interval '0') AS delay
FROM stranded s
WHERE NOT EXISTS (
    SELECT 1 FROM jobs j WHERE j.entrypoint = s.stage AND j.lead_id = s.lead_id::text
)
LIMIT $1
"""

_STRANDED_EXECUTIONS = """
SELECT e.id, e.type, greatest(coalesce(e.next_attempt_at, now()) - now(), interval '0') AS delay
FROM outreach.job_executions e
WHERE e.status IN ('queued', 'running')
  AND NOT EXISTS (
      SELECT 1 FROM pgqueuer j
      WHERE j.entrypoint = e.type AND j.status IN ('queued', 'picked')
        AND convert_from(j.payload, 'UTF8')::jsonb ->> 'execution_id' = e.id::text
  )
LIMIT $1
"""

# An active enrollment waiting on no step (its last message's job ended without the
# completion check): complete it when its steps are done, else make its next step due.
_STRANDED_ENROLLMENTS = """
WITH stranded AS (
    SELECT e.id,
           e.next_position > (SELECT coalesce(max(position), 0) FROM outreach.sequence_steps st
                              WHERE st.sequence_id = e.sequence_id) AS done
    FROM outreach.enrollments e
    WHERE e.status = 'active' AND e.next_step_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM outreach.messages m
                      WHERE m.enrollment_id = e.id AND m.status = 'queued')
    LIMIT $1
    FOR UPDATE OF e SKIP LOCKED
),
completed AS (
    UPDATE outreach.enrollments e SET status = 'completed', finished_at = now()
    FROM stranded s WHERE e.id = s.id AND s.done
    RETURNING e.id
),
resumed AS (
    UPDATE outreach.enrollments e SET next_step_at = now()
    FROM stranded s WHERE e.id = s.id AND NOT s.done
    RETURNING e.id
)
SELECT id, 'completed' AS repair FROM completed
UNION ALL
SELECT id, 'resumed' FROM resumed
"""


@dataclass(frozen=True, slots=True)
class StrandedLead:
    stage: str
    lead_id: uuid.UUID
    delay: timedelta


@dataclass(frozen=True, slots=True)
class StrandedExecution:
    execution_id: uuid.UUID
    type: str
    delay: timedelta


@dataclass(frozen=True, slots=True)
class EnrollmentRepair:
    enrollment_id: uuid.UUID
    repair: str


async def take_lock(conn: Conn) -> bool:
    return bool(await conn.fetchval(_LOCK))


async def stranded_leads(conn: Conn, limit: int) -> list[StrandedLead]:
    return [StrandedLead(*r) for r in await conn.fetch(_STRANDED_LEADS, limit)]


async def stranded_executions(conn: Conn, limit: int) -> list[StrandedExecution]:
    return [StrandedExecution(*r) for r in await conn.fetch(_STRANDED_EXECUTIONS, limit)]


async def repair_enrollments(conn: Conn, limit: int) -> list[EnrollmentRepair]:
    return [EnrollmentRepair(*r) for r in await conn.fetch(_STRANDED_ENROLLMENTS, limit)]
