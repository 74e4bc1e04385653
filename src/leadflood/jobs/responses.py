"""Response body of GET /v1/jobs/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import computed_field

from leadflood.core.api import ApiModel


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
    @computed_field(deprecated="use max_attempts")  # type: ignore[prop-decorator]
    @property
    def maxAttempts(self) -> int:
        return self.max_attempts

    @computed_field(deprecated="use next_attempt_at")  # type: ignore[prop-decorator]
    @property
    def nextAttemptAt(self) -> datetime | None:
        return self.next_attempt_at

    @computed_field(deprecated="use created_at")  # type: ignore[prop-decorator]
    @property
    def createdAt(self) -> datetime:
        return self.created_at

    @computed_field(deprecated="use started_at")  # type: ignore[prop-decorator]
    @property
    def startedAt(self) -> datetime | None:
        return self.started_at

    @computed_field(deprecated="use finished_at")  # type: ignore[prop-decorator]
    @property
    def finishedAt(self) -> datetime | None:
        return self.finished_at
