"""POST /v1/leads/{id}/enrich: queue an enrichment (one pending per lead); provider
accounts whose quota is used up."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.api import Items, Success
from leadflood.core.boundary import Call
from leadflood.enrichment import service
from leadflood.enrichment.repository import ProviderQuota
from leadflood.enrichment.service import start_enrichment
from leadflood.prospecting.responses import EnrichmentStarted

router = APIRouter(tags=["outreach"])


class EnrichIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Replace fields that already have a value (default: fill only empty ones).
    overwrite: bool = False
    provider: str | None = None  # default: LEADFLOOD_ENRICHMENT_PROVIDER


@router.post(
    "/v1/leads/{lead_id}/enrich",
    status_code=202,
    summary="Enrich a lead: find and verify the email, fill company facts",
    response_model=EnrichmentStarted,
)
async def enrich(
    lead_id: uuid.UUID,
    body: EnrichIn | None = None,
    call: Call = call_as(Permission.outreach_write),
) -> JSONResponse:
    settings = call.settings
    body = body or EnrichIn()
    return await call.idempotent(
        start_enrichment(
            call.tx,
            settings,
            call.principal,
            lead_id,
            overwrite=body.overwrite,
            provider=body.provider,
        ),
    )


@router.get(
    "/v1/providers/quotas",
    summary="Provider accounts whose quota is used up (not called until retry_at)",
    response_model=Items[ProviderQuota],
)
async def provider_quotas(call: Call = call_as(Permission.outreach_read)) -> dict:
    return {"items": await service.provider_quotas(call.tx)}


@router.delete(
    "/v1/providers/quotas/{provider}",
    summary="Call the provider again now (after raising the plan)",
    response_model=Success,
)
async def clear_quota(provider: str, call: Call = call_as(Permission.icps_write)) -> dict:
    await service.clear_quota(call.tx, call.principal, provider)
    return {"success": True}
