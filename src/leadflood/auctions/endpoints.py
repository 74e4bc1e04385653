"""POST /api/ping and POST /api/post: selling by ping-post (issue 17, decision 0022).

Both are boundaries of their own: a ping reads in one unit, asks the bidders with no
connection held, and records the auction in another; a post claims its ping and stores
the lead in one unit, then validates and routes it at once (each its own statement, as
the pipeline's jobs do: they find the work done and stop).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadflood.auctions import service
from leadflood.auctions.bidding import collect
from leadflood.auctions.schemas import PingAnswer, PostAnswer
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.delivery.channels import WebhookChannel
from leadflood.health.metrics import PINGS
from leadflood.ingestion.endpoints import ingest_request, json_response
from leadflood.routing.service import RoutingService
from leadflood.validation.service import validate_lead

router = APIRouter(tags=["ping-post"])

_COMMON: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid input (stable error code)"},
    401: {"description": "unauthorized_source"},
    413: {"description": "payload_too_large"},
    415: {"description": "unsupported_media_type (JSON, form-urlencoded and XML are read)"},
}


@router.post("/api/ping", response_model=PingAnswer, responses=_COMMON)
async def ping(request: Request) -> Response:
    """Ask the offer's buyers for bids on a partial lead (no contact details): answers
    the ping id, whether a buyer bid, the price offered to the source, and when it lapses."""
    runtime = request.app.state.runtime
    ingest = await ingest_request(request)
    secret_key = runtime.settings.secret_key.get_secret_value()
    async with single_statements(runtime.db) as tx:
        plan = await service.plan_ping(
            tx, request.app.state.source_cache, ingest, secret_key=secret_key
        )
    channel = WebhookChannel(runtime.webhook_session, runtime.settings)
    bids = await collect(channel, plan.fixed, plan.asks, plan.terms.ping_budget_ms)
    closed = service.close(plan, bids)
    async with unit_of_work(runtime.db) as tx:
        await service.record(tx, closed)
    PINGS.observe(closed.auction.duration_ms / 1000)
    return json_response(200, service.ping_answer(closed))


@router.post(
    "/api/post",
    status_code=201,
    response_model=PostAnswer,
    responses={
        **_COMMON,
        403: {"description": "ping_wrong_source"},
        404: {"description": "ping_not_found"},
        409: {"description": "ping_already_posted, ping_not_accepted, lead_already_received"},
        410: {"description": "ping_expired"},
    },
)
async def post(request: Request) -> Response:
    """The whole lead of an accepted ping (`ping_id` beside the lead's fields): validated
    and de-duplicated like any lead, then placed with the best standing bid."""
    runtime = request.app.state.runtime
    ingest = await ingest_request(request)
    async with unit_of_work(runtime.db) as tx:
        posted = await service.post(tx, request.app.state.source_cache, ingest)
    sold_cents = None
    async with single_statements(runtime.db) as tx:
        checked = await validate_lead(tx, posted.lead_id)
        status, reasons = checked.status, checked.reasons
        if status == "validated":
            routed = await RoutingService(tx).route(posted.lead_id)
            status = routed.status
            if routed.outcome == "routed":
                winner = next(c for c in routed.candidates if c["selected"])
                sold_cents = winner["price_cents"]
    return json_response(201, service.post_answer(posted, status, reasons, sold_cents))
