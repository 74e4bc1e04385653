"""Create, change and remove distribution configuration, each change audited."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pydantic import BaseModel

from leadflood.admin import repository as repo
from leadflood.admin.resource_rows import SECRET_FLAGS
from leadflood.admin.resources import WRITE_ONLY, Resource
from leadflood.catalog import repository as catalog_repo
from leadflood.catalog import service as catalog
from leadflood.core.api import ApiModel
from leadflood.core.db import constraint_violation
from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.principal import Principal
from leadflood.core.security import encrypt_secret
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx
from leadflood.delivery.safety import refuse_when_saved, vet
from leadflood.ingestion.canonical import canonical_host, canonical_path, canonical_source_key
from leadflood.routing.service import capacity_may_have_opened

MAX_IMPORT_ROWS = 50_000


def _stored(row: dict[str, Any], column: str) -> Any:
    """A column's stored value as the row shows it; a write-only secret as "[set]"."""
    if column in SECRET_FLAGS:
        return "[set]" if row.get(SECRET_FLAGS[column]) else None
    return row.get(column)


def _changes(row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the stored row; a new secret always does (it is stored
    encrypted, so it cannot be compared)."""
    return {
        k: v
        for k, v in values.items()
        if (k in SECRET_FLAGS and v is not None) or _stored(row, k) != v
    }


def _redacted(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[set]" if k in WRITE_ONLY and v else v) for k, v in values.items()}


@asynccontextmanager
async def _constraints(resource: Resource) -> AsyncIterator[None]:
    """Database constraint violations become stable API errors."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        kind, message, constraint = constraint_violation(exc)
        details = {"entity": resource.entity, "constraint": constraint}
        if kind == "unique":
            raise Conflict("already_exists", message, details=details) from None
        if kind == "foreign_key":
            if "is still referenced" in message:
                raise Conflict(
                    "in_use", f"{resource.entity} is in use; deactivate it instead", details=details
                ) from None
            raise BadRequest("unknown_reference", message, details=details) from None
        raise BadRequest("invalid_value", message, details=details) from None


def _canonical_source_fields(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("source_key"):
        values["source_key"] = canonical_source_key(values["source_key"])
    if values.get("hostname"):
        values["hostname"] = canonical_host(values["hostname"])
    if values.get("path_prefix"):
        values["path_prefix"] = canonical_path(values["path_prefix"])
    return values


async def get(conn: Tx, resource: Resource, row_id: uuid.UUID) -> ApiModel:
    row = await repo.get_row(conn, resource, row_id)
    if row is None:
        raise NotFound(f"{resource.entity}_not_found", f"no {resource.entity} with this id")
    return row


async def list_(
    conn: Tx,
    resource: Resource,
    filters: dict[str, Any],
    *,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ApiModel], int]:
    unknown = set(filters) - set(resource.filters)
    if unknown:
        raise BadRequest("unknown_filter", f"cannot filter {resource.name} by {sorted(unknown)}")
    return await repo.list_rows(conn, resource, filters, limit=limit, offset=offset)


async def check_destination(resource: Resource, body: BaseModel, settings: Settings) -> None:
    """A webhook URL that delivery would refuse (private, loopback or metadata address,
    malformed) is refused when saved, with delivery's own code. Call before the
    transaction opens: resolving the host is a network call."""
    url = getattr(body, "webhook_url", None) if resource.table == "buyers" else None
    if not url or settings.private_networks_allowed:
        return
    await refuse_when_saved(vet(url, allow_private=False), "webhook_url")


async def create(
    conn: Tx,
    principal: Principal | None,
    resource: Resource,
    body: BaseModel,
    secret_key: str,
) -> tuple[ApiModel, dict[str, Any]]:
    """Returns (row, one-time extras such as a new source API key)."""
    values = {k: v for k, v in body.model_dump().items() if v is not None}
    extras: dict[str, Any] = {}
    async with _constraints(resource), conn.savepoint():
        if resource.table == "sources":
            row_id, api_key = await catalog.create_source(conn, **values)
            if api_key:
                extras["api_key"] = api_key
        elif resource.table == "buyers":
            row_id = await catalog.create_buyer(conn, secret_key=secret_key, **values)
        else:
            row_id = await catalog_repo.insert_row(conn, resource.table, values)
    await conn.audit(principal, "create", resource.entity, row_id, _redacted(values))
    await _capacity_changed(conn, resource)
    return await get(conn, resource, row_id), extras


async def update(
    conn: Tx,
    principal: Principal | None,
    resource: Resource,
    row_id: uuid.UUID,
    body: BaseModel,
    secret_key: str,
) -> ApiModel:
    values = body.model_dump(exclude_unset=True)
    cleared = sorted(k for k, v in values.items() if v is None and k not in resource.nullable)
    if cleared:
        raise BadRequest(
            "invalid_value", f"{', '.join(cleared)} cannot be null", details={"fields": cleared}
        )
    before = (await get(conn, resource, row_id)).model_dump()
    if resource.table == "sources":
        values = _canonical_source_fields(values)
    if resource.table == "buyers":
        for secret in ("webhook_secret", "integration_secret"):
            if values.get(secret):
                values[secret] = encrypt_secret(values[secret], secret_key)
        if values.get("status") == "active" and before.get("status") != "active":
            # An operator resumes a buyer: its failure count starts over.
            values.update(consecutive_failures=0, paused_reason=None, paused_at=None)
    changed = _changes(before, values)
    if changed:
        async with _constraints(resource), conn.savepoint():
            await catalog_repo.update_row(conn, resource.table, row_id, changed)
        await conn.audit(
            principal,
            "update",
            resource.entity,
            row_id,
            {
                k: {"from": _stored(before, k), "to": _redacted({k: v})[k]}
                for k, v in changed.items()
            },
        )
        await _capacity_changed(conn, resource)
    return await get(conn, resource, row_id)


# Changes that can give an unrouted lead a buyer: retry those leads now (issue 14).
_CAPACITY_TABLES = frozenset(
    {"buyers", "buyer_offers", "buyer_service_areas", "offer_exclusivities", "offers"}
)


async def _capacity_changed(conn: Tx, resource: Resource) -> None:
    if resource.table in _CAPACITY_TABLES:
        await capacity_may_have_opened(conn)


async def delete(
    conn: Tx, principal: Principal | None, resource: Resource, row_id: uuid.UUID
) -> None:
    before = await get(conn, resource, row_id)
    async with _constraints(resource), conn.savepoint():
        await repo.delete_row(conn, resource.table, row_id)
    await conn.audit(principal, "delete", resource.entity, row_id, before.model_dump())


async def rotate_source_key(conn: Tx, principal: Principal | None, source_id: uuid.UUID) -> str:
    from leadflood.admin.resources import RESOURCES

    await get(conn, RESOURCES["sources"], source_id)
    api_key = await catalog.rotate_source_api_key(conn, source_id)
    await conn.audit(principal, "rotate_api_key", "source", source_id, {"api_key": "[rotated]"})
    return api_key


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells); a line the csv module cannot read is a 400 naming it."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BadRequest(
                "invalid_csv",
                f"line {reader.line_num} could not be read",
                details={"lines": [{"line": reader.line_num, "message": str(exc)}]},
            ) from None
        yield reader.line_num, record


def parse_service_area_csv(text: str) -> list[tuple[str | None, str | None]]:
    """Rows of postal_code[,city]; a header row naming the columns is optional.

    Any bad line rejects the whole file, with every bad line listed.
    """
    # newline=None: CR-only (old Mac, some spreadsheet exports) and CRLF files read as LF.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=None))
    rows: list[tuple[str | None, str | None]] = []
    errors: list[dict[str, Any]] = []
    columns: tuple[str, ...] = ("postal_code", "city")
    for line_no, record in _records(reader):
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        if line_no == 1 and {c.lower() for c in cells} & {"postal_code", "zip", "city"}:
            columns = tuple("postal_code" if c.lower() == "zip" else c.lower() for c in cells)
            if set(columns) - {"postal_code", "city"}:
                raise BadRequest(
                    "invalid_csv", "header may name only postal_code (or zip) and city"
                )
            continue
        if len(cells) > len(columns):
            errors.append({"line": line_no, "message": f"expected at most {len(columns)} columns"})
            continue
        named = dict(zip(columns, cells, strict=False))
        postal, city = named.get("postal_code") or None, named.get("city") or None
        if postal is None and city is None:
            errors.append({"line": line_no, "message": "needs a postal code or a city"})
        elif postal is not None and (
            len(postal) > 16 or not postal.replace("-", "").replace(" ", "").isalnum()
        ):
            errors.append({"line": line_no, "message": f"not a postal code: {postal!r}"})
        else:
            rows.append((postal.upper() if postal else None, city))
        if len(rows) > MAX_IMPORT_ROWS:
            raise BadRequest("invalid_csv", f"at most {MAX_IMPORT_ROWS} rows per import")
    if errors:
        raise BadRequest(
            "invalid_csv",
            f"{len(errors)} line(s) could not be read",
            details={"lines": errors[:100]},
        )
    if not rows:
        raise BadRequest("invalid_csv", "the file has no service areas")
    return rows


async def import_service_areas(
    conn: Tx,
    principal: Principal | None,
    buyer_id: uuid.UUID,
    market_id: uuid.UUID,
    text: str,
    *,
    replace: bool = False,
) -> dict[str, int]:
    """Bulk-add (or with `replace`, set) a buyer's service areas in one market."""
    from leadflood.admin.resources import RESOURCES

    rows = parse_service_area_csv(text)
    await get(conn, RESOURCES["buyers"], buyer_id)
    await get(conn, RESOURCES["markets"], market_id)
    removed = await repo.delete_service_areas(conn, buyer_id, market_id) if replace else 0
    existing = set() if replace else await repo.existing_postal_codes(conn, buyer_id, market_id)
    new: list[tuple[str | None, str | None]] = []
    for row in rows:
        if row not in existing:
            existing.add(row)
            new.append(row)
    if new:
        await repo.insert_service_areas(conn, buyer_id, market_id, new)
    result = {
        "read": len(rows),
        "inserted": len(new),
        "skipped": len(rows) - len(new),
        "removed": removed,
    }
    await conn.audit(
        principal,
        "import_service_areas",
        "buyer",
        buyer_id,
        {"market_id": str(market_id), **result},
    )
    return result


async def reference_options(
    conn: Tx, references: dict[str, tuple[str, str]], names: list[str]
) -> dict[str, list[repo.Option]]:
    """Choices for reference fields (id + a readable label), for forms and filters."""
    options = {}
    for name in names:
        table, label = references[name]
        options[name] = await repo.option_rows(conn, table, label)
    return options
