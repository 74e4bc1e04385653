"""/v1/mailboxes, /v1/sequences (+ activate, pause, enrollments, tick), /v1/suppressions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import requires
from leadflood.auth.policy import Permission
from leadflood.core.idempotency import idempotent
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.sequences import repository as repo
from leadflood.sequences import service
from leadflood.sequences.schemas import EnrollIn, MailboxIn, SequenceIn

router = APIRouter(tags=["outreach"])

READ = Depends(requires(Permission.outreach_read))
WORK = Depends(requires(Permission.outreach_write))
DEFINE = Depends(requires(Permission.sequences_write))


@router.get("/v1/mailboxes", summary="Sending mailboxes")
async def list_mailboxes(request: Request, _: Principal = READ) -> dict:
    return {"items": await service.list_mailboxes(runtime_of(request))}


@router.post("/v1/mailboxes", status_code=201, summary="Add a mailbox (limit, send window)")
async def create_mailbox(body: MailboxIn, request: Request, principal: Principal = DEFINE):
    runtime = runtime_of(request)
    return await idempotent(
        request,
        principal.user_id,
        201,
        lambda: service.create_mailbox(runtime, principal, body),
    )


@router.get("/v1/sequences", summary="Sequences with step and enrollment counts")
async def list_sequences(request: Request, _: Principal = READ) -> dict:
    return {"items": await service.list_sequences(runtime_of(request))}


@router.post("/v1/sequences", status_code=201, summary="Create a sequence with its steps")
async def create_sequence(body: SequenceIn, request: Request, principal: Principal = DEFINE):
    runtime = runtime_of(request)
    return await idempotent(
        request,
        principal.user_id,
        201,
        lambda: service.create_sequence(runtime, principal, body),
    )


@router.get("/v1/sequences/{sequence_id}", summary="A sequence, its steps and enrollments")
async def get_sequence(sequence_id: uuid.UUID, request: Request, _: Principal = READ) -> dict:
    return await service.get_sequence(runtime_of(request), sequence_id)


@router.put("/v1/sequences/{sequence_id}", summary="Replace a sequence's name, mailbox, steps")
async def update_sequence(
    sequence_id: uuid.UUID, body: SequenceIn, request: Request, principal: Principal = DEFINE
) -> dict:
    return await service.update_sequence(runtime_of(request), principal, sequence_id, body)


@router.delete("/v1/sequences/{sequence_id}", summary="Delete a sequence")
async def delete_sequence(
    sequence_id: uuid.UUID, request: Request, principal: Principal = DEFINE
) -> dict:
    await service.delete_sequence(runtime_of(request), principal, sequence_id)
    return {"success": True}


@router.post("/v1/sequences/{sequence_id}/activate", summary="Start sending due steps")
async def activate(sequence_id: uuid.UUID, request: Request, principal: Principal = DEFINE):
    return await service.set_status(runtime_of(request), principal, sequence_id, "active")


@router.post("/v1/sequences/{sequence_id}/pause", summary="Stop sending; enrollments wait")
async def pause(sequence_id: uuid.UUID, request: Request, principal: Principal = DEFINE):
    return await service.set_status(runtime_of(request), principal, sequence_id, "paused")


@router.post(
    "/v1/sequences/{sequence_id}/enrollments",
    summary="Enroll leads (each once); refused leads come back with a reason",
)
async def enroll(
    sequence_id: uuid.UUID, body: EnrollIn, request: Request, principal: Principal = WORK
) -> JSONResponse:
    runtime = runtime_of(request)
    return await idempotent(
        request,
        principal.user_id,
        200,
        lambda: service.enroll(runtime, principal, sequence_id, body.lead_ids),
    )


@router.post("/v1/sequences/tick", summary="Schedule due steps now (workers do it every minute)")
async def run_tick(request: Request, _: Principal = DEFINE) -> dict:
    return await service.tick(runtime_of(request))


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str
    detail: str = ""


@router.get("/v1/suppressions", summary="Addresses never emailed (unsubscribed, bounced, manual)")
async def suppressions(request: Request, _: Principal = READ) -> dict:
    async with single_statements(runtime_of(request).db) as conn:
        return {"items": await repo.list_suppressions(conn)}


@router.post("/v1/suppressions", status_code=201, summary="Suppress an address by hand")
async def suppress(body: SuppressionIn, request: Request, principal: Principal = DEFINE) -> dict:
    address = body.address.strip().lower()
    async with unit_of_work(runtime_of(request).db) as conn:
        await repo.suppress(conn, address, "manual", body.detail)
        await conn.audit(principal, "suppress", "address", None, {"address": address})
    return {"address": address, "reason": "manual"}
