"""Build distribution configuration for tests through the catalog service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from leadflood.catalog import service as catalog
from leadflood.core.uow import Tx

SECRET_KEY = "dev-insecure-change-me-0123456789abcdef"
DEFAULT_RULES: dict[str, Any] = {
    "required_fields": ["first_name", "phone", "postal_code"],
    "email": "optional",
    "phone": "required",
    "require_consent": True,
    "duplicate_window_hours": 720,
    "duplicate_scope": "offer",
    "duplicate_match": ["normalized_email", "normalized_phone"],
}


@dataclass
class World:
    market_id: uuid.UUID
    vertical_id: uuid.UUID
    offer_id: uuid.UUID
    validation_policy_id: uuid.UUID
    routing_policy_id: uuid.UUID
    source_id: uuid.UUID
    source_key: str
    extra: dict[str, Any] = field(default_factory=dict)


# A lead as a source posts it to /api/leads, its source_id left to the test's world.
POSTED_LEAD: dict[str, Any] = {
    "first_name": "Ana",
    "phone": "602-253-1234",
    "postal_code": "85001",
    "consent": True,
}

_counter = iter(range(1, 10**9))
# Slugs stay unique across processes sharing one database (benchmarks, reruns).
_RUN = uuid.uuid4().hex[:6]


async def make_world(
    conn: Tx,
    *,
    country: str = "US",
    timezone: str = "America/Phoenix",
    rules: dict[str, Any] | None = None,
    strategy: str = "priority",
    exclusive_fallback: str = "fallback_allowed",
    source_api_key: bool = False,
    hostname: str | None = None,
    path_prefix: str | None = None,
    vertical_id: uuid.UUID | None = None,
    market_id: uuid.UUID | None = None,
) -> World:
    n = next(_counter)
    if market_id is None:
        market_id = await catalog.create_market(
            conn, slug=f"market-{n}-{_RUN}", name=f"Market {n}", country=country, timezone=timezone
        )
    if vertical_id is None:
        vertical_id = await catalog.create_vertical(
            conn, slug=f"vertical-{n}-{_RUN}", name=f"V {n}"
        )
    vp = await catalog.create_validation_policy(
        conn, name=f"vp {n}", rules=DEFAULT_RULES if rules is None else rules
    )
    rp = await catalog.create_routing_policy(
        conn, name=f"rp {n}", strategy=strategy, exclusive_fallback=exclusive_fallback
    )
    offer = await catalog.create_offer(
        conn,
        slug=f"offer-{n}-{_RUN}",
        name=f"Offer {n}",
        market_id=market_id,
        vertical_id=vertical_id,
        validation_policy_id=vp,
        routing_policy_id=rp,
    )
    key = f"source-{n}-{_RUN}"
    source, api_key = await catalog.create_source(
        conn,
        name=f"Source {n}",
        offer_id=offer,
        source_key=key,
        hostname=hostname,
        path_prefix=path_prefix,
        with_api_key=source_api_key,
    )
    world = World(market_id, vertical_id, offer, vp, rp, source, key)
    if api_key:
        world.extra["api_key"] = api_key
    return world


async def make_buyer(
    conn: Tx,
    world: World,
    *,
    name: str | None = None,
    priority: int = 100,
    weight: int = 1,
    price_cents: int = 2500,
    postal_codes: list[str] | None = None,
    cities: list[str] | None = None,
    market_wide: bool | None = None,
    offer_fields: dict[str, Any] | None = None,
    **buyer_fields: Any,
) -> uuid.UUID:
    n = next(_counter)
    buyer_fields.setdefault("payment_method", "ach")
    buyer_fields.setdefault("webhook_url", f"http://127.0.0.1:9/buyer-{n}")
    buyer_id = await catalog.create_buyer(
        conn, secret_key=SECRET_KEY, name=name or f"Buyer {n}", **buyer_fields
    )
    await catalog.enroll_buyer(
        conn,
        buyer_id=buyer_id,
        offer_id=world.offer_id,
        priority=priority,
        weight=weight,
        price_cents=price_cents,
        **(offer_fields or {}),
    )
    if market_wide is None:
        market_wide = not postal_codes and not cities
    if market_wide:
        await catalog.add_service_area(conn, buyer_id=buyer_id, market_id=world.market_id)
    for code in postal_codes or []:
        await catalog.add_service_area(
            conn, buyer_id=buyer_id, market_id=world.market_id, postal_code=code
        )
    for city in cities or []:
        await catalog.add_service_area(
            conn, buyer_id=buyer_id, market_id=world.market_id, city=city
        )
    return buyer_id


async def make_lead(
    conn: Tx,
    world: World,
    *,
    status: str = "validated",
    postal_code: str | None = "85001",
    city: str | None = "Phoenix",
    **fields: Any,
) -> uuid.UUID:
    """Insert a lead directly in a given state (routing tests start after validation)."""

    n = next(_counter)
    values = {
        "source_id": world.source_id,
        "offer_id": world.offer_id,
        "market_id": world.market_id,
        "vertical_id": world.vertical_id,
        "idempotency_key": f"t-{_RUN}-{n}",
        "status": status,
        "first_name": "Test",
        "phone": "6022531234",
        "normalized_phone": f"+1602{n % 10_000_000:07d}",
        "postal_code": postal_code,
        "city": city,
        "consent": True,
        **fields,
    }
    columns = list(values)
    params = ", ".join(
        f"${n}::lead_status" if k == "status" else f"${n}" for n, k in enumerate(columns, 1)
    )
    return await conn.fetchval(
        f"INSERT INTO leads ({', '.join(columns)}) VALUES ({params}) RETURNING id",
        *(values[k] for k in columns),
    )
