"""Sequences: definition, enrollment, the tick that schedules each due step exactly once,
and the preparation of a step's send (suppression, send windows, daily limits). The send
itself is the message.send job (sequences/tasks.py) on a messaging channel."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.executions import Deferred, TerminalJobError
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError
from leadflood.core.rows import as_fields
from leadflood.core.settings import Settings
from leadflood.core.status import EnrollmentStatus, MessageStatus, SequenceStatus
from leadflood.core.uow import Tx
from leadflood.messaging import phones, servers
from leadflood.messaging import repository as messaging_repo
from leadflood.messaging import service as messaging
from leadflood.messaging.channels import Outgoing
from leadflood.messaging.repository import Message
from leadflood.prospecting import repository as leads_repo
from leadflood.prospecting.repository import Prospect
from leadflood.sequences import repository as repo
from leadflood.sequences import templates, unsubscribe
from leadflood.sequences.repository import EnrollmentCandidate
from leadflood.sequences.schemas import SequenceIn
from leadflood.sequences.sending import (
    daily_limit_on,
    local_day,
    wait_for_tomorrow,
    wait_for_window,
    wait_out_quiet_hours,
)

log = structlog.get_logger("leadflood.sequences")

TICK_BATCH = 500


def _not_found(what: str) -> NotFound:
    return NotFound(f"{what}_not_found", f"no {what} with this id")


# ---- sequences ------------------------------------------------------------------------


def _check_steps(body: SequenceIn) -> list[dict[str, Any]]:
    """The first email step needs a subject; a later one without a subject answers the
    first in its thread ("Re: ...")."""
    steps = []
    first_email = True
    for n, step in enumerate(body.steps, start=1):
        templates.check(step.body_template, f"steps[{n}].body_template")
        if step.channel == "email":
            if first_email and not step.subject_template.strip():
                raise BadRequest(
                    "subject_required",
                    f"steps[{n}]: the first email step needs a subject",
                    details={"field": f"steps[{n}].subject_template"},
                )
            first_email = False
            templates.check(step.subject_template, f"steps[{n}].subject_template")
        if step.channel == "whatsapp" and step.whatsapp_template_id is None:
            raise BadRequest(
                "whatsapp_template_required",
                f"steps[{n}]: WhatsApp lets a business write first only with an approved "
                "template: set whatsapp_template_id (the template's id in Trengo)",
                details={"field": f"steps[{n}].whatsapp_template_id"},
            )
        for k, param in enumerate(step.template_params):
            templates.check(param, f"steps[{n}].template_params[{k}]")
        steps.append(step.model_dump())
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise BadRequest(
            "invalid_quiet_hours",
            "set both quiet_start and quiet_end, or neither",
            details={"field": "quiet_end" if body.quiet_end is None else "quiet_start"},
        )
    return steps


def _sequence_columns(body: SequenceIn, pool: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "name": body.name,
        "mailbox_id": body.mailbox_id,
        "mailbox_ids": pool,
        "quiet_start": body.quiet_start,
        "quiet_end": body.quiet_end,
        "timezone": body.timezone,
    }


async def _check_mailboxes(tx: Tx, body: SequenceIn) -> list[uuid.UUID]:
    if body.mailbox_id and await messaging_repo.get_mailbox(tx, body.mailbox_id) is None:
        raise BadRequest(
            "unknown_mailbox", "mailbox_id does not name a mailbox", details={"field": "mailbox_id"}
        )
    pool = [m for m in dict.fromkeys(body.mailbox_ids) if m != body.mailbox_id]
    for n, mailbox_id in enumerate(pool):
        if await messaging_repo.get_mailbox(tx, mailbox_id) is None:
            raise BadRequest(
                "unknown_mailbox",
                "mailbox_ids names a mailbox that does not exist",
                details={"field": f"mailbox_ids[{n}]"},
            )
    return pool


async def create_sequence(tx: Tx, principal: Principal | None, body: SequenceIn) -> repo.Sequence:
    steps = _check_steps(body)
    pool = await _check_mailboxes(tx, body)
    sequence = await repo.insert_sequence(
        tx, _sequence_columns(body, pool), principal.user_id if principal else None
    )
    await repo.replace_steps(tx, sequence.id, steps)
    await tx.audit(principal, "create", "sequence", sequence.id, {"name": body.name})
    return await repo.get_sequence(tx, sequence.id)  # type: ignore[return-value]


async def update_sequence(
    tx: Tx, principal: Principal | None, sequence_id: uuid.UUID, body: SequenceIn
) -> repo.Sequence:
    steps = _check_steps(body)
    if await repo.get_sequence(tx, sequence_id) is None:
        raise _not_found("sequence")
    pool = await _check_mailboxes(tx, body)
    if not await repo.update_sequence(tx, sequence_id, _sequence_columns(body, pool)):
        raise _not_found("sequence")
    await repo.replace_steps(tx, sequence_id, steps)
    await tx.audit(principal, "update", "sequence", sequence_id, {"steps": len(steps)})
    return await repo.get_sequence(tx, sequence_id)  # type: ignore[return-value]


async def get_sequence(tx: Tx, sequence_id: uuid.UUID) -> repo.SequenceDetail:
    sequence = await repo.get_sequence(tx, sequence_id)
    if sequence is None:
        raise _not_found("sequence")
    enrollments = await repo.list_enrollments(tx, sequence_id)
    return repo.SequenceDetail(**as_fields(sequence), enrollments=enrollments)


async def list_sequences(tx: Tx) -> list[repo.SequenceListItem]:
    return await repo.list_sequences(tx)


async def set_status(
    tx: Tx, principal: Principal | None, sequence_id: uuid.UUID, status: str
) -> repo.Sequence:
    sequence = await repo.get_sequence(tx, sequence_id)
    if sequence is None:
        raise _not_found("sequence")
    if status not in _NEXT_STATUSES.get(sequence.status, ()):
        raise Conflict(
            "invalid_transition",
            f"a {sequence.status} sequence cannot become {status}",
            details={"from": sequence.status, "to": status},
        )
    sends_email = any(step.channel == "email" for step in sequence.steps)
    no_mailbox = sequence.mailbox_id is None and not sequence.mailbox_ids
    if status == SequenceStatus.active and sends_email and no_mailbox:
        raise BadRequest("mailbox_required", "choose the mailbox email steps send from")
    await repo.set_status(tx, sequence_id, status)
    await tx.audit(principal, status, "sequence", sequence_id)
    return await repo.get_sequence(tx, sequence_id)  # type: ignore[return-value]


# draft -> active <-> paused; activating an active sequence again is a no-op, not an error.
_NEXT_STATUSES: dict[str, tuple[str, ...]] = {
    SequenceStatus.draft: (SequenceStatus.active,),
    SequenceStatus.active: (SequenceStatus.active, SequenceStatus.paused),
    SequenceStatus.paused: (SequenceStatus.active, SequenceStatus.paused),
}


async def stop_enrollment(
    tx: Tx, principal: Principal | None, sequence_id: uuid.UUID, lead_id: uuid.UUID
) -> repo.Enrollment:
    """Take one lead out of a sequence by hand: nothing more is sent to it from here
    (a queued step is cancelled when its send runs)."""
    stopped = await repo.stop_enrollment(tx, sequence_id, lead_id, "stopped_by_user")
    if stopped is None:
        raise _not_found("enrollment")
    await tx.audit(principal, "stop_enrollment", "sequence", sequence_id, {"lead_id": str(lead_id)})
    return stopped


async def delete_sequence(tx: Tx, principal: Principal | None, sequence_id: uuid.UUID):
    if not await repo.delete_sequence(tx, sequence_id):
        raise _not_found("sequence")
    await tx.audit(principal, "delete", "sequence", sequence_id)


# ---- enrollment -------------------------------------------------------------------------


def _preview_context(lead: Prospect, sender: str) -> dict[str, Any]:
    return templates.context_for(lead, {"sender_name": sender, "unsubscribe_url": "x"})


async def enroll(
    tx: Tx, principal: Principal | None, sequence_id: uuid.UUID, lead_ids: list
) -> dict[str, Any]:
    """Enrolls each lead once. Leads that cannot receive the sequence are refused with a
    reason: suppressed, do not contact, no address for a channel, or a template variable
    the lead has no value for (caught now, not at send time)."""
    sequence = await repo.get_sequence(tx, sequence_id)
    if sequence is None:
        raise _not_found("sequence")
    main_mailbox = sequence.mailbox_id or next(iter(sequence.mailbox_ids), None)
    mailbox = await messaging_repo.get_mailbox(tx, main_mailbox) if main_mailbox else None
    sender = (mailbox.from_name if mailbox else None) or ""
    leads = {lead.id: lead for lead in await repo.leads_for_enrollment(tx, lead_ids)}
    first_at = datetime.now(UTC) + timedelta(minutes=sequence.steps[0].delay_minutes)
    enrolled, refused = [], []
    for lead_id in dict.fromkeys(lead_ids):
        lead = leads.get(lead_id)
        reason = _refusal(lead, sequence.steps, sender)
        if reason is None:
            enrollment_id = await repo.insert_enrollment(
                tx, sequence_id, lead_id, first_at, principal.user_id if principal else None
            )
            reason = None if enrollment_id else "already_enrolled"
        if reason:
            refused.append({"lead_id": lead_id, "reason": reason})
        else:
            enrolled.append(lead_id)
    return {"enrolled": enrolled, "refused": refused}


def _refusal(lead: EnrollmentCandidate | None, steps: list[repo.Step], sender: str) -> str | None:
    if lead is None:
        return "lead_not_found"
    if lead.do_not_contact:
        return "do_not_contact"
    if lead.suppressed:
        return "suppressed"
    channels = {s.channel for s in steps}
    if "email" in channels and not lead.normalized_email:
        return "no_email"
    if "email" in channels and lead.email_status == "invalid":
        return "email_invalid"  # verified undeliverable: a send would only bounce
    if channels & {"whatsapp", "sms"} and not lead.phone:
        return "no_phone"
    context = _preview_context(lead, sender)
    for step in steps:
        for text in (step.subject_template, step.body_template):
            missing = sorted(templates.variables_used(text) - set(context))
            if missing:
                return f"missing_variable:{','.join(missing)}"
    return None


# ---- the tick ---------------------------------------------------------------------------


async def tick_batch(tx: Tx, at: datetime) -> tuple[int, int, bool]:
    """Schedule one batch of due steps: one message row + one send job per (enrollment,
    step). Returns (scheduled, skipped, more may be due).

    The unique (enrollment, step) index makes this exactly once even when ticks overlap
    or a tick is retried; SKIP LOCKED lets concurrent ticks share the work.
    """
    scheduled = skipped = 0
    due = await repo.due_steps(tx, at, TICK_BATCH)
    for step in due:
        mailbox_id = step.kept_mailbox_id
        if step.channel == "email" and mailbox_id is None:
            mailbox_id = await repo.pick_mailbox(tx, step.pool, at - timedelta(days=1))
            mailbox_id = mailbox_id or step.mailbox_id  # all paused: it waits on the main one
            if mailbox_id is not None:
                await repo.keep_mailbox(tx, step.enrollment_id, mailbox_id)
        conversation = await messaging_repo.conversation_for(tx, step.lead_id, step.channel)
        message_id = await messaging_repo.insert_message(
            tx,
            {
                "conversation_id": conversation,
                "lead_id": step.lead_id,
                "enrollment_id": step.enrollment_id,
                "step_id": step.step_id,
                "mailbox_id": mailbox_id if step.channel == "email" else step.mailbox_id,
                "direction": "outbound",
                "channel": step.channel,
                "kind": "sequence",
                "status": "queued",
            },
        )
        if message_id is None:
            skipped += 1  # this step was scheduled before
        else:
            await messaging.queue_send(tx, message_id, step.lead_id)
            scheduled += 1
        following = at + timedelta(minutes=step.next_delay) if step.next_delay is not None else None
        await repo.advance(tx, step.enrollment_id, following)
    return scheduled, skipped, len(due) == TICK_BATCH


# ---- preparing a send -------------------------------------------------------------------

PAUSED_RECHECK = timedelta(minutes=10)


def unsubscribe_url(settings: Settings, lead_id: uuid.UUID) -> str:
    key = settings.secret_key.get_secret_value()
    return f"{settings.base_url}/u/{unsubscribe.token(key, lead_id)}"


async def prepare_send(
    tx: Tx, settings: Settings, message_id: uuid.UUID, now: datetime
) -> Outgoing | Later | dict[str, Any]:
    """What one attempt of message.send will send, or the outcome that ends it without a
    send (sent already, cancelled, a template error). Raises `Deferred` outside the send
    window or at the mailbox's daily limit (the unit taken here is given back if the send
    fails), `TerminalJobError`/`PermanentProviderError` when no attempt can succeed."""
    message = await messaging_repo.get_message(tx, message_id)
    if message is None:
        raise TerminalJobError("message_not_found", "the message was deleted")
    if message.status != MessageStatus.queued:
        return {"message_id": str(message_id), "outcome": "already_" + message.status}
    lead = await leads_repo.get_lead(tx, message.lead_id)
    if lead is None:
        raise TerminalJobError("lead_not_found", "the lead was deleted")
    enrollment = (
        await repo.get_enrollment(tx, message.enrollment_id) if message.enrollment_id else None
    )
    mailbox = (
        await messaging_repo.get_mailbox(tx, message.mailbox_id) if message.mailbox_id else None
    )
    # A completed enrollment still sends a step queued again after a soft bounce.
    if enrollment is not None and enrollment.status == EnrollmentStatus.stopped:
        reason = f"enrollment {enrollment.status}: {enrollment.stop_reason}"
        return await messaging.cancel(tx, message_id, reason)
    if enrollment is not None and enrollment.sequence_status == SequenceStatus.paused:
        # Paused means nothing leaves, steps already queued included; they go on resume.
        raise Deferred(PAUSED_RECHECK, "the sequence is paused")
    suppressed = lead.normalized_email is not None and await messaging_repo.is_suppressed(
        tx, lead.normalized_email
    )
    if lead.do_not_contact or (message.channel == "email" and suppressed):
        return await messaging.cancel(tx, message_id, "suppressed")

    link = unsubscribe_url(settings, lead.id)
    subject, body = message.subject, message.body
    whatsapp_template: tuple[int, list[str]] | None = None
    step = await repo.get_step(tx, message.step_id) if message.step_id else None
    if message.step_id and step is None:  # never a blank message from a removed step
        return await messaging.cancel(tx, message_id, "step removed")
    if step is not None:  # else the text stored with the message (a manual reply)
        context = templates.context_for(
            lead,
            {
                "sender_name": (mailbox.from_name if mailbox else None) or None,
                "unsubscribe_url": link,
            },
        )
        try:
            subject = templates.render(step.subject_template, context)
            body = templates.render(step.body_template, context)
        except templates.MissingVariables as exc:
            # Never a blank: the message fails visibly and the enrollment stops.
            await messaging_repo.update_message(
                tx, message_id, {"status": "failed", "error": f"template: {exc}"}
            )
            await repo.stop_enrollments(tx, lead.id, "template_error")
            return {
                "message_id": str(message_id),
                "outcome": "template_error",
                "missing": exc.names,
            }
        if message.channel == "email":
            message, subject = await _threaded(tx, message, subject, context)
        if message.channel == "whatsapp" and step.whatsapp_template_id is not None:
            params = [templates.render(p, context) for p in step.template_params]
            whatsapp_template = (step.whatsapp_template_id, params)
    outgoing = Outgoing(
        message,
        lead,
        mailbox,
        subject or "",
        body or "",
        link,
        now,
        whatsapp_template=whatsapp_template,
    )
    if message.channel == "email":
        return await _take_email_unit(tx, settings, outgoing)
    return _to_phone(outgoing, enrollment)


async def _threaded(
    tx: Tx, message: Message, subject: str, context: dict[str, Any]
) -> tuple[Message, str]:
    """A follow-up answers the enrollment's first email: In-Reply-To and References name
    it, and the subject is its "Re: ..." unless the step has a subject of its own."""
    assert message.enrollment_id is not None  # a step's message belongs to an enrollment
    first = await messaging_repo.first_sent_email(tx, message.enrollment_id, message.id)
    if first is None:
        if not subject.strip():  # the first email is not out yet: its own subject
            template = await repo.first_email_subject(tx, message.enrollment_id)
            subject = templates.render(template or "", context)
        return message, subject
    if not subject.strip():
        base = first.subject or ""
        subject = base if base.lower().startswith("re:") else f"Re: {base}"
    if message.in_reply_to != first.message_id_header:
        await messaging_repo.update_message(
            tx, message.id, {"in_reply_to": first.message_id_header}
        )
        message = dataclasses.replace(message, in_reply_to=first.message_id_header)
    return message, subject


def _to_phone(outgoing: Outgoing, enrollment: repo.Enrollment | None) -> Outgoing:
    """A WhatsApp/SMS send: the number in E.164, and a sequence step outside its quiet
    hours (in the lead's own zone when the number names one)."""
    number = phones.e164(outgoing.lead.phone, outgoing.lead.country)
    if number is None:
        raise PermanentProviderError(
            "trengo", "invalid_phone", "the lead's phone number is not a valid number"
        )
    if enrollment is not None and outgoing.message.kind == "sequence":
        zone = phones.time_zone(number) or enrollment.timezone
        wait = wait_out_quiet_hours(
            outgoing.started, zone, enrollment.quiet_start, enrollment.quiet_end
        )
        if wait is not None:
            raise Deferred(wait, f"quiet hours in {zone}")
    return dataclasses.replace(outgoing, phone=number)


@dataclasses.dataclass(frozen=True, slots=True)
class Later:
    """Not now: what was decided (a send slot taken or given up) is committed first, then
    the job runs again after `delay`."""

    delay: timedelta
    reason: str


async def _take_email_unit(tx: Tx, settings: Settings, outgoing: Outgoing) -> Outgoing | Later:
    """The mailbox's turn for this email: its send window, its spacing (a slot at least
    min_spacing_s plus jitter after the previous one), and a unit of its daily limit (or
    of its warm-up ramp)."""
    mailbox, lead, now, message = (
        outgoing.mailbox,
        outgoing.lead,
        outgoing.started,
        outgoing.message,
    )
    if mailbox is not None and not mailbox.active and mailbox.paused_reason:
        # Paused by its bounce rate: queued mail waits for a person to look, not fails.
        raise Deferred(PAUSED_RECHECK, f"{mailbox.from_email} is paused: {mailbox.paused_reason}")
    if mailbox is None or not mailbox.active:
        raise PermanentProviderError("smtp", "no_mailbox", "no active mailbox to send from")
    if not lead.email:
        raise PermanentProviderError("smtp", "no_email", "the lead has no email address")
    # Only a mailbox with its own server has credentials to read (the others send
    # through LEADFLOOD_SMTP_*): no query per send for them.
    secrets = await messaging_repo.mailbox_secrets(tx, mailbox.id) if mailbox.smtp_host else None
    try:
        smtp = servers.smtp_for(secrets, settings) if secrets else None
    except ValueError:
        raise PermanentProviderError(
            "smtp", "credentials_unreadable", "re-enter the mailbox's SMTP password"
        ) from None
    if message.kind == "manual":
        # A person answering a lead who wrote back: now, not behind the cold limit/window.
        return dataclasses.replace(outgoing, smtp=smtp)
    wait = wait_for_window(now, mailbox.timezone, mailbox.window_start, mailbox.window_end)
    if wait is not None:
        return await _give_up_slot(
            tx, message, wait, f"outside the send window of {mailbox.from_email}"
        )
    if message.not_before is None:
        slot = await messaging_repo.reserve_send_slot(tx, mailbox.id, now)
        await messaging_repo.update_message(tx, message.id, {"not_before": slot})
        if slot - now > SLOT_SLACK:
            return Later(slot - now, f"spacing sends from {mailbox.from_email}")
    elif message.not_before - now > SLOT_SLACK:
        raise Deferred(message.not_before - now, f"spacing sends from {mailbox.from_email}")
    day = local_day(now, mailbox.timezone)
    if not await messaging_repo.take_send_unit(tx, mailbox.id, day, daily_limit_on(mailbox, day)):
        return await _give_up_slot(
            tx,
            message,
            wait_for_tomorrow(now, mailbox.timezone, mailbox.window_start),
            f"daily limit of {mailbox.from_email} reached",
        )
    return dataclasses.replace(outgoing, unit_day=day, smtp=smtp)


# A slot this close is now: the job queue does not wake to the millisecond.
SLOT_SLACK = timedelta(seconds=1)


async def _give_up_slot(tx: Tx, message: Message, wait: timedelta, reason: str) -> Later:
    """Held past its slot (window closed, day full): it takes a new slot when it wakes,
    so a morning's backlog is spaced out again instead of leaving at once."""
    if message.not_before is not None:
        await messaging_repo.update_message(tx, message.id, {"not_before": None})
    return Later(wait, reason)


async def record_sent(tx: Tx, outgoing: Outgoing, sent: dict[str, Any]) -> None:
    await messaging.record_sent(tx, outgoing, sent)
    message = outgoing.message
    if message.enrollment_id:
        if message.step_id:
            # The next step's delay counts from this send, not from when it was scheduled
            # (a send window or a daily limit may have held it for hours).
            await repo.delay_from_send(tx, message.enrollment_id, message.step_id, outgoing.started)
        await repo.complete_if_done(tx, message.enrollment_id)


async def record_failure(tx: Tx, outgoing: Outgoing, exc: Exception) -> None:
    """A failed send; a recipient the receiving server refuses for good (550 5.1.1 at
    RCPT) is a hard bounce like any returned mail: suppressed, sequences stopped."""
    await messaging.record_failure(tx, outgoing, exc)
    if outgoing.message.channel != "email" or not _refused_for_good(exc):
        return
    assert isinstance(exc, PermanentProviderError)
    message = outgoing.message
    await messaging_repo.update_message(tx, message.id, {"sent_at": outgoing.started})
    bounced = dataclasses.replace(
        message,
        sent_at=outgoing.started,
        mailbox_id=(outgoing.mailbox.id if outgoing.mailbox else message.mailbox_id),
    )
    addresses = [outgoing.lead.email] if outgoing.lead.email else []
    await messaging.mark_bounced(tx, addresses, bounced, exc.message)
    await repo.stop_enrollments(tx, message.lead_id, "bounced")


def _refused_for_good(exc: Exception) -> bool:
    if not isinstance(exc, PermanentProviderError) or exc.provider != "smtp":
        return False
    if exc.code == "recipient_refused":
        return True
    # Refused after DATA with the RFC 3463 code of a bad address (5.1.x).
    return exc.code == "smtp_rejected" and re.search(r"\b5\.1\.\d{1,3}\b", exc.message) is not None


async def stop_for_lead(tx: Tx, lead_id: uuid.UUID, reason: str) -> int:
    """A reply, an unsubscribe or a bounce ends the lead's active sequences."""
    return await repo.stop_enrollments(tx, lead_id, reason)
