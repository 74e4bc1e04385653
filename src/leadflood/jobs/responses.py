"""Response body of GET /v1/jobs/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from leadflood.core.api import ApiModel, deprecated_alias


class JobLinks(ApiModel):
    lead_id: uuid.UUID | None = None
    icp_id: uuid.UUID | None = None
    search_run_id: uuid.UUID | None = None


class Job(ApiModel):
    id: uuid.UUID
    type: str
    status: str
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    links: JobLinks
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    # The camelCase names published before decision 0015, kept as deprecated aliases.
    maxAttempts = deprecated_alias("max_attempts", int)
    nextAttemptAt = deprecated_alias("next_attempt_at", datetime | None)
    createdAt = deprecated_alias("created_at", datetime)
    startedAt = deprecated_alias("started_at", datetime | None)
    finishedAt = deprecated_alias("finished_at", datetime | None)
