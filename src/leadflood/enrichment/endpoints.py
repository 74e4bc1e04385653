"""POST /v1/leads/{id}/enrich: queue an enrichment (one pending per lead)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.boundary import Call
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
