"""route_lead job: ids in, no-op when the lead is past the stage."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from leadflood.auctions import service as auctions
from leadflood.auctions.bidding import collect
from leadflood.core.db import Database
from leadflood.core.jobs import RETRY_UNROUTED, ROUTE_LEAD, JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.delivery.channels import WebhookChannel
from leadflood.health.metrics import STAGE_TRANSITIONS
from leadflood.routing.service import RouteResult, RoutingService

log = structlog.get_logger("leadflood.routing")


class Router:
    """The routing boundary outside a job (CLI, admin commands, benches, tests): each
    call runs on its own autocommit unit, as the job does. With a runtime, a lead of an
    offer that sells direct posts by auction is auctioned first, as the job does."""

    def __init__(self, db: Database, runtime: Runtime | None = None) -> None:
        self.db = db
        self.runtime = runtime

    async def route(self, lead_id: uuid.UUID, *, now: datetime | None = None) -> RouteResult:
        if self.runtime is not None:
            return await route_with_auction(self.runtime, lead_id, now=now)
        async with single_statements(self.db) as tx:
            return await RoutingService(tx).route(lead_id, now=now)

    async def retry_unrouted(self, limit: int = 1000, *, tried_only: bool = False) -> dict:
        async with single_statements(self.db) as tx:
            return await RoutingService(tx).retry_unrouted(limit, tried_only=tried_only)


@job(ROUTE_LEAD)
async def route_lead_job(ctx: JobContext) -> None:
    lead_id = uuid.UUID(ctx.payload["lead_id"])
    result = await route_with_auction(ctx.runtime, lead_id)
    if result.outcome in ("routed", "unsold"):
        STAGE_TRANSITIONS.labels(result.outcome).inc()
    log.info(
        "lead_routed",
        lead_id=str(lead_id),
        outcome=result.outcome,
        buyer_id=str(result.buyer_id) if result.buyer_id else None,
    )


@job(RETRY_UNROUTED, retry=NO_RETRY)
async def retry_unrouted_job(ctx: JobContext) -> None:
    """Periodic, and enqueued when capacity opens (a buyer resumed, funds topped up)."""
    async with ctx.statements() as tx:
        outcomes = await RoutingService(tx).retry_unrouted(tried_only=True)
    if outcomes:
        log.info("unrouted_retried", **outcomes)


async def route_with_auction(
    runtime: Runtime, lead_id: uuid.UUID, *, now: datetime | None = None
) -> RouteResult:
    """Route; a lead whose offer auctions direct posts is auctioned first (between two
    autocommit units: the bidders are asked holding nothing), then routed to its bids."""
    async with single_statements(runtime.db) as tx:
        result = await RoutingService(tx).route(lead_id, now=now, auction_first=True)
    if result.outcome != "auction_due":
        return result
    await post_auction(runtime, lead_id)
    async with single_statements(runtime.db) as tx:
        return await RoutingService(tx).route(lead_id, now=now)


async def post_auction(runtime: Runtime, lead_id: uuid.UUID) -> None:
    """A post auction (issue 17): a validated lead of an offer that sells direct posts by
    auction has its bidders asked (the whole lead, with nothing held) and the auction
    stored with it before routing places it with the best bid. A lead auctioned already
    (a repeated job) is left as it is: the stored auction's insert links it only once."""
    secret_key = runtime.settings.secret_key.get_secret_value()
    async with single_statements(runtime.db) as tx:
        plan = await auctions.plan_post_auction(tx, lead_id, secret_key=secret_key)
    if plan is None:
        return
    channel = WebhookChannel(runtime.webhook_session, runtime.settings)
    bids = await collect(channel, plan.fixed, plan.asks, plan.terms.ping_budget_ms)
    closed = auctions.close(plan, bids)
    async with unit_of_work(runtime.db) as tx:
        await auctions.record(tx, closed)
    log.info("post_auction", lead_id=str(lead_id), accepted=closed.auction.accepted)
