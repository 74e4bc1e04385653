"""Response bodies of sequences, enrollments and the tick."""

from __future__ import annotations

import uuid
from datetime import datetime

from leadflood.core.api import ApiModel


class Step(ApiModel):
    id: uuid.UUID
    sequence_id: uuid.UUID
    position: int
    channel: str
    delay_minutes: int
    subject_template: str | None = None
    body_template: str


class Counts(ApiModel):
    enrolled: int
    active: int
    completed: int
    replied: int


class SequenceHeader(ApiModel):
    id: uuid.UUID
    name: str
    status: str
    mailbox_id: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class Sequence(SequenceHeader):
    steps: list[Step]
    counts: Counts


class SequenceListItem(SequenceHeader):
    steps: int
    enrolled: int
    active: int


class Enrollment(ApiModel):
    id: uuid.UUID
    lead_id: uuid.UUID
    status: str
    next_position: int
    next_step_at: datetime | None = None
    stop_reason: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company: str | None = None


class SequenceDetail(Sequence):
    enrollments: list[Enrollment]


class Refusal(ApiModel):
    lead_id: uuid.UUID
    reason: str


class Enrolled(ApiModel):
    enrolled: list[uuid.UUID]
    refused: list[Refusal]


class Tick(ApiModel):
    scheduled: int
    skipped: int
