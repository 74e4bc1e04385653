"""GET /v1/jobs/{id}: a tracked job's status, attempts, result and error."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.boundary import Call
from leadflood.core.errors import NotFound
from leadflood.core.executions import get_execution
from leadflood.core.rows import as_fields
from leadflood.jobs.responses import Job

router = APIRouter(tags=["jobs"])


@router.get(
    "/v1/jobs/{job_id}",
    summary="Job status: queued, running, completed or failed",
    response_model=Job,
)
async def job_status(job_id: uuid.UUID, call: Call = call_as(Permission.outreach_read)) -> dict:
    execution = await get_execution(call.tx, job_id)
    if execution is None:
        raise NotFound("job_not_found", "no job with this id")
    links = {
        "lead_id": execution.lead_id,
        "icp_id": execution.icp_id,
        "search_run_id": execution.search_run_id,
    }
    return {**as_fields(execution), "links": links}
