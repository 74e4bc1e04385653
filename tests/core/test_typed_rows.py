"""Repositories return typed rows and hold the SQL (decision 0015, ARCHITECTURE.md).

A row handed on as `dict[str, Any]` (or an asyncpg Record) lets every caller index it by
string keys and lets a new column flow into responses unnoticed; SQL outside a repository
spreads the schema through services and pages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "leadflood"

# SQL may live in the repositories, the database plumbing of core (the unit of work, the
# queue, tracked executions, idempotency, migrations), billing's ledger fragment (composed
# into routing's and delivery's statements) and the development SMTP sink (a server of
# its own that stores what it catches).
SQL_HOMES = ("billing/ledger.py", "integrations/smtp/sink.py")
_SQL = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE \w|DELETE FROM|WITH \w+ AS)\b")
# A mapping or list of untyped rows, or the driver's own row type.
_UNTYPED = re.compile(r"^(list\[)?dict( \| None)?\]?$|dict\[str, Any\]|Record")


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(SRC)): ast.parse(path.read_text(), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def _sql_lines(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
        if (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and _SQL.match(first.value)
        ):
            lines.append(node.lineno)
    return lines


def _is_repository(name: str) -> bool:
    return name.endswith("repository.py") or name == "core/executions.py"


def test_sql_lives_in_repositories() -> None:
    stray = {
        name: lines
        for name, tree in _modules().items()
        if (lines := _sql_lines(tree))
        and not _is_repository(name)
        and not name.startswith("core/")
        and name not in SQL_HOMES
    }
    assert stray == {}, "move the SQL into the domain's repository.py"


def test_repositories_return_typed_rows() -> None:
    untyped = []
    for name, tree in _modules().items():
        if not _is_repository(name):
            continue
        for node in ast.walk(tree):
            public = isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and not (
                node.name.startswith("_")
            )
            if public and node.returns:
                returns = ast.unparse(node.returns)
                if _UNTYPED.search(returns):
                    untyped.append(f"{name}:{node.lineno} {node.name} -> {returns}")
            if isinstance(node, ast.Return) and node.value is not None:
                text = ast.unparse(node.value)
                if re.match(r"\[?dict\((r|row)\)", text):  # the row, untyped
                    untyped.append(f"{name}:{node.lineno} returns {text}")
    assert untyped == [], "return a dataclass (slots) or a pydantic model"


def test_the_checks_see_real_modules() -> None:
    """The scans see the code (a broken path would pass the checks above vacuously)."""
    modules = _modules()
    assert len([n for n in modules if _is_repository(n)]) >= 12
    assert _sql_lines(modules["routing/repository.py"])
    assert _UNTYPED.search("dict[str, Any] | None") and _UNTYPED.search("list[dict]")
    assert not _UNTYPED.search("dict[uuid.UUID, str]") and not _UNTYPED.search("Prospect")
    assert re.match(r"\[?dict\((r|row)\)", "[dict(r) for r in rows]")
