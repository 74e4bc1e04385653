"""Ping-post against real local bidder servers: fixed-price contracts and pinged bidders
(fast, slow, hanging, malformed, declining), the post placed with the best standing bid,
the fall-through when the winner refuses, a price changed at the post, the payout rule,
every post error, and what the lead's page shows."""

from __future__ import annotations

import hashlib
import time
import uuid

import orjson
import pytest

from leadflood.core.uow import unit_of_work
from leadflood.delivery.tasks import DeliveryRun
from leadflood.routing.tasks import Router
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import auth_headers
from tests.delivery.test_delivery import row, rows
from tests.factories import make_buyer, make_world
from tests.sql import run

LEAD = {
    "first_name": "Ana",
    "last_name": "Lopez",
    "email": "ana.lopez@example.com",
    "phone": "(602) 253-1234",
    "postal_code": "85001",
    "city": "Phoenix",
    "state": "AZ",
    "consent": True,
}
PING = {"postal_code": "85001", "state": "AZ", "city": "Phoenix"}
# A bidder's documented answer: {"accepted": true, "price": "41.50", "bid_token": "..."}.
PING_RULES = {
    "outcome_path": "$.accepted",
    "outcome_term": "true",
    "price_path": "$.price",
    "reference_path": "$.bid_token",
}
POST_RULES = {"outcome_term": "DUPLICATE", "match_means": "rejected", "price_path": "$.price"}


def bid(price: str, token: str, delay_s: float = 0.0) -> Reply:
    return Reply(
        body=orjson.dumps({"accepted": True, "price": price, "bid_token": token}).decode(),
        delay_s=delay_s,
    )


@pytest.fixture
def bidders():
    with BuyerServer() as server:
        yield server


async def market(runtime, bidders, *, payout=("bid_margin", 500, None), **offer):
    """An offer with two fixed-price contracts (20.00, 30.00) and two pinged bidders."""
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await run(
            conn,
            "UPDATE sources SET payout_type = :t, payout_cents = :c, payout_share = :s "
            "WHERE id = :id",
            {"t": payout[0], "c": payout[1], "s": payout[2], "id": world.source_id},
        )
        for column, value in offer.items():
            await run(
                conn,
                f"UPDATE offers SET {column} = :v WHERE id = :o",
                {"v": value, "o": world.offer_id},
            )
        fixed = [
            await make_buyer(
                conn,
                world,
                name=f"Fixed {n}",
                price_cents=n * 1000,
                webhook_url=bidders.url(f"post-fixed{n}"),
                response_rules=POST_RULES,
            )
            for n in (2, 3)
        ]
        pinged = [
            await make_buyer(
                conn,
                world,
                name=f"Pinged {name}",
                price_cents=1500,
                webhook_url=bidders.url(f"post-{name}"),
                response_rules=POST_RULES,
                ping_integration={
                    "url": bidders.url(f"ping-{name}"),
                    "fields": {
                        "zip": "{{ postal_code }}",
                        "state": "{{ state }}",
                        "ping_id": "{{ ping_id }}",
                    },
                },
                ping_rules=PING_RULES,
                ping_timeout_ms=200,
            )
            for name in ("a", "b")
        ]
    return world, fixed, pinged


async def ping(client, world, **extra) -> dict:
    response = await client.post(
        "/api/ping", json={**PING, "source_id": str(world.source_id), **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def post(client, world, ping_id, **extra):
    return await client.post(
        "/api/post",
        json={**LEAD, "source_id": str(world.source_id), "ping_id": ping_id, **extra},
    )


async def test_the_best_bid_wins_and_the_post_goes_to_it_with_its_token(
    runtime, client, bidders
) -> None:
    world, fixed, pinged = await market(runtime, bidders)
    bidders.script("ping-a", bid("41.50", "tok-a"))
    bidders.script("ping-b", Reply(body='{"accepted": false, "reason": "no capacity"}'))
    answer = await ping(client, world, email="leak@example.com", roof_age="12")
    # The source is offered the best bid less its margin (5.00); the ping lapses later.
    assert answer["accepted"] is True
    assert answer["price_cents"] == 4150 - 500 and answer["price"] == "36.50"
    assert answer["expires_at"].endswith("Z")
    # Contact details are never pinged; a field the offer does not name is not either.
    assert answer["ignored_fields"] == ["email", "roof_age"]
    pings = [r for r in bidders.received if r.path.startswith("ping-")]
    assert len(pings) == 2
    for r in pings:
        sent = orjson.loads(r.body)
        assert sent == {"zip": "85001", "state": "AZ", "ping_id": answer["ping_id"]}
        assert r.headers["idempotency-key"] == f"ping:{answer['ping_id']}"
    bids = await rows(
        runtime,
        "SELECT buyer_id, kind, outcome, price_cents, bid_token, rank, latency_ms "
        "FROM auction_bids WHERE auction_id = :a ORDER BY rank NULLS LAST, kind",
        a=answer["ping_id"],
    )
    assert [(b["buyer_id"], b["outcome"], b["price_cents"], b["rank"]) for b in bids] == [
        (pinged[0], "bid", 4150, 1),
        (fixed[1], "bid", 3000, 2),
        (fixed[0], "bid", 2000, 3),
        (pinged[1], "no_bid", None, None),
    ]
    assert bids[0]["bid_token"] == "tok-a" and bids[0]["latency_ms"] > 0

    posted = await post(client, world, answer["ping_id"])
    assert posted.status_code == 201, posted.text
    placed = posted.json()
    assert placed["accepted"] is True and placed["status"] == "routed"
    assert placed["price_cents"] == 3650
    lead = uuid.UUID(placed["lead_id"])
    assert (await DeliveryRun(runtime).deliver(lead)).result == "delivered"
    delivered = [r for r in bidders.received if r.path == "post-a"]
    body = orjson.loads(delivered[0].body)
    assert body["auction"] == {"ping_id": answer["ping_id"], "bid_token": "tok-a"}
    assert body["contact"]["email"] == "ana.lopez@example.com"
    sale = await row(
        runtime,
        "SELECT l.status::text AS status, l.buyer_id, l.price_cents, "
        "(SELECT amount_cents FROM ledger_transactions t WHERE t.lead_id = l.id "
        " AND t.kind = 'source_payout') AS payout FROM leads l WHERE l.id = :l",
        l=lead,
    )
    assert sale == {
        "status": "delivered",
        "buyer_id": pinged[0],
        "price_cents": 4150,
        "payout": 3650,
    }

    # The lead's page (API and web) shows the auction beside the routing trace.
    admin = await auth_headers(client, runtime, "admin")
    detail = (await client.get(f"/v1/admin/leads/{lead}", headers=admin)).json()
    assert detail["auction"]["kind"] == "ping" and detail["auction"]["price_cents"] == 4150
    assert [b["outcome"] for b in detail["auction"]["bids"]] == ["bid", "bid", "bid", "no_bid"]
    assert "tok-a" not in str(detail["auction"])  # only whether a token was given
    from tests.web.test_pages import browser

    web = await browser(runtime, "manager")
    try:
        page = (await web.get(f"/leads/{lead}")).text
    finally:
        await web.aclose()
    assert 'id="auction"' in page and "Pinged a" in page and "41.50" in page
    assert page.count('data-bid-outcome="bid"') == 3


async def test_slow_hanging_and_malformed_bidders_are_cut_off_and_recorded(
    runtime, client, bidders
) -> None:
    world, fixed, pinged = await market(runtime, bidders, ping_budget_ms=300)
    async with unit_of_work(runtime.db) as conn:
        hanging = await make_buyer(
            conn,
            world,
            name="Hanging",
            price_cents=100,
            ping_integration={"url": bidders.url("ping-hang")},
            ping_rules=PING_RULES,
            ping_timeout_ms=5000,
        )
    bidders.script("ping-a", bid("99.00", "slow", delay_s=1.0))  # past its own 200 ms
    bidders.script("ping-b", Reply(body="<html>oops</html>", media_type="text/html"))
    bidders.script("ping-hang", bid("500.00", "late", delay_s=5.0))  # past the budget
    started = time.perf_counter()
    answer = await ping(client, world)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # the hanging bidder (5 s) did not hold the answer
    assert answer["accepted"] is True and answer["price_cents"] == 3000 - 500
    bids = {
        b["buyer_id"]: b
        for b in await rows(
            runtime,
            "SELECT buyer_id, outcome, detail, latency_ms FROM auction_bids WHERE auction_id = :a",
            a=answer["ping_id"],
        )
    }
    assert bids[pinged[0]]["outcome"] == "timeout"  # its own timeout
    assert bids[pinged[1]]["outcome"] == "no_bid"  # an answer its rules read as no
    assert bids[hanging]["outcome"] == "timeout"  # the budget
    assert 250 <= bids[hanging]["latency_ms"] < 1000
    assert bids[fixed[1]]["outcome"] == "bid"


async def test_a_bid_without_a_readable_price_is_an_error_not_a_bid(
    runtime, client, bidders
) -> None:
    world, _fixed, pinged = await market(runtime, bidders)
    bidders.script("ping-a", Reply(body='{"accepted": true, "price": "n/a"}'))
    bidders.script("ping-b", Reply(body="not json at all"))
    answer = await ping(client, world)
    outcome = {
        b["buyer_id"]: (b["outcome"], b["detail"])
        for b in await rows(
            runtime,
            "SELECT buyer_id, outcome, detail FROM auction_bids WHERE auction_id = :a",
            a=answer["ping_id"],
        )
    }
    assert outcome[pinged[0]] == ("error", "the answer carries no readable price")
    assert outcome[pinged[1]][0] == "no_bid"
    assert answer["price_cents"] == 2500  # the best fixed contract, 30.00 less 5.00


async def test_the_winner_refuses_at_post_and_the_next_bid_buys_it(
    runtime, client, bidders
) -> None:
    world, _fixed, pinged = await market(runtime, bidders)
    bidders.script("ping-a", bid("41.50", "tok-a"))
    bidders.script("ping-b", bid("35.00", "tok-b"))
    answer = await ping(client, world)
    assert answer["price_cents"] == 3650
    placed = (await post(client, world, answer["ping_id"])).json()
    lead = uuid.UUID(placed["lead_id"])
    bidders.script("post-a", Reply(body="DUPLICATE", media_type="text/plain"))
    assert (await DeliveryRun(runtime).deliver(lead)).result == "rejected"
    assert (await Router(runtime.db).route(lead)).buyer_id == pinged[1]
    assert (await DeliveryRun(runtime).deliver(lead)).result == "delivered"
    to_b = orjson.loads(next(r for r in bidders.received if r.path == "post-b").body)
    assert to_b["auction"]["bid_token"] == "tok-b"
    sale = await row(
        runtime,
        "SELECT l.price_cents, (SELECT amount_cents FROM ledger_transactions t "
        "WHERE t.lead_id = l.id AND t.kind = 'source_payout') AS payout FROM leads l "
        "WHERE l.id = :l",
        l=lead,
    )
    # Sold for less than the ping promised: the payout follows the sale (35.00 - 5.00).
    assert sale == {"price_cents": 3500, "payout": 3000}


async def test_a_price_lowered_at_post_is_billed_and_a_raised_one_is_not(
    runtime, client, bidders
) -> None:
    world, _fixed, pinged = await market(runtime, bidders, payout=("revenue_share", None, 0.5))
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE buyers SET payment_method = 'prepaid', balance_cents = 100000 WHERE id = :b",
            {"b": pinged[0]},
        )
    sold = []
    for confirmed, email in (("38.00", "one@example.com"), ("60.00", "two@example.com")):
        bidders.script("ping-a", bid("41.50", "tok"))
        bidders.script("ping-b", Reply(body='{"accepted": false}'))
        answer = await ping(client, world)
        assert answer["price_cents"] == 2075  # half of 41.50
        placed = (
            await post(
                client, world, answer["ping_id"], email=email, phone=f"602253{len(sold) + 1:04d}"
            )
        ).json()
        lead = uuid.UUID(placed["lead_id"])
        bidders.script("post-a", Reply(body=orjson.dumps({"price": confirmed}).decode()))
        assert (await DeliveryRun(runtime).deliver(lead)).result == "delivered"
        sold.append(lead)
    low, high = [
        await row(
            runtime,
            "SELECT l.price_cents, (SELECT amount_cents FROM ledger_transactions t "
            "WHERE t.lead_id = l.id AND t.kind = 'delivery_debit') AS charged, "
            "(SELECT amount_cents FROM ledger_transactions t WHERE t.lead_id = l.id "
            " AND t.kind = 'source_payout') AS payout FROM leads l WHERE l.id = :l",
            l=lead,
        )
        for lead in sold
    ]
    assert low == {"price_cents": 3800, "charged": 3800, "payout": 1900}
    assert high == {"price_cents": 4150, "charged": 4150, "payout": 2075}
    buyer = await row(
        runtime, "SELECT balance_cents, reserved_cents FROM buyers WHERE id = :b", b=pinged[0]
    )
    # Nothing stays reserved: the reservation of the bid is released whole.
    assert buyer == {"balance_cents": 100000 - 3800 - 4150, "reserved_cents": 0}


async def test_post_errors_are_clear_and_stable(runtime, client, bidders) -> None:
    world, _fixed, _pinged = await market(runtime, bidders)
    async with unit_of_work(runtime.db) as conn:
        other = await make_world(conn)
    answer = await ping(client, world)

    missing = await client.post("/api/post", json={**LEAD, "source_id": str(world.source_id)})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "ping_id_required"
    for bad in (str(uuid.uuid4()), "not-a-uuid", "\u0000"):
        unknown = await post(client, world, bad)
        assert unknown.status_code in (400, 404), unknown.text
        assert unknown.json()["error"]["code"] in ("ping_not_found", "nul_character")
    elsewhere = await client.post(
        "/api/post", json={**LEAD, "source_id": str(other.source_id), "ping_id": answer["ping_id"]}
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"]["code"] == "ping_wrong_source"

    first = await post(client, world, answer["ping_id"])
    assert first.status_code == 201
    twice = await post(client, world, answer["ping_id"], email="other@example.com")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "ping_already_posted"
    assert twice.json()["error"]["details"]["lead_id"] == first.json()["lead_id"]

    late = await ping(client, world)
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE auctions SET expires_at = now() - interval '1 second' WHERE id = :a",
            {"a": late["ping_id"]},
        )
    expired = await post(client, world, late["ping_id"], email="late@example.com")
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "ping_expired"
    # Nothing of a refused post was kept.
    assert (await row(runtime, "SELECT count(*) AS n FROM leads"))["n"] == 1


async def test_a_ping_nobody_bids_on_is_not_accepted_and_cannot_be_posted(
    runtime, client, bidders
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, postal_codes=["10001"])  # serves elsewhere
    answer = await ping(client, world)
    assert answer["accepted"] is False and answer["price_cents"] is None
    refused = await post(client, world, answer["ping_id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ping_not_accepted"
    trace = (await row(runtime, "SELECT trace FROM auctions WHERE id = :a", a=answer["ping_id"]))[
        "trace"
    ]
    assert trace[0]["reasons"] == ["outside_service_area"]


async def test_a_buyer_who_bought_the_consumer_does_not_bid_again(runtime, client, bidders) -> None:
    world, fixed, _pinged = await market(runtime, bidders)
    bidders.script("ping-a", Reply(body='{"accepted": false}'))
    bidders.script("ping-b", Reply(body='{"accepted": false}'))
    first = await ping(client, world)
    lead = uuid.UUID((await post(client, world, first["ping_id"])).json()["lead_id"])
    assert (await DeliveryRun(runtime).deliver(lead)).result == "delivered"  # to Fixed 3
    email_hash = hashlib.sha256(b"ana.lopez@example.com").hexdigest()
    bidders.script("ping-a", Reply(body='{"accepted": false}'))
    bidders.script("ping-b", Reply(body='{"accepted": false}'))
    again = await ping(client, world, email_hash=email_hash)
    # Fixed 3 bought Ana: Fixed 2 is the best bid now (20.00 less the 5.00 margin).
    assert again["price_cents"] == 1500
    trace = (await row(runtime, "SELECT trace FROM auctions WHERE id = :a", a=again["ping_id"]))[
        "trace"
    ]
    assert {"buyer_id": str(fixed[1]), "reasons": ["already_bought"]} in trace
    bad = await client.post(
        "/api/ping", json={**PING, "source_id": str(world.source_id), "email_hash": "x"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_field"


async def test_a_direct_post_is_auctioned_when_the_offer_says_so(runtime, client, bidders) -> None:
    world, _fixed, pinged = await market(runtime, bidders, post_auction=True)
    bidders.script("ping-a", bid("12.00", "tok-a"))
    bidders.script("ping-b", bid("55.00", "tok-b"))
    posted = await client.post("/api/leads", json={**LEAD, "source_id": str(world.source_id)})
    lead = uuid.UUID(posted.json()["lead_id"])
    from leadflood.core.uow import single_statements
    from leadflood.validation.service import validate_lead

    async with single_statements(runtime.db) as tx:
        await validate_lead(tx, lead)
    routed = await Router(runtime.db, runtime).route(lead)
    assert routed.buyer_id == pinged[1]
    # The bidders saw the whole lead (a post auction), by the same ping template.
    seen = orjson.loads(next(r for r in bidders.received if r.path == "ping-b").body)
    assert seen["zip"] == "85001"
    assert (await DeliveryRun(runtime).deliver(lead)).result == "delivered"
    sold = orjson.loads(next(r for r in bidders.received if r.path == "post-b").body)
    assert sold["auction"]["bid_token"] == "tok-b" and sold["price_cents"] == 5500
    auction = await row(runtime, "SELECT kind, lead_id FROM auctions")
    assert auction == {"kind": "post", "lead_id": lead}
    # Routing it again (a repeated job) runs no second auction.
    await Router(runtime.db, runtime).route(lead)
    assert (await row(runtime, "SELECT count(*) AS n FROM auctions"))["n"] == 1


async def test_hostile_pings_get_clear_errors(runtime, client, bidders) -> None:
    world, _fixed, _pinged = await market(runtime, bidders)
    source = str(world.source_id)
    cases = [
        ({"content": b'{"postal_code": "8500\\u0000"}'}, 400),
        ({"content": b"[" * 5000 + b"]" * 5000}, 400),
        ({"content": b"\xff\xfe not utf-8"}, 400),
        ({"content": b"postal_code=85001", "headers": {"content-type": "text/plain"}}, 415),
        ({"json": {**PING, "source_id": "nope"}}, 400),
        ({"json": {**PING, "source_key": "unknown"}}, 400),
        ({"content": b"x" * (3 * 1024 * 1024)}, 413),
    ]
    for kwargs, status in cases:
        response = await client.post("/api/ping", **kwargs)
        assert response.status_code == status, (kwargs.get("json"), response.text)
        assert "code" in response.json()["error"]
    xml = f"<ping><source_id>{source}</source_id><postal_code>85001</postal_code></ping>"
    as_xml = await client.post(
        "/api/ping", content=xml, headers={"content-type": "application/xml"}
    )
    assert as_xml.status_code == 200 and as_xml.json()["accepted"] is True
    # An HTML/CRLF value is data: pinged as text, never a header.
    odd = await ping(client, world, city="<b>x</b>\r\nX-Evil: 1")
    assert odd["accepted"] is True


async def test_concurrent_pings_and_posts_never_sell_a_capped_buyer_past_its_cap(
    runtime, client
) -> None:
    """Every ping sees the capped buyer free and ranks it first; the posts, all at once,
    sell it exactly its cap and place the rest with the next bid."""
    import asyncio

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        capped = await make_buyer(conn, world, name="Capped", price_cents=5000, daily_cap=3)
        backup = await make_buyer(conn, world, name="Backup", price_cents=1000)
    pings = await asyncio.gather(*(ping(client, world) for _ in range(12)))
    assert all(p["accepted"] for p in pings)
    posts = await asyncio.gather(
        *(
            post(client, world, p["ping_id"], email=f"c{n}@example.com", phone=f"602555{n:04d}")
            for n, p in enumerate(pings)
        )
    )
    assert [p.status_code for p in posts] == [201] * 12
    sold = await rows(
        runtime, "SELECT buyer_id, count(*) AS n FROM leads WHERE status = 'routed' GROUP BY 1"
    )
    assert {r["buyer_id"]: r["n"] for r in sold} == {capped: 3, backup: 9}
    cap = await row(runtime, "SELECT cap_day_count FROM buyers WHERE id = :b", b=capped)
    assert cap["cap_day_count"] == 3


async def test_the_best_fixed_bids_are_kept_and_every_bid_is_counted(runtime, client) -> None:
    from leadflood.auctions.service import KEPT_FIXED_BIDS

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        for n in range(KEPT_FIXED_BIDS + 5):
            await make_buyer(conn, world, name=f"C{n}", price_cents=1000 + n)
    answer = await ping(client, world)
    stored = await row(
        runtime,
        "SELECT a.bid_count, (SELECT count(*) FROM auction_bids b WHERE b.auction_id = a.id) "
        "AS kept, (SELECT min(price_cents) FROM auction_bids b WHERE b.auction_id = a.id) "
        "AS lowest FROM auctions a WHERE a.id = :a",
        a=answer["ping_id"],
    )
    assert stored == {"bid_count": KEPT_FIXED_BIDS + 5, "kept": KEPT_FIXED_BIDS, "lowest": 1005}


async def test_an_offer_never_pings_contact_details_and_a_margin_needs_its_amount(
    runtime, client, admin
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    refused = await client.patch(
        f"/v1/admin/offers/{world.offer_id}",
        json={"ping_fields": ["postal_code", "email"]},
        headers=admin,
    )
    assert refused.status_code in (400, 422), refused.text
    assert "email" in refused.text
    kept = await client.patch(
        f"/v1/admin/offers/{world.offer_id}",
        json={"ping_fields": ["postal_code", "roof_age"], "ping_budget_ms": 250},
        headers=admin,
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["ping_fields"] == ["postal_code", "roof_age"]
    margin = await client.post(
        "/v1/admin/sources",
        json={
            "name": "S",
            "offer_id": str(world.offer_id),
            "source_key": "s-margin",
            "payout_type": "bid_margin",
        },
        headers=admin,
    )
    assert margin.status_code in (400, 422) and "payout_cents" in margin.text
    answer = await ping(client, world, roof_age="12", email="x@example.com")
    assert answer["ignored_fields"] == ["city", "email", "state"]  # not named by the offer


async def test_one_ping_posted_twice_at_once_is_sold_once(runtime, client) -> None:
    import asyncio

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, name="Only", price_cents=3000)
    answer = await ping(client, world)
    both = await asyncio.gather(
        *(
            post(
                client,
                world,
                answer["ping_id"],
                email=f"twin{n}@example.com",
                phone=f"602555000{n}",
            )
            for n in range(2)
        )
    )
    assert sorted(r.status_code for r in both) == [201, 409]
    loser = next(r for r in both if r.status_code == 409)
    assert loser.json()["error"]["code"] == "ping_already_posted"
    assert (await row(runtime, "SELECT count(*) AS n FROM leads"))["n"] == 1
