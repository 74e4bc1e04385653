"""RoutingService: choose one buyer for a validated lead (DISTRIBUTION.md §6)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from leadflood.core.errors import NotFound
from leadflood.core.jobs import RETRY_UNROUTED
from leadflood.core.status import LeadStatus
from leadflood.core.uow import Tx
from leadflood.routing import repository as repo
from leadflood.routing.selection import (
    Candidate,
    DecisionClock,
    apply_bids,
    choose,
    choose_sales,
    evaluate,
    exclude,
)

MAX_SELECTION_ROUNDS = 50
log = structlog.get_logger("leadflood.routing")


@dataclass
class RouteResult:
    lead_id: uuid.UUID
    outcome: str  # routed | no_route | no_route_exclusive_fail_closed | unsold | noop | not_found
    status: str | None
    buyer_id: uuid.UUID | None = None
    decision_id: uuid.UUID | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    statements: int = 0  # SQL statements issued (each its own transaction)
    rounds: int = 0
    shared_with: list[uuid.UUID] = field(default_factory=list)  # further sales (multi-sell)


class RoutingService:
    """Callable directly (CLI, admin, tests) and from the route_lead job, on the caller's
    unit of work: the job's is autocommit, so each decision commits as its one statement."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def route(
        self, lead_id: uuid.UUID, *, now: datetime | None = None, auction_first: bool = False
    ) -> RouteResult:
        """`auction_first` (the route job): a lead whose offer auctions direct posts and
        that has not been auctioned comes back `auction_due`, nothing decided, so the
        caller runs the auction (network calls, outside any unit) and routes again. The
        same read as the decision's tells, so a lead of any other offer costs nothing."""
        at = now or datetime.now(UTC)
        statements = 0
        for round_no in range(1, MAX_SELECTION_ROUNDS + 1):
            result = await self._decide(self.tx, lead_id, at, auction_first)
            statements += result.statements
            if result.outcome != "cap_race":
                result.statements, result.rounds = statements, round_no
                return result
        raise RuntimeError(f"routing of {lead_id} did not settle")

    async def _decide(
        self, conn: Tx, lead_id: uuid.UUID, at: datetime, auction_first: bool = False
    ) -> RouteResult:
        started = time.perf_counter()
        lead = await repo.load_lead(conn, lead_id, at)
        if lead is None:
            return RouteResult(lead_id, "not_found", None, statements=1)
        if lead.status != LeadStatus.validated:
            # Routed already (or not routable): report the current state, change nothing.
            return RouteResult(lead_id, "noop", lead.status, buyer_id=lead.buyer_id, statements=1)
        if auction_first and lead.auction_due:
            return RouteResult(lead_id, "auction_due", lead.status, statements=1)

        clock = DecisionClock(at)
        pool = await repo.candidates(conn, lead)
        strategy = lead.strategy
        if lead.auction_id is not None:
            apply_bids(pool, await repo.auction_bids(conn, lead.auction_id))
            strategy = "auction"
        outcome, eligible = eligible_for(lead, pool, clock)
        sales: list[Candidate] = []
        if eligible and (lead.auction_id is not None or lead.max_sales > 1):
            # An auction's bidders and a shared lead's buyers: none gets a consumer it
            # bought on this offer lately.
            bought = await repo.bought_consumer(conn, lead_id, [c.buyer_id for c in eligible])
            eligible = exclude(eligible, bought, "already_bought")
        if eligible and lead.auction_id is None and lead.max_sales > 1:
            sales = choose_sales(strategy, eligible, lead_id, lead.max_sales)
        winner = (sales[0] if sales else choose(strategy, eligible, lead_id)) if eligible else None
        trace = [c.trace(winner.buyer_id if winner else None) for c in pool]
        if len(sales) > 1:
            sold_to = {str(c.buyer_id) for c in sales}
            for entry in trace:
                entry["selected"] = entry["buyer_id"] in sold_to
                entry["shared"] = entry["selected"]
        duration_ms = round((time.perf_counter() - started) * 1000, 3)

        if winner is None:
            decision_id = await repo.record_no_route(
                conn,
                lead_id=lead_id,
                outcome=outcome,
                strategy=lead.strategy,
                trace=trace,
                at=at,
                duration_ms=duration_ms,
            )
            if lead.auction_id is not None or (
                pool and all("rejected_this_lead" in c.reasons for c in pool)
            ):
                # Every buyer of the offer refused (or failed) it, or no standing bid of
                # its auction can take it: no wait for the shelf life can sell it now. It
                # ends unsold, the reasons on record.
                await repo.mark_unsold(conn, lead_id)
                return RouteResult(
                    lead_id,
                    "unsold",
                    "unsold",
                    decision_id=decision_id,
                    candidates=trace,
                    statements=4,
                )
            return RouteResult(
                lead_id,
                outcome,
                "validated",
                decision_id=decision_id,
                candidates=trace,
                statements=3,
            )

        result = await self._commit(conn, lead, winner, clock, trace, at, duration_ms)
        if result.outcome == "routed":
            for share in sales[1:]:
                await self._share(conn, lead, share, clock, trace, at, result)
        return result

    async def _share(
        self,
        conn: Tx,
        lead: repo.LeadToRoute,
        buyer: Candidate,
        clock: DecisionClock,
        trace: list[dict[str, Any]],
        at: datetime,
        result: RouteResult,
    ) -> None:
        """A further sale of a shared lead: a lead of its own for this buyer (its own cap
        units, reservation, delivery and bill), in one statement; a cap or balance gone
        since the candidates were read leaves the lead shared with one buyer fewer."""
        committed = await _commit_statement(conn, lead, buyer, clock, trace, at, 0.0, share=True)
        result.statements += 1
        if isinstance(committed, str):
            log.info(
                "share_not_sold",
                lead_id=str(lead.id),
                buyer_id=str(buyer.buyer_id),
                reason=committed,
            )
            return
        result.shared_with.append(buyer.buyer_id)

    async def _commit(
        self,
        conn: Tx,
        lead: repo.LeadToRoute,
        winner: Candidate,
        clock: DecisionClock,
        trace: list[dict[str, Any]],
        at: datetime,
        duration_ms: float,
    ) -> RouteResult:
        """The winner's one statement: cap units, reservation, the lead, the decision,
        the delivery and its job; or why it did not commit."""
        lead_id = lead.id
        committed = await _commit_statement(conn, lead, winner, clock, trace, at, duration_ms)
        if committed == "cap_race":
            # A cap filled since the candidates were read; nothing was written. Select
            # again: the next read sees the full counter and records the reason.
            return RouteResult(lead_id, "cap_race", "validated", statements=3)
        if isinstance(committed, str):  # lead_not_validated
            # A concurrent attempt routed this lead first: report its state.
            status, buyer_id = await repo.lead_state(conn, lead_id)
            return RouteResult(lead_id, "noop", status, buyer_id=buyer_id, statements=4)
        return RouteResult(
            lead_id,
            "routed",
            "routed",
            buyer_id=winner.buyer_id,
            decision_id=committed,
            candidates=trace,
            statements=3,
        )

    async def decisions(self, lead_id: uuid.UUID) -> list[repo.Decision]:
        return await repo.decisions(self.tx, lead_id)

    async def trace(self, lead_id: uuid.UUID) -> list[repo.Decision]:
        """Decisions of an existing lead (possibly none yet); NotFound otherwise."""
        rows = await self.decisions(lead_id)
        if not rows and not await repo.lead_exists(self.tx, lead_id):
            raise NotFound("lead_not_found", "no lead with this id")
        return rows

    async def reroute_unsold(self, lead_id: uuid.UUID) -> RouteResult:
        """One more routing of an unsold lead (an operator's call); still no buyer → it
        stays unsold, with this attempt's decision on record."""
        await repo.reopen_unsold(self.tx, lead_id)
        result = await self.route(lead_id)
        if result.outcome != "routed":
            await repo.mark_unsold(self.tx, lead_id)
        return result

    async def retry_unrouted(
        self, limit: int = 1000, *, tried_only: bool = False
    ) -> dict[str, int]:
        """Mark leads past their offer's shelf life unsold, then route the rest again."""
        unsold = await repo.expire_unsold(self.tx)
        lead_ids = await repo.unrouted_leads(self.tx, limit, tried_only=tried_only)
        outcomes: dict[str, int] = {"unsold": len(unsold)} if unsold else {}
        for lead_id in unsold:
            log.info("lead_unsold", lead_id=str(lead_id))
        for lead_id in lead_ids:
            result = await self.route(lead_id)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        return outcomes


async def _commit_statement(
    conn: Tx,
    lead: repo.LeadToRoute,
    buyer: Candidate,
    clock: DecisionClock,
    trace: list[dict[str, Any]],
    at: datetime,
    duration_ms: float,
    *,
    share: bool = False,
) -> uuid.UUID | str:
    """The routing commit for one sale (of the lead, or a further share of it)."""
    local_day, local_hour = clock.windows(buyer.timezone)
    return await repo.commit_route(
        conn,
        lead_id=lead.id,
        buyer_id=buyer.buyer_id,
        offer_id=lead.offer_id,
        price_cents=buyer.price_cents,
        at=at,
        strategy=lead.strategy,
        trace=trace,
        duration_ms=duration_ms,
        channel=buyer.delivery_channel,
        # The buyer row must be taken for a cap unit or a prepaid reservation.
        buyer_capped=buyer.buyer_capped or buyer.payment_method == "prepaid",
        local_day=local_day,
        local_hour=local_hour,
        share=share,
    )


def eligible_for(
    lead: repo.LeadToRoute, pool: list[Candidate], clock: DecisionClock
) -> tuple[str, list]:
    """Every candidate's reasons (DISTRIBUTION.md §6), then exclusivity: an offer's
    exclusive buyer takes the lead when eligible; otherwise fail closed or fall back."""
    for c in pool:
        c.reasons = evaluate(c, clock)
    eligible = [c for c in pool if c.eligible]
    outcome = "routed"
    exclusive = lead.exclusive_buyer_id
    if exclusive is not None:
        owner = next((c for c in eligible if c.buyer_id == exclusive), None)
        if owner is not None:
            for c in eligible:
                if c is not owner:
                    c.reasons.append("not_exclusive_buyer")
            eligible = [owner]
        elif lead.exclusive_fallback == "fail_closed":
            for c in eligible:
                c.reasons.append("not_exclusive_buyer")
            eligible = []
            outcome = "no_route_exclusive_fail_closed"
    if not eligible and outcome == "routed":
        outcome = "no_route"
    return outcome, eligible


async def capacity_may_have_opened(tx: Tx) -> None:
    """Routing capacity may have opened (a buyer resumed or reconfigured, funds added):
    retry unrouted leads now rather than at the next periodic sweep. In the caller's
    transaction; one queued sweep covers any number of such changes."""
    await tx.enqueue_once(RETRY_UNROUTED, {})
