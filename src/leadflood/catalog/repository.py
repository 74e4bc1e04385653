"""SQL for the distribution configuration: markets, offers, sources, buyers…"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

JSON_COLUMNS = {"rules", "config", "schedule"}


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (orjson.dumps(v).decode() if k in JSON_COLUMNS and not isinstance(v, str) else v)
        for k, v in values.items()
    }


def _placeholder(column: str) -> str:
    return f"CAST(:{column} AS jsonb)" if column in JSON_COLUMNS else f":{column}"


async def insert_row(conn: AsyncConnection, table: str, values: dict[str, Any]) -> uuid.UUID:
    columns = list(values)
    placeholders = ", ".join(_placeholder(c) for c in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id"
    return (await conn.execute(text(sql), _params(values))).scalar_one()


async def update_row(
    conn: AsyncConnection, table: str, row_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    if not values:
        return True
    params = _params(values)
    sets = ", ".join(f"{c} = {_placeholder(c)}" for c in values)
    params["_id"] = row_id
    result = await conn.execute(text(f"UPDATE {table} SET {sets} WHERE id = :_id"), params)
    return result.rowcount == 1


async def fetch_row(conn: AsyncConnection, table: str, row_id: uuid.UUID) -> dict | None:
    row = (
        (await conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id}))
        .mappings()
        .first()
    )
    return dict(row) if row else None
