"""Steps 2-3: exclusivity and the strategies with their exact tie-breakers."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest

from leadflood.routing.selection import Candidate, choose, weighted_point
from tests.factories import make_buyer, make_lead, make_world
from tests.routing.helpers import (
    WINTER_NOON_UTC,
    execute,
    reasons_by_buyer,
    route,
    scalar,
    unit,
)


async def _setup(runtime, **world_kwargs):
    async with unit(runtime) as conn:
        return await make_world(conn, **world_kwargs)


async def _buyer(runtime, world, **kwargs):
    async with unit(runtime) as conn:
        return await make_buyer(conn, world, **kwargs)


async def _lead(runtime, world, **fields):
    async with unit(runtime) as conn:
        return await make_lead(conn, world, **fields)


async def _exclusive(runtime, world, buyer, scope_type, scope_value, **fields):
    from leadflood.catalog import service as catalog

    async with unit(runtime) as conn:
        return await catalog.add_exclusivity(
            conn,
            offer_id=world.offer_id,
            buyer_id=buyer,
            scope_type=scope_type,
            scope_value=scope_value,
            starts_at=WINTER_NOON_UTC - timedelta(days=30),
            **fields,
        )


async def test_postal_code_exclusivity_beats_priority(tx) -> None:
    world = await _setup(tx)
    top = await _buyer(tx, world, priority=1)
    exclusive = await _buyer(tx, world, priority=9)
    await _exclusive(tx, world, exclusive, "postal_code", "85001")
    result = await route(tx, await _lead(tx, world, postal_code="85001"))
    assert result.buyer_id == exclusive
    assert reasons_by_buyer(result)[str(top)] == ["not_exclusive_buyer"]
    other = await route(tx, await _lead(tx, world, postal_code="85002"))
    assert other.buyer_id == top


async def test_city_exclusivity_is_case_insensitive(tx) -> None:
    world = await _setup(tx)
    await _buyer(tx, world, priority=1)
    exclusive = await _buyer(tx, world, priority=9)
    await _exclusive(tx, world, exclusive, "city", "PHOENIX")
    assert (await route(tx, await _lead(tx, world, city=" phoenix"))).buyer_id == (exclusive)


async def test_most_specific_scope_wins(tx) -> None:
    world = await _setup(tx)
    market_owner = await _buyer(tx, world)
    city_owner = await _buyer(tx, world)
    postal_owner = await _buyer(tx, world)
    await _exclusive(tx, world, market_owner, "market", str(world.market_id))
    await _exclusive(tx, world, city_owner, "city", "Phoenix")
    await _exclusive(tx, world, postal_owner, "postal_code", "85001")
    assert (await route(tx, await _lead(tx, world, postal_code="85001"))).buyer_id == (postal_owner)
    assert (await route(tx, await _lead(tx, world, postal_code="85009"))).buyer_id == (city_owner)
    assert (
        await route(tx, await _lead(tx, world, postal_code="85009", city="Mesa"))
    ).buyer_id == market_owner


async def test_exclusivity_ties_break_by_starts_at_then_id(tx) -> None:
    world = await _setup(tx)
    early = await _buyer(tx, world)
    late = await _buyer(tx, world)
    await _exclusive(tx, world, late, "postal_code", "85001")
    await _exclusive(
        tx,
        world,
        early,
        "postal_code",
        "85001",
    )
    await execute(
        tx,
        "UPDATE offer_exclusivities SET starts_at = starts_at - "
        "interval '1 day' WHERE buyer_id = :b",
        b=early,
    )
    assert (await route(tx, await _lead(tx, world))).buyer_id == early


async def test_expired_or_inactive_exclusivity_is_ignored(runtime) -> None:
    world = await _setup(runtime)
    top = await _buyer(runtime, world, priority=1)
    owner = await _buyer(runtime, world, priority=9)
    await _exclusive(
        runtime, world, owner, "postal_code", "85001", ends_at=WINTER_NOON_UTC - timedelta(days=1)
    )
    await _exclusive(runtime, world, owner, "city", "Phoenix", active=False)
    assert (await route(runtime, await _lead(runtime, world))).buyer_id == top


@pytest.mark.parametrize(
    ("fallback", "outcome"),
    [("fail_closed", "no_route_exclusive_fail_closed"), ("fallback_allowed", "routed")],
)
async def test_ineligible_exclusive_buyer(runtime, fallback, outcome) -> None:
    world = await _setup(runtime, exclusive_fallback=fallback)
    other = await _buyer(runtime, world, priority=5)
    owner = await _buyer(runtime, world, priority=1, status="paused")
    await _exclusive(runtime, world, owner, "postal_code", "85001")
    lead = await _lead(runtime, world)
    result = await route(runtime, lead)
    assert result.outcome == outcome
    reasons = reasons_by_buyer(result)
    assert reasons[str(owner)] == ["paused"]
    if fallback == "fail_closed":
        assert reasons[str(other)] == ["not_exclusive_buyer"]
        assert await scalar(runtime, "SELECT status::text FROM leads WHERE id=:i", i=lead) == (
            "validated"
        )
        assert await scalar(runtime, "SELECT outcome FROM routing_decisions") == outcome
    else:
        assert result.buyer_id == other


def _c(n: int, *, priority: int = 1, routed: int | None = None, weight: int = 1) -> Candidate:
    return Candidate(
        buyer_id=uuid.UUID(int=n),
        name=str(n),
        enrolled=True,
        status="active",
        timezone="UTC",
        schedule={},
        covered=True,
        priority=priority,
        weight=weight,
        price_cents=0,
        payment_method="ach",
        balance_cents=0,
        min_balance_cents=0,
        delivery_channel="webhook",
        daily_cap=None,
        hourly_cap=None,
        offer_daily_cap=None,
        offer_hourly_cap=None,
        last_routed_at=None if routed is None else WINTER_NOON_UTC + timedelta(minutes=routed),
    )


def test_priority_tie_breakers() -> None:
    lead = uuid.uuid4()
    assert choose(
        "priority", [_c(3, priority=2), _c(2, priority=1, routed=5)], lead
    ).buyer_id == uuid.UUID(int=2)
    # Equal priority: never routed first, then oldest last_routed_at, then lowest id.
    assert choose("priority", [_c(1, routed=1), _c(9)], lead).buyer_id == uuid.UUID(int=9)
    assert choose("priority", [_c(1, routed=5), _c(2, routed=1)], lead).buyer_id == uuid.UUID(int=2)
    assert choose("priority", [_c(7), _c(4)], lead).buyer_id == uuid.UUID(int=4)


def test_rotation_tie_breakers() -> None:
    lead = uuid.uuid4()
    assert choose(
        "rotation", [_c(1, priority=1, routed=5), _c(2, priority=9, routed=1)], lead
    ).buyer_id == uuid.UUID(int=2)
    assert choose("rotation", [_c(1, priority=5), _c(2, priority=3)], lead).buyer_id == (
        uuid.UUID(int=2)
    )
    assert choose("rotation", [_c(8, routed=1), _c(3, routed=1)], lead).buyer_id == uuid.UUID(int=3)


def test_weighted_shares_over_ten_thousand_leads_within_two_points() -> None:
    buyers = [_c(1, weight=5), _c(2, weight=3), _c(3, weight=2)]
    wins = Counter(choose("weighted", buyers, uuid.uuid4()).buyer_id.int for _ in range(10_000))
    for buyer in buyers:
        share = wins[buyer.buyer_id.int] / 10_000
        assert abs(share - buyer.weight / 10) <= 0.02, (buyer.weight, share)


def test_weighted_walks_buyers_by_id_with_cumulative_shares() -> None:
    lead = uuid.uuid4()
    point = weighted_point(lead)
    expected = 1 if point < 0.5 else 2
    assert choose("weighted", [_c(2), _c(1)], lead).buyer_id.int == expected


async def test_database_routing_matches_the_pure_selection(runtime) -> None:
    world = await _setup(runtime, strategy="weighted")
    weights = {}
    for weight in (1, 2, 7):
        weights[await _buyer(runtime, world, weight=weight)] = weight
    ordered = sorted(weights)
    for _ in range(60):
        lead = await _lead(runtime, world)
        point = weighted_point(lead)
        total, cumulative, expected = sum(weights.values()), 0, None
        for buyer in ordered:
            cumulative += weights[buyer]
            if cumulative / total > point:
                expected = buyer
                break
        assert (await route(runtime, lead)).buyer_id == expected


async def test_rotation_in_the_database_cycles_buyers(runtime) -> None:
    world = await _setup(runtime, strategy="rotation")
    buyers = sorted([await _buyer(runtime, world) for _ in range(3)])
    picks = []
    for i in range(6):
        lead = await _lead(runtime, world)
        picks.append(
            (await route(runtime, lead, at=WINTER_NOON_UTC + timedelta(seconds=i))).buyer_id
        )
    assert picks == buyers + buyers


async def test_same_state_same_buyer(runtime) -> None:
    """Determinism: replaying a decision from the same state chooses the same buyer."""
    world = await _setup(runtime, strategy="priority")
    for priority in (2, 1, 1, 3):
        await _buyer(runtime, world, priority=priority)
    leads = [await _lead(runtime, world) for _ in range(5)]
    first = [(await route(runtime, lead)).buyer_id for lead in leads]
    await execute(runtime, "DELETE FROM pgqueuer")
    await execute(runtime, "DELETE FROM deliveries")
    await execute(runtime, "DELETE FROM routing_decisions")
    await execute(
        runtime,
        "UPDATE buyer_offers SET last_routed_at = NULL, cap_day_count = 0, cap_hour_count = 0",
    )
    await execute(runtime, "UPDATE buyers SET cap_day_count = 0, cap_hour_count = 0")
    await execute(
        runtime,
        "UPDATE leads SET status = 'validated', buyer_id = NULL, "
        "routed_at = NULL, price_cents = NULL",
    )
    second = [(await route(runtime, lead)).buyer_id for lead in leads]
    assert first == second
