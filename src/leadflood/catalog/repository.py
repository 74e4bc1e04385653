"""SQL for the distribution configuration: markets, offers, sources, buyers…"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from leadflood.core.uow import Conn

JSON_COLUMNS = {
    "rules",
    "config",
    "schedule",
    "integration",
    "response_rules",
    "ping_integration",
    "ping_rules",
}


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (orjson.dumps(v).decode() if k in JSON_COLUMNS and not isinstance(v, str) else v)
        for k, v in values.items()
    }


def _placeholder(column: str, n: int) -> str:
    return f"${n}::jsonb" if column in JSON_COLUMNS else f"${n}"


async def insert_row(conn: Conn, table: str, values: dict[str, Any]) -> uuid.UUID:
    # Table and column names come from the code's schemas, never from a request's keys.
    columns = list(values)
    params = _params(values)
    placeholders = ", ".join(_placeholder(c, n) for n, c in enumerate(columns, start=1))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id"
    return await conn.fetchval(sql, *(params[c] for c in columns))


async def update_row(conn: Conn, table: str, row_id: uuid.UUID, values: dict[str, Any]) -> bool:
    if not values:
        return True
    columns = list(values)
    params = _params(values)
    sets = ", ".join(f"{c} = {_placeholder(c, n)}" for n, c in enumerate(columns, start=2))
    status = await conn.execute(
        f"UPDATE {table} SET {sets} WHERE id = $1", row_id, *(params[c] for c in columns)
    )
    return status == "UPDATE 1"


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferForPosting:
    """What a source needs to know of an offer to post to it."""

    id: uuid.UUID
    slug: str
    name: str
    market: str
    country: str
    vertical: str
    rules: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceForPosting:
    id: uuid.UUID
    name: str
    source_key: str
    hostname: str | None
    path_prefix: str | None
    needs_api_key: bool
    active: bool


async def offer_for_posting(conn: Conn, offer_id: uuid.UUID) -> OfferForPosting | None:
    row = await conn.fetchrow(
        "SELECT o.id, o.slug, o.name, m.name AS market, m.country, v.name AS vertical, "
        "       vp.rules FROM offers o JOIN markets m ON m.id = o.market_id "
        "JOIN verticals v ON v.id = o.vertical_id "
        "JOIN validation_policies vp ON vp.id = o.validation_policy_id WHERE o.id = $1",
        offer_id,
    )
    return OfferForPosting(**row) if row else None


async def sources_for_posting(conn: Conn, offer_id: uuid.UUID) -> list[SourceForPosting]:
    rows = await conn.fetch(
        "SELECT id, name, source_key, hostname, path_prefix, api_key_hash IS NOT NULL "
        "AS needs_api_key, active FROM sources WHERE offer_id = $1 ORDER BY name",
        offer_id,
    )
    return [SourceForPosting(**r) for r in rows]
