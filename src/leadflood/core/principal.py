"""Who is acting: the authenticated user of a request, carried into audit rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    family_id: uuid.UUID
    ip: str | None = None
    request_id: str | None = None
