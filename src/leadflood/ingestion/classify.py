"""Resolve a posted lead to exactly one source (DISTRIBUTION.md §3, Classification)."""

from __future__ import annotations

import uuid

import asyncpg

from leadflood.core.errors import BadRequest, Conflict, Unauthorized
from leadflood.core.security import verify_api_key
from leadflood.ingestion import repository as repo
from leadflood.ingestion.canonical import (
    canonical_host,
    canonical_path,
    canonical_source_key,
    prefix_matches,
)
from leadflood.ingestion.repository import SourceBinding
from leadflood.ingestion.source_cache import SourceCache


async def classify(
    conn: asyncpg.Connection,
    cache: SourceCache,
    *,
    source_id: str | None,
    source_key: str | None,
    host: str | None,
    path: str,
) -> SourceBinding:
    """First applicable rule wins: source_id → source_key → Host + path mapping."""
    if source_id is not None:
        try:
            parsed = uuid.UUID(source_id.strip())
        except ValueError:
            raise BadRequest("invalid_source", "source_id is not a valid id") from None
        binding = await cache.get(("id", parsed), lambda: repo.source_by_id(conn, parsed))
        if binding is None:
            raise BadRequest("invalid_source", "source_id does not name an active source")
        return binding

    if source_key is not None:
        key = canonical_source_key(source_key)
        binding = (
            await cache.get(("key", key), lambda: repo.source_by_key(conn, key)) if key else None
        )
        if binding is None:
            raise BadRequest("invalid_source_key", "source_key does not name an active source")
        return binding

    return await _by_http_mapping(conn, cache, host, path)


async def _by_http_mapping(
    conn: asyncpg.Connection, cache: SourceCache, host: str | None, path: str
) -> SourceBinding:
    canonical = canonical_host(host) if host else ""
    request_path = canonical_path(path)
    details = {"host": canonical, "path": request_path}
    if not canonical:
        raise BadRequest("unmapped_source", "no source matches this request", details=details)
    candidates = [
        b
        for b in await cache.get(("host", canonical), lambda: repo.sources_by_host(conn, canonical))
        or []
        if b.path_prefix is not None and prefix_matches(canonical_path(b.path_prefix), request_path)
    ]
    if not candidates:
        raise BadRequest("unmapped_source", "no source matches this request", details=details)
    longest = max(len(canonical_path(b.path_prefix or "/")) for b in candidates)
    best = [b for b in candidates if len(canonical_path(b.path_prefix or "/")) == longest]
    if len(best) > 1:
        raise Conflict(
            "ambiguous_source_mapping",
            "more than one source maps to this host and path",
            details={**details, "source_ids": sorted(str(b.source_id) for b in best)},
        )
    return best[0]


def authenticate(binding: SourceBinding, presented_key: str | None) -> None:
    """A source with an API key requires it; a missing or wrong key is 401."""
    if binding.api_key_hash is None:
        return
    if not presented_key or not verify_api_key(presented_key, binding.api_key_hash):
        raise Unauthorized("unauthorized_source", "missing or invalid source API key")
