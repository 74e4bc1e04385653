"""Enrich an outreach lead: fill what is empty (or, when asked, overwrite) and record
exactly what changed. One pending/running enrichment per lead."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog

from leadflood.core import circuit
from leadflood.core.errors import AppError, Conflict, NotFound
from leadflood.core.executions import Execution, TerminalJobError, create_execution
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.retry import RetryPolicy
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx
from leadflood.enrichment import repository as repo
from leadflood.enrichment.enrichers import check_available, enricher_for
from leadflood.ingestion.normalize import normalize_email
from leadflood.integrations.apollo.client import BULK_MAX
from leadflood.prospecting.repository import Prospect

log = structlog.get_logger("leadflood.enrichment")

ENRICH_JOB = "lead.enrich"
# OUTREACH.md: 3 attempts, waiting 5 s then 15 s (45 s would follow a third failure).
ENRICH_RETRY = RetryPolicy(
    max_attempts=3, delays=(timedelta(seconds=5), timedelta(seconds=15), timedelta(seconds=45))
)
ENRICHABLE = (
    "email",
    "email_status",
    # A search may bring only a first name (Apollo obfuscates the last one).
    "first_name",
    "last_name",
    "title",
    "seniority",
    "phone",
    "linkedin_url",
    "company",
    "company_domain",
    "company_size",
    "industry",
    "city",
    "state",
    "country",
)


def _empty(field: str, value: Any) -> bool:
    return value in (None, "") or (field == "email_status" and value == "unknown")


async def start_enrichment(
    tx: Tx,
    settings: Settings,
    principal: Principal | None,
    lead_id: uuid.UUID,
    *,
    overwrite: bool = False,
    provider: str | None = None,
) -> dict[str, Any]:
    provider = provider or settings.enrichment_provider
    check_available(provider, settings)
    await check_quota(tx, provider)
    if await repo.lock_lead(tx, lead_id) is None:
        raise NotFound("lead_not_found", "no lead with this id")
    run_id = await repo.insert_run(tx, lead_id, provider, overwrite)
    job_id, created = await create_execution(
        tx,
        ENRICH_JOB,
        {"enrichment_run_id": str(run_id), "lead_id": str(lead_id)},
        max_attempts=ENRICH_RETRY.max_attempts,
        dedupe_key=f"{ENRICH_JOB}:{lead_id}",
        lead_id=lead_id,
    )
    if not created:
        await repo.delete_run(tx, run_id)  # the pending enrichment stands
        return {"job_id": job_id, "deduplicated": True}
    await repo.set_run_job(tx, run_id, job_id)
    return {"job_id": job_id, "enrichment_run_id": run_id, "deduplicated": False}


# A used-up plan quota is probed again after this long (Hunter's resets monthly, on the
# account's billing day, which the API does not tell).
QUOTA_REPROBE = timedelta(hours=1)


async def check_quota(tx: Tx, provider: str) -> None:
    """A provider whose account quota is used up is not called: one account-level
    message instead of one failure per lead."""
    quota = await repo.quota_exhausted(tx, provider)
    if quota is not None:
        raise Conflict(
            "provider_quota_exhausted",
            f"{provider}: the account's quota is used up ({quota.message}); "
            f"tried again after {quota.retry_at:%Y-%m-%d %H:%M} UTC",
            details={"provider": provider, "retry_at": quota.retry_at.isoformat()},
        )


async def record_quota_exhausted(tx: Tx, provider: str, message: str) -> None:
    await repo.mark_quota_exhausted(tx, provider, QUOTA_REPROBE, message)
    log.warning("provider_quota_exhausted", provider=provider)


async def provider_quotas(tx: Tx) -> list[repo.ProviderQuota]:
    return await repo.list_quotas(tx)


async def clear_quota(tx: Tx, principal: Principal | None, provider: str) -> None:
    """The operator raised the plan: call the provider again now."""
    await repo.clear_quota(tx, provider)
    await tx.audit(principal, "clear_quota", "provider", None, {"provider": provider})


BULK_JOB = "lead.enrich_bulk"


async def start_bulk_enrichment(
    tx: Tx, settings: Settings, lead_ids: list[uuid.UUID], provider: str = "apollo"
) -> int:
    """Apollo's Bulk People Enrichment for many leads: one tracked job per ten (one call
    each), one enrichment run per lead, linked to its job. Leads with an enrichment
    already pending are left to it."""
    check_available(provider, settings)
    await check_quota(tx, provider)
    started = 0
    pending = await repo.pending_enrichments(tx, lead_ids)
    todo = [lead_id for lead_id in dict.fromkeys(lead_ids) if lead_id not in pending]
    for first in range(0, len(todo), BULK_MAX):
        runs = [
            (await repo.insert_run(tx, lead_id, provider, False), lead_id)
            for lead_id in todo[first : first + BULK_MAX]
        ]
        job_id, _ = await create_execution(
            tx,
            BULK_JOB,
            {"runs": [[str(run_id), str(lead_id)] for run_id, lead_id in runs]},
            max_attempts=ENRICH_RETRY.max_attempts,
        )
        for run_id, _ in runs:
            await repo.set_run_job(tx, run_id, job_id)
        started += len(runs)
    return started


def bulk_runs(execution: Execution) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return [(uuid.UUID(r), uuid.UUID(lead)) for r, lead in execution.payload["runs"]]


async def begin_runs(
    tx: Tx, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> list[tuple[repo.Run, Prospect]]:
    """The runs of a bulk attempt whose leads still exist, marked running."""
    begun = []
    for run_id, lead_id in pairs:
        try:
            begun.append(await begin_run(tx, run_id, lead_id))
        except TerminalJobError:
            continue  # the lead was deleted meanwhile: nothing to enrich
    return begun


async def fetch_many(begun: list[tuple[repo.Run, Prospect]], settings: Settings) -> list[Any]:
    """One provider call for all the runs' leads, through the provider's breaker."""
    if not begun:
        return []
    provider = begun[0][0].provider
    try:
        enricher = enricher_for(provider, settings)
    except AppError as exc:
        raise PermanentProviderError(provider, exc.code, exc.message) from None
    breaker = circuit.breaker(provider)
    breaker.before_call()
    try:
        results = await enricher.enrich_many([lead for _, lead in begun])  # type: ignore[attr-defined]
        breaker.record_success()
        return results
    except TransientProviderError:
        breaker.record_failure()
        raise
    finally:
        await enricher.close()


async def bulk_failed(tx: Tx, execution: Execution, error: str) -> None:
    for run_id, lead_id in bulk_runs(execution):
        await repo.fail_run(tx, run_id, lead_id, error)


async def reopen_bulk(tx: Tx, execution: Execution) -> None:
    for run_id, _ in bulk_runs(execution):
        await repo.reopen_run(tx, run_id)


async def begin_run(tx: Tx, run_id: uuid.UUID, lead_id: uuid.UUID) -> tuple[repo.Run, Prospect]:
    """(run, lead) of an attempt, the run marked running; an attempt for a provider whose
    quota is used up ends at once without calling it."""
    run = await repo.get_run(tx, run_id)
    lead = await repo.lock_lead(tx, lead_id)
    if run is None or lead is None:
        raise TerminalJobError("lead_not_found", "the lead was deleted")
    quota = await repo.quota_exhausted(tx, run.provider)
    if quota is not None:
        raise PermanentProviderError(run.provider, "quota_exhausted", quota.message)
    await repo.mark_running(tx, run_id, lead_id)
    return run, lead


async def fetch(run: repo.Run, lead: Prospect, settings: Settings) -> Any:
    """The provider's answer for the lead, through its circuit breaker (nothing held);
    None when the person opted out of the provider's data."""
    try:
        enricher = enricher_for(run.provider, settings)
    except AppError as exc:
        raise PermanentProviderError(run.provider, exc.code, exc.message) from None
    breaker = circuit.breaker(run.provider)
    breaker.before_call()
    try:
        result = await enricher.enrich(lead)
        breaker.record_success()
        return result
    except TransientProviderError:
        breaker.record_failure()
        raise
    except PermanentProviderError as exc:
        if exc.code != "opted_out":
            raise
        return None
    finally:
        await enricher.close()


async def record_opt_out(tx: Tx, run_id: uuid.UUID, lead_id: uuid.UUID) -> dict[str, Any]:
    await repo.mark_opted_out(tx, lead_id)
    await repo.finish_run(tx, run_id, "opted_out", {})
    return {"lead_id": str(lead_id), "outcome": "opted_out", "changed": []}


async def apply_result(tx: Tx, run: repo.Run, lead_id: uuid.UUID, result: Any) -> dict[str, Any]:
    """Fill what is empty (or overwrite when the run asks), recording exactly what
    changed; an email another lead owns is reported, not taken."""
    current = await repo.lock_lead(tx, lead_id)
    assert current is not None
    changes: dict[str, dict[str, Any]] = {}
    values: dict[str, Any] = {}
    for name in ENRICHABLE:
        new = result.fields.get(name)
        if new in (None, "") or new == current.field(name):
            continue
        if not (run.overwrite or _empty(name, current.field(name))):
            continue
        if name == "email":
            normalized = normalize_email(new)
            owner = await repo.email_owner(tx, normalized) if normalized else None
            if owner is not None and owner != lead_id:
                changes["email_conflict"] = {"from": None, "to": str(owner)}
                continue
            values["normalized_email"] = normalized
        values[name] = new
        changes[name] = {"from": current.field(name), "to": new}
    data = {**(current.enrichment_data or {}), run.provider: result.raw}
    await repo.apply(tx, lead_id, values, data)
    await repo.finish_run(tx, run.id, result.outcome, changes)
    return {"lead_id": str(lead_id), "outcome": result.outcome, "changed": sorted(values)}


async def enrichment_failed(tx: Tx, execution: Execution, error: str) -> None:
    await repo.fail_run(
        tx, uuid.UUID(execution.payload["enrichment_run_id"]), execution.subject("lead_id"), error
    )


async def reopen_enrichment(tx: Tx, execution: Execution) -> None:
    await repo.reopen_run(tx, uuid.UUID(execution.payload["enrichment_run_id"]))
