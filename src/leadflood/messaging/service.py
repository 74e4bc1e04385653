"""Messages and their sending state, mailboxes and suppressions: the rules; SQL is in
repository.py. Every function takes the caller's unit of work."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from leadflood.core.errors import BadRequest, Conflict
from leadflood.core.executions import Execution, create_execution
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError
from leadflood.core.retry import RetryPolicy
from leadflood.core.uow import Tx
from leadflood.messaging import repository as repo
from leadflood.messaging.channels import Outgoing
from leadflood.messaging.schemas import MailboxIn

SEND_JOB = "message.send"
SEND_RETRY = RetryPolicy(
    max_attempts=4,
    delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15)),
)


async def queue_send(tx: Tx, message_id: uuid.UUID, lead_id: uuid.UUID) -> uuid.UUID:
    """The tracked send job of a queued message (sequence step or manual reply); the
    message row records its job."""
    job_id, _ = await create_execution(
        tx,
        SEND_JOB,
        {"message_id": str(message_id)},
        max_attempts=SEND_RETRY.max_attempts,
        lead_id=lead_id,
    )
    await repo.set_message_job(tx, message_id, job_id)
    return job_id


async def cancel(tx: Tx, message_id: uuid.UUID, reason: str) -> dict[str, Any]:
    await repo.update_message(tx, message_id, {"status": "failed", "error": reason})
    return {"message_id": str(message_id), "outcome": "cancelled", "reason": reason}


async def record_sent(tx: Tx, outgoing: Outgoing, sent: dict[str, Any]) -> None:
    message = outgoing.message
    await repo.update_message(
        tx,
        message.id,
        {
            "status": "sent",
            "sent_at": outgoing.started,
            "subject": outgoing.subject,
            "body": outgoing.body,
            **sent,
        },
    )
    await repo.record_attempt(tx, message.id, "success", outgoing.started)
    await repo.touch_conversation(tx, message.conversation_id, outgoing.started, unread=False)


async def record_failure(tx: Tx, outgoing: Outgoing, exc: Exception) -> None:
    """The attempt row, and the mailbox's send unit back (nothing went out); a permanent
    failure also fails the message (the job will not retry it)."""
    message = outgoing.message
    if outgoing.unit_day is not None and outgoing.mailbox is not None:
        await repo.give_back_unit(tx, outgoing.mailbox.id, outgoing.unit_day)
    permanent = isinstance(exc, PermanentProviderError)
    await repo.record_attempt(
        tx,
        message.id,
        "permanent_error" if permanent else "retryable_error",
        outgoing.started,
        str(exc),
    )
    if permanent:
        await repo.update_message(tx, message.id, {"status": "failed", "error": str(exc)})


async def send_failed(tx: Tx, execution: Execution, error: str) -> None:
    """The send job gave up: the message shows why."""
    await repo.update_message(
        tx,
        uuid.UUID(execution.payload["message_id"]),
        {"status": "failed", "error": error[:2000]},
    )


# ---- mailboxes and suppressions -----------------------------------------------------------


async def create_mailbox(tx: Tx, principal: Principal | None, body: MailboxIn) -> repo.Mailbox:
    if body.window_end <= body.window_start:
        raise BadRequest("invalid_window", "window_end must be after window_start")
    try:
        async with tx.savepoint():
            mailbox = await repo.insert_mailbox(tx, body.model_dump())
    except asyncpg.UniqueViolationError:
        raise Conflict("mailbox_exists", "a mailbox sends from this address") from None
    await tx.audit(principal, "create", "mailbox", mailbox.id, body.model_dump())
    return mailbox


async def list_mailboxes(tx: Tx) -> list[repo.Mailbox]:
    return await repo.list_mailboxes(tx)


async def suppress(
    tx: Tx, principal: Principal | None, address: str, detail: str = ""
) -> repo.Suppression:
    """An operator's manual suppression: the address gets no more email. An address
    suppressed before keeps its first reason (a bounce stays a bounce)."""
    address = address.strip().lower()
    await repo.suppress(tx, address, "manual", detail)
    await tx.audit(principal, "suppress", "address", None, {"address": address})
    stored = await repo.get_suppression(tx, address)
    assert stored is not None  # written or found above, in this transaction
    return stored


async def suppressions(tx: Tx, limit: int = 500) -> list[repo.Suppression]:
    return await repo.list_suppressions(tx, limit)
