"""/v1/icps (CRUD, search, runs) and /v1/leads (list, create, detail) for outreach."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.api import Items, Success
from leadflood.core.boundary import Call
from leadflood.prospecting import responses as out
from leadflood.prospecting import service
from leadflood.prospecting.schemas import IcpIn, LeadIn, SearchIn

router = APIRouter(tags=["outreach"])

READ = call_as(Permission.outreach_read)
WORK = call_as(Permission.outreach_write)
DEFINE = call_as(Permission.icps_write)


@router.get(
    "/v1/icps", summary="List ICPs with their lead counts", response_model=Items[out.IcpListItem]
)
async def list_icps(call: Call = READ) -> dict:
    return {"items": await service.list_icps(call.tx)}


@router.post("/v1/icps", status_code=201, summary="Create an ICP", response_model=out.Icp)
async def create_icp(body: IcpIn, call: Call = DEFINE) -> JSONResponse:
    return await call.idempotent(service.create_icp(call.tx, call.principal, body))


@router.get("/v1/icps/{icp_id}", summary="Get an ICP", response_model=out.Icp)
async def get_icp(icp_id: uuid.UUID, call: Call = READ) -> Any:
    return await service.get_icp(call.tx, icp_id)


@router.put("/v1/icps/{icp_id}", summary="Replace an ICP's definition", response_model=out.Icp)
async def replace_icp(icp_id: uuid.UUID, body: IcpIn, call: Call = DEFINE) -> Any:
    return await service.replace_icp(call.tx, call.principal, icp_id, body)


@router.delete(
    "/v1/icps/{icp_id}",
    summary="Delete an ICP (its leads stay, unlinked)",
    response_model=Success,
)
async def delete_icp(icp_id: uuid.UUID, call: Call = DEFINE) -> dict:
    await service.delete_icp(call.tx, call.principal, icp_id)
    return {"success": True}


@router.post(
    "/v1/icps/{icp_id}/search",
    status_code=202,
    summary="Start a prospect search; the same setup on the same day returns the same run",
    response_model=out.SearchStarted,
)
async def search(
    icp_id: uuid.UUID,
    body: SearchIn | None = None,
    call: Call = WORK,
) -> JSONResponse:
    return await call.idempotent(
        service.start_search(call.tx, call.settings, call.principal, icp_id, body or SearchIn()),
    )


@router.get(
    "/v1/icps/{icp_id}/search-runs",
    summary="Recent search runs of an ICP",
    response_model=Items[out.SearchRun],
)
async def list_runs(icp_id: uuid.UUID, call: Call = READ) -> dict:
    return {"items": await service.list_runs(call.tx, icp_id)}


@router.get(
    "/v1/icps/{icp_id}/search-runs/{run_id}",
    summary="Search run status and counts",
    response_model=out.SearchRun,
)
async def get_run(icp_id: uuid.UUID, run_id: uuid.UUID, call: Call = READ) -> Any:
    return await service.get_run(call.tx, icp_id, run_id)


@router.get(
    "/v1/leads",
    summary="Outreach leads: filters, sort, cursor pagination",
    response_model=out.ProspectsPage,
)
async def list_leads(
    status: str | None = None,
    icp_id: uuid.UUID | None = None,
    email_status: str | None = None,
    source: str | None = None,
    q: str | None = Query(None, max_length=200),
    sort: str = "-created_at",
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    call: Call = READ,
) -> dict:
    filters = {
        k: v
        for k, v in {
            "status": status,
            "icp_id": icp_id,
            "email_status": email_status,
            "source": source,
        }.items()
        if v is not None
    }
    return await service.list_leads(
        call.tx, filters=filters, q=q, sort=sort, cursor=cursor, limit=limit
    )


@router.post(
    "/v1/leads",
    status_code=201,
    summary="Create an outreach lead by hand (`enrich: true` starts its enrichment)",
    response_model=out.ProspectCreated,
)
async def create_lead(body: LeadIn, call: Call = WORK) -> JSONResponse:
    return await call.idempotent(
        service.create_lead_and_enrich(call.tx, call.settings, call.principal, body)
    )


@router.get(
    "/v1/leads/{lead_id}",
    summary="An outreach lead with its enrichment history",
    response_model=out.ProspectDetail,
)
async def lead_detail(lead_id: uuid.UUID, call: Call = READ) -> Any:
    return await service.lead_detail(call.tx, lead_id)
