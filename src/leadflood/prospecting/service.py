"""ICPs, prospect searches and outreach leads: the rules; SQL is in repository.py."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from leadflood.core import circuit
from leadflood.core.errors import AppError, BadRequest, Conflict, NotFound
from leadflood.core.executions import Execution, TerminalJobError, create_execution
from leadflood.core.principal import Principal
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.retry import RetryPolicy
from leadflood.core.rows import as_fields
from leadflood.core.settings import Settings
from leadflood.core.status import ExecutionStatus
from leadflood.core.uow import Tx
from leadflood.enrichment.enrichers import check_available as check_enrichment_available
from leadflood.enrichment.service import (
    check_quota,
    start_bulk_enrichment,
    start_enrichment,
)
from leadflood.ingestion.normalize import normalize_email
from leadflood.prospecting import repository as repo
from leadflood.prospecting.schemas import IcpIn, LeadIn, SearchIn
from leadflood.prospecting.sources import (
    LEAD_FIELDS,
    Prospect,
    SearchFilters,
    check_available,
    source_for,
)

SEARCH_JOB = "icp.search.run"
# Provider 429/5xx: 4 attempts with growing waits (a longer Retry-After wins).
SEARCH_RETRY = RetryPolicy(
    max_attempts=4, delays=(timedelta(seconds=5), timedelta(seconds=20), timedelta(seconds=60))
)


def _not_found(what: str) -> NotFound:
    return NotFound(f"{what}_not_found", f"no {what.replace('_', ' ')} with this id")


# ---- ICPs ---------------------------------------------------------------------------------


async def list_icps(tx: Tx) -> list[repo.IcpListItem]:
    return await repo.list_icps(tx)


async def get_icp(tx: Tx, icp_id: uuid.UUID) -> repo.Icp:
    icp = await repo.get_icp(tx, icp_id)
    if icp is None:
        raise _not_found("icp")
    return icp


async def create_icp(tx: Tx, principal: Principal | None, body: IcpIn) -> repo.Icp:
    icp = await repo.insert_icp(tx, body.model_dump(), principal.user_id if principal else None)
    await tx.audit(principal, "create", "icp", icp.id, body.model_dump())
    return icp


async def replace_icp(
    tx: Tx, principal: Principal | None, icp_id: uuid.UUID, body: IcpIn
) -> repo.Icp:
    icp = await repo.replace_icp(tx, icp_id, body.model_dump())
    if icp is None:
        raise _not_found("icp")
    await tx.audit(principal, "update", "icp", icp_id, body.model_dump())
    return icp


async def delete_icp(tx: Tx, principal: Principal | None, icp_id: uuid.UUID) -> None:
    if not await repo.delete_icp(tx, icp_id):
        raise _not_found("icp")
    await tx.audit(principal, "delete", "icp", icp_id)


# ---- searches -----------------------------------------------------------------------------


def search_dedupe_key(icp_id: uuid.UUID, provider: str, params: dict, at: datetime) -> str:
    """hash(icp, provider, normalized params, UTC day): one run per ICP setup per day."""
    canonical = orjson.dumps(
        {"icp": str(icp_id), "provider": provider, "params": params}, option=orjson.OPT_SORT_KEYS
    )
    digest = hashlib.sha256(canonical + at.astimezone(UTC).strftime("%Y-%m-%d").encode())
    return digest.hexdigest()


async def start_search(
    tx: Tx, settings: Settings, principal: Principal | None, icp_id: uuid.UUID, body: SearchIn
) -> dict[str, Any]:
    provider = body.provider or settings.prospect_provider
    check_available(provider, settings)  # 503 provider_not_configured before anything
    icp = await repo.get_icp(tx, icp_id)
    if icp is None:
        raise _not_found("icp")
    filters = SearchFilters.from_icp(icp)
    params: dict[str, Any] = {
        "filters": filters.as_dict(),
        "pages": body.pages,
        "per_page": body.per_page,
    }
    if body.enrich_top:
        check_enrichment_available(enrichment_provider_for(provider), settings)
        params["enrich_top"] = body.enrich_top
    key = search_dedupe_key(icp_id, provider, params, datetime.now(UTC))
    run: dict[str, Any] = {
        "icp_id": icp_id,
        "provider": provider,
        "params": params,
        "dedupe_key": key,
        "created_by": principal.user_id if principal else None,
    }
    run_id = await repo.insert_run(tx, **run)
    if run_id is None:
        existing = await repo.run_by_dedupe_key(tx, key)
        assert existing is not None
        if existing.status != ExecutionStatus.failed:
            return {"run_id": existing.id, "job_id": existing.job_id, "deduplicated": True}
        # Today's run of this setup failed: a new one replaces it.
        await repo.retire_failed_run(tx, existing.id)
        run_id = await repo.insert_run(tx, **run)
        assert run_id is not None
    job_id, _ = await create_execution(
        tx,
        SEARCH_JOB,
        {"search_run_id": str(run_id)},
        max_attempts=SEARCH_RETRY.max_attempts,
        icp_id=icp_id,
        search_run_id=run_id,
    )
    await repo.set_run_job(tx, run_id, job_id)
    return {"run_id": run_id, "job_id": job_id, "deduplicated": False}


async def get_run(tx: Tx, icp_id: uuid.UUID, run_id: uuid.UUID) -> repo.SearchRun:
    run = await repo.get_run(tx, run_id)
    if run is None or run.icp_id != icp_id:
        raise _not_found("search_run")
    return run


async def list_runs(tx: Tx, icp_id: uuid.UUID) -> list[repo.SearchRun]:
    return await repo.list_runs(tx, icp_id)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in LEAD_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            value = " ".join(value.split()) or None
        out[name] = value
    domain = out.get("company_domain")
    if isinstance(domain, str):
        out["company_domain"] = domain.lower().removeprefix("www.")
    return out


async def upsert_prospect(
    tx: Tx, prospect: Prospect, provider: str, icp_id: uuid.UUID | None
) -> tuple[uuid.UUID, str]:
    """The lead this prospect is: matched by provider record, then by normalized email.
    An existing lead only gains the fields it lacked. Returns (lead id, created/updated/
    unchanged). Run inside a transaction."""
    fields = _clean(prospect.fields)
    email = normalize_email(fields.get("email"))
    for _ in range(3):  # an insert that loses a race re-reads the winner's row
        row = await repo.lock_lead_by_source(tx, provider, prospect.provider_ref)
        if row is None and email:
            row = await repo.lock_lead_by_email(tx, email)
        if row is not None:
            changes = {k: v for k, v in fields.items() if v and not row.field(k) and k != "email"}
            if email and not row.normalized_email and not await repo.email_taken(tx, email):
                changes.update(email=fields["email"], normalized_email=email)
            if icp_id and not row.icp_id:
                changes["icp_id"] = icp_id
            await repo.update_lead(tx, row.id, changes)
            return row.id, "updated" if changes else "unchanged"
        values = {
            **{k: v for k, v in fields.items() if v is not None},
            "normalized_email": email,
            "source": provider,
            "source_ref": prospect.provider_ref,
            "icp_id": icp_id,
        }
        lead_id = await repo.insert_lead(tx, values)
        if lead_id is not None:
            return lead_id, "created"
    raise RuntimeError(f"could not upsert prospect {prospect.provider_ref}")


async def begin_run(tx: Tx, run_id: uuid.UUID) -> repo.SearchRun:
    run = await repo.get_run(tx, run_id)
    if run is None:
        raise TerminalJobError("search_run_not_found", "the run was deleted with its ICP")
    await repo.mark_run_running(tx, run_id)
    return run


def run_filters(run: repo.SearchRun) -> SearchFilters:
    filters: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in run.params["filters"].items()
    }
    return SearchFilters(**filters)


def open_source(provider: str, settings: Settings) -> Any:
    try:
        return source_for(provider, settings)
    except AppError as exc:
        raise PermanentProviderError(provider, exc.code, exc.message) from None


async def fetch_page(source: Any, provider: str, filters: SearchFilters, page: int, per_page: int):
    """One page from the provider, through its circuit breaker (no unit of work held)."""
    breaker = circuit.breaker(provider)
    breaker.before_call()
    try:
        result = await source.search(filters, page, per_page)
    except TransientProviderError:
        breaker.record_failure()
        raise
    breaker.record_success()
    return result


async def store_page(tx: Tx, run: repo.SearchRun, prospects: list[Prospect]) -> None:
    """Upsert the page's leads and record each result. Results stored by an earlier
    attempt are skipped, so a retry finishes the run without duplicating or double
    counting anything."""
    for prospect in prospects:
        if await repo.result_exists(tx, run.id, prospect.provider_ref):
            continue
        lead_id, outcome = await upsert_prospect(tx, prospect, run.provider, run.icp_id)
        await repo.insert_result(
            tx,
            run_id=run.id,
            provider_ref=prospect.provider_ref,
            payload=prospect.raw,
            mapped=prospect.fields,
            lead_id=lead_id,
            outcome=outcome,
        )


def enrichment_provider_for(search_provider: str) -> str:
    """Who enriches a search's leads: Apollo's People Enrichment for Apollo's (by the
    Apollo id the search found), the offline sample for the sample's."""
    return "sample" if search_provider == "sample" else "apollo"


async def finish_run(
    tx: Tx, settings: Settings, run: repo.SearchRun, *, pages: int, total: int | None
) -> dict:
    """The run's counts, and the enrichment of its top leads without an email when the
    search asked for it (in the same unit: the run never completes without them)."""
    done = await repo.finish_run(tx, run.id, pages=pages, total=total)
    started, skipped = 0, None
    enrich_top = int(run.params.get("enrich_top") or 0)
    if enrich_top:
        provider = enrichment_provider_for(run.provider)
        try:
            await check_quota(tx, provider)
        except Conflict as exc:
            skipped = exc.message  # the account's quota: the run completes, unenriched
        else:
            top = await repo.leads_without_email(tx, run.id, enrich_top)
            if provider == "apollo":  # ten per call (Bulk People Enrichment)
                started = await start_bulk_enrichment(tx, settings, top, provider)
            else:
                for lead_id in top:
                    await start_enrichment(tx, settings, None, lead_id, provider=provider)
                    started += 1
    return {
        "run_id": str(run.id),
        "results": done.results_count,
        "leads_created": done.leads_created,
        "leads_updated": done.leads_updated,
        "pages": pages,
        "enrichments_started": started,
        **({"enrichment_skipped": skipped} if skipped else {}),
    }


async def search_failed(tx: Tx, execution: Execution, error: str) -> None:
    if execution.search_run_id:
        await repo.fail_run(tx, execution.search_run_id, error)


async def reopen_search(tx: Tx, execution: Execution) -> None:
    if execution.search_run_id:
        await repo.reopen_run(tx, execution.search_run_id)


# ---- leads --------------------------------------------------------------------------------

LEAD_FILTERS = ("status", "icp_id", "email_status", "source", "company_domain")


def _cursor(lead: repo.Prospect, key: Any) -> str:
    key = key.isoformat() if isinstance(key, datetime) else key
    return base64.urlsafe_b64encode(orjson.dumps([key, str(lead.id)])).decode()


def _uncursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    try:
        key, row_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if sort.lstrip("-") == "created_at":
            key = datetime.fromisoformat(key)
        return key, uuid.UUID(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("invalid_cursor", "cursor is not one this API returned") from None


async def list_leads(
    tx: Tx,
    *,
    filters: dict[str, Any],
    q: str | None = None,
    sort: str = "-created_at",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    if sort not in repo.SORTS:
        raise BadRequest("invalid_sort", f"sort must be one of {', '.join(repo.SORTS)}")
    unknown = set(filters) - set(LEAD_FILTERS)
    if unknown:
        raise BadRequest("unknown_filter", f"cannot filter leads by {sorted(unknown)}")
    after = _uncursor(cursor, sort) if cursor else None
    rows = await repo.search_leads(
        tx, filters=filters, q=q, sort=sort, after=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _cursor(*rows[-1]) if more and rows else None
    return {"items": [lead for lead, _ in rows], "next_cursor": next_cursor}


async def create_lead_and_enrich(
    tx: Tx, settings: Settings, principal: Principal | None, body: LeadIn
) -> repo.ProspectCreated:
    """A lead by hand, enriched at once when asked (`enrich`): both in one unit of work, so
    a refused enrichment (no provider configured) creates no lead either."""
    lead = await create_lead(tx, principal, body)
    job_id = None
    if body.enrich:
        job_id = (await start_enrichment(tx, settings, principal, lead.id))["job_id"]
    return repo.ProspectCreated(**as_fields(lead), enrichment_job_id=job_id)


async def create_lead(tx: Tx, principal: Principal | None, body: LeadIn) -> repo.Prospect:
    values = {k: v for k, v in body.model_dump(exclude={"enrich"}).items() if v is not None}
    email = normalize_email(values["email"])
    if values.get("icp_id") and not await repo.icp_exists(tx, values["icp_id"]):
        raise BadRequest("unknown_icp", "icp_id does not name an ICP")
    lead_id = await repo.insert_lead(
        tx,
        {
            **values,
            "normalized_email": email,
            "source": "manual",
            "created_by": principal.user_id if principal else None,
        },
    )
    if lead_id is None:
        existing = await repo.lock_lead_by_email(tx, email or "")
        raise Conflict(
            "lead_exists",
            "a lead with this email exists",
            details={"lead_id": str(existing.id) if existing else None},
        )
    lead = await repo.get_lead(tx, lead_id)
    assert lead is not None
    return lead


async def lead_detail(tx: Tx, lead_id: uuid.UUID) -> repo.ProspectDetail:
    lead = await repo.get_lead(tx, lead_id)
    if lead is None:
        raise _not_found("lead")
    history = await repo.lead_history(tx, lead_id)
    return repo.ProspectDetail(**as_fields(lead), **as_fields(history))
