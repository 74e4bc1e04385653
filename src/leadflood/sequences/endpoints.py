"""/v1/mailboxes, /v1/sequences (+ activate, pause, enrollments, tick), /v1/suppressions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.api import Items, Success
from leadflood.core.boundary import Call
from leadflood.core.runtime import runtime_of
from leadflood.messaging import responses as mo
from leadflood.messaging import service as messaging
from leadflood.messaging.schemas import MailboxIn, SuppressionIn
from leadflood.sequences import responses as out
from leadflood.sequences import service, tasks
from leadflood.sequences.schemas import EnrollIn, SequenceIn

router = APIRouter(tags=["outreach"])

READ = call_as(Permission.outreach_read)
WORK = call_as(Permission.outreach_write)
DEFINE = call_as(Permission.sequences_write)


@router.get("/v1/mailboxes", summary="Sending mailboxes", response_model=Items[mo.Mailbox])
async def list_mailboxes(call: Call = READ) -> dict:
    return {"items": await messaging.list_mailboxes(call.tx)}


@router.post(
    "/v1/mailboxes",
    status_code=201,
    summary="Add a mailbox (limit, send window)",
    response_model=mo.Mailbox,
)
async def create_mailbox(body: MailboxIn, call: Call = DEFINE) -> JSONResponse:
    await messaging.check_servers(body, call.settings)
    key = call.settings.secret_key.get_secret_value()
    return await call.idempotent(messaging.create_mailbox(call.tx, call.principal, body, key))


@router.get("/v1/mailboxes/{mailbox_id}", summary="A mailbox", response_model=mo.Mailbox)
async def get_mailbox(mailbox_id: uuid.UUID, call: Call = READ) -> mo.Mailbox:
    return await messaging.get_mailbox(call.tx, mailbox_id)


@router.put(
    "/v1/mailboxes/{mailbox_id}",
    summary="Replace a mailbox's settings (an omitted password keeps the stored one)",
    response_model=mo.Mailbox,
)
async def update_mailbox(mailbox_id: uuid.UUID, body: MailboxIn, call: Call = DEFINE):
    await messaging.check_servers(body, call.settings)
    key = call.settings.secret_key.get_secret_value()
    return await messaging.update_mailbox(call.tx, call.principal, mailbox_id, body, key)


@router.post(
    "/v1/mailboxes/{mailbox_id}/check",
    status_code=202,
    summary="Read the mailbox's IMAP inbox now (else every LEADFLOOD_IMAP_POLL_INTERVAL_S)",
    response_model=Success,
)
async def check_mailbox(mailbox_id: uuid.UUID, call: Call = WORK) -> dict:
    await messaging.queue_inbox_check(call.tx, mailbox_id)
    return {"success": True}


@router.delete(
    "/v1/mailboxes/{mailbox_id}",
    summary="Delete a mailbox no live sequence sends from",
    response_model=Success,
)
async def delete_mailbox(mailbox_id: uuid.UUID, call: Call = DEFINE) -> dict:
    await messaging.delete_mailbox(call.tx, call.principal, mailbox_id)
    return {"success": True}


@router.get(
    "/v1/sequences",
    summary="Sequences with step and enrollment counts",
    response_model=Items[out.SequenceListItem],
)
async def list_sequences(call: Call = READ) -> dict:
    return {"items": await service.list_sequences(call.tx)}


@router.post(
    "/v1/sequences",
    status_code=201,
    summary="Create a sequence with its steps",
    response_model=out.Sequence,
)
async def create_sequence(body: SequenceIn, call: Call = DEFINE) -> JSONResponse:
    return await call.idempotent(service.create_sequence(call.tx, call.principal, body))


@router.get(
    "/v1/sequences/{sequence_id}",
    summary="A sequence, its steps and enrollments",
    response_model=out.SequenceDetail,
)
async def get_sequence(sequence_id: uuid.UUID, call: Call = READ) -> Any:
    return await service.get_sequence(call.tx, sequence_id)


@router.put(
    "/v1/sequences/{sequence_id}",
    summary="Replace a sequence's name, mailbox, steps",
    response_model=out.Sequence,
)
async def update_sequence(sequence_id: uuid.UUID, body: SequenceIn, call: Call = DEFINE) -> Any:
    return await service.update_sequence(call.tx, call.principal, sequence_id, body)


@router.delete("/v1/sequences/{sequence_id}", summary="Delete a sequence", response_model=Success)
async def delete_sequence(sequence_id: uuid.UUID, call: Call = DEFINE) -> dict:
    await service.delete_sequence(call.tx, call.principal, sequence_id)
    return {"success": True}


@router.post(
    "/v1/sequences/{sequence_id}/activate",
    summary="Start sending due steps",
    response_model=out.Sequence,
)
async def activate(sequence_id: uuid.UUID, call: Call = DEFINE) -> Any:
    return await service.set_status(call.tx, call.principal, sequence_id, "active")


@router.post(
    "/v1/sequences/{sequence_id}/pause",
    summary="Stop sending; enrollments wait",
    response_model=out.Sequence,
)
async def pause(sequence_id: uuid.UUID, call: Call = DEFINE) -> Any:
    return await service.set_status(call.tx, call.principal, sequence_id, "paused")


@router.post(
    "/v1/sequences/{sequence_id}/enrollments",
    summary="Enroll leads (each once); refused leads come back with a reason",
    response_model=out.Enrolled,
)
async def enroll(sequence_id: uuid.UUID, body: EnrollIn, call: Call = WORK) -> JSONResponse:
    return await call.idempotent(
        service.enroll(call.tx, call.principal, sequence_id, body.lead_ids)
    )


@router.post(
    "/v1/sequences/{sequence_id}/enrollments/{lead_id}/stop",
    summary="Take one lead out of the sequence (nothing more is sent to it)",
    response_model=out.EnrollmentStatus,
)
async def stop_enrollment(sequence_id: uuid.UUID, lead_id: uuid.UUID, call: Call = WORK) -> Any:
    return await service.stop_enrollment(call.tx, call.principal, sequence_id, lead_id)


@router.post(
    "/v1/sequences/tick",
    summary="Schedule due steps now (workers do it every minute)",
    response_model=out.Tick,
)
async def run_tick(call: Call = DEFINE) -> dict:
    # A job's boundary run by hand: each batch commits on its own unit of work.
    return await tasks.tick(runtime_of(call.request))


@router.get(
    "/v1/suppressions",
    summary="Addresses never emailed (unsubscribed, bounced, manual)",
    response_model=Items[mo.Suppression],
)
async def suppressions(call: Call = READ) -> dict:
    return {"items": await messaging.suppressions(call.tx)}


@router.post(
    "/v1/suppressions",
    status_code=201,
    summary="Suppress an address by hand",
    response_model=mo.Suppression,
)
async def suppress(body: SuppressionIn, call: Call = DEFINE) -> mo.Suppression:
    return await messaging.suppress(call.tx, call.principal, body.address, body.detail)
