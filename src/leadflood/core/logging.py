"""structlog JSON logs; request_id / job_id are bound through contextvars."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from leadflood.core.redact import redact_event

_service = "leadflood"


def service_name() -> str:
    """The name this process logs under (traces use it too)."""
    return _service


def configure_logging(
    level: str = "INFO",
    json: bool = True,
    stream: TextIO | None = None,
    *,
    service: str = "leadflood",
    env: str = "development",
) -> None:
    """Every line carries the process's `service` (leadflood-serve, leadflood-worker, …)
    and `env`; request_id, job_id and user_id where they are known."""
    global _service
    _service = service

    def identify(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        event.setdefault("env", env)
        return event

    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        identify,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # After format_exc_info, so tracebacks are covered too.
        redact_event,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def cache_loggers() -> None:
    """For long-running processes: bind each module logger once instead of per call.

    Left off by default so tests can point logging at a new stream.
    """
    structlog.configure(cache_logger_on_first_use=True)


def get_logger(name: str = "leadflood") -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
