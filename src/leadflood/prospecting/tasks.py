"""icp.search.run: a tracked job (job_executions) with the search retry policy."""

from __future__ import annotations

from leadflood.core.executions import tracked_job
from leadflood.prospecting.service import (
    SEARCH_JOB,
    SEARCH_RETRY,
    reopen_search,
    run_search,
    search_failed,
)

tracked_job(SEARCH_JOB, SEARCH_RETRY, on_failure=search_failed, on_replay=reopen_search)(run_search)
