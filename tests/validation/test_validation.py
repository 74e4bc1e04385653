"""validate_lead: policy rules, duplicates, guarded transition, route job hand-off."""

from __future__ import annotations

import pytest

from leadflood.core.uow import single_statements, unit_of_work
from leadflood.validation.rules import parse_rules
from leadflood.validation.service import validate_lead
from tests.conftest import drain_jobs
from tests.factories import DEFAULT_RULES, make_lead, make_world
from tests.sql import run


async def _validate(runtime, lead_id):
    async with runtime.db.pool_connection() as conn:
        return await validate_lead(conn, lead_id)


async def _lead(runtime, lead_id):
    async with single_statements(runtime.db) as conn:
        return (
            (await run(conn, "SELECT * FROM leads WHERE id = :i", {"i": lead_id})).mappings().one()
        )


async def _jobs(runtime, name: str) -> int:
    async with single_statements(runtime.db) as conn:
        return (
            await run(conn, "SELECT count(*) FROM pgqueuer WHERE entrypoint = :n", {"n": name})
        ).scalar_one()


@pytest.fixture
async def world(runtime):
    async with unit_of_work(runtime.db) as conn:
        return await make_world(conn)


async def _received(runtime, world, **fields):
    async with unit_of_work(runtime.db) as conn:
        return await make_lead(conn, world, status="received", **fields)


async def test_valid_lead_becomes_validated_and_enqueues_routing(runtime, world) -> None:
    lead_id = await _received(
        runtime, world, email="ana@example.com", normalized_email="ana@example.com"
    )
    result = await _validate(runtime, lead_id)
    assert result.status == "validated" and result.changed and result.reasons == ()
    row = await _lead(runtime, lead_id)
    assert row["status"] == "validated" and row["validated_at"] is not None
    assert await _jobs(runtime, "route_lead") == 1


async def test_every_failing_reason_is_collected_sorted(runtime) -> None:
    rules = {
        **DEFAULT_RULES,
        "email": "required",
        "required_fields": ["first_name", "last_name", "phone", "postal_code"],
    }
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules=rules)
        lead_id = await make_lead(
            conn,
            world,
            status="received",
            first_name=None,
            phone="123",
            postal_code="  ",
            email="not-an-email",
            consent=False,
        )
    result = await _validate(runtime, lead_id)
    expected = [
        "consent_missing",
        "invalid_email",
        "invalid_phone",
        "missing_first_name",
        "missing_last_name",
        "missing_postal_code",
    ]
    assert list(result.reasons) == expected
    row = await _lead(runtime, lead_id)
    assert row["status"] == "rejected" and row["rejection_reasons"] == expected
    assert row["billing_status"] == "non_billable"
    assert await _jobs(runtime, "route_lead") == 0


@pytest.mark.parametrize(
    ("rule", "email", "reasons"),
    [
        ("optional", None, []),
        ("optional", "garbage", []),
        ("required", None, ["missing_email"]),
        ("required", "garbage", ["invalid_email"]),
        ("required", "a@example.com", []),
        ("forbidden-invalid", None, []),
        ("forbidden-invalid", "garbage@", ["invalid_email"]),
        ("forbidden-invalid", "a@example.com", []),
    ],
)
async def test_email_rule_modes(runtime, rule, email, reasons) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules={"email": rule})
        lead_id = await make_lead(conn, world, status="received", email=email)
    assert list((await _validate(runtime, lead_id)).reasons) == reasons


@pytest.mark.parametrize(
    ("rule", "phone", "country", "reasons"),
    [
        ("optional", None, "US", []),
        ("required", None, "US", ["missing_phone"]),
        ("required", "602 253 1234", "US", []),
        ("required", "555 0100", "US", ["invalid_phone"]),
        ("required", "020 7946 0958", "GB", []),
        ("required", "602 253 1234", "GB", ["invalid_phone"]),
    ],
)
async def test_phone_rule_uses_market_country(runtime, rule, phone, country, reasons) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules={"phone": rule}, country=country)
        lead_id = await make_lead(conn, world, status="received", phone=phone)
    assert list((await _validate(runtime, lead_id)).reasons) == reasons


async def test_consent_rule(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules={"require_consent": True})
        missing = await make_lead(conn, world, status="received", consent=None)
        given = await make_lead(conn, world, status="received", consent=True)
    assert (await _validate(runtime, missing)).reasons == ("consent_missing",)
    assert (await _validate(runtime, given)).reasons == ()


DUP_RULES = {
    "duplicate_window_hours": 24,
    "duplicate_scope": "offer",
    "duplicate_match": ["normalized_email", "normalized_phone"],
}


async def _age(runtime, lead_id, hours: float) -> None:
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE leads SET created_at = now() - make_interval(secs => :s) WHERE id = :i",
            {"s": hours * 3600, "i": lead_id},
        )


async def test_duplicate_points_at_the_earliest_match_in_window(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules=DUP_RULES)
        first = await make_lead(conn, world, status="validated", normalized_email="a@x.co")
        second = await make_lead(
            conn,
            world,
            status="validated",
            normalized_phone="+16025550001",
            normalized_email="a@x.co",
        )
        third = await make_lead(
            conn,
            world,
            status="received",
            normalized_email="b@x.co",
            normalized_phone="+16025550001",
        )
    await _age(runtime, first, 5)
    await _age(runtime, second, 3)
    # third matches second by phone and (through no field) first; second is the only match.
    result = await _validate(runtime, third)
    assert result.reasons == ("duplicate",) and result.duplicate_of == second
    fourth_ids = []
    async with unit_of_work(runtime.db) as conn:
        fourth_ids.append(
            await make_lead(conn, world, status="received", normalized_email="a@x.co")
        )
    result = await _validate(runtime, fourth_ids[0])
    assert result.duplicate_of == first  # earliest of the two email matches
    assert (await _lead(runtime, fourth_ids[0]))["duplicate_of_lead_id"] == first


async def test_outside_window_and_rejected_leads_do_not_match(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules=DUP_RULES)
        old = await make_lead(conn, world, status="validated", normalized_email="old@x.co")
        rejected = await make_lead(conn, world, status="rejected", normalized_email="rej@x.co")
        a = await make_lead(conn, world, status="received", normalized_email="old@x.co")
        b = await make_lead(conn, world, status="received", normalized_email="rej@x.co")
    await _age(runtime, old, 25)
    await _age(runtime, rejected, 1)
    assert (await _validate(runtime, a)).reasons == ()
    assert (await _validate(runtime, b)).reasons == ()


async def test_a_lead_never_matches_itself_or_a_later_lead(runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, rules=DUP_RULES)
        earlier = await make_lead(conn, world, status="received", normalized_email="s@x.co")
        await make_lead(conn, world, status="validated", normalized_email="s@x.co")
    await _age(runtime, earlier, 1)
    assert (await _validate(runtime, earlier)).reasons == ()


@pytest.mark.parametrize(
    ("scope", "same_vertical", "dup"),
    [
        ("offer", True, False),
        ("vertical", True, True),
        ("vertical", False, False),
        ("global", False, True),
    ],
)
async def test_duplicate_scope(runtime, scope, same_vertical, dup) -> None:
    rules = {**DUP_RULES, "duplicate_scope": scope}
    async with unit_of_work(runtime.db) as conn:
        a = await make_world(conn, rules=rules)
        b = await make_world(
            conn, rules=rules, vertical_id=a.vertical_id if same_vertical else None
        )
        await make_lead(conn, a, status="validated", normalized_email="scope@x.co")
        lead = await make_lead(conn, b, status="received", normalized_email="scope@x.co")
    await _age(runtime, lead, -0.01)
    assert ("duplicate" in (await _validate(runtime, lead)).reasons) is dup


async def test_job_is_a_noop_past_the_stage(runtime, world) -> None:
    lead_id = await _received(runtime, world)
    first = await _validate(runtime, lead_id)
    again = await _validate(runtime, lead_id)
    assert first.changed and not again.changed and again.status == "validated"
    assert await _jobs(runtime, "route_lead") == 1


def test_empty_policy_rules_check_nothing() -> None:
    assert parse_rules({}).checks_duplicates is False


@pytest.mark.parametrize(
    "bad",
    [
        {"email": "sometimes"},
        {"required_fields": ["shoe_size"]},
        {"duplicate_scope": "planet"},
        {"duplicate_window_hours": -1},
        {"surprise": True},
        {"require_consent": "yes"},
    ],
)
def test_policy_rules_are_parsed_strictly(bad: dict) -> None:
    from leadflood.core.errors import BadRequest

    with pytest.raises(BadRequest):
        parse_rules(bad)


async def test_posted_lead_flows_through_the_validate_job(client, runtime, world) -> None:
    body = {
        "source_id": str(world.source_id),
        "first_name": "Ana",
        "phone": "602 253 1234",
        "postal_code": "85001",
        "consent": True,
    }
    lead_id = (await client.post("/api/leads", json=body)).json()["lead_id"]
    bad = (
        await client.post("/api/leads", json={**body, "phone": "480 253 1234", "consent": False})
    ).json()["lead_id"]
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "DELETE FROM pgqueuer WHERE entrypoint = 'route_lead'")
    await drain_jobs(runtime)
    assert (await client.get(f"/api/leads/{lead_id}")).json()["status"] in ("validated", "routed")
    rejected = (await client.get(f"/api/leads/{bad}")).json()
    assert rejected["status"] == "rejected"
    assert rejected["rejection_reasons"] == ["consent_missing"]
