"""/v1/conversations (inbox, thread, replies), /v1/webhooks/{provider}, /u/{token}."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, JSONResponse

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.api import Items
from leadflood.core.boundary import TX, Call
from leadflood.core.errors import NotFound, PayloadTooLarge, Unauthorized
from leadflood.core.providers import provider_not_configured
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
from leadflood.inbox import service
from leadflood.integrations.trengo.client import verify as verify_trengo
from leadflood.messaging import responses as mo
from leadflood.messaging.schemas import ReplyIn
from leadflood.sequences.unsubscribe import lead_from_token
from leadflood.web.pages import render

router = APIRouter(tags=["outreach"])

MAX_INBOUND_BYTES = 10 * 1024 * 1024


@router.get(
    "/v1/conversations",
    summary="Inbox: conversations, newest activity first",
    response_model=Items[mo.ConversationListItem],
)
async def conversations(
    unread: bool = False,
    limit: int = Query(100, ge=1, le=500),
    call: Call = call_as(Permission.outreach_read),
) -> dict:
    items = await service.conversations(call.tx, unread_only=unread, limit=limit)
    return {"items": items}


@router.get(
    "/v1/conversations/{conversation_id}",
    summary="A thread (marks it read)",
    response_model=mo.Thread,
)
async def conversation(
    conversation_id: uuid.UUID,
    call: Call = call_as(Permission.outreach_read),
) -> Any:
    return await service.conversation(call.tx, conversation_id)


@router.post(
    "/v1/conversations/{conversation_id}/replies",
    status_code=202,
    summary="Send a manual reply; its delivery status shows in the thread",
    response_model=mo.ReplyQueued,
)
async def reply(
    conversation_id: uuid.UUID,
    body: ReplyIn,
    call: Call = call_as(Permission.outreach_write),
) -> JSONResponse:
    return await call.idempotent(
        service.reply(call.tx, call.principal, conversation_id, body.body, body.subject),
    )


@router.get(
    "/v1/inbox/unmatched",
    summary="Inbound mail no lead matched (a colleague answering, a forward), newest first",
    response_model=Items[mo.UnmatchedInbound],
)
async def unmatched(
    limit: int = Query(100, ge=1, le=500),
    call: Call = call_as(Permission.outreach_read),
) -> dict:
    return {"items": await service.unmatched(call.tx, limit)}


@router.post(
    "/v1/webhooks/{provider}",
    summary="Inbound messages (email, trengo); signed",
    response_model=mo.InboundResult,
)
async def webhook(provider: str, request: Request, tx: Tx = TX) -> dict:
    settings = runtime_of(request).settings
    raw = await request.body()
    if len(raw) > MAX_INBOUND_BYTES:
        raise PayloadTooLarge("payload_too_large", "inbound message over 10 MiB")
    if provider == "email":
        if settings.inbound_email_secret is None:
            raise provider_not_configured("inbound email", "LEADFLOOD_INBOUND_EMAIL_SECRET")
        expected = hmac.new(
            settings.inbound_email_secret.get_secret_value().encode(), raw, hashlib.sha256
        ).hexdigest()
        given = request.headers.get("x-leadflood-signature", "").removeprefix("sha256=")
        if not hmac.compare_digest(expected, given):
            raise Unauthorized("invalid_signature", "X-Leadflood-Signature does not match")
        return await service.receive_email(tx, raw)
    if provider == "trengo":
        if settings.trengo_webhook_secret is None:
            raise provider_not_configured("trengo webhooks", "LEADFLOOD_TRENGO_WEBHOOK_SECRET")
        secret = settings.trengo_webhook_secret.get_secret_value()
        if not verify_trengo(secret, raw, request.headers.get("trengo-signature")):
            raise Unauthorized("invalid_signature", "Trengo-Signature does not match")
        form = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        return await service.receive_trengo(tx, settings, form)
    raise NotFound("unknown_provider", "webhooks exist for email and trengo")


def _lead(request: Request, token: str) -> uuid.UUID:
    key = runtime_of(request).settings.secret_key.get_secret_value()
    lead_id = lead_from_token(key, token)
    if lead_id is None:
        raise NotFound("invalid_unsubscribe_link", "this unsubscribe link is not valid")
    return lead_id


@router.get("/u/{token}", include_in_schema=False)
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    _lead(request, token)
    return render(request, "unsubscribe.html", title="Unsubscribe", token=token, done=False)


@router.post("/u/{token}", include_in_schema=False)
async def unsubscribe(token: str, request: Request, tx: Tx = TX) -> HTMLResponse:
    """The page's button and mail clients' one-click (List-Unsubscribe-Post) both land here."""
    result = await service.unsubscribe(tx, _lead(request, token))
    # Autoescaped template: the address is the recipient's own input (stored XSS before).
    return render(
        request, "unsubscribe.html", title="You are unsubscribed", email=result["email"], done=True
    )
