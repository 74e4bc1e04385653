"""POST /v1/leads/{id}/enrich: queue an enrichment (one pending per lead)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from leadflood.auth.dependencies import requires
from leadflood.auth.policy import Permission
from leadflood.core.boundary import TX
from leadflood.core.idempotency import idempotent
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
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
    request: Request,
    body: EnrichIn | None = None,
    tx: Tx = TX,
    principal: Principal = Depends(requires(Permission.outreach_write)),
) -> JSONResponse:
    settings = runtime_of(request).settings
    body = body or EnrichIn()
    return await idempotent(
        request,
        tx,
        principal.user_id,
        202,
        lambda: start_enrichment(
            tx, settings, principal, lead_id, overwrite=body.overwrite, provider=body.provider
        ),
        EnrichmentStarted,
    )
