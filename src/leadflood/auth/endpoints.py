"""/v1/auth (login, refresh, logout, me) and /v1/users (admins manage users)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from starlette.responses import JSONResponse

from leadflood.auth import repository as repo
from leadflood.auth import service
from leadflood.auth.dependencies import (
    auth_service,
    call_as,
    client_ip,
    principal_from_request,
)
from leadflood.auth.policy import Permission
from leadflood.auth.responses import TokenOut, UserOut, UserStateOut
from leadflood.auth.schemas import LoginIn, RefreshIn, UserIn, UserPatch
from leadflood.auth.service import public_user
from leadflood.core.api import Items
from leadflood.core.boundary import TX, Call
from leadflood.core.principal import Principal
from leadflood.core.uow import Tx

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, tx: Tx = TX) -> dict:
    """Exchange email + password for a 15-minute access token and a refresh token."""
    pair = await auth_service(request, tx).login(body.email, body.password, client_ip(request))
    return pair.body()


@router.post("/v1/auth/refresh", response_model=TokenOut)
async def refresh(body: RefreshIn, request: Request, tx: Tx = TX) -> dict:
    """Rotate: the presented refresh token is spent; reusing it revokes the session."""
    return (await auth_service(request, tx).refresh(body.refresh_token)).body()


@router.post("/v1/auth/logout", status_code=204, response_class=Response)
async def logout(body: RefreshIn, request: Request, tx: Tx = TX) -> Response:
    await auth_service(request, tx).logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/v1/auth/me", response_model=UserOut)
async def me(principal: Principal = Depends(principal_from_request)) -> dict:
    return {
        "id": str(principal.user_id),
        "email": principal.email,
        "name": principal.name,
        "role": principal.role,
    }


@router.get("/v1/users", response_model=Items[UserStateOut])
async def list_users(call: Call = call_as(Permission.users_manage)) -> dict:
    users = await repo.list_users(call.tx)
    return {"items": [{**public_user(u), "active": u.active} for u in users]}


@router.post("/v1/users", status_code=201, response_model=UserOut)
async def add_user(body: UserIn, call: Call = call_as(Permission.users_manage)) -> JSONResponse:
    async def work() -> dict:
        return public_user(await service.add_user(call.tx, call.principal, body))

    return await call.idempotent(work())


@router.patch("/v1/users/{user_id}", response_model=UserStateOut)
async def change_user(
    user_id: uuid.UUID,
    body: UserPatch,
    call: Call = call_as(Permission.users_manage),
) -> dict:
    user = await service.change_user(
        call.tx, call.principal, user_id, body.model_dump(exclude_unset=True)
    )
    return {**public_user(user), "active": user.active}
