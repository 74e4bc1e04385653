"""Outreach engagement pages: mailboxes, sequences (steps, enroll, tick), the inbox, the
SMTP sink's caught mail and analytics. Pages call services, never SQL."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from leadflood.analytics import service as analytics
from leadflood.auth.policy import Permission
from leadflood.auth.service import Principal
from leadflood.core.boundary import TX
from leadflood.core.errors import AppError, NotFound
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
from leadflood.inbox import service as inbox
from leadflood.messaging import service as messaging
from leadflood.messaging.schemas import MailboxIn
from leadflood.prospecting import service as prospecting
from leadflood.sequences import service as sequences
from leadflood.sequences import tasks as sequence_tasks
from leadflood.sequences.schemas import SequenceIn
from leadflood.web import forms
from leadflood.web.pages import attempt, render
from leadflood.web.session import page_requires, text_form

router = APIRouter(include_in_schema=False, prefix="/outreach")

READ = Depends(page_requires(Permission.outreach_read))
WORK = Depends(page_requires(Permission.outreach_write))
DEFINE = Depends(page_requires(Permission.sequences_write))
STEP_SLOTS = 4


# ---- mailboxes ---------------------------------------------------------------------------


@router.get("/mailboxes")
async def mailboxes(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    items = await messaging.list_mailboxes(tx)
    return render(
        request, "outreach/mailboxes.html", principal, mailboxes=items, values={}, errors={}
    )


@router.post("/mailboxes")
async def mailbox_create(request: Request, principal: Principal = DEFINE, tx: Tx = TX) -> Response:
    values = {k: str(v) for k, v in (await text_form(request)).items() if str(v).strip()}
    key = runtime_of(request).settings.secret_key.get_secret_value()
    try:
        body = MailboxIn(**forms.nested(values, ("smtp", "imap")))
        await messaging.check_servers(body, runtime_of(request).settings)
        await attempt(tx, messaging.create_mailbox(tx, principal, body, key))
    except (ValidationError, AppError) as exc:
        errors = (
            {
                k.replace(".", "_"): v
                for k, v in forms.validation_errors(exc, whole_path=True).items()
            }
            if isinstance(exc, ValidationError)
            else {"__all__": exc.message}
        )
        items = await messaging.list_mailboxes(tx)
        return render(
            request,
            "outreach/mailboxes.html",
            principal,
            status=400,
            mailboxes=items,
            values=values,
            errors=errors,
        )
    return RedirectResponse("/outreach/mailboxes", status_code=303)


# ---- sequences ---------------------------------------------------------------------------


@router.get("/sequences")
async def sequence_list(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    items = await sequences.list_sequences(tx)
    return render(request, "outreach/sequences.html", principal, sequences=items)


def _steps_from_form(form: dict[str, str]) -> list[dict[str, Any]]:
    steps = []
    for n in range(1, STEP_SLOTS + 1):
        body = form.get(f"step{n}_body", "").strip()
        if not body:
            continue
        step: dict[str, Any] = {
            "channel": form.get(f"step{n}_channel", "email"),
            "delay_minutes": form.get(f"step{n}_delay") or 0,
            "subject_template": form.get(f"step{n}_subject", ""),
            "body_template": body,
        }
        if form.get(f"step{n}_whatsapp_template_id", "").strip():
            step["whatsapp_template_id"] = form[f"step{n}_whatsapp_template_id"].strip()
            params = form.get(f"step{n}_template_params", "")
            step["template_params"] = [p.strip() for p in params.splitlines() if p.strip()]
        steps.append(step)
    return steps


async def _sequence_form(
    request: Request,
    tx: Tx,
    principal: Principal,
    values: dict,
    errors: dict,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "outreach/sequence_form.html",
        principal,
        status=status,
        values=values,
        errors=errors,
        slots=range(1, STEP_SLOTS + 1),
        mailboxes=await messaging.list_mailboxes(tx),
    )


@router.get("/sequences/new")
async def sequence_new(
    request: Request, principal: Principal = DEFINE, tx: Tx = TX
) -> HTMLResponse:
    return await _sequence_form(request, tx, principal, {}, {})


@router.post("/sequences/new")
async def sequence_create(request: Request, principal: Principal = DEFINE, tx: Tx = TX) -> Response:
    form = {k: str(v) for k, v in (await text_form(request)).items()}
    try:
        body = SequenceIn(
            name=form.get("name", ""),
            mailbox_id=form.get("mailbox_id") or None,
            steps=_steps_from_form(form),
        )
        created = await attempt(tx, sequences.create_sequence(tx, principal, body))
    except ValidationError as exc:
        return await _sequence_form(
            request, tx, principal, form, forms.validation_errors(exc, whole_path=True), status=400
        )
    except AppError as exc:
        field = str(exc.details.get("field", "__all__"))
        return await _sequence_form(
            request, tx, principal, form, {field: exc.message, "__all__": exc.message}, status=400
        )
    return RedirectResponse(f"/outreach/sequences/{created.id}", status_code=303)


@router.get("/sequences/{sequence_id}")
async def sequence_page(
    sequence_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX
):
    sequence = await sequences.get_sequence(tx, sequence_id)
    enrolled = {e.lead_id for e in sequence.enrollments}
    candidates = await prospecting.list_leads(tx, filters={}, limit=200)
    return render(
        request,
        "outreach/sequence.html",
        principal,
        sequence=sequence,
        candidates=[lead for lead in candidates["items"] if lead.id not in enrolled],
    )


@router.post("/sequences/{sequence_id}/status")
async def sequence_status(
    sequence_id: uuid.UUID, request: Request, principal: Principal = DEFINE, tx: Tx = TX
):
    status = str((await text_form(request)).get("status", ""))
    try:
        if status not in ("active", "paused"):
            raise NotFound("unknown_status", "status is active or paused")
        await attempt(tx, sequences.set_status(tx, principal, sequence_id, status))
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": f"/outreach/sequences/{sequence_id}"})


@router.post("/sequences/{sequence_id}/enroll")
async def sequence_enroll(
    sequence_id: uuid.UUID, request: Request, principal: Principal = WORK, tx: Tx = TX
):
    form = await text_form(request)
    ids = []
    for value in form.getlist("lead_id"):
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not ids:
        return render(
            request, "_flash.html", principal, message="choose at least one lead", ok=False
        )
    result = await attempt(tx, sequences.enroll(tx, principal, sequence_id, ids))
    refused = "; ".join(f"{r['reason']}" for r in result["refused"])
    message = f"Enrolled {len(result['enrolled'])} lead(s)" + (
        f"; refused: {refused}" if refused else ""
    )
    return render(request, "_flash.html", principal, message=message, ok=bool(result["enrolled"]))


@router.post("/sequences/{sequence_id}/enrollments/{lead_id}/stop")
async def enrollment_stop(
    sequence_id: uuid.UUID,
    lead_id: uuid.UUID,
    request: Request,
    principal: Principal = WORK,
    tx: Tx = TX,
):
    try:
        await attempt(tx, sequences.stop_enrollment(tx, principal, sequence_id, lead_id))
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": f"/outreach/sequences/{sequence_id}"})


@router.post("/tick")
async def run_tick(request: Request, principal: Principal = DEFINE) -> HTMLResponse:
    result = await sequence_tasks.tick(runtime_of(request))
    message = f"Tick: {result['scheduled']} step(s) scheduled for sending"
    return render(request, "_flash.html", principal, message=message, ok=True)


# ---- inbox -----------------------------------------------------------------------------


@router.get("/inbox")
async def inbox_page(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    unread = request.query_params.get("unread") == "1"
    items = await inbox.conversations(tx, unread_only=unread)
    unmatched = await inbox.unmatched(tx, 50)
    return render(
        request,
        "outreach/inbox.html",
        principal,
        conversations=items,
        unread=unread,
        unmatched=unmatched,
    )


@router.get("/inbox/{conversation_id}")
async def thread_page(
    conversation_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX
):
    conversation = await inbox.conversation(tx, conversation_id)
    return render(request, "outreach/thread.html", principal, conversation=conversation)


@router.post("/inbox/{conversation_id}/reply")
async def thread_reply(
    conversation_id: uuid.UUID, request: Request, principal: Principal = WORK, tx: Tx = TX
):
    body = str((await text_form(request)).get("body", "")).strip()
    if not body:
        return render(request, "_flash.html", principal, message="write a reply first", ok=False)
    await attempt(tx, inbox.reply(tx, principal, conversation_id, body))
    return Response(status_code=204, headers={"HX-Redirect": f"/outreach/inbox/{conversation_id}"})


# ---- the SMTP sink (local development) ----------------------------------------------------


@router.get("/sink")
async def sink(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    mail = await inbox.caught_mail(tx)
    return render(
        request,
        "outreach/sink.html",
        principal,
        mail=mail,
        enabled=runtime_of(request).settings.smtp_sink_port is not None,
    )


@router.get("/sink/{sink_id}")
async def sink_message(sink_id: int, request: Request, principal: Principal = READ, tx: Tx = TX):
    caught = await inbox.caught_message(tx, sink_id)
    return render(request, "outreach/sink_message.html", principal, mail=caught)


@router.post("/sink/{sink_id}/reply")
async def sink_simulate_reply(
    sink_id: int, request: Request, principal: Principal = WORK, tx: Tx = TX
):
    """Dev tool: the recipient of caught mail 'replies', through the inbound pipeline."""
    if runtime_of(request).settings.env == "production":
        raise NotFound("page_not_found", "the sink is for local use")
    body = str((await text_form(request)).get("body") or "Thanks, I'm interested. Call me?")
    caught = await inbox.caught_message(tx, sink_id)
    result = await inbox.receive_email(tx, inbox.simulated_reply(caught, body))
    message = f"Reply recorded: {result['kind']}, {result.get('stopped', 0)} enrollment(s) stopped"
    return render(request, "_flash.html", principal, message=message, ok=True)


# ---- analytics -------------------------------------------------------------------------


@router.get("/analytics")
async def analytics_page(
    request: Request, principal: Principal = READ, tx: Tx = TX
) -> HTMLResponse:
    summary = await analytics.summary(tx)
    charts = {}
    for metric in (
        "leads",
        "messages_sent",
        "replies",
        "bounces",
        "distribution_received",
        "distribution_delivered",
    ):
        series = (await analytics.trends(tx, metric))["points"]
        charts[metric] = {"points": series, "peak": max([p["value"] for p in series] + [1])}
    return render(request, "outreach/analytics.html", principal, summary=summary, charts=charts)
