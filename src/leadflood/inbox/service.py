"""The inbox: inbound email and Trengo messages, conversations, manual replies,
unsubscribes. Webhook redelivery is a no-op (each provider event is claimed once)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from leadflood.auth.service import Principal
from leadflood.core.errors import BadRequest, NotFound
from leadflood.core.uow import Tx
from leadflood.inbox import repository as repo
from leadflood.inbox.classify import InboundEmail, parse
from leadflood.sequences import repository as sequences_repo
from leadflood.sequences.service import queue_send

log = structlog.get_logger("leadflood.inbox")


async def receive_email(tx: Tx, raw: bytes) -> dict[str, Any]:
    inbound = parse(raw)
    event_id = inbound.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    now = datetime.now(UTC)
    conn = tx
    if not await repo.claim_event(conn, "email", event_id):
        return {"outcome": "duplicate", "kind": inbound.kind}
    original = await _original(conn, inbound)
    lead = None
    if original is not None:
        lead = {"id": original["lead_id"]}
    elif inbound.kind != "bounce":
        lead = await repo.lead_by_address(conn, inbound.from_address)
    elif inbound.bounced:
        lead = await repo.lead_by_address(conn, inbound.bounced[0])
    if inbound.kind == "bounce":
        for address in inbound.bounced:
            await sequences_repo.suppress(conn, address, "bounced", inbound.subject)
        if original is not None:
            await repo.update_message(
                conn, original["id"], {"status": "bounced", "error": "hard bounce"}
            )
    if lead is None:
        return {"outcome": "ignored", "kind": inbound.kind, "reason": "unknown sender"}
    conversation = (
        original["conversation_id"]
        if original
        else await repo.conversation_for(conn, lead["id"], "email", inbound.subject)
    )
    await repo.insert_message(
        conn,
        {
            "conversation_id": conversation,
            "lead_id": lead["id"],
            "direction": "inbound",
            "channel": "email",
            "kind": inbound.kind,
            "status": "received",
            "from_address": inbound.from_address,
            "to_address": ", ".join(inbound.to_addresses),
            "subject": inbound.subject,
            "body": inbound.body,
            "message_id_header": inbound.message_id,
            "in_reply_to": inbound.in_reply_to[0] if inbound.in_reply_to else None,
            "received_at": now,
        },
    )
    # Only a person's reply is unread news; auto-replies and bounces are recorded.
    await repo.touch_conversation(conn, conversation, now, unread=inbound.kind == "reply")
    stopped = 0
    if inbound.kind == "reply":
        stopped = await sequences_repo.stop_enrollments(conn, lead["id"], "replied")
    elif inbound.kind == "bounce":
        stopped = await sequences_repo.stop_enrollments(conn, lead["id"], "bounced")
    log.info("inbound_email", kind=inbound.kind, stopped=stopped)
    return {"outcome": "recorded", "kind": inbound.kind, "lead_id": lead["id"], "stopped": stopped}


async def _original(conn, inbound: InboundEmail) -> dict | None:
    for header in [
        *([inbound.original_message_id] if inbound.original_message_id else []),
        *inbound.in_reply_to,
    ]:
        found = await repo.message_by_header(conn, header)
        if found is not None and found["direction"] == "outbound":
            return found
    return None


async def receive_trengo(tx: Tx, form: dict[str, str]) -> dict[str, Any]:
    event_id = form.get("message_id") or form.get("id")
    contact = form.get("contact_identifier") or form.get("phone") or ""
    body = form.get("message") or form.get("body") or ""
    if not event_id or not contact:
        raise BadRequest("invalid_webhook", "message_id and contact_identifier are required")
    channel = "sms" if (form.get("channel_type") or "").lower() == "sms" else "whatsapp"
    digits = "".join(ch for ch in contact if ch.isdigit())
    now = datetime.now(UTC)
    conn = tx
    if not await repo.claim_event(conn, "trengo", event_id):
        return {"outcome": "duplicate"}
    lead = await repo.lead_by_phone(conn, digits)
    if lead is None:
        return {"outcome": "ignored", "reason": "unknown contact"}
    conversation = await repo.conversation_for(conn, lead["id"], channel)
    await repo.insert_message(
        conn,
        {
            "conversation_id": conversation,
            "lead_id": lead["id"],
            "direction": "inbound",
            "channel": channel,
            "kind": "reply",
            "status": "received",
            "from_address": contact,
            "body": body,
            "provider_message_id": event_id,
            "received_at": now,
        },
    )
    await repo.touch_conversation(conn, conversation, now, unread=True)
    stopped = await sequences_repo.stop_enrollments(conn, lead["id"], "replied")
    return {"outcome": "recorded", "lead_id": lead["id"], "stopped": stopped}


async def conversations(tx: Tx, *, unread_only: bool = False, limit: int = 100) -> list:
    conn = tx
    return await repo.list_conversations(conn, unread_only=unread_only, limit=limit)


async def conversation(tx: Tx, conversation_id: uuid.UUID, *, mark_read: bool = True):
    conn = tx
    found = await repo.get_conversation(conn, conversation_id)
    if found is None:
        raise NotFound("conversation_not_found", "no conversation with this id")
    messages = await repo.thread(conn, conversation_id)
    if mark_read:
        await repo.mark_read(conn, conversation_id)
    return {**found, "messages": messages}


async def reply(
    tx: Tx,
    principal: Principal | None,
    conversation_id: uuid.UUID,
    body: str,
    subject: str | None = None,
) -> dict[str, Any]:
    """A manual reply, sent by the message.send job; its status shows in the thread."""
    conn = tx
    found = await repo.get_conversation(conn, conversation_id)
    if found is None:
        raise NotFound("conversation_not_found", "no conversation with this id")
    last = await repo.last_outbound_header(conn, conversation_id)
    inbound = await repo.last_inbound_header(conn, conversation_id)
    mailbox_id = await repo.reply_mailbox(conn, conversation_id)
    base_subject = subject or (inbound or last or {}).get("subject") or found["subject"] or ""
    if found["channel"] == "email" and base_subject and not base_subject.lower().startswith("re:"):
        base_subject = f"Re: {base_subject}"
    message_id = await repo.insert_message(
        conn,
        {
            "conversation_id": conversation_id,
            "lead_id": found["lead_id"],
            "mailbox_id": mailbox_id,
            "direction": "outbound",
            "channel": found["channel"],
            "kind": "manual",
            "status": "queued",
            "subject": base_subject,
            "body": body,
            "in_reply_to": (inbound or {}).get("message_id_header"),
            "created_by": principal.user_id if principal else None,
        },
    )
    assert message_id is not None
    job_id = await queue_send(conn, message_id, found["lead_id"])
    await repo.mark_read(conn, conversation_id)
    return {"messageId": message_id, "jobId": job_id, "status": "queued"}


async def unsubscribe(tx: Tx, lead_id: uuid.UUID) -> dict[str, Any]:
    conn = tx
    lead = await repo.lead_address(conn, lead_id)
    if lead is None:
        raise NotFound("lead_not_found", "this link is no longer valid")
    if lead["normalized_email"]:
        await sequences_repo.suppress(conn, lead["normalized_email"], "unsubscribed", "link")
    stopped = await sequences_repo.stop_enrollments(conn, lead_id, "unsubscribed")
    return {"email": lead["normalized_email"], "stopped": stopped}


async def caught_mail(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    conn = tx
    return await repo.sink_messages(conn, limit)


async def caught_message(tx: Tx, sink_id: int) -> dict[str, Any]:
    conn = tx
    found = await repo.sink_message(conn, sink_id)
    if found is None:
        raise NotFound("mail_not_found", "the sink holds no such message")
    return found


def simulated_reply(caught: dict[str, Any], body: str) -> bytes:
    """A lead's reply to mail the sink caught, as their mail server would deliver it."""
    import email
    import email.policy
    from email.message import EmailMessage
    from email.utils import make_msgid

    original = email.message_from_string(caught["raw"], policy=email.policy.default)
    reply = EmailMessage()
    reply["From"] = original["To"]
    reply["To"] = original["From"]
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Message-ID"] = make_msgid(domain="reply.sink.local")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    reply.set_content(body)
    return reply.as_bytes()
