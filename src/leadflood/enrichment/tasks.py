"""lead.enrich: a tracked job with the enrichment retry policy."""

from __future__ import annotations

from leadflood.core.executions import tracked_job
from leadflood.enrichment.service import (
    ENRICH_JOB,
    ENRICH_RETRY,
    enrichment_failed,
    reopen_enrichment,
    run_enrichment,
)

tracked_job(ENRICH_JOB, ENRICH_RETRY, on_failure=enrichment_failed, on_replay=reopen_enrichment)(
    run_enrichment
)
