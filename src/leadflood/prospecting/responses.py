"""Response bodies of ICPs, prospect searches, outreach leads and enrichment."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflood.core.api import ApiModel, deprecated_alias


class Icp(ApiModel):
    id: uuid.UUID
    name: str
    description: str | None = None
    titles: list[str]
    seniorities: list[str]
    locations: list[str]
    industries: list[str]
    company_sizes: list[str]
    keywords: str | None = None
    domains: list[str]
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class IcpListItem(Icp):
    lead_count: int


class SearchStarted(ApiModel):
    run_id: uuid.UUID
    job_id: uuid.UUID
    deduplicated: bool

    runId = deprecated_alias("run_id", uuid.UUID)
    jobId = deprecated_alias("job_id", uuid.UUID)


class SearchRun(ApiModel):
    id: uuid.UUID
    icp_id: uuid.UUID
    provider: str
    params: dict[str, Any]
    dedupe_key: str | None = None
    status: str
    job_id: uuid.UUID | None = None
    results_count: int
    leads_created: int
    leads_updated: int
    pages_fetched: int
    total_available: int | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class Prospect(ApiModel):
    id: uuid.UUID
    icp_id: uuid.UUID | None = None
    status: str
    email: str | None = None
    normalized_email: str | None = None
    email_status: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    seniority: str | None = None
    phone: str | None = None
    linkedin_url: str | None = None
    company: str | None = None
    company_domain: str | None = None
    company_size: str | None = None
    industry: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    source: str
    source_ref: str | None = None
    do_not_contact: bool
    enrichment_data: dict[str, Any]
    error: str | None = None
    enriched_at: datetime | None = None
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class ProspectsPage(ApiModel):
    items: list[Prospect]
    next_cursor: str | None = None

    nextCursor = deprecated_alias("next_cursor", str | None)


class EnrichmentRun(ApiModel):
    id: uuid.UUID
    provider: str
    overwrite: bool
    status: str
    outcome: str | None = None
    changes: dict[str, Any] | None = None
    error: str | None = None
    job_id: uuid.UUID | None = None
    created_at: datetime
    finished_at: datetime | None = None


class FoundIn(ApiModel):
    run_id: uuid.UUID
    icp_id: uuid.UUID
    provider: str
    created_at: datetime
    outcome: str | None = None


class LeadJob(ApiModel):
    id: uuid.UUID
    type: str
    status: str
    attempts: int
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class ProspectDetail(Prospect):
    enrichment_runs: list[EnrichmentRun]
    search_results: list[FoundIn]
    jobs: list[LeadJob]


class EnrichmentStarted(ApiModel):
    job_id: uuid.UUID
    enrichment_run_id: uuid.UUID | None = None  # None: the pending enrichment stands
    deduplicated: bool

    jobId = deprecated_alias("job_id", uuid.UUID)
    enrichmentRunId = deprecated_alias("enrichment_run_id", uuid.UUID | None)
