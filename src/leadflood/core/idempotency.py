"""Idempotency-Key on mutating POSTs: a repeat with the same key returns the first result.

Keys are per user. The first request claims (user, key) with a row that has no response
yet, commits, and runs the work with no connection held: holding one while the work took
another from the same pool let enough concurrent keyed POSTs starve the pool (issue 14).
A concurrent duplicate waits for the response and replays it. Only successful responses
are stored: a failed request releases its claim, so it may be retried with the same key;
a claim left by a crashed process is taken over after `STALE_CLAIM`. Reusing a key for a
different request is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse

from leadflood.core.errors import BadRequest, Conflict
from leadflood.core.runtime import runtime_of

MAX_KEY_LENGTH = 200
STALE_CLAIM = timedelta(minutes=5)
WAIT_FOR_FIRST = 30.0  # seconds a duplicate waits for the first request's response
_POLL = 0.05

# A new claim, or the takeover of one abandoned long ago; else nothing.
_CLAIM = """
INSERT INTO idempotency_keys AS k (user_id, key, method, path, request_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id, key) DO UPDATE SET created_at = now(), request_hash = EXCLUDED.request_hash
WHERE k.response_status IS NULL AND k.created_at < now() - $6::interval
  AND k.request_hash = EXCLUDED.request_hash
RETURNING id
"""

_STORED = """
SELECT request_hash, response_status, response_body FROM idempotency_keys
WHERE user_id = $1 AND key = $2
"""


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
    db = runtime_of(request).db
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_FOR_FIRST
    while True:
        async with db.raw() as conn:
            claim = await conn.fetchval(
                _CLAIM, user_id, key, request.method, request.url.path, fingerprint, STALE_CLAIM
            )
            stored = None if claim else await conn.fetchrow(_STORED, user_id, key)
        if claim:
            break
        if stored is not None:
            if stored["request_hash"] != fingerprint:
                raise Conflict(
                    "idempotency_key_reused", "this Idempotency-Key was used for another request"
                )
            if stored["response_status"] is not None:
                return JSONResponse(
                    orjson.loads(stored["response_body"]),
                    status_code=stored["response_status"],
                    headers={"Idempotent-Replayed": "true"},
                )
        if loop.time() > deadline:
            raise Conflict(
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry later",
            )
        await asyncio.sleep(_POLL)  # the first request is still working: wait for it
    try:
        payload = jsonable_encoder(await work())
    except BaseException:
        async with db.raw() as conn:
            await conn.execute("DELETE FROM idempotency_keys WHERE id = $1", claim)
        raise
    async with db.raw() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET response_status = $2, response_body = $3::jsonb "
            "WHERE id = $1",
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
