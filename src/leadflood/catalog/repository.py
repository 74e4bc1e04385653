"""SQL for the distribution configuration: markets, offers, sources, buyers…"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from leadflood.core.uow import Conn

JSON_COLUMNS = {"rules", "config", "schedule"}


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
