"""Enrich an outreach lead: fill what is empty (or, when asked, overwrite) and record
exactly what changed. One pending/running enrichment per lead."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from leadflood.core import circuit
from leadflood.core.errors import AppError, NotFound
from leadflood.core.executions import RetryPolicy, TerminalJobError, create_execution
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.enrichment import repository as repo
from leadflood.enrichment.enrichers import check_available, enricher_for
from leadflood.ingestion.normalize import normalize_email

ENRICH_JOB = "lead.enrich"
# OUTREACH.md: 3 attempts, waiting 5 s then 15 s (45 s would follow a third failure).
ENRICH_RETRY = RetryPolicy(
    max_attempts=3, delays=(timedelta(seconds=5), timedelta(seconds=15), timedelta(seconds=45))
)
ENRICHABLE = (
    "email",
    "email_status",
    "title",
    "phone",
    "linkedin_url",
    "company",
    "company_size",
    "industry",
    "country",
)


def _empty(field: str, value: Any) -> bool:
    return value in (None, "") or (field == "email_status" and value == "unknown")


async def start_enrichment(
    runtime: Runtime,
    principal: Principal | None,
    lead_id: uuid.UUID,
    *,
    overwrite: bool = False,
    provider: str | None = None,
) -> dict[str, Any]:
    provider = provider or runtime.settings.enrichment_provider
    check_available(provider, runtime.settings)
    async with unit_of_work(runtime.db) as conn:
        if await repo.lock_lead(conn, lead_id) is None:
            raise NotFound("lead_not_found", "no lead with this id")
        run_id = await repo.insert_run(conn, lead_id, provider, overwrite)
        job_id, created = await create_execution(
            conn,
            ENRICH_JOB,
            {"enrichment_run_id": str(run_id), "lead_id": str(lead_id)},
            max_attempts=ENRICH_RETRY.max_attempts,
            dedupe_key=f"{ENRICH_JOB}:{lead_id}",
            lead_id=lead_id,
        )
        if not created:
            await repo.delete_run(conn, run_id)  # the pending enrichment stands
            return {"jobId": job_id, "deduplicated": True}
        await repo.set_run_job(conn, run_id, job_id)
    return {"jobId": job_id, "enrichmentRunId": run_id, "deduplicated": False}


async def run_enrichment(runtime: Runtime, execution: dict[str, Any]) -> dict[str, Any]:
    run_id = uuid.UUID(execution["payload"]["enrichment_run_id"])
    lead_id = execution["lead_id"]
    async with single_statements(runtime.db) as conn:
        run = await repo.get_run(conn, run_id)
        lead = await repo.lock_lead(conn, lead_id)
        if run is None or lead is None:
            raise TerminalJobError("lead_not_found", "the lead was deleted")
        await repo.mark_running(conn, run_id, lead_id)
    try:
        enricher = enricher_for(run["provider"], runtime.settings)
    except AppError as exc:
        raise PermanentProviderError(run["provider"], exc.code, exc.message) from None
    breaker = circuit.breaker(run["provider"])
    breaker.before_call()
    try:
        result = await enricher.enrich(lead)
        breaker.record_success()
    except TransientProviderError:
        breaker.record_failure()
        raise
    except PermanentProviderError as exc:
        if exc.code != "opted_out":
            raise
        async with unit_of_work(runtime.db) as conn:
            await repo.mark_opted_out(conn, lead_id)
            await repo.finish_run(conn, run_id, "opted_out", {})
        return {"lead_id": str(lead_id), "outcome": "opted_out", "changed": []}
    finally:
        await enricher.close()

    async with unit_of_work(runtime.db) as conn:
        current = await repo.lock_lead(conn, lead_id)
        assert current is not None
        changes: dict[str, dict[str, Any]] = {}
        values: dict[str, Any] = {}
        for name in ENRICHABLE:
            new = result.fields.get(name)
            if new in (None, "") or new == current.get(name):
                continue
            if not (run["overwrite"] or _empty(name, current.get(name))):
                continue
            if name == "email":
                normalized = normalize_email(new)
                owner = await repo.email_owner(conn, normalized) if normalized else None
                if owner is not None and owner != lead_id:
                    changes["email_conflict"] = {"from": None, "to": str(owner)}
                    continue
                values["normalized_email"] = normalized
            values[name] = new
            changes[name] = {"from": current.get(name), "to": new}
        data = {**(current.get("enrichment_data") or {}), run["provider"]: result.raw}
        await repo.apply(conn, lead_id, values, data)
        await repo.finish_run(conn, run_id, result.outcome, changes)
    return {"lead_id": str(lead_id), "outcome": result.outcome, "changed": sorted(values)}


async def enrichment_failed(runtime: Runtime, execution: dict[str, Any], error: str) -> None:
    async with single_statements(runtime.db) as conn:
        await repo.fail_run(
            conn, uuid.UUID(execution["payload"]["enrichment_run_id"]), execution["lead_id"], error
        )


async def reopen_enrichment(conn: asyncpg.Connection, execution: dict[str, Any]) -> None:
    await repo.reopen_run(conn, uuid.UUID(execution["payload"]["enrichment_run_id"]))
