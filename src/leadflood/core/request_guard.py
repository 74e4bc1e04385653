"""Refuse what no route can store or survive, once, before any route runs (issue 14).

- NUL characters: PostgreSQL text and jsonb cannot hold U+0000, so a NUL in a query
  parameter, path or body used to reach the database and answer 500. Any NUL is a 400
  `nul_character`.
- Nesting: JSON deeper than `MAX_JSON_DEPTH` is a 400 `nesting_too_deep` (Python's
  parsers and every recursive walk downstream hit the recursion limit near 1,000;
  no lead or configuration needs more than a few levels).
- Size: bodies are counted while they are read; past the limit the request is a 413
  without buffering the rest (a lying Content-Length cannot get more through).
- Slow bodies: the whole body must arrive within `request_body_timeout_s` (408).
- Strict JSON: a body orjson refuses (lone surrogates, integers past 64 bits, invalid
  UTF-8) is a 400 `invalid_json` on every route, as on ingestion.

Ingestion reads its own body under its own, smaller limit (the hot path, decision
0012); the guard gives it the deadline and the query checks only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflood.core.errors import AppError, BadRequest, PayloadTooLarge, app_error_response

MAX_JSON_DEPTH = 32


class RequestTimeout(AppError, status=408, code="request_timeout"): ...


def nul_error(where: str) -> BadRequest:
    return BadRequest(
        "nul_character", f"NUL characters are not allowed ({where})", details={"where": where}
    )


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse NUL characters in any key or string, and nesting deeper than `max_depth`.

    Iterative, so a hostile document cannot exhaust the stack of the check itself.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise nul_error("body")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise too_deep(max_depth)
            children: Iterator[Any]
            if isinstance(item, dict):
                for key in item:
                    if "\x00" in key:
                        raise nul_error("body")
                children = iter(item.values())
            else:
                children = iter(item)
            stack.extend((child, depth + 1) for child in children)


def too_deep(max_depth: int = MAX_JSON_DEPTH) -> BadRequest:
    return BadRequest(
        "nesting_too_deep",
        f"JSON nested deeper than {max_depth} levels",
        details={"max_depth": max_depth},
    )


def parse_json(body: bytes) -> Any:
    """orjson.loads with the guard's checks; its own depth limit (1,024) reads as ours."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise too_deep() from None
        raise
    check_json_value(data)
    return data


def _query_has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"\x00" in unquote_to_bytes(raw.replace(b"+", b" "))


def _is_ingestion(scope: Scope) -> bool:
    return scope.get("method") == "POST" and scope["path"].lower().startswith("/api/leads")


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Only the guard's own checks are caught here: the app's errors are the app's.
        try:
            if "\x00" in scope["path"]:
                raise nul_error("path")
            if _query_has_nul(scope.get("query_string", b"")):
                raise nul_error("query")
            if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
                guarded = receive
            elif _is_ingestion(scope):
                guarded = _deadline(receive, self.body_timeout_s)
            else:
                body = await self._read(scope, receive)
                _check_body(scope, body)
                guarded = _replay(body, receive)
        except AppError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, guarded, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise too_large(self.max_bytes)
        receive = _deadline(receive, self.body_timeout_s)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large(self.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _content_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""


def _check_body(scope: Scope, body: bytes) -> None:
    if not body:
        return
    kind = _content_type(scope)
    if kind == b"application/json" or kind.endswith(b"+json"):
        try:
            parse_json(body)
            # The routes parse with Python's json module, which keeps integers of any
            # size (orjson reads them as floats): refuse those no column or serializer
            # downstream can hold, and the non-standard NaN/Infinity.
            json.loads(body, parse_int=_bounded_int, parse_constant=_no_constant)
        except (orjson.JSONDecodeError, ValueError) as exc:
            # Strict JSON only (RFC 8259, UTF-8, 64-bit integers), as ingestion reads it:
            # lone surrogates and oversized integers parse in Python's json module but
            # cannot be stored or serialized again (they answered 500).
            raise BadRequest(
                "invalid_json", "request body is not valid JSON", details={"reason": str(exc)}
            ) from None
    elif kind == b"application/x-www-form-urlencoded":
        if _query_has_nul(body):
            raise nul_error("form")
    elif b"\x00" in body and not kind.startswith(b"multipart/"):
        raise nul_error("body")


_INT64 = 2**63


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f"integer out of the 64-bit range: {text[:30]}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def error_response(exc: AppError) -> Response:
    """The error body; after a 408 or 413 the rest of the body is unread, so the
    connection cannot carry another request: close it."""
    response = app_error_response(exc)
    if exc.status in (408, 413):
        response.headers["connection"] = "close"
    return response


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "payload_too_large", f"request body exceeds {limit} bytes", details={"limit_bytes": limit}
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _deadline(receive: Receive, timeout_s: float) -> Receive:
    """`receive` under one deadline for the whole body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    done = False

    async def bounded() -> Message:
        nonlocal done
        if done:  # the body is in; what follows is a wait for disconnect
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise RequestTimeout("request_timeout", "request body too slow") from None
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return bounded


# Pagination offsets past this are refused (400) rather than sent to PostgreSQL.
MAX_OFFSET = 10_000_000
