"""mailbox.poll: read each mailbox's IMAP inbox for replies and bounces (periodic, and on
demand for one mailbox). The fetch runs with nothing held; each message is received in
its own unit of work together with the mailbox's new last UID, so a crash re-reads at
most one message, and receiving is idempotent by Message-ID anyway."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from leadflood.core.jobs import JobContext, job
from leadflood.core.providers import ProviderError
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import Runtime
from leadflood.core.uow import unit_of_work
from leadflood.delivery.safety import DestinationError, vet_host
from leadflood.inbox import service
from leadflood.integrations.imap.reader import fetch_new
from leadflood.messaging import repository as messaging_repo
from leadflood.messaging.servers import imap_for

log = structlog.get_logger("leadflood.inbox")

POLL_JOB = "mailbox.poll"


@job(POLL_JOB, retry=NO_RETRY)
async def poll_job(ctx: JobContext) -> dict[str, Any]:
    mailbox_id = ctx.payload.get("mailbox_id")
    if mailbox_id:
        return await poll_mailbox(ctx.runtime, uuid.UUID(mailbox_id))
    async with unit_of_work(ctx.runtime.db) as tx:
        ids = await messaging_repo.mailboxes_to_poll(tx)
    read = 0
    for one in ids:
        read += (await poll_mailbox(ctx.runtime, one)).get("read", 0)
    return {"mailboxes": len(ids), "read": read}


async def poll_mailbox(runtime: Runtime, mailbox_id: uuid.UUID) -> dict[str, Any]:
    """Read what arrived since the last poll; an unreachable inbox is noted on the
    mailbox (shown on its page) and tried again next time."""
    settings = runtime.settings
    async with unit_of_work(runtime.db) as tx:
        secrets = await messaging_repo.mailbox_secrets(tx, mailbox_id)
    if secrets is None:
        return {"read": 0, "error": "mailbox_not_found"}
    try:
        config = imap_for(secrets, settings)
    except ValueError:
        return await _failed(runtime, mailbox_id, "re-enter the IMAP password")
    if config is None:
        return {"read": 0, "error": "no_imap"}
    try:
        await vet_host(config.host, config.port, allow_private=settings.private_networks_allowed)
        new = await fetch_new(config, secrets.imap_uidvalidity, secrets.imap_last_uid)
    except (ProviderError, DestinationError) as exc:
        return await _failed(runtime, mailbox_id, str(exc))
    kinds: dict[str, int] = {}
    for uid, raw in new.messages:
        async with unit_of_work(runtime.db) as tx:
            if raw:
                outcome = await service.receive_email(tx, raw, mailbox_id=mailbox_id)
                kind = f"{outcome['outcome']}:{outcome.get('kind')}"
                kinds[kind] = kinds.get(kind, 0) + 1
            await messaging_repo.set_imap_position(tx, mailbox_id, new.uidvalidity, uid)
    if not new.messages:
        last = secrets.imap_last_uid if secrets.imap_uidvalidity == new.uidvalidity else 0
        async with unit_of_work(runtime.db) as tx:
            await messaging_repo.set_imap_position(tx, mailbox_id, new.uidvalidity, last)
    if new.more:
        async with unit_of_work(runtime.db) as tx:  # the rest right away, not in a minute
            await tx.enqueue(POLL_JOB, {"mailbox_id": str(mailbox_id)})
    log.info("mailbox_polled", mailbox_id=str(mailbox_id), read=len(new.messages), **kinds)
    return {"read": len(new.messages), "outcomes": kinds, "more": new.more}


async def _failed(runtime: Runtime, mailbox_id: uuid.UUID, error: str) -> dict[str, Any]:
    log.warning("mailbox_poll_failed", mailbox_id=str(mailbox_id), error=error)
    async with unit_of_work(runtime.db) as tx:
        await messaging_repo.set_imap_error(tx, mailbox_id, error)
    return {"read": 0, "error": error}
