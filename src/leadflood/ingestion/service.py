"""Ingest a posted lead: classify, authenticate, make idempotent, normalize, persist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from leadflood.core.errors import NotFound, Unauthorized
from leadflood.core.security import verify_api_key
from leadflood.core.uow import Conn
from leadflood.ingestion import repository as repo
from leadflood.ingestion.classify import authenticate, classify
from leadflood.ingestion.idempotency import client_key, derive_key
from leadflood.ingestion.normalize import normalize_email, normalize_phone
from leadflood.ingestion.payload import LeadPayload, parse_body
from leadflood.ingestion.repository import SourceBinding
from leadflood.ingestion.source_cache import SourceCache


@dataclass(frozen=True)
class IngestRequest:
    body: bytes
    content_type: str | None
    host: str | None
    path: str
    idempotency_header: str | None
    api_key: str | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IngestResult:
    lead: repo.AcceptedLead
    created: bool


@dataclass(frozen=True)
class PreparedLead:
    """A posted lead classified, authenticated and normalized: the row to insert."""

    binding: SourceBinding
    values: dict[str, Any]


async def ingest_lead(
    conn: asyncpg.Connection, sources: SourceCache, request: IngestRequest
) -> IngestResult:
    prepared = await prepare_lead(conn, sources, request)
    return await store_lead(conn, prepared)


async def prepare_lead(
    conn: Conn,
    sources: SourceCache,
    request: IngestRequest,
    payload: LeadPayload | None = None,
) -> PreparedLead:
    """Everything before the insert (the ping-post's post shares it)."""
    if payload is None:
        payload = parse_body(request.body, request.content_type)
    binding = await source_of(conn, sources, request, payload)

    fields = payload.fields
    email = normalize_email(fields["email"])
    phone = normalize_phone(fields["phone"], binding.country)
    key = client_key(payload.idempotency_key, request.idempotency_header)
    derived = key is None
    if key is None:
        key = derive_key(
            source_id=str(binding.source_id),
            normalized_email=email,
            normalized_phone=phone,
            first_name=fields["first_name"],
            last_name=fields["last_name"],
            postal_code=fields["postal_code"],
        )

    values = {
        "source_id": binding.source_id,
        "offer_id": binding.offer_id,
        "market_id": binding.market_id,
        "vertical_id": binding.vertical_id,
        "idempotency_key": key,
        "idempotency_key_derived": derived,
        **fields,
        "normalized_email": email,
        "normalized_phone": phone,
        "consent": payload.consent,
        "ip": request.ip,
        "user_agent": (request.user_agent or None) and request.user_agent[:512],
        # A JSON body is stored verbatim (no re-encoding); a form or XML as its fields.
        "raw_payload": payload.raw_text,
    }
    return PreparedLead(binding, values)


async def source_of(
    conn: Conn, sources: SourceCache, request: IngestRequest, payload: LeadPayload
) -> SourceBinding:
    """The one source a posted body belongs to, its API key checked (§3; pings too)."""
    binding = await classify(
        conn,
        sources,
        source_id=payload.source_id,
        source_key=payload.source_key,
        host=request.host,
        path=request.path,
    )
    authenticate(binding, request.api_key)
    return binding


async def store_lead(conn: Conn, prepared: PreparedLead) -> IngestResult:
    """Insert it with its validation job; a replay answers with the lead it repeats."""
    inserted = await repo.insert_lead_and_enqueue(conn, prepared.values)
    if inserted is not None:
        return IngestResult(inserted, created=True)
    # The unique (source_id, idempotency_key) held: a replay (or a concurrent twin).
    existing = await repo.lead_by_idempotency(
        conn, prepared.binding.source_id, prepared.values["idempotency_key"]
    )
    assert existing is not None, "conflicting lead must be visible after ON CONFLICT"
    return IngestResult(existing, created=False)


async def get_lead_for_source(
    conn: asyncpg.Connection, lead_id: uuid.UUID, presented_key: str | None
) -> repo.AcceptedLead:
    lead = await repo.lead_by_id(conn, lead_id)
    if lead is None:
        raise NotFound("lead_not_found", "no lead with this id")
    key_hash = await repo.source_key_hash(conn, lead.source_id)
    if key_hash is not None and (not presented_key or not verify_api_key(presented_key, key_hash)):
        raise Unauthorized("unauthorized_source", "missing or invalid source API key")
    return lead
