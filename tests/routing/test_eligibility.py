"""Step 1: every exclusion reason, service areas, schedules, caps and balance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadflood.core.uow import unit_of_work
from leadflood.routing.tasks import Router
from tests.factories import make_buyer, make_lead, make_world
from tests.routing.helpers import WINTER_NOON_UTC, execute, reasons_by_buyer, route, scalar


@pytest.fixture
async def world(runtime):
    async with unit_of_work(runtime.db) as conn:
        return await make_world(conn)


async def _lead(runtime, world, **fields):
    async with unit_of_work(runtime.db) as conn:
        return await make_lead(conn, world, **fields)


async def _buyer(runtime, world, **kwargs):
    async with unit_of_work(runtime.db) as conn:
        return await make_buyer(conn, world, **kwargs)


async def test_each_reason_in_isolation(runtime, world) -> None:
    ok = await _buyer(runtime, world, priority=999)
    unenrolled = await _buyer(runtime, world, priority=1, offer_fields={"active": False})
    paused = await _buyer(runtime, world, priority=1, status="paused")
    elsewhere = await _buyer(runtime, world, priority=1, postal_codes=["99999"])
    closed = await _buyer(
        runtime,
        world,
        priority=1,
        timezone="America/New_York",
        schedule={"sat": [["09:00", "17:00"]]},
    )
    daily = await _buyer(runtime, world, priority=1, daily_cap=0)
    hourly = await _buyer(runtime, world, priority=1, offer_fields={"hourly_cap": 0})
    broke = await _buyer(
        runtime, world, priority=1, payment_method="prepaid", balance_cents=1000, price_cents=2500
    )
    lead = await _lead(runtime, world)
    result = await route(runtime, lead)
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


async def test_service_areas_market_postal_and_city(runtime, world) -> None:
    market_wide = await _buyer(runtime, world, priority=3)
    postal = await _buyer(runtime, world, priority=1, postal_codes=["85004"])
    city = await _buyer(runtime, world, priority=2, cities=["  TEMPE "])
    async with unit_of_work(runtime.db) as conn:
        other = await make_world(conn)
    # A market-wide row in another market does not cover this lead.
    await _buyer(runtime, other, priority=0)
    in_postal = await _lead(runtime, world, postal_code="85004", city="Phoenix")
    in_city = await _lead(runtime, world, postal_code="85281", city="tempe")
    elsewhere = await _lead(runtime, world, postal_code="85001", city="Mesa")
    assert (await route(runtime, in_postal)).buyer_id == postal
    assert (await route(runtime, in_city)).buyer_id == city
    assert (await route(runtime, elsewhere)).buyer_id == market_wide


async def test_schedule_is_evaluated_in_the_buyers_timezone(runtime, world) -> None:
    hours = {"thu": [["09:00", "17:00"]]}
    ny = await _buyer(runtime, world, priority=1, timezone="America/New_York", schedule=hours)
    fallback = await _buyer(runtime, world, priority=2)
    thursday = WINTER_NOON_UTC.replace(hour=13, minute=30)  # 08:30 in New York
    before = await route(runtime, await _lead(runtime, world), at=thursday)
    assert before.buyer_id == fallback
    assert reasons_by_buyer(before)[str(ny)] == ["outside_schedule"]
    opened = await route(runtime, await _lead(runtime, world), at=thursday + timedelta(hours=1))
    assert opened.buyer_id == ny
    closes = await route(
        runtime, await _lead(runtime, world), at=thursday + timedelta(hours=8, minutes=30)
    )  # 17:00 local
    assert closes.buyer_id == fallback


async def test_caps_count_in_the_buyers_local_windows(runtime, world) -> None:
    capped = await _buyer(
        runtime, world, priority=1, timezone="America/Los_Angeles", daily_cap=2, hourly_cap=1
    )
    await _buyer(runtime, world, priority=5)
    t0 = WINTER_NOON_UTC.replace(hour=7, minute=10)  # 23:10 on the 14th in Los Angeles
    assert (await route(runtime, await _lead(runtime, world), at=t0)).buyer_id == capped
    second = await route(runtime, await _lead(runtime, world), at=t0 + timedelta(minutes=10))
    assert reasons_by_buyer(second)[str(capped)] == ["hourly_cap_reached"]
    # 00:10 local: a new day and a new hour.
    third = await route(runtime, await _lead(runtime, world), at=t0 + timedelta(hours=1))
    assert third.buyer_id == capped
    fourth = await route(runtime, await _lead(runtime, world), at=t0 + timedelta(hours=2))
    assert fourth.buyer_id == capped
    fifth = await route(runtime, await _lead(runtime, world), at=t0 + timedelta(hours=3))
    assert reasons_by_buyer(fifth)[str(capped)] == ["daily_cap_reached"]


async def test_buyer_cap_spans_offers_and_offer_cap_does_not(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        a = await make_world(conn)
        b = await make_world(conn, market_id=a.market_id)
        buyer = await make_buyer(conn, a, daily_cap=1)
        from leadflood.catalog import service as catalog

        await catalog.enroll_buyer(conn, buyer_id=buyer, offer_id=b.offer_id)
    assert (await route(runtime, await _lead(runtime, a))).buyer_id == buyer
    result = await route(runtime, await _lead(runtime, b))
    assert result.outcome == "no_route"
    assert reasons_by_buyer(result)[str(buyer)] == ["daily_cap_reached"]


async def test_prepaid_balance_and_minimum(runtime, world) -> None:
    exact = await _buyer(
        runtime,
        world,
        payment_method="prepaid",
        balance_cents=3500,
        min_balance_cents=1000,
        price_cents=2500,
    )
    lead = await _lead(runtime, world)
    assert (await route(runtime, lead)).buyer_id == exact
    await execute(runtime, "UPDATE buyers SET balance_cents = 3499 WHERE id = :b", b=exact)
    result = await route(runtime, await _lead(runtime, world))
    assert result.outcome == "no_route"
    assert reasons_by_buyer(result)[str(exact)] == ["insufficient_balance"]


async def test_no_route_stays_validated_and_retry_routes_later(runtime, world) -> None:
    lead = await _lead(runtime, world)
    result = await route(runtime, lead)
    assert result.outcome == "no_route" and result.status == "validated"
    assert await scalar(runtime, "SELECT status::text FROM leads WHERE id = :i", i=lead) == (
        "validated"
    )
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 1
    buyer = await _buyer(runtime, world)
    outcomes = await Router(runtime.db).retry_unrouted()
    assert outcomes == {"routed": 1}
    assert await scalar(runtime, "SELECT buyer_id FROM leads WHERE id = :i", i=lead) == buyer
    assert await scalar(runtime, "SELECT count(*) FROM routing_decisions") == 2


async def test_candidate_query_columns_follow_the_candidate_fields(runtime, world) -> None:
    import dataclasses

    from leadflood.routing import repository as repo
    from leadflood.routing.selection import Candidate

    await _buyer(runtime, world)
    async with runtime.db.pool_connection() as conn:
        lead = {
            "offer_id": world.offer_id,
            "market_id": world.market_id,
            "postal_code": "85001",
            "city": None,
        }
        (row,) = await repo.candidates(conn, lead)
    fields = [f.name for f in dataclasses.fields(Candidate) if f.name != "reasons"]
    assert list(row.keys()) == fields
