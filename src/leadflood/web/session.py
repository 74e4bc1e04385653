"""Browser sessions: the same tokens as the API, carried in HttpOnly cookies.

An expired access cookie is renewed through /auth/renew with the refresh cookie
(rotation and reuse detection as for API clients); no session at all sends the
browser to /login. Writes must be same-origin (checked in principal_from_request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request
from starlette.datastructures import ImmutableMultiDict
from starlette.responses import RedirectResponse, Response

from leadflood.auth.dependencies import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    principal_from_request,
    requires,
)
from leadflood.auth.policy import Permission
from leadflood.auth.service import Principal, TokenPair
from leadflood.core.errors import BadRequest, Unauthorized
from leadflood.core.settings import Environment


class LoginRequired(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(request.url.path + query, safe="/?=&")


async def page_principal(request: Request) -> Principal:
    try:
        return await principal_from_request(request)
    except Unauthorized:
        if request.cookies.get(REFRESH_COOKIE):
            raise LoginRequired(f"/auth/renew?next={_here(request)}") from None
        raise LoginRequired(f"/login?next={_here(request)}") from None


def page_requires(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    return requires(permission, page_principal)


def login_redirect(request: Request, exc: LoginRequired) -> Response:
    if request.headers.get("hx-request"):
        # htmx swaps responses in place; ask it to navigate instead.
        return Response(status_code=204, headers={"HX-Redirect": exc.location})
    return RedirectResponse(exc.location, status_code=303)


def set_session_cookies(response: Response, pair: TokenPair, env: Environment) -> None:
    for name, value, expires in (
        (ACCESS_COOKIE, pair.access_token, pair.access_expires_at),
        (REFRESH_COOKIE, pair.refresh_token, pair.refresh_expires_at),
    ):
        # HttpOnly: scripts never see tokens. Strict: no cross-site request carries them.
        response.set_cookie(
            name,
            value,
            expires=expires,
            httponly=True,
            secure=env == Environment.production,
            samesite="strict",
            path="/",
        )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path="/")


async def text_form(request: Request) -> ImmutableMultiDict[str, str]:
    """A posted form's text fields. The pages take no files: a part carrying one is
    refused (400 `file_not_accepted`), whoever parsed the body first."""
    form = await request.form(max_files=0)
    fields: list[tuple[str, str]] = []
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise BadRequest("file_not_accepted", "these forms take text fields only, no files")
        fields.append((name, value))
    return ImmutableMultiDict(fields)
