"""Idempotency-Key on mutating POSTs: a repeat with the same key returns the first result.

Keys are per user. The key row is written in the request's own unit of work, before the
work and with its response after it, so they commit (or roll back) together: a failed
request leaves no key behind and may be retried with it. A concurrent duplicate's insert
waits on the first one's uncommitted row, then replays its response. Reusing a key for a
different request is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse

from leadflood.core.api import shaped
from leadflood.core.errors import BadRequest, Conflict
from leadflood.core.principal import Principal
from leadflood.core.uow import Tx

MAX_KEY_LENGTH = 200

# Waits for a concurrent holder of the same key to commit or roll back.
_CLAIM = """
INSERT INTO idempotency_keys (user_id, key, method, path, request_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING id
"""

_STORED = """
SELECT request_hash, response_status, response_body FROM idempotency_keys
WHERE user_id = $1 AND key = $2
"""


async def idempotent(
    request: Request, tx: Tx, principal: Principal, work: Coroutine[Any, Any, Any]
) -> JSONResponse:
    """`work`'s result as the route's response model allows it, with the route's status;
    stored with the caller's key in the request's unit of work when it carries one. A
    replay answers from the store and never runs `work`."""
    try:
        return await _idempotent(request, tx, principal, work)
    finally:
        work.close()  # a no-op once awaited; a replay or a refused key never starts it


async def _idempotent(
    request: Request, tx: Tx, principal: Principal, work: Coroutine[Any, Any, Any]
) -> JSONResponse:
    route = request.scope.get("route")
    status = getattr(route, "status_code", None) or 200
    model = getattr(route, "response_model", None)
    user_id = principal.user_id
    key = request.headers.get("idempotency-key")
    if key is None:
        return JSONResponse(jsonable_encoder(shaped(model, await work)), status_code=status)
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise BadRequest("invalid_idempotency_key", f"1 to {MAX_KEY_LENGTH} characters")
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    claim = await tx.fetchval(_CLAIM, user_id, key, request.method, request.url.path, fingerprint)
    if claim is None:
        stored = await tx.fetchrow(_STORED, user_id, key)
        if stored["request_hash"] != fingerprint:
            raise Conflict(
                "idempotency_key_reused", "this Idempotency-Key was used for another request"
            )
        return JSONResponse(
            stored["response_body"],
            status_code=stored["response_status"],
            headers={"Idempotent-Replayed": "true"},
        )
    payload = jsonable_encoder(shaped(model, await work))
    await tx.execute(
        "UPDATE idempotency_keys SET response_status = $2, response_body = $3::jsonb WHERE id = $1",
        claim,
        status,
        orjson.dumps(_without_one_time_secrets(payload)).decode(),
    )
    return JSONResponse(payload, status_code=status)


# Shown once and never stored in plain text: a replay answers without them.
ONE_TIME_SECRETS = frozenset({"api_key"})


def _without_one_time_secrets(payload: Any) -> Any:
    if isinstance(payload, dict):
        return {k: (None if k in ONE_TIME_SECRETS else v) for k, v in payload.items()}
    return payload
