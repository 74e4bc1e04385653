"""Sequences: definition, enrollment, the tick that schedules each due step exactly once,
and the send job that honours suppression, send windows and daily limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

import asyncpg
import structlog

from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.executions import (
    Deferred,
    RetryPolicy,
    TerminalJobError,
    create_execution,
)
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.inbox import repository as inbox_repo
from leadflood.integrations.smtp.sender import SmtpConfig, send_email
from leadflood.integrations.smtp.sender import config_from as smtp_config_from
from leadflood.integrations.trengo.client import TrengoClient
from leadflood.prospecting import repository as leads_repo
from leadflood.sequences import repository as repo
from leadflood.sequences import templates, unsubscribe
from leadflood.sequences.schemas import MailboxIn, SequenceIn
from leadflood.sequences.sending import local_day, wait_for_tomorrow, wait_for_window

log = structlog.get_logger("leadflood.sequences")

SEND_JOB = "message.send"
SEND_RETRY = RetryPolicy(
    max_attempts=4,
    delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15)),
)
TICK_BATCH = 500


async def queue_send(
    conn: asyncpg.Connection, message_id: uuid.UUID, lead_id: uuid.UUID
) -> uuid.UUID:
    """The tracked send job of a queued message (sequence step or manual reply), in the
    caller's transaction; the message row records its job."""
    job_id, _ = await create_execution(
        conn,
        SEND_JOB,
        {"message_id": str(message_id)},
        max_attempts=SEND_RETRY.max_attempts,
        lead_id=lead_id,
    )
    await inbox_repo.set_message_job(conn, message_id, job_id)
    return job_id


def _not_found(what: str) -> NotFound:
    return NotFound(f"{what}_not_found", f"no {what} with this id")


# ---- mailboxes and sequences ------------------------------------------------------------


async def create_mailbox(runtime: Runtime, principal: Principal | None, body: MailboxIn) -> dict:
    if body.window_end <= body.window_start:
        raise BadRequest("invalid_window", "window_end must be after window_start")
    async with unit_of_work(runtime.db) as conn:
        try:
            mailbox = await repo.insert_mailbox(conn, body.model_dump())
        except asyncpg.UniqueViolationError:
            raise Conflict("mailbox_exists", "a mailbox sends from this address") from None
        await conn.audit(principal, "create", "mailbox", mailbox["id"], body.model_dump())
    return mailbox


async def list_mailboxes(runtime: Runtime) -> list[dict]:
    async with single_statements(runtime.db) as conn:
        return await repo.list_mailboxes(conn)


def _check_steps(body: SequenceIn) -> list[dict[str, Any]]:
    steps = []
    for n, step in enumerate(body.steps, start=1):
        templates.check(step.body_template, f"steps[{n}].body_template")
        if step.channel == "email":
            if not step.subject_template.strip():
                raise BadRequest(
                    "subject_required",
                    f"steps[{n}]: an email step needs a subject",
                    details={"field": f"steps[{n}].subject_template"},
                )
            templates.check(step.subject_template, f"steps[{n}].subject_template")
        steps.append(step.model_dump())
    return steps


async def create_sequence(runtime: Runtime, principal: Principal | None, body: SequenceIn) -> dict:
    steps = _check_steps(body)
    async with unit_of_work(runtime.db) as conn:
        raw = conn
        if body.mailbox_id and await repo.get_mailbox(raw, body.mailbox_id) is None:
            raise BadRequest("unknown_mailbox", "mailbox_id does not name a mailbox")
        sequence = await repo.insert_sequence(
            raw, body.name, body.mailbox_id, principal.user_id if principal else None
        )
        await repo.replace_steps(raw, sequence["id"], steps)
        await conn.audit(principal, "create", "sequence", sequence["id"], {"name": body.name})
        return await repo.get_sequence(raw, sequence["id"])  # type: ignore[return-value]


async def update_sequence(
    runtime: Runtime, principal: Principal | None, sequence_id: uuid.UUID, body: SequenceIn
) -> dict:
    steps = _check_steps(body)
    async with unit_of_work(runtime.db) as conn:
        raw = conn
        if not await repo.update_sequence(raw, sequence_id, body.name, body.mailbox_id):
            raise _not_found("sequence")
        await repo.replace_steps(raw, sequence_id, steps)
        await conn.audit(principal, "update", "sequence", sequence_id, {"steps": len(steps)})
        return await repo.get_sequence(raw, sequence_id)  # type: ignore[return-value]


async def get_sequence(runtime: Runtime, sequence_id: uuid.UUID) -> dict:
    async with single_statements(runtime.db) as conn:
        sequence = await repo.get_sequence(conn, sequence_id)
        if sequence is None:
            raise _not_found("sequence")
        sequence["enrollments"] = await repo.list_enrollments(conn, sequence_id)
    return sequence


async def list_sequences(runtime: Runtime) -> list[dict]:
    async with single_statements(runtime.db) as conn:
        return await repo.list_sequences(conn)


async def set_status(
    runtime: Runtime, principal: Principal | None, sequence_id: uuid.UUID, status: str
) -> dict:
    async with unit_of_work(runtime.db) as conn:
        raw = conn
        sequence = await repo.get_sequence(raw, sequence_id)
        if sequence is None:
            raise _not_found("sequence")
        sends_email = any(step["channel"] == "email" for step in sequence["steps"])
        if status == "active" and sends_email and sequence["mailbox_id"] is None:
            raise BadRequest("mailbox_required", "choose the mailbox email steps send from")
        await repo.set_status(raw, sequence_id, status)
        await conn.audit(principal, status, "sequence", sequence_id)
        return await repo.get_sequence(raw, sequence_id)  # type: ignore[return-value]


async def delete_sequence(runtime: Runtime, principal: Principal | None, sequence_id: uuid.UUID):
    async with unit_of_work(runtime.db) as conn:
        if not await repo.delete_sequence(conn, sequence_id):
            raise _not_found("sequence")
        await conn.audit(principal, "delete", "sequence", sequence_id)


# ---- enrollment -------------------------------------------------------------------------


def _preview_context(lead: dict[str, Any], sender: str) -> dict[str, Any]:
    return templates.context_for(lead, {"sender_name": sender, "unsubscribe_url": "x"})


async def enroll(
    runtime: Runtime, principal: Principal | None, sequence_id: uuid.UUID, lead_ids: list
) -> dict[str, Any]:
    """Enrolls each lead once. Leads that cannot receive the sequence are refused with a
    reason: suppressed, do not contact, no address for a channel, or a template variable
    the lead has no value for (caught now, not at send time)."""
    async with unit_of_work(runtime.db) as conn:
        sequence = await repo.get_sequence(conn, sequence_id)
        if sequence is None:
            raise _not_found("sequence")
        mailbox = (
            await repo.get_mailbox(conn, sequence["mailbox_id"]) if sequence["mailbox_id"] else None
        )
        sender = (mailbox or {}).get("from_name") or ""
        leads = {lead["id"]: lead for lead in await repo.leads_for_enrollment(conn, lead_ids)}
        first_at = datetime.now(UTC) + timedelta(minutes=sequence["steps"][0]["delay_minutes"])
        enrolled, refused = [], []
        for lead_id in dict.fromkeys(lead_ids):
            lead = leads.get(lead_id)
            reason = _refusal(lead, sequence["steps"], sender)
            if reason is None:
                enrollment_id = await repo.insert_enrollment(
                    conn, sequence_id, lead_id, first_at, principal.user_id if principal else None
                )
                reason = None if enrollment_id else "already_enrolled"
            if reason:
                refused.append({"lead_id": lead_id, "reason": reason})
            else:
                enrolled.append(lead_id)
    return {"enrolled": enrolled, "refused": refused}


def _refusal(lead: dict | None, steps: list[dict], sender: str) -> str | None:
    if lead is None:
        return "lead_not_found"
    if lead["do_not_contact"]:
        return "do_not_contact"
    if lead["suppressed"]:
        return "suppressed"
    channels = {s["channel"] for s in steps}
    if "email" in channels and not lead["normalized_email"]:
        return "no_email"
    if channels & {"whatsapp", "sms"} and not lead["phone"]:
        return "no_phone"
    context = _preview_context(lead, sender)
    for step in steps:
        for text in (step["subject_template"], step["body_template"]):
            missing = sorted(templates.variables_used(text) - set(context))
            if missing:
                return f"missing_variable:{','.join(missing)}"
    return None


# ---- the tick ---------------------------------------------------------------------------


async def tick(runtime: Runtime, *, now: datetime | None = None) -> dict[str, int]:
    """Schedule every due step: one message row + one send job per (enrollment, step).

    The unique (enrollment, step) index makes this exactly once even when ticks overlap
    or a tick is retried; SKIP LOCKED lets concurrent ticks share the work.
    """
    at = now or datetime.now(UTC)
    scheduled = skipped = 0
    while True:
        async with unit_of_work(runtime.db) as conn:
            due = await repo.due_steps(conn, at, TICK_BATCH)
            for step in due:
                conversation = await inbox_repo.conversation_for(
                    conn, step["lead_id"], step["channel"]
                )
                message_id = await inbox_repo.insert_message(
                    conn,
                    {
                        "conversation_id": conversation,
                        "lead_id": step["lead_id"],
                        "enrollment_id": step["enrollment_id"],
                        "step_id": step["step_id"],
                        "mailbox_id": step["mailbox_id"],
                        "direction": "outbound",
                        "channel": step["channel"],
                        "kind": "sequence",
                        "status": "queued",
                    },
                )
                if message_id is None:
                    skipped += 1  # this step was scheduled before
                else:
                    await queue_send(conn, message_id, step["lead_id"])
                    scheduled += 1
                following = (
                    at + timedelta(minutes=step["next_delay"])
                    if step["next_delay"] is not None
                    else None
                )
                await repo.advance(conn, step["enrollment_id"], following)
        if len(due) < TICK_BATCH:
            return {"scheduled": scheduled, "skipped": skipped}


# ---- sending ----------------------------------------------------------------------------


def _smtp_config(runtime: Runtime) -> SmtpConfig:
    config = smtp_config_from(runtime.settings)
    if config is None:
        raise PermanentProviderError("smtp", "provider_not_configured", "set LEADFLOOD_SMTP_HOST")
    return config


async def _cancel(runtime: Runtime, message: dict, reason: str) -> dict[str, Any]:
    async with single_statements(runtime.db) as conn:
        await inbox_repo.update_message(conn, message["id"], {"status": "failed", "error": reason})
    return {"message_id": str(message["id"]), "outcome": "cancelled", "reason": reason}


async def send_message(runtime: Runtime, execution: dict[str, Any]) -> dict[str, Any]:
    """One attempt of message.send (sequence steps and manual replies)."""
    message_id = uuid.UUID(execution["payload"]["message_id"])
    async with single_statements(runtime.db) as conn:
        message = await inbox_repo.get_message(conn, message_id)
        if message is None:
            raise TerminalJobError("message_not_found", "the message was deleted")
        if message["status"] != "queued":
            return {"message_id": str(message_id), "outcome": "already_" + message["status"]}
        lead = await leads_repo.get_lead(conn, message["lead_id"])
        enrollment = (
            await repo.get_enrollment(conn, message["enrollment_id"])
            if message["enrollment_id"]
            else None
        )
        step = None
        if message["step_id"]:
            step = await repo.get_step(conn, message["step_id"])
        mailbox = (
            await repo.get_mailbox(conn, message["mailbox_id"]) if message["mailbox_id"] else None
        )
        suppressed = bool(lead and lead["normalized_email"]) and await repo.is_suppressed(
            conn, lead["normalized_email"]
        )
    if lead is None:
        raise TerminalJobError("lead_not_found", "the lead was deleted")
    if enrollment is not None and enrollment["status"] != "active":
        return await _cancel(
            runtime, message, f"enrollment {enrollment['status']}: {enrollment['stop_reason']}"
        )
    if lead["do_not_contact"] or (message["channel"] == "email" and suppressed):
        return await _cancel(runtime, message, "suppressed")

    context = templates.context_for(
        lead,
        {
            "sender_name": (mailbox or {}).get("from_name") or None,
            "unsubscribe_url": _unsubscribe_url(runtime, lead["id"]),
        },
    )
    subject, body = message["subject"], message["body"]
    if step is not None:
        try:
            subject = templates.render(step["subject_template"], context)
            body = templates.render(step["body_template"], context)
        except templates.MissingVariables as exc:
            # Never a blank: the message fails visibly and the enrollment stops.
            async with unit_of_work(runtime.db) as conn:
                await inbox_repo.update_message(
                    conn, message_id, {"status": "failed", "error": f"template: {exc}"}
                )
                await repo.stop_enrollments(conn, lead["id"], "template_error")
            return {
                "message_id": str(message_id),
                "outcome": "template_error",
                "missing": exc.names,
            }

    started = datetime.now(UTC)
    if message["channel"] == "email":
        result = await _send_email(runtime, message, lead, mailbox, subject, body, started)
    else:
        result = await _send_trengo(runtime, message, lead, body, started)
    async with unit_of_work(runtime.db) as conn:
        await inbox_repo.update_message(
            conn,
            message_id,
            {"status": "sent", "sent_at": started, "subject": subject, "body": body, **result},
        )
        await inbox_repo.record_attempt(conn, message_id, "success", started)
        await inbox_repo.touch_conversation(conn, message["conversation_id"], started, unread=False)
        if enrollment is not None:
            await repo.complete_if_done(conn, enrollment["id"])
    return {"message_id": str(message_id), "outcome": "sent"}


def _unsubscribe_url(runtime: Runtime, lead_id: uuid.UUID) -> str:
    key = runtime.settings.secret_key.get_secret_value()
    return f"{runtime.settings.base_url}/u/{unsubscribe.token(key, lead_id)}"


async def _send_email(
    runtime: Runtime,
    message: dict,
    lead: dict,
    mailbox: dict | None,
    subject: str,
    body: str,
    started: datetime,
) -> dict[str, Any]:
    if mailbox is None or not mailbox["active"]:
        raise PermanentProviderError("smtp", "no_mailbox", "no active mailbox to send from")
    if not lead["email"]:
        raise PermanentProviderError("smtp", "no_email", "the lead has no email address")
    wait = wait_for_window(
        started, mailbox["timezone"], mailbox["window_start"], mailbox["window_end"]
    )
    if wait is not None:
        raise Deferred(wait, f"outside the send window of {mailbox['from_email']}")
    header = make_msgid(domain=mailbox["from_email"].split("@")[-1])
    unsubscribe_url = _unsubscribe_url(runtime, lead["id"])
    try:
        email = _compose(message, lead, mailbox, subject, body, header, unsubscribe_url)
    except ValueError as exc:
        # CR/LF in a header value (a subject rendered from a lead's company name, say):
        # the email package refuses it, so nothing can be injected; the send fails
        # for good instead of retrying.
        raise PermanentProviderError("smtp", "invalid_header", str(exc)) from None
    day = local_day(started, mailbox["timezone"])
    async with single_statements(runtime.db) as conn:
        if not await repo.take_send_unit(conn, mailbox["id"], day, mailbox["daily_limit"]):
            raise Deferred(
                wait_for_tomorrow(started, mailbox["timezone"], mailbox["window_start"]),
                f"daily limit of {mailbox['from_email']} reached",
            )
    try:
        await send_email(_smtp_config(runtime), email)
    except Exception as exc:
        async with single_statements(runtime.db) as conn:
            await repo.give_back_unit(conn, mailbox["id"], day)  # nothing went out
        await _record_failure(runtime, message, exc, started)
        raise
    return {
        "message_id_header": header,
        "from_address": mailbox["from_email"],
        "to_address": lead["email"],
    }


def _compose(
    message: dict,
    lead: dict,
    mailbox: dict,
    subject: str,
    body: str,
    header: str,
    unsubscribe_url: str,
) -> EmailMessage:
    """The email; ValueError for a header value with CR/LF (email.policy.default)."""
    email = EmailMessage()
    email["From"] = formataddr((mailbox["from_name"], mailbox["from_email"]))
    email["To"] = lead["email"]
    email["Subject"] = subject
    email["Message-ID"] = header
    if message["in_reply_to"]:
        email["In-Reply-To"] = message["in_reply_to"]
        email["References"] = message["in_reply_to"]
    email["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(f"{body}\n\n--\nUnsubscribe: {unsubscribe_url}\n")
    return email


async def _send_trengo(
    runtime: Runtime, message: dict, lead: dict, body: str, started: datetime
) -> dict[str, Any]:
    s = runtime.settings
    if s.trengo_api_key is None or s.trengo_channel_id is None:
        raise PermanentProviderError(
            "trengo", "provider_not_configured", "set LEADFLOOD_TRENGO_API_KEY and _CHANNEL_ID"
        )
    if not lead["phone"]:
        raise PermanentProviderError("trengo", "no_phone", "the lead has no phone number")
    client = TrengoClient(
        s.trengo_api_key.get_secret_value(), s.trengo_base_url, s.provider_timeout_s
    )
    try:
        response = await client.send_message(
            channel_id=s.trengo_channel_id, to=lead["phone"], body=body
        )
    except Exception as exc:
        await _record_failure(runtime, message, exc, started)
        raise
    finally:
        await client.close()
    provider_id = (
        (response.get("data") or response).get("id") if isinstance(response, dict) else None
    )
    return {
        "provider_message_id": str(provider_id) if provider_id else None,
        "to_address": lead["phone"],
    }


async def _record_failure(
    runtime: Runtime, message: dict, exc: Exception, started: datetime
) -> None:
    """The attempt row; a permanent failure also fails the message (the job will not retry)."""
    permanent = isinstance(exc, PermanentProviderError)
    async with unit_of_work(runtime.db) as conn:
        await inbox_repo.record_attempt(
            conn,
            message["id"],
            "permanent_error" if permanent else "retryable_error",
            started,
            str(exc),
        )
        if permanent:
            await inbox_repo.update_message(
                conn, message["id"], {"status": "failed", "error": str(exc)}
            )


async def send_failed(runtime: Runtime, execution: dict[str, Any], error: str) -> None:
    async with single_statements(runtime.db) as conn:
        await inbox_repo.update_message(
            conn,
            uuid.UUID(execution["payload"]["message_id"]),
            {"status": "failed", "error": error[:2000]},
        )
