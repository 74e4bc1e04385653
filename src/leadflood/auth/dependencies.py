"""Who is calling, and may they: one dependency per route, built from the policy map."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import Depends, Request

from leadflood.auth.policy import Permission, allows
from leadflood.auth.service import AuthService
from leadflood.core.boundary import TX, Call
from leadflood.core.errors import Forbidden, Unauthorized
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx, single_statements

ACCESS_COOKIE = "lf_access"
REFRESH_COOKIE = "lf_refresh"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def auth_service(request: Request, tx: Tx) -> AuthService:
    return AuthService(tx, request.app.state.runtime.settings)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _same_origin(request: Request) -> bool:
    """Cookie-authenticated writes must come from our own pages (CSRF)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    return urlsplit(origin).netloc == request.headers.get("host", "")


def require_same_origin(request: Request) -> None:
    if not _same_origin(request):
        raise Forbidden("cross_origin_request", "cookie-authenticated writes must be same-origin")


async def principal_from_request(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        token = token.strip()
    else:
        token = request.cookies.get(ACCESS_COOKIE, "")
        if token and request.method not in _SAFE_METHODS:
            require_same_origin(request)
    if not token:
        raise Unauthorized("unauthenticated", "sign in first")
    # Its own one-statement unit, released before the endpoint runs: the request's unit
    # takes a connection only when the endpoint's work starts (after any DNS check).
    async with single_statements(runtime_of(request).db) as tx:
        principal = await auth_service(request, tx).authenticate(
            token, ip=client_ip(request), request_id=getattr(request.state, "request_id", None)
        )
    request.state.principal = principal
    # The request's log lines (its own "request" line included) name the user.
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    return principal


def requires(
    permission: Permission,
    resolve: Callable[..., Awaitable[Principal]] = principal_from_request,
) -> Callable[..., Awaitable[Principal]]:
    """The route dependency for `permission`. `resolve` finds the caller (API: 401
    without a session; pages: a redirect to sign in)."""

    async def check(principal: Principal = Depends(resolve)) -> Principal:
        if not allows(principal.role, permission):
            raise Forbidden("permission_denied", f"your role may not {permission.value}")
        return principal

    check.permission = permission  # type: ignore[attr-defined]  # read by the route audit test
    return check


def call_as(
    permission: Permission,
    resolve: Callable[..., Awaitable[Principal]] = principal_from_request,
) -> Any:
    """The route dependency giving a `Call`: the caller, checked for `permission`, with
    the request's unit of work."""
    check = requires(permission, resolve)

    async def call(request: Request, principal: Principal = Depends(check), tx: Tx = TX) -> Call:
        return Call(request, principal, tx)

    call.permission = permission  # type: ignore[attr-defined]  # read by the route audit test
    return Depends(call)
