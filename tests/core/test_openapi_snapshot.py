"""The OpenAPI document is compared with the committed docs/openapi.json: an API change
is always deliberate (accept one with `python3 tools/dev.py openapi`)."""

from __future__ import annotations

import json
from pathlib import Path

from leadflood.app import create_app
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Settings

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def current() -> str:
    app = create_app(build_runtime(Settings(database_url="postgresql://unused/unused")))
    document = app.openapi()
    document["info"].pop("version", None)  # a release bumps it; the API is the same
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def write() -> None:
    SNAPSHOT.write_text(current())


def test_the_api_is_the_committed_one() -> None:
    committed = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    now = current()
    if committed != now:
        changed = sorted(
            set(json.loads(now)["paths"]) ^ set(json.loads(committed or "{}").get("paths", {}))
        )
        raise AssertionError(
            "the OpenAPI document changed; if deliberate, run `python3 tools/dev.py openapi` "
            f"and commit docs/openapi.json (paths added or removed: {changed or 'none'})"
        )
