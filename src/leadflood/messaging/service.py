"""Messages and their sending state, mailboxes and suppressions: the rules; SQL is in
repository.py. Every function takes the caller's unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.executions import Execution, create_execution
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError
from leadflood.core.retry import RetryPolicy
from leadflood.core.security import encrypt_secret
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx
from leadflood.delivery.safety import refuse_when_saved, vet_host
from leadflood.messaging import repository as repo
from leadflood.messaging.channels import Outgoing
from leadflood.messaging.schemas import MailboxIn

log = structlog.get_logger("leadflood.messaging")

SEND_JOB = "message.send"
SEND_RETRY = RetryPolicy(
    max_attempts=4,
    delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15)),
)


async def queue_send(
    tx: Tx, message_id: uuid.UUID, lead_id: uuid.UUID, *, delay: timedelta | None = None
) -> uuid.UUID:
    """The tracked send job of a queued message (sequence step or manual reply); the
    message row records its job."""
    job_id, _ = await create_execution(
        tx,
        SEND_JOB,
        {"message_id": str(message_id)},
        max_attempts=SEND_RETRY.max_attempts,
        lead_id=lead_id,
        delay=delay,
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
    await repo.fail_message(tx, uuid.UUID(execution.payload["message_id"]), error[:2000])


# ---- what comes back ---------------------------------------------------------------------

# A soft bounce (mailbox full, a policy block, delivery expired) is sent again later, at
# most twice; the address is not suppressed.
SOFT_BOUNCE_RETRIES = 2
SOFT_BOUNCE_RETRY_AFTER = timedelta(hours=4)
# A mailbox pauses itself above its bounce rate, judged on its last week from this many
# sends on (fewer say too little).
BOUNCE_WINDOW = timedelta(days=7)
BOUNCE_MIN_SENT = 20


async def soft_bounced(tx: Tx, message: repo.Message, reason: str) -> bool:
    """True when the message is queued again (later); False when it gave up."""
    now = datetime.now(UTC)
    await repo.record_attempt(tx, message.id, "soft_bounce", now, reason[:2000])
    if message.direction != "outbound" or message.status not in ("sent", "delivered"):
        return False
    if message.soft_bounces >= SOFT_BOUNCE_RETRIES:
        await repo.update_message(
            tx, message.id, {"status": "failed", "error": f"soft bounce, gave up: {reason}"[:2000]}
        )
        return False
    await repo.update_message(
        tx,
        message.id,
        {
            "status": "queued",
            "soft_bounces": message.soft_bounces + 1,
            "error": f"soft bounce: {reason}"[:2000],
            "not_before": None,
        },
    )
    await queue_send(tx, message.id, message.lead_id, delay=SOFT_BOUNCE_RETRY_AFTER)
    return True


async def mark_bounced(tx: Tx, addresses: list[str], message: repo.Message | None, detail: str):
    """A hard bounce: the addresses get no more email, the message shows it bounced, and
    its mailbox is checked against its bounce rate."""
    for address in addresses:
        await repo.suppress(tx, address, "bounced", detail)
    if message is None:
        return
    await repo.update_message(
        tx, message.id, {"status": "bounced", "error": f"hard bounce: {detail}"[:2000]}
    )
    await repo.record_attempt(tx, message.id, "hard_bounce", datetime.now(UTC), detail[:2000])
    if message.mailbox_id is not None:
        await check_bounce_rate(tx, message.mailbox_id)


async def check_bounce_rate(tx: Tx, mailbox_id: uuid.UUID) -> bool:
    """Pause the mailbox when its bounce rate passed its threshold; True when paused now."""
    mailbox = await repo.get_mailbox(tx, mailbox_id)
    if mailbox is None or not mailbox.active:
        return False
    sent, bounced = await repo.bounce_rate(tx, mailbox_id, datetime.now(UTC) - BOUNCE_WINDOW)
    if sent < BOUNCE_MIN_SENT or bounced / sent <= mailbox.bounce_pause_rate:
        return False
    reason = (
        f"bounce rate {bounced}/{sent} ({bounced / sent:.0%}) over "
        f"{mailbox.bounce_pause_rate:.0%} in 7 days"
    )
    paused = await repo.pause_mailbox(tx, mailbox_id, reason)
    if paused:
        log.warning("mailbox_paused", mailbox_id=str(mailbox_id), sent=sent, bounced=bounced)
        await tx.audit(None, "pause", "mailbox", mailbox_id, {"reason": reason})
    return paused


# ---- mailboxes and suppressions -----------------------------------------------------------


async def check_servers(body: MailboxIn, settings: Settings) -> None:
    """An SMTP or IMAP host the worker would refuse (private, loopback or metadata address)
    is refused when saved, with the same code. Before the unit of work: DNS is a network
    call."""
    if settings.private_networks_allowed:
        return
    for kind in ("smtp", "imap"):
        server = getattr(body, kind)
        if server is not None:
            vetting = vet_host(server.host, server.port, allow_private=False)
            await refuse_when_saved(vetting, f"{kind}.host")


def _mailbox_columns(
    body: MailboxIn, secret_key: str, stored: repo.MailboxSecrets | None
) -> dict[str, Any]:
    """The mailbox's columns; passwords encrypted, an omitted password keeps the stored one
    (when the server and user are unchanged)."""
    if body.window_end <= body.window_start:
        raise BadRequest("invalid_window", "window_end must be after window_start")
    values = body.model_dump(exclude={"smtp", "imap"})
    values["bounce_pause_rate"] = Decimal(str(body.bounce_pause_rate))
    values["warmup_started_on"] = None
    for kind in ("smtp", "imap"):
        server = getattr(body, kind)
        kept = getattr(stored, f"{kind}_password_enc", None) if stored else None
        same = (
            stored is not None
            and server is not None
            and (
                getattr(stored, f"{kind}_host") == server.host
                and getattr(stored, f"{kind}_username") == server.username
            )
        )
        values[f"{kind}_host"] = server.host if server else None
        values[f"{kind}_port"] = server.port if server else None
        values[f"{kind}_security"] = (
            server.security if server else ("starttls" if kind == "smtp" else "tls")
        )
        values[f"{kind}_username"] = server.username if server else None
        if server is None:
            values[f"{kind}_password_enc"] = None
        elif server.password is not None:
            values[f"{kind}_password_enc"] = encrypt_secret(server.password, secret_key)
        else:
            values[f"{kind}_password_enc"] = kept if same else None
    if body.imap is not None:
        values["imap_folder"] = body.imap.folder
        if values["imap_password_enc"] is None:
            raise BadRequest(
                "password_required",
                "imap.password is required to read the inbox",
                details={"field": "imap.password"},
            )
    if body.smtp is not None and body.smtp.username and values["smtp_password_enc"] is None:
        raise BadRequest(
            "password_required",
            "smtp.password is required with smtp.username",
            details={"field": "smtp.password"},
        )
    return values


async def create_mailbox(
    tx: Tx, principal: Principal | None, body: MailboxIn, secret_key: str
) -> repo.Mailbox:
    values = _mailbox_columns(body, secret_key, None)
    if body.warmup_start is not None:
        values["warmup_started_on"] = date.today()
    try:
        async with tx.savepoint():
            mailbox = await repo.insert_mailbox(tx, values)
    except asyncpg.UniqueViolationError:
        raise Conflict("mailbox_exists", "a mailbox sends from this address") from None
    await tx.audit(principal, "create", "mailbox", mailbox.id, _audited(body))
    return mailbox


async def update_mailbox(
    tx: Tx, principal: Principal | None, mailbox_id: uuid.UUID, body: MailboxIn, secret_key: str
) -> repo.Mailbox:
    """Replace a mailbox's settings. Turning it back on clears a self-pause."""
    current = await repo.get_mailbox(tx, mailbox_id)
    stored = await repo.mailbox_secrets(tx, mailbox_id)
    if current is None or stored is None:
        raise NotFound("mailbox_not_found", "no mailbox with this id")
    values = _mailbox_columns(body, secret_key, stored)
    values["warmup_started_on"] = (
        (current.warmup_started_on or date.today()) if body.warmup_start is not None else None
    )
    if body.active:
        values["paused_reason"] = None
    if stored.imap_host != values["imap_host"] or stored.imap_username != values["imap_username"]:
        # Another inbox: its UIDs start over.
        values.update(imap_uidvalidity=None, imap_last_uid=0, imap_error=None)
    try:
        async with tx.savepoint():
            await repo.update_mailbox(tx, mailbox_id, values)
    except asyncpg.UniqueViolationError:
        raise Conflict("mailbox_exists", "a mailbox sends from this address") from None
    await tx.audit(principal, "update", "mailbox", mailbox_id, _audited(body))
    return await get_mailbox(tx, mailbox_id)


def _audited(body: MailboxIn) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude={"smtp": {"password"}, "imap": {"password"}})


async def list_mailboxes(tx: Tx) -> list[repo.Mailbox]:
    return await repo.list_mailboxes(tx)


async def get_mailbox(tx: Tx, mailbox_id: uuid.UUID) -> repo.Mailbox:
    found = await repo.get_mailbox(tx, mailbox_id)
    if found is None:
        raise NotFound("mailbox_not_found", "no mailbox with this id")
    return found


async def queue_inbox_check(tx: Tx, mailbox_id: uuid.UUID) -> None:
    mailbox = await get_mailbox(tx, mailbox_id)
    if not mailbox.imap_host:
        raise BadRequest("no_imap", "this mailbox has no IMAP inbox to read")
    await tx.enqueue("mailbox.poll", {"mailbox_id": str(mailbox_id)})


async def delete_mailbox(tx: Tx, principal: Principal | None, mailbox_id: uuid.UUID) -> None:
    """Refused while a live sequence sends from it; sent mail keeps its history."""
    users = await repo.mailbox_in_use(tx, mailbox_id)
    if users:
        raise Conflict(
            "mailbox_in_use",
            "sequences send from this mailbox: " + ", ".join(users[:5]),
            details={"sequences": users},
        )
    if not await repo.delete_mailbox(tx, mailbox_id):
        raise NotFound("mailbox_not_found", "no mailbox with this id")
    await tx.audit(principal, "delete", "mailbox", mailbox_id)


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
