"""Tests' ad-hoc SQL with named parameters (`:name`), run on a unit of work or a bare
asyncpg connection. Application code writes asyncpg's `$n` directly; this keeps the
tests' setup and assertions readable."""

from __future__ import annotations

import re
from typing import Any

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Row:
    """A record read by name (`row.raw`), key (`row["raw"]`), position or unpacking."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: Any) -> Any:
        return self._record[key]

    def __iter__(self):
        return iter(self._record.values())

    def __len__(self) -> int:
        return len(self._record)

    def keys(self):
        return self._record.keys()


class Result:
    def __init__(self, rows: list[Any], status: str = "") -> None:
        self._rows = [r if isinstance(r, dict) else Row(r) for r in rows]
        self.rowcount = int(status.split()[-1]) if status and status.split()[-1].isdigit() else -1

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        assert len(self._rows) == 1, f"expected one row, got {len(self._rows)}"
        return self._rows[0][0]

    def mappings(self) -> Result:
        return Result([dict(r._record) if isinstance(r, Row) else r for r in self._rows])

    def one(self) -> Any:
        assert len(self._rows) == 1, f"expected one row, got {len(self._rows)}"
        return self._rows[0]

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return list(self._rows)

    def scalars(self) -> Result:
        return Result([(r[0],) for r in self._rows])

    def __iter__(self):
        return iter(self._rows)


async def run(conn: Any, sql: str, params: dict[str, Any] | None = None) -> Result:
    params = params or {}
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            return match.group(0)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    query = _NAMED.sub(number, sql)
    args = [params[name] for name in order]
    if re.match(r"\s*(SELECT|WITH|VALUES)\b", query, re.I) or re.search(
        r"\bRETURNING\b", query, re.I
    ):
        return Result(await conn.fetch(query, *args))
    return Result([], await conn.execute(query, *args))
