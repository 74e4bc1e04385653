"""Response bodies of ICPs, prospect searches, outreach leads and enrichment."""

from __future__ import annotations

import uuid

from leadflood.core.api import ApiModel, deprecated_alias

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.prospecting.repository import EnrichmentRun as EnrichmentRun
from leadflood.prospecting.repository import FoundIn as FoundIn
from leadflood.prospecting.repository import Icp as Icp
from leadflood.prospecting.repository import IcpListItem as IcpListItem
from leadflood.prospecting.repository import LeadJob as LeadJob
from leadflood.prospecting.repository import Prospect as Prospect
from leadflood.prospecting.repository import ProspectCreated as ProspectCreated
from leadflood.prospecting.repository import ProspectDetail as ProspectDetail
from leadflood.prospecting.repository import SearchRun as SearchRun


class SearchStarted(ApiModel):
    run_id: uuid.UUID
    job_id: uuid.UUID
    deduplicated: bool

    runId = deprecated_alias("run_id", uuid.UUID)
    jobId = deprecated_alias("job_id", uuid.UUID)


class ProspectsPage(ApiModel):
    items: list[Prospect]
    next_cursor: str | None = None

    nextCursor = deprecated_alias("next_cursor", str | None)


class EnrichmentStarted(ApiModel):
    job_id: uuid.UUID
    enrichment_run_id: uuid.UUID | None = None  # None: the pending enrichment stands
    deduplicated: bool

    jobId = deprecated_alias("job_id", uuid.UUID)
    enrichmentRunId = deprecated_alias("enrichment_run_id", uuid.UUID | None)
