"""A small, realistic demo configuration built through the catalog service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from leadflood.catalog import service as catalog
from leadflood.core.uow import Tx
from leadflood.demo import repository as demo_repo

DEMO_MARKET = "phoenix-az"


@dataclass
class DemoConfig:
    created: bool
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)


async def seed_demo(
    conn: Tx, *, secret_key: str, buyer_webhook_base: str = "http://127.0.0.1:8099"
) -> DemoConfig:
    """Create the demo configuration once; a second call changes nothing."""
    if await demo_repo.market_exists(conn, DEMO_MARKET):
        sources = await demo_repo.source_ids(conn)
        return DemoConfig(created=False, ids={f"source:{k}": v for k, v in sources.items()})

    ids: dict[str, uuid.UUID] = {}
    ids["market"] = await catalog.create_market(
        conn, slug=DEMO_MARKET, name="Phoenix, AZ", country="US", timezone="America/Phoenix"
    )
    ids["solar"] = await catalog.create_vertical(conn, slug="solar", name="Residential solar")
    ids["roofing"] = await catalog.create_vertical(conn, slug="roofing", name="Roofing")
    ids["vpolicy"] = await catalog.create_validation_policy(
        conn,
        name="Standard consumer",
        rules={
            "required_fields": ["first_name", "phone", "postal_code"],
            "email": "optional",
            "phone": "required",
            "require_consent": True,
            "duplicate_window_hours": 720,
            "duplicate_scope": "offer",
            "duplicate_match": ["normalized_email", "normalized_phone"],
        },
    )
    ids["rpolicy_priority"] = await catalog.create_routing_policy(
        conn,
        name="Priority, fallback allowed",
        strategy="priority",
        exclusive_fallback="fallback_allowed",
    )
    ids["rpolicy_weighted"] = await catalog.create_routing_policy(
        conn, name="Weighted split", strategy="weighted", exclusive_fallback="fail_closed"
    )
    for vertical, policy in (("solar", "rpolicy_priority"), ("roofing", "rpolicy_weighted")):
        ids[f"offer:{vertical}"] = await catalog.create_offer(
            conn,
            slug=f"{vertical}-phoenix",
            name=f"{vertical.title()} — Phoenix",
            market_id=ids["market"],
            vertical_id=ids[vertical],
            validation_policy_id=ids["vpolicy"],
            routing_policy_id=ids[policy],
        )
    ids["source:sunquotes"], _ = await catalog.create_source(
        conn,
        name="SunQuotes landing page",
        offer_id=ids["offer:solar"],
        source_key="sunquotes",
        hostname="leads.example.com",
        path_prefix="/api/leads/solar",
    )
    ids["source:roofpros"], roofing_key = await catalog.create_source(
        conn,
        name="RoofPros partner feed",
        offer_id=ids["offer:roofing"],
        source_key="roofpros",
        with_api_key=True,
    )

    buyers = [
        # name, priority, weight, price, service area postal codes (None = whole market)
        ("Desert Sun Solar", 10, 3, 4500, [f"850{n:02d}" for n in range(1, 21)]),
        ("Valley Roof & Solar", 20, 1, 3800, ["85001", "85004", "85006"]),
        ("Copper State Energy", 20, 1, 4000, ["85016", "85018"]),
    ]
    for index, (name, priority, weight, price, postal_codes) in enumerate(buyers):
        buyer_id = await catalog.create_buyer(
            conn,
            secret_key=secret_key,
            name=name,
            timezone="America/Phoenix",
            delivery_channel="webhook",
            webhook_url=f"{buyer_webhook_base}/buyers/{index + 1}/leads",
            webhook_secret=f"demo-secret-{index + 1}",
            daily_cap=200,
            hourly_cap=50,
            payment_method="prepaid" if index == 0 else "ach",
            balance_cents=500_000,
        )
        ids[f"buyer:{index + 1}"] = buyer_id
        for vertical in ("solar", "roofing"):
            await catalog.enroll_buyer(
                conn,
                buyer_id=buyer_id,
                offer_id=ids[f"offer:{vertical}"],
                priority=priority,
                weight=weight,
                price_cents=price,
            )
        if postal_codes is None:
            await catalog.add_service_area(conn, buyer_id=buyer_id, market_id=ids["market"])
        else:
            for code in postal_codes:
                await catalog.add_service_area(
                    conn, buyer_id=buyer_id, market_id=ids["market"], postal_code=code
                )
    await catalog.add_exclusivity(
        conn,
        offer_id=ids["offer:roofing"],
        buyer_id=ids["buyer:3"],
        scope_type="postal_code",
        scope_value="85016",
    )
    return DemoConfig(created=True, ids=ids, api_keys={"roofpros": roofing_key or ""})


DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_ADMIN_PASSWORD = "leadflood-demo"  # noqa: S105 - the documented demo login


async def ensure_demo_admin(conn: Tx) -> bool:
    """A known demo login when the database has no users yet (demo only; never in prod)."""
    from leadflood.auth.service import create_user

    if await demo_repo.any_user(conn):
        return False
    user = await create_user(
        conn, email=DEMO_ADMIN_EMAIL, password=DEMO_ADMIN_PASSWORD, role="admin", name="Demo admin"
    )
    await conn.audit(None, "create", "user", user.id, {"email": DEMO_ADMIN_EMAIL, "via": "demo"})
    return True
