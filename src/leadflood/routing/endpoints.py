"""Routing decision trace: GET /api/admin/leads/{lead_id}/routing."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request

from leadflood.core.admin_auth import require_admin
from leadflood.core.errors import NotFound
from leadflood.routing.service import RoutingService

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/api/admin/leads/{lead_id}/routing")
async def routing_trace(lead_id: str, request: Request) -> dict:
    """Every routing decision for the lead, with every buyer considered and why."""
    try:
        parsed = uuid.UUID(lead_id)
    except ValueError:
        raise NotFound("lead_not_found", "no lead with this id") from None
    rows = await RoutingService(request.app.state.runtime.db).trace(parsed)
    return {
        "lead_id": str(parsed),
        "decisions": [
            {
                "id": str(r["id"]),
                "outcome": r["outcome"],
                "buyer_id": str(r["buyer_id"]) if r["buyer_id"] else None,
                "strategy": r["strategy"],
                "decided_at": r["decided_at"].isoformat(),
                "duration_ms": r["duration_ms"],
                "candidates": r["candidates"],
            }
            for r in rows
        ],
    }
