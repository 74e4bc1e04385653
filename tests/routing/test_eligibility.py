"""Step 1: every exclusion reason, service areas, schedules, caps and balance."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from leadflood.core.uow import unit_of_work
from leadflood.routing.tasks import Router
from tests.factories import make_buyer, make_lead, make_world
from tests.routing.helpers import WINTER_NOON_UTC, reasons_by_buyer, route, scalar
from tests.sql import run

# These tests run on the rolled-back `tx`: routing's statements see the test's own rows
# and leave nothing behind. The retry test needs committed rows (`runtime`).


@pytest.fixture
async def world(tx):
    return await make_world(tx)


async def _lead(tx, world, **fields):
    return await make_lead(tx, world, **fields)


async def _buyer(tx, world, **kwargs):
    return await make_buyer(tx, world, **kwargs)


async def test_each_reason_in_isolation(tx, world) -> None:
    ok = await _buyer(tx, world, priority=999)
    unenrolled = await _buyer(tx, world, priority=1, offer_fields={"active": False})
    paused = await _buyer(tx, world, priority=1, status="paused")
    elsewhere = await _buyer(tx, world, priority=1, postal_codes=["99999"])
    closed = await _buyer(
        tx,
        world,
        priority=1,
        timezone="America/New_York",
        schedule={"sat": [["09:00", "17:00"]]},
    )
    daily = await _buyer(tx, world, priority=1, daily_cap=0)
    hourly = await _buyer(tx, world, priority=1, offer_fields={"hourly_cap": 0})
    broke = await _buyer(
        tx, world, priority=1, payment_method="prepaid", balance_cents=1000, price_cents=2500
    )
    lead = await _lead(tx, world)
    result = await route(tx, lead)
    assert result.outcome == "routed" and result.buyer_id == ok
    reasons = reasons_by_buyer(result)
    assert reasons == {
        str(ok): [],
        str(unenrolled): ["not_enrolled"],
        str(paused): ["paused"],
        str(elsewhere): ["outside_service_area"],
        str(closed): ["outside_schedule"],
        str(daily): ["daily_cap_reached"],
        str(hourly): ["hourly_cap_reached"],
        str(broke): ["insufficient_balance"],
    }


async def test_service_areas_market_postal_and_city(tx, world) -> None:
    market_wide = await _buyer(tx, world, priority=3)
    postal = await _buyer(tx, world, priority=1, postal_codes=["85004"])
    city = await _buyer(tx, world, priority=2, cities=["  TEMPE "])
    other = await make_world(tx)
    # A market-wide row in another market does not cover this lead.
    await _buyer(tx, other, priority=0)
    in_postal = await _lead(tx, world, postal_code="85004", city="Phoenix")
    in_city = await _lead(tx, world, postal_code="85281", city="tempe")
    elsewhere = await _lead(tx, world, postal_code="85001", city="Mesa")
    assert (await route(tx, in_postal)).buyer_id == postal
    assert (await route(tx, in_city)).buyer_id == city
    assert (await route(tx, elsewhere)).buyer_id == market_wide


async def test_schedule_is_evaluated_in_the_buyers_timezone(tx, world) -> None:
    hours = {"thu": [["09:00", "17:00"]]}
    ny = await _buyer(tx, world, priority=1, timezone="America/New_York", schedule=hours)
    fallback = await _buyer(tx, world, priority=2)
    thursday = WINTER_NOON_UTC.replace(hour=13, minute=30)  # 08:30 in New York
    before = await route(tx, await _lead(tx, world), at=thursday)
    assert before.buyer_id == fallback
    assert reasons_by_buyer(before)[str(ny)] == ["outside_schedule"]
    opened = await route(tx, await _lead(tx, world), at=thursday + timedelta(hours=1))
    assert opened.buyer_id == ny
    closes = await route(
        tx, await _lead(tx, world), at=thursday + timedelta(hours=8, minutes=30)
    )  # 17:00 local
    assert closes.buyer_id == fallback


async def test_caps_count_in_the_buyers_local_windows(tx, world) -> None:
    capped = await _buyer(
        tx, world, priority=1, timezone="America/Los_Angeles", daily_cap=2, hourly_cap=1
    )
    await _buyer(tx, world, priority=5)
    t0 = WINTER_NOON_UTC.replace(hour=7, minute=10)  # 23:10 on the 14th in Los Angeles
    assert (await route(tx, await _lead(tx, world), at=t0)).buyer_id == capped
    second = await route(tx, await _lead(tx, world), at=t0 + timedelta(minutes=10))
    assert reasons_by_buyer(second)[str(capped)] == ["hourly_cap_reached"]
    # 00:10 local: a new day and a new hour.
    third = await route(tx, await _lead(tx, world), at=t0 + timedelta(hours=1))
    assert third.buyer_id == capped
    fourth = await route(tx, await _lead(tx, world), at=t0 + timedelta(hours=2))
    assert fourth.buyer_id == capped
    fifth = await route(tx, await _lead(tx, world), at=t0 + timedelta(hours=3))
    assert reasons_by_buyer(fifth)[str(capped)] == ["daily_cap_reached"]


async def test_buyer_cap_spans_offers_and_offer_cap_does_not(tx) -> None:
    from leadflood.catalog import service as catalog

    a = await make_world(tx)
    b = await make_world(tx, market_id=a.market_id)
    buyer = await make_buyer(tx, a, daily_cap=1)
    await catalog.enroll_buyer(tx, buyer_id=buyer, offer_id=b.offer_id)
    assert (await route(tx, await _lead(tx, a))).buyer_id == buyer
    result = await route(tx, await _lead(tx, b))
    assert result.outcome == "no_route"
    assert reasons_by_buyer(result)[str(buyer)] == ["daily_cap_reached"]


async def test_prepaid_balance_and_minimum(tx, world) -> None:
    exact = await _buyer(
        tx,
        world,
        payment_method="prepaid",
        balance_cents=3500,
        min_balance_cents=1000,
        price_cents=2500,
    )
    lead = await _lead(tx, world)
    assert (await route(tx, lead)).buyer_id == exact
    await run(tx, "UPDATE buyers SET balance_cents = 3499 WHERE id = :b", {"b": exact})
    result = await route(tx, await _lead(tx, world))
    assert result.outcome == "no_route"
    assert reasons_by_buyer(result)[str(exact)] == ["insufficient_balance"]


async def test_no_route_stays_validated_and_retry_routes_later(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        lead = await make_lead(conn, world)
    result = await route(runtime, lead)
    assert result.outcome == "no_route" and result.status == "validated"
    assert await scalar(runtime, "SELECT status::text FROM leads WHERE id = :i", i=lead) == (
        "validated"
    )
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 1
    async with unit_of_work(runtime.db) as conn:
        buyer = await make_buyer(conn, world)
    outcomes = await Router(runtime.db).retry_unrouted()
    assert outcomes == {"routed": 1}
    assert await scalar(runtime, "SELECT buyer_id FROM leads WHERE id = :i", i=lead) == buyer
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 2


async def test_candidate_query_columns_follow_the_candidate_fields(tx, world) -> None:
    import dataclasses

    from leadflood.routing import repository as repo
    from leadflood.routing.selection import Candidate

    await _buyer(tx, world)
    lead = repo.LeadToRoute(
        id=uuid.uuid4(),
        status="validated",
        offer_id=world.offer_id,
        market_id=world.market_id,
        buyer_id=None,
        postal_code="85001",
        city=None,
        strategy="priority",
        exclusive_fallback="fallback_allowed",
    )
    # The repository builds Candidate positionally (the hot path): its query's columns
    # must come in the dataclass's field order.
    (row,) = await tx.fetch(repo._CANDIDATES, lead.offer_id, lead.market_id, "85001", None, lead.id)
    # Those after `reasons` are set by routing itself (an auction's bids), not read.
    names = [f.name for f in dataclasses.fields(Candidate)]
    fields = names[: names.index("reasons")]
    assert list(row.keys()) == fields
    (candidate,) = await repo.candidates(tx, lead)
    assert isinstance(candidate, Candidate) and candidate.covered and candidate.enrolled
