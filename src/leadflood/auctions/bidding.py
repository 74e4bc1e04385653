"""Collect the bids of one auction: fixed-price contracts bid their price, buyers with a
ping integration are asked in parallel, each under its own timeout and all under the
offer's time budget. Network only: nothing here holds a connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from leadflood.auctions.repository import BidderConfig, BidRow
from leadflood.core.security import decrypt_secret
from leadflood.delivery.channels import AttemptResult, Outbound, WebhookChannel, integrated
from leadflood.delivery.integration import ConfigError, build_request, integration_of, rules_of
from leadflood.delivery.payload import base_headers

MAX_TOKEN = 500  # characters of a bid token kept (sent back with the post)


@dataclass(frozen=True, slots=True)
class Ask:
    """A buyer to ask for a bid, and its contract price (its bid when its answer accepts
    without naming a price)."""

    buyer_id: uuid.UUID
    contract_cents: int
    message: Outbound | None  # None: its request could not be built (see `problem`)
    problem: str | None = None
    needs_price: bool = False  # its rules read a price: an answer without one is no bid


def build_ask(
    config: BidderConfig,
    contract_cents: int,
    context: dict[str, Any],
    *,
    ping_id: uuid.UUID,
    timeout_ms: int,
    secret_key: str,
) -> Ask:
    """The ping request for one buyer, built by its ping integration over `context`."""
    try:
        integration = integration_of(config.ping_integration)
        rules = rules_of(config.ping_rules) if config.ping_rules else None
        credential = (
            decrypt_secret(config.integration_secret, secret_key)
            if config.integration_secret and integration.auth != "none"
            else None
        )
        signing = (
            decrypt_secret(config.webhook_secret, secret_key) if config.webhook_secret else None
        )
        request = build_request(
            integration,
            context,
            secret=credential,
            base_headers=base_headers(str(ping_id), idempotency_key=f"ping:{ping_id}"),
        )
    except (ConfigError, ValueError) as exc:
        return Ask(config.buyer_id, contract_cents, None, problem=f"ping_config: {exc}"[:300])
    message = integrated(
        request,
        sign=integration.sign,
        secret=signing,
        rules=rules,
        credential=credential,
        lead_id=str(ping_id),
        email=None,
        timeout_ms=timeout_ms,
        subject="",
    )
    needs_price = bool(rules and rules.price_path)
    return Ask(config.buyer_id, contract_cents, message, needs_price=needs_price)


async def collect(
    channel: WebhookChannel, fixed: list[BidRow], asks: list[Ask], budget_ms: int
) -> list[BidRow]:
    """Every bid, ranked: the best price first (a fixed-price contract before an asked
    buyer at the same price, then the faster answer, then the buyer id)."""
    answered = await _ask_all(channel, asks, budget_ms / 1000) if asks else []
    return rank([*fixed, *answered])


async def _ask_all(channel: WebhookChannel, asks: list[Ask], budget_s: float) -> list[BidRow]:
    started = time.perf_counter()
    tasks = {asyncio.create_task(_ask(channel, ask)): ask for ask in asks if ask.message}
    out = [
        BidRow(a.buyer_id, "ping", "error", None, None, 0.0, a.problem, None)
        for a in asks
        if a.message is None
    ]
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=budget_s)
        for task in pending:
            task.cancel()
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        for task, ask in tasks.items():
            if task in done:
                out.append(task.result())
            else:
                out.append(
                    BidRow(
                        ask.buyer_id,
                        "ping",
                        "timeout",
                        None,
                        None,
                        elapsed,
                        "no answer within the auction's budget",
                        None,
                    )
                )
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return out


async def _ask(channel: WebhookChannel, ask: Ask) -> BidRow:
    assert ask.message is not None
    clock = time.perf_counter()
    try:
        result = await channel.send(ask.message)
    except Exception as exc:  # a bug reading one answer must not lose the auction
        result = AttemptResult("retryable_error", error=f"internal: {type(exc).__name__}")
    latency = round((time.perf_counter() - clock) * 1000, 3)
    return _bid_of(ask, result, latency)


def _bid_of(ask: Ask, result: AttemptResult, latency: float) -> BidRow:
    if result.outcome == "success":
        price = result.price_cents
        if price is None and ask.needs_price:
            return BidRow(
                ask.buyer_id,
                "ping",
                "error",
                None,
                None,
                latency,
                "the answer carries no readable price",
                None,
            )
        if price is None:
            price = ask.contract_cents
        if price < 0:
            return BidRow(
                ask.buyer_id, "ping", "error", None, None, latency, "a negative price", None
            )
        token = (result.reference or None) and result.reference[:MAX_TOKEN]
        return BidRow(ask.buyer_id, "ping", "bid", price, token, latency, None, None)
    if result.outcome == "rejected":
        return BidRow(
            ask.buyer_id,
            "ping",
            "no_bid",
            None,
            None,
            latency,
            (result.reason or "declined")[:300],
            None,
        )
    error = result.error or result.outcome
    outcome = "timeout" if error.startswith("timeout") else "error"
    return BidRow(ask.buyer_id, "ping", outcome, None, None, latency, error[:300], None)


def rank(bids: list[BidRow]) -> list[BidRow]:
    standing = sorted(
        (b for b in bids if b.outcome == "bid"),
        key=lambda b: (-(b.price_cents or 0), b.kind != "fixed", b.latency_ms or 0, b.buyer_id),
    )
    for n, b in enumerate(standing, start=1):
        b.rank = n
    return standing + [b for b in bids if b.outcome != "bid"]
