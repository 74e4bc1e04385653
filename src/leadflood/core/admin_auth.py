"""Admin API guard until user auth exists: `Authorization: Bearer <LEADFLOOD_ADMIN_TOKEN>`."""

from __future__ import annotations

import hmac

from fastapi import Request

from leadflood.core.errors import Forbidden, Unauthorized


async def require_admin(request: Request) -> None:
    token = request.app.state.runtime.settings.admin_token
    if token is None:
        raise Forbidden("admin_api_disabled", "set LEADFLOOD_ADMIN_TOKEN to enable the admin API")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.get_secret_value().encode()
    ):
        raise Unauthorized("unauthorized", "admin token required")
