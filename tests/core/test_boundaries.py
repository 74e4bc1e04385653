"""The unit of work is opened at the boundaries only (decision 0015, ARCHITECTURE.md).

Services, repositories, pages and endpoints take the `Tx` they are given; a module that
opens one itself fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "leadflood"

# Where a unit of work may be opened: the request dependency, the job runner (with its
# tracked-job half) and the jobs' own modules (claim, call, record), authentication's
# one-statement lookup, the ingestion fast path (an ASGI boundary of its own, decision
# 0012), ping and post (they ask bidders between units, decision 0022), the buyer test (it posts to a partner, so it reads in a unit of its own and sends
# with nothing held, decision 0020), the CLI and the demo.
BOUNDARIES = {
    "core/uow.py",
    "core/boundary.py",
    "core/jobs.py",
    "core/executions.py",
    "auth/dependencies.py",
    "ingestion/endpoints.py",
    "auctions/endpoints.py",
    "delivery/buyer_test.py",
    "cli.py",
    "demo/run.py",
    "demo/outreach.py",
}
OPENERS = {"unit_of_work", "single_statements", "statements"}
# Only core/db.py and core/uow.py touch the pool itself.
POOL = {"pool_connection", "listen_connection", "_raw_pool"}
POOL_OWNERS = {"core/db.py", "core/uow.py", "core/jobs.py"}


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(SRC)): ast.parse(path.read_text(), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def _calls(tree: ast.Module) -> set[str]:
    """Names of the functions and methods a module calls."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


def _attributes(tree: ast.Module) -> set[str]:
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def _is_boundary(name: str) -> bool:
    return name in BOUNDARIES or name.endswith("/tasks.py")


def test_only_boundaries_open_a_unit_of_work() -> None:
    opening = {name for name, tree in _modules().items() if _calls(tree) & OPENERS}
    assert {name for name in opening if not _is_boundary(name)} == set(), (
        "open a unit of work at the boundary and pass the Tx down"
    )


def test_only_the_unit_of_work_touches_the_pool() -> None:
    touching = {
        name
        for name, tree in _modules().items()
        if _attributes(tree) & POOL and name not in POOL_OWNERS
    }
    assert touching == set()


def test_application_code_has_one_database_api() -> None:
    """SQLAlchemy stays for the models and Alembic; application SQL is asyncpg's."""
    users = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if isinstance(node, ast.Import):
                module = node.names[0].name
            if module and module.split(".")[0] == "sqlalchemy" and not name.startswith("models/"):
                users.add(name)
    assert users == set()


def test_the_rule_is_checked_on_real_modules() -> None:
    """The scan sees the code (a broken path would pass the checks above vacuously)."""
    modules = _modules()
    assert "billing/service.py" in modules and "core/uow.py" in modules
    assert _calls(modules["core/boundary.py"]) & OPENERS
