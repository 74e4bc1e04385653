"""Response bodies of /v1/auth and /v1/users."""

from __future__ import annotations

import uuid
from datetime import datetime

from leadflood.core.api import ApiModel


class UserOut(ApiModel):
    id: uuid.UUID
    email: str
    name: str = ""
    role: str


class UserStateOut(UserOut):
    active: bool


class TokenOut(ApiModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    user: UserOut
