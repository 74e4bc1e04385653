"""Response bodies of sequences, enrollments and the tick."""

from __future__ import annotations

import uuid
from datetime import datetime

from leadflood.core.api import ApiModel

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.sequences.repository import Counts as Counts
from leadflood.sequences.repository import Sequence as Sequence
from leadflood.sequences.repository import SequenceDetail as SequenceDetail
from leadflood.sequences.repository import SequenceHeader as SequenceHeader
from leadflood.sequences.repository import SequenceListItem as SequenceListItem
from leadflood.sequences.repository import Step as Step


class EnrollmentStatus(ApiModel):
    """One lead's enrollment in a sequence."""

    id: uuid.UUID
    sequence_id: uuid.UUID
    lead_id: uuid.UUID
    status: str
    next_position: int
    next_step_at: datetime | None = None
    stop_reason: str | None = None
    finished_at: datetime | None = None


class Refusal(ApiModel):
    lead_id: uuid.UUID
    reason: str


class Enrolled(ApiModel):
    enrolled: list[uuid.UUID]
    refused: list[Refusal]


class Tick(ApiModel):
    scheduled: int
    skipped: int
