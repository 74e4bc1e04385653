"""The inbox: inbound email and Trengo messages, conversations, manual replies,
unsubscribes. Webhook redelivery is a no-op (each provider event is claimed once)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.principal import Principal
from leadflood.core.rows import as_fields
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx
from leadflood.inbox import repository as repo
from leadflood.inbox.classify import InboundEmail, parse
from leadflood.messaging import repository as messaging_repo
from leadflood.messaging import service as messaging
from leadflood.sequences import service as sequences

log = structlog.get_logger("leadflood.inbox")


async def receive_email(
    tx: Tx, raw: bytes, *, mailbox_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """One inbound email (from the signed webhook or a mailbox's IMAP inbox), once.

    A person's reply stops the lead's sequences; an opt-out reply also suppresses the
    address; a hard bounce suppresses it and stops them; a soft bounce retries the send
    later; a DSN "delivered" marks the message delivered. Mail no lead matches is kept
    in the unmatched view."""
    inbound = parse(raw)
    event_id = inbound.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    now = datetime.now(UTC)
    if not await repo.claim_event(tx, "email", event_id):
        return {"outcome": "duplicate", "kind": inbound.kind}
    original = await _original(tx, inbound)
    if inbound.kind in ("bounce", "delivered", "delayed"):
        return await _report(tx, inbound, original, mailbox_id, now)
    lead = (
        repo.Sender(id=original.lead_id, normalized_email=None)
        if original is not None
        else await repo.lead_by_address(tx, inbound.from_address)
    )
    if lead is None:
        return await _unmatched(tx, inbound, mailbox_id, "unknown sender")
    conversation = (
        original.conversation_id
        if original
        else await messaging_repo.conversation_for(tx, lead.id, "email", inbound.subject)
    )
    await messaging_repo.insert_message(
        tx,
        {
            "conversation_id": conversation,
            "lead_id": lead.id,
            "mailbox_id": mailbox_id,
            "direction": "inbound",
            "channel": "email",
            "kind": inbound.kind,
            "status": "received",
            "from_address": inbound.from_address,
            "to_address": ", ".join(inbound.to_addresses)[:2000],
            "subject": inbound.subject[:1000],
            "body": inbound.body,
            "full_body": inbound.full_body,
            "message_id_header": inbound.message_id,
            "in_reply_to": inbound.in_reply_to[0] if inbound.in_reply_to else None,
            "received_at": now,
        },
    )
    # A person's words are unread news; auto-replies are recorded quietly.
    person = inbound.kind in ("reply", "opt_out")
    await messaging_repo.touch_conversation(tx, conversation, now, unread=person)
    stopped = 0
    if inbound.kind == "reply":
        stopped = await sequences.stop_for_lead(tx, lead.id, "replied")
    elif inbound.kind == "opt_out":
        if inbound.from_address:
            await messaging_repo.suppress(tx, inbound.from_address, "unsubscribed", "opt-out reply")
        stopped = await sequences.stop_for_lead(tx, lead.id, "unsubscribed")
    log.info("inbound_email", kind=inbound.kind, stopped=stopped)
    return {"outcome": "recorded", "kind": inbound.kind, "lead_id": lead.id, "stopped": stopped}


async def _report(
    tx: Tx,
    inbound: InboundEmail,
    original: messaging_repo.Message | None,
    mailbox_id: uuid.UUID | None,
    now: datetime,
) -> dict[str, Any]:
    """A bounce or a delivery report: it moves the message it reports on."""
    addresses = inbound.bounced or (
        [original.to_address] if original and original.to_address else []
    )
    lead = (
        repo.Sender(id=original.lead_id, normalized_email=None)
        if original is not None
        else (await repo.lead_by_address(tx, addresses[0]) if addresses else None)
    )
    if lead is None:
        return await _unmatched(tx, inbound, mailbox_id, "no message or lead for this report")
    result: dict[str, Any] = {"outcome": "recorded", "kind": inbound.kind, "lead_id": lead.id}
    if inbound.kind == "delivered":
        if original is not None and original.status == "sent":
            await messaging_repo.update_message(tx, original.id, {"status": "delivered"})
            await messaging_repo.record_attempt(
                tx, original.id, "delivered", now, None, inbound.reason
            )
        return result
    if inbound.kind == "delayed":
        return result  # the sending server keeps trying; nothing to do yet
    if inbound.bounce_type == "soft":
        result["bounce_type"] = "soft"
        result["retry"] = (
            await messaging.soft_bounced(tx, original, inbound.reason) if original else False
        )
        result["stopped"] = 0
        return result
    result["bounce_type"] = "hard"
    await messaging.mark_bounced(tx, addresses, original, inbound.reason or inbound.subject)
    result["stopped"] = await sequences.stop_for_lead(tx, lead.id, "bounced")
    log.info("inbound_bounce", bounce_type="hard", stopped=result["stopped"])
    return result


async def _unmatched(
    tx: Tx, inbound: InboundEmail, mailbox_id: uuid.UUID | None, reason: str
) -> dict[str, Any]:
    """Kept for a person to look at (a colleague answering for the lead, a forward)."""
    await messaging_repo.insert_unmatched(
        tx,
        {
            "channel": "email",
            "mailbox_id": mailbox_id,
            "kind": inbound.kind,
            "reason": f"{reason}; {inbound.reason}"[:500],
            "from_address": inbound.from_address[:320],
            "to_address": ", ".join(inbound.to_addresses)[:2000],
            "subject": inbound.subject[:1000],
            "body": inbound.body[:20_000],
            "message_id_header": inbound.message_id,
        },
    )
    return {"outcome": "unmatched", "kind": inbound.kind, "reason": reason}


async def _original(tx: Tx, inbound: InboundEmail) -> messaging_repo.Message | None:
    for header in [
        *([inbound.original_message_id] if inbound.original_message_id else []),
        *inbound.in_reply_to,
    ]:
        found = await messaging_repo.message_by_header(tx, header)
        if found is not None and found.direction == "outbound":
            return found
    return None


async def receive_trengo(tx: Tx, settings: Settings, form: dict[str, str]) -> dict[str, Any]:
    """A Trengo webhook, read from the fields Trengo sends (its payload names no event
    type): an agent's message or an internal note carries `user_id` and is no reply of
    the lead's; the channel comes from `channel_id`, the contact from
    `contact_identifier` (a phone) or, on an email channel, `contact_email`."""
    event_id = form.get("message_id")
    if not event_id:
        raise BadRequest("invalid_webhook", "message_id is required")
    if form.get("user_id"):
        return {"outcome": "ignored", "reason": "sent by an agent or a note"}
    phone, address = form.get("contact_identifier") or "", form.get("contact_email") or ""
    if not phone and not address:
        raise BadRequest("invalid_webhook", "contact_identifier or contact_email is required")
    channel = _trengo_channel(settings, form.get("channel_id"), phone)
    now = datetime.now(UTC)
    if not await repo.claim_event(tx, "trengo", event_id):
        return {"outcome": "duplicate"}
    if phone:
        lead = await repo.lead_by_phone(tx, "".join(ch for ch in phone if ch.isdigit()))
    else:
        lead = await repo.lead_by_address(tx, address)
    if lead is None:
        return {"outcome": "ignored", "reason": "unknown contact"}
    conversation = await messaging_repo.conversation_for(tx, lead.id, channel)
    await messaging_repo.insert_message(
        tx,
        {
            "conversation_id": conversation,
            "lead_id": lead.id,
            "direction": "inbound",
            "channel": channel,
            "kind": "reply",
            "status": "received",
            "from_address": phone or address,
            "body": form.get("message") or "",
            "provider_message_id": event_id,
            "received_at": now,
        },
    )
    await messaging_repo.touch_conversation(tx, conversation, now, unread=True)
    if channel != "email" and _is_stop(form.get("message") or ""):
        # The carriers' opt-out keywords: no more messages to this person, on any channel.
        await repo.mark_do_not_contact(tx, lead.id)
        stopped = await sequences.stop_for_lead(tx, lead.id, "unsubscribed")
        return {"outcome": "opted_out", "kind": channel, "lead_id": lead.id, "stopped": stopped}
    stopped = await sequences.stop_for_lead(tx, lead.id, "replied")
    return {"outcome": "recorded", "kind": channel, "lead_id": lead.id, "stopped": stopped}


# The opt-out keywords SMS carriers and WhatsApp senders honour (CTIA's list and common
# variants), as the whole message.
_STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout"})


def _is_stop(body: str) -> bool:
    word = "".join(ch for ch in body.strip().lower() if ch.isalpha())
    return word in _STOP_WORDS and len(body.strip()) <= 20


def _trengo_channel(settings: Settings, channel_id: str | None, phone: str) -> str:
    if not phone:
        return "email"
    sms = settings.trengo_sms_channel_id
    return "sms" if sms is not None and channel_id == str(sms) else "whatsapp"


async def conversations(
    tx: Tx, *, unread_only: bool = False, limit: int = 100
) -> list[messaging_repo.ConversationListItem]:
    return await messaging_repo.list_conversations(tx, unread_only=unread_only, limit=limit)


async def conversation(
    tx: Tx, conversation_id: uuid.UUID, *, mark_read: bool = True
) -> messaging_repo.Thread:
    found = await messaging_repo.get_conversation(tx, conversation_id)
    if found is None:
        raise NotFound("conversation_not_found", "no conversation with this id")
    messages = await messaging_repo.thread(tx, conversation_id)
    if mark_read:
        await messaging_repo.mark_read(tx, conversation_id)
    return messaging_repo.Thread(**as_fields(found), messages=messages)


async def reply(
    tx: Tx,
    principal: Principal | None,
    conversation_id: uuid.UUID,
    body: str,
    subject: str | None = None,
) -> dict[str, Any]:
    """A manual reply, sent by the message.send job; its status shows in the thread."""
    found = await messaging_repo.get_conversation(tx, conversation_id)
    if found is None:
        raise NotFound("conversation_not_found", "no conversation with this id")
    if found.channel == "whatsapp":
        wrote = await messaging_repo.last_inbound_at(tx, conversation_id)
        if wrote is None or datetime.now(UTC) - wrote > WHATSAPP_WINDOW:
            raise Conflict(
                "whatsapp_window_closed",
                "WhatsApp allows free text only within 24 hours of the lead's last message; "
                "write with an approved template from a sequence step instead",
            )
    last = await messaging_repo.last_outbound_header(tx, conversation_id)
    inbound = await messaging_repo.last_inbound_header(tx, conversation_id)
    mailbox_id = await messaging_repo.reply_mailbox(tx, conversation_id)
    replied_to = inbound or last
    base_subject = subject or (replied_to.subject if replied_to else None) or found.subject or ""
    if found.channel == "email" and base_subject and not base_subject.lower().startswith("re:"):
        base_subject = f"Re: {base_subject}"
    message_id = await messaging_repo.insert_message(
        tx,
        {
            "conversation_id": conversation_id,
            "lead_id": found.lead_id,
            "mailbox_id": mailbox_id,
            "direction": "outbound",
            "channel": found.channel,
            "kind": "manual",
            "status": "queued",
            "subject": base_subject,
            "body": body,
            "in_reply_to": inbound.message_id_header if inbound else None,
            "created_by": principal.user_id if principal else None,
        },
    )
    assert message_id is not None
    job_id = await messaging.queue_send(tx, message_id, found.lead_id)
    await messaging_repo.mark_read(tx, conversation_id)
    return {"message_id": message_id, "job_id": job_id, "status": "queued"}


# WhatsApp's customer-service window: free text only this long after the contact wrote.
WHATSAPP_WINDOW = timedelta(hours=24)


async def unsubscribe(tx: Tx, lead_id: uuid.UUID) -> dict[str, Any]:
    lead = await repo.lead_address(tx, lead_id)
    if lead is None:
        raise NotFound("lead_not_found", "this link is no longer valid")
    if lead.normalized_email:
        await messaging_repo.suppress(tx, lead.normalized_email, "unsubscribed", "link")
    stopped = await sequences.stop_for_lead(tx, lead_id, "unsubscribed")
    return {"email": lead.normalized_email, "stopped": stopped}


async def unmatched(tx: Tx, limit: int = 100) -> list[messaging_repo.UnmatchedInbound]:
    return await messaging_repo.list_unmatched(tx, limit)


async def caught_mail(tx: Tx, limit: int = 100) -> list[repo.CaughtMailItem]:
    return await repo.sink_messages(tx, limit)


async def caught_message(tx: Tx, sink_id: int) -> repo.CaughtMail:
    found = await repo.sink_message(tx, sink_id)
    if found is None:
        raise NotFound("mail_not_found", "the sink holds no such message")
    return found


def simulated_reply(caught: repo.CaughtMail, body: str) -> bytes:
    """A lead's reply to mail the sink caught, as their mail server would deliver it."""
    import email
    import email.policy
    from email.message import EmailMessage
    from email.utils import make_msgid

    original = email.message_from_string(caught.raw, policy=email.policy.default)
    reply = EmailMessage()
    reply["From"] = original["To"]
    reply["To"] = original["From"]
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Message-ID"] = make_msgid(domain="reply.sink.local")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    reply.set_content(body)
    return reply.as_bytes()
