"""Create and change distribution configuration with the rules each entity needs."""

from __future__ import annotations

import uuid
from typing import Any

from leadflood.catalog import repository as repo
from leadflood.core.errors import NotFound
from leadflood.core.security import encrypt_secret, hash_api_key, new_api_key
from leadflood.core.uow import Conn
from leadflood.ingestion.canonical import canonical_host, canonical_path, canonical_source_key
from leadflood.ingestion.instructions import Instructions
from leadflood.ingestion.instructions import build as build_instructions


async def create_market(
    conn: Conn,
    *,
    slug: str,
    name: str,
    country: str = "US",
    timezone: str = "UTC",
    active: bool = True,
) -> uuid.UUID:
    return await repo.insert_row(
        conn,
        "markets",
        {
            "slug": slug,
            "name": name,
            "country": country.upper(),
            "timezone": timezone,
            "active": active,
        },
    )


async def create_vertical(conn: Conn, *, slug: str, name: str, active: bool = True) -> uuid.UUID:
    return await repo.insert_row(conn, "verticals", {"slug": slug, "name": name, "active": active})


async def create_validation_policy(conn: Conn, *, name: str, rules: dict[str, Any]) -> uuid.UUID:
    return await repo.insert_row(conn, "validation_policies", {"name": name, "rules": rules})


async def create_routing_policy(
    conn: Conn,
    *,
    name: str,
    strategy: str = "priority",
    exclusive_fallback: str = "fallback_allowed",
    config: dict[str, Any] | None = None,
) -> uuid.UUID:
    return await repo.insert_row(
        conn,
        "routing_policies",
        {
            "name": name,
            "strategy": strategy,
            "exclusive_fallback": exclusive_fallback,
            "config": config or {},
        },
    )


async def create_offer(
    conn: Conn,
    *,
    slug: str,
    name: str,
    market_id: uuid.UUID,
    vertical_id: uuid.UUID,
    validation_policy_id: uuid.UUID,
    routing_policy_id: uuid.UUID,
    active: bool = True,
) -> uuid.UUID:
    return await repo.insert_row(
        conn,
        "offers",
        {
            "slug": slug,
            "name": name,
            "market_id": market_id,
            "vertical_id": vertical_id,
            "validation_policy_id": validation_policy_id,
            "routing_policy_id": routing_policy_id,
            "active": active,
        },
    )


async def create_source(
    conn: Conn,
    *,
    name: str,
    offer_id: uuid.UUID,
    source_key: str,
    hostname: str | None = None,
    path_prefix: str | None = None,
    with_api_key: bool = False,
    active: bool = True,
    **payout: Any,
) -> tuple[uuid.UUID, str | None]:
    """Returns (source id, plaintext API key or None). The key is shown only here.
    `payout`: payout_type, payout_cents, payout_share (what the source earns a sale)."""
    api_key = new_api_key("lfsrc") if with_api_key else None
    values: dict[str, Any] = {
        "name": name,
        "offer_id": offer_id,
        "source_key": canonical_source_key(source_key),
        "hostname": canonical_host(hostname) if hostname else None,
        "path_prefix": canonical_path(path_prefix) if path_prefix else None,
        "api_key_hash": hash_api_key(api_key) if api_key else None,
        "active": active,
        **{k: v for k, v in payout.items() if k in _PAYOUT_FIELDS},
    }
    return await repo.insert_row(conn, "sources", values), api_key


_PAYOUT_FIELDS = frozenset({"payout_type", "payout_cents", "payout_share"})


async def create_buyer(conn: Conn, *, secret_key: str, name: str, **fields: Any) -> uuid.UUID:
    """Its write-only secrets (webhook signing, integration credential) are encrypted."""
    values = {"name": name, **fields}
    for secret in ("webhook_secret", "integration_secret"):
        if values.get(secret):
            values[secret] = encrypt_secret(values[secret], secret_key)
    return await repo.insert_row(conn, "buyers", values)


async def enroll_buyer(
    conn: Conn, *, buyer_id: uuid.UUID, offer_id: uuid.UUID, **fields: Any
) -> uuid.UUID:
    return await repo.insert_row(
        conn, "buyer_offers", {"buyer_id": buyer_id, "offer_id": offer_id, **fields}
    )


async def add_service_area(
    conn: Conn,
    *,
    buyer_id: uuid.UUID,
    market_id: uuid.UUID,
    postal_code: str | None = None,
    city: str | None = None,
) -> uuid.UUID:
    return await repo.insert_row(
        conn,
        "buyer_service_areas",
        {
            "buyer_id": buyer_id,
            "market_id": market_id,
            "postal_code": postal_code.strip() if postal_code else None,
            "city": city.strip() if city else None,
        },
    )


async def add_exclusivity(
    conn: Conn,
    *,
    offer_id: uuid.UUID,
    buyer_id: uuid.UUID,
    scope_type: str,
    scope_value: str,
    **fields: Any,
) -> uuid.UUID:
    return await repo.insert_row(
        conn,
        "offer_exclusivities",
        {
            "offer_id": offer_id,
            "buyer_id": buyer_id,
            "scope_type": scope_type,
            "scope_value": scope_value.strip(),
            **fields,
        },
    )


async def rotate_source_api_key(conn: Conn, source_id: uuid.UUID) -> str:
    """Issue a new API key for a source; the old one stops working. Shown once."""
    api_key = new_api_key("lfsrc")
    await repo.update_row(conn, "sources", source_id, {"api_key_hash": hash_api_key(api_key)})
    return api_key


async def posting_instructions(conn: Conn, offer_id: uuid.UUID, base_url: str) -> Instructions:
    """The offer's posting instructions, built from its configuration."""
    offer = await repo.offer_for_posting(conn, offer_id)
    if offer is None:
        raise NotFound("offer_not_found", "no offer with this id")
    return build_instructions(offer, await repo.sources_for_posting(conn, offer_id), base_url)
