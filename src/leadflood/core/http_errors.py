"""Map framework errors (404, 405, body validation) onto the shared error body."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from leadflood.core.errors import AppError, app_error_response, error_response

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> Response:
        return app_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=exc.headers)

    # A value the database cannot take (an integer past its column's range, an invalid
    # text representation): the client's input, so a 400; never echo the parameters.
    @app.exception_handler(asyncpg.exceptions.DataError)
    @app.exception_handler(asyncpg.exceptions._base.DataError)
    async def _data_error(_: Request, exc: Exception) -> Response:
        return _invalid_value()

    # A read's snapshot (repeatable read) met a concurrent write: safe to try again.
    @app.exception_handler(asyncpg.exceptions.SerializationError)
    async def _serialization(_: Request, exc: Exception) -> Response:
        return error_response(
            503,
            "concurrent_update",
            "the data changed while this request read it; retry",
            {},
            headers={"retry-after": "1"},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        # The API never answers 422: malformed input is a 400 with field details.
        fields = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return error_response(
            400, "invalid_request", "request validation failed", {"fields": fields}
        )


def _invalid_value() -> Response:
    return error_response(
        400, "invalid_value", "a value is out of range or malformed for its field", {}
    )
