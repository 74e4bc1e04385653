"""Idempotency-Key on mutating POSTs: a repeat with the same key returns the first result.

Keys are per user. The first request holds an advisory lock on (user, key) while it
runs, so a concurrent duplicate waits and then replays the stored response instead of
doing the work twice. Only successful responses are stored; a failed request may be
retried with the same key. Reusing a key for a different request is refused.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse

from leadflood.core.errors import BadRequest, Conflict
from leadflood.core.runtime import runtime_of

MAX_KEY_LENGTH = 200


async def idempotent(
    request: Request,
    user_id: uuid.UUID,
    status: int,
    work: Callable[[], Awaitable[Any]],
) -> JSONResponse:
    key = request.headers.get("idempotency-key")
    if key is None:
        return JSONResponse(jsonable_encoder(await work()), status_code=status)
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise BadRequest("invalid_idempotency_key", f"1 to {MAX_KEY_LENGTH} characters")
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    async with runtime_of(request).db.raw() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{user_id}:{key}"
        )
        stored = await conn.fetchrow(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys "
            "WHERE user_id = $1 AND key = $2",
            user_id,
            key,
        )
        if stored is not None:
            if stored["request_hash"] != fingerprint:
                raise Conflict(
                    "idempotency_key_reused", "this Idempotency-Key was used for another request"
                )
            return JSONResponse(
                orjson.loads(stored["response_body"]),
                status_code=stored["response_status"],
                headers={"Idempotent-Replayed": "true"},
            )
        payload = jsonable_encoder(await work())
        await conn.execute(
            "INSERT INTO idempotency_keys (user_id, key, method, path, request_hash, "
            "                              response_status, response_body) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            user_id,
            key,
            request.method,
            request.url.path,
            fingerprint,
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
