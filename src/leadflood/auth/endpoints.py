"""/v1/auth (login, refresh, logout, me) and /v1/users (admins manage users)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from starlette.responses import JSONResponse

from leadflood.auth import repository as repo
from leadflood.auth.dependencies import (
    auth_service,
    client_ip,
    principal_from_request,
    requires,
)
from leadflood.auth.policy import Permission, Role
from leadflood.auth.schemas import LoginIn, RefreshIn, UserIn, UserPatch
from leadflood.auth.service import Principal, audit, create_user, public_user
from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.idempotency import idempotent

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/login")
async def login(body: LoginIn, request: Request) -> dict:
    """Exchange email + password for a 15-minute access token and a refresh token."""
    pair = await auth_service(request).login(body.email, body.password, client_ip(request))
    return pair.body()


@router.post("/v1/auth/refresh")
async def refresh(body: RefreshIn, request: Request) -> dict:
    """Rotate: the presented refresh token is spent; reusing it revokes the session."""
    return (await auth_service(request).refresh(body.refresh_token)).body()


@router.post("/v1/auth/logout", status_code=204)
async def logout(body: RefreshIn, request: Request) -> Response:
    await auth_service(request).logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/v1/auth/me")
async def me(principal: Principal = Depends(principal_from_request)) -> dict:
    return {
        "id": str(principal.user_id),
        "email": principal.email,
        "name": principal.name,
        "role": principal.role,
    }


@router.get("/v1/users")
async def list_users(
    request: Request, _: Principal = Depends(requires(Permission.users_manage))
) -> dict:
    async with request.app.state.runtime.db.connect() as conn:
        users = await repo.list_users(conn)
    return {"items": [{**public_user(u), "active": u["active"]} for u in users]}


@router.post("/v1/users", status_code=201)
async def add_user(
    body: UserIn,
    request: Request,
    principal: Principal = Depends(requires(Permission.users_manage)),
) -> JSONResponse:
    async def work() -> dict:
        async with request.app.state.runtime.db.transaction() as conn:
            user = await create_user(
                conn, email=body.email, password=body.password, role=body.role, name=body.name
            )
            await audit(
                conn,
                principal,
                "create",
                "user",
                user["id"],
                {"email": user["email"], "role": user["role"]},
            )
        return public_user(user)

    return await idempotent(request, principal.user_id, 201, work)


@router.patch("/v1/users/{user_id}")
async def change_user(
    user_id: uuid.UUID,
    body: UserPatch,
    request: Request,
    principal: Principal = Depends(requires(Permission.users_manage)),
) -> dict:
    values = body.model_dump(exclude_unset=True)
    if "role" in values and values["role"] not in Role.__members__:
        raise BadRequest("invalid_role", f"role must be one of {', '.join(Role)}")
    async with request.app.state.runtime.db.transaction() as conn:
        admins = await repo.lock_active_admins(conn)
        demoting = values.get("active") is False or values.get("role", "admin") != "admin"
        if demoting and admins == [user_id]:
            raise Conflict("last_admin", "the last active admin cannot be demoted or deactivated")
        if values and not await repo.update_user(conn, user_id, values):
            raise NotFound("user_not_found", "no user with this id")
        if values.get("active") is False or "role" in values:
            # A demoted or deactivated user's sessions end now, not at token expiry.
            await repo.revoke_user_sessions(conn, user_id)
        user = await repo.user_by_id(conn, user_id)
        if user is None:
            raise NotFound("user_not_found", "no user with this id")
        await audit(conn, principal, "update", "user", user_id, values)
    return {**public_user(user), "active": user["active"]}
