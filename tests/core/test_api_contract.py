"""Every /v1 and /api route declares what it returns (an allow-list of fields), in one
casing; the OpenAPI document describes each response."""

from __future__ import annotations

import re

from leadflood.admin.resource_rows import select_list
from leadflood.admin.resources import RESOURCES
from leadflood.admin.responses import RESOURCE_MODELS
from leadflood.app import create_app
from leadflood.core.api import shaped
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Settings
from tests.routes import api_routes

_APP = create_app(build_runtime(Settings(database_url="postgresql://unused/unused")))
_API = [(path, r) for path, r in api_routes(_APP) if path.startswith(("/v1", "/api"))]


def test_every_api_route_declares_a_response_model() -> None:
    assert len(_API) > 100, "the scan sees the routes"
    missing = [
        f"{sorted(r.methods)} {path}"
        for path, r in _API
        if r.response_model is None and r.status_code != 204
    ]
    assert missing == []


def test_the_openapi_document_describes_every_response() -> None:
    schema = _APP.openapi()
    undocumented = []
    for path, operations in schema["paths"].items():
        if not path.startswith(("/v1", "/api")):
            continue
        for method, operation in operations.items():
            ok = [code for code in operation["responses"] if code.startswith("2")]
            body = operation["responses"][ok[0]].get("content", {}).get("application/json", {})
            if ok[0] != "204" and "$ref" not in str(body.get("schema", {})):
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []


def test_response_fields_are_snake_case_but_for_the_deprecated_aliases() -> None:
    schema = _APP.openapi()
    camel = set()
    for name, component in schema["components"]["schemas"].items():
        for field, spec in component.get("properties", {}).items():
            if re.search(r"[A-Z]", field) and not spec.get("deprecated"):
                camel.add(f"{name}.{field}")
    assert camel == set()


def test_a_column_nobody_named_never_leaves_the_server() -> None:
    """A row read with SELECT * carries whatever the table has today or gets tomorrow."""
    row = {
        "id": "0b0e8a3e-6f53-4d8a-9b8e-2b0f0c7f6a11",
        "name": "Acme",
        "api_key_hash": "$argon2id$secret",
        "webhook_secret": "v1:cipher",
        "a_column_added_later": "secret",
        "created_at": "2026-12-01T00:00:00Z",
        "updated_at": "2026-12-01T00:00:00Z",
    }
    for model in (RESOURCE_MODELS["buyers"], RESOURCE_MODELS["sources"]):
        body = shaped(model, row)
        assert body["name"] == "Acme"
        assert not {"api_key_hash", "webhook_secret", "a_column_added_later"} & set(body)


def test_a_resource_row_reads_no_secret_and_only_named_columns() -> None:
    """The repository reads each configuration row by its allow-list, not SELECT *: a
    secret never reaches Python memory through a list or a detail read."""
    for resource in RESOURCES.values():
        selected = select_list(resource)
        assert "*" not in selected
        parts = re.split(r", (?![^(]*\))", selected)  # commas outside parentheses
        read = {part.split(" AS ")[-1].strip() for part in parts}
        assert not {"api_key_hash", "webhook_secret"} & read, resource.name
        assert read == set(RESOURCE_MODELS[resource.name].model_fields), resource.name
    assert "(coalesce(webhook_secret, '') <> '') AS webhook_secret_set" in select_list(
        RESOURCES["buyers"]
    )


def test_no_schema_promises_an_offset_the_api_does_not_send() -> None:
    """JSON Schema's "time" format is RFC 3339's full-time (with an offset); a mailbox's
    send window is a wall-clock time in its own timezone ("23:59:00"), so a client that
    validated against "time" rejected every mailbox the API returned."""
    schema = _APP.openapi()
    promised = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        for field, spec in component.get("properties", {}).items()
        if spec.get("format") == "time"
        or any(option.get("format") == "time" for option in spec.get("anyOf", []))
    ]
    assert promised == []
    window = schema["components"]["schemas"]["Mailbox"]["properties"]["window_end"]
    assert re.fullmatch(window["pattern"], "23:59:00") and re.fullmatch(window["pattern"], "09:30")
