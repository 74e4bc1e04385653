"""One error hierarchy, rendered everywhere as {"error": {code, message, details}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    # The unit of work commits what was done before this error (core/uow.py).
    keeps_work: bool = False

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.code = code or cls.code

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        keeps_work: bool = False,
    ) -> None:
        self.keeps_work = keeps_work
        self.code = code or self.code
        self.message = message or self.code.replace("_", " ")
        self.status = status or self.status
        self.details = details or {}
        super().__init__(f"{self.code}: {self.message}")


# Each kind of error: its HTTP status and default code.
class BadRequest(AppError, status=400): ...


class Unauthorized(AppError, status=401, code="unauthorized"): ...


class Forbidden(AppError, status=403, code="forbidden"): ...


class NotFound(AppError, status=404, code="not_found"): ...


class Conflict(AppError, status=409, code="conflict"): ...


class PayloadTooLarge(AppError, status=413, code="payload_too_large"): ...


class RateLimited(AppError, status=429, code="rate_limited"): ...


class ServiceUnavailable(AppError, status=503, code="service_unavailable"): ...


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details or {}}})


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(code, message, details),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def app_error_response(exc: AppError) -> Response:
    headers = None
    retry_after = exc.details.get("retry_after_s")
    if exc.status in (429, 503) and isinstance(retry_after, int):
        headers = {"Retry-After": str(retry_after)}
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)
