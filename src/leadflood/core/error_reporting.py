"""Optional error reporting to a Sentry-compatible endpoint (issue 19): on when
LEADFLOOD_SENTRY_DSN is set. Unexpected errors of requests (the 500s our middleware
answers) and of jobs are sent with the release (`leadflood@<version>`) and environment;
no personal data, and every string passes the same redaction as the logs."""

from __future__ import annotations

from typing import Any

from leadflood import __version__
from leadflood.core.redact import redact
from leadflood.core.settings import Settings

_enabled = False


def init_error_reporting(settings: Settings) -> bool:
    global _enabled
    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else None
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        release=f"leadflood@{__version__}",
        environment=settings.env.value,
        send_default_pii=False,
        traces_sample_rate=0.0,
        # A frame's locals may hold a decrypted buyer credential no pattern recognizes:
        # none are sent, nor source lines; what is sent passes the logs' redaction.
        include_local_variables=False,
        include_source_context=False,
        # We report what our middleware and job runner catch: no integration patches the
        # framework (one read every form body, leads' personal data included, and handed
        # the handlers its own parse).
        default_integrations=False,
        auto_enabling_integrations=False,
        max_request_body_size="never",
        before_send=_scrub,
    )
    _enabled = True
    return True


def report(exc: BaseException) -> None:
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)


def _scrub(event: Any, hint: dict[str, Any]) -> Any:
    return _redacted(event)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value
