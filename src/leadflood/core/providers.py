"""What every provider adapter raises, so domains can decide retry vs give up."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from leadflood.core.errors import BadRequest, ServiceUnavailable
from leadflood.core.redact import redact
from leadflood.core.settings import Settings


class ProviderError(Exception):
    def __init__(self, provider: str, code: str, message: str, *, status: int | None = None):
        self.provider = provider
        self.code = code
        # Provider bodies are untrusted and may echo our credentials: this message is
        # stored (job executions, enrichment history), returned and logged.
        message = redact(message)
        self.message = message
        self.status = status
        super().__init__(f"{provider}: {code}: {message}")


class TransientProviderError(ProviderError):
    """Worth retrying later: rate limits, 5xx, timeouts, connection errors."""

    def __init__(
        self,
        provider: str,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: timedelta | None = None,
    ):
        super().__init__(provider, code, message, status=status)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying cannot help: bad key, invalid request, credits exhausted, opted out."""


# The one classifier of an HTTP status, for buyers (delivery) and providers alike.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def classify_status(status: int) -> str:
    """success | retryable_error | permanent_error."""
    if 200 <= status < 300:
        return "success"
    if status in RETRYABLE_STATUSES or status >= 500:
        return "retryable_error"
    return "permanent_error"


def raise_for_status(
    provider: str,
    status: int,
    message: str,
    *,
    retry_after: timedelta | None = None,
    special: dict[int, tuple[type[ProviderError], str]] | None = None,
) -> None:
    """Nothing for a 2xx; else the error a domain decides retry-or-give-up on. A provider's
    own meanings come first (`special`: Hunter's 403 is its rate limit, its 429 the spent
    monthly credits), then the shared rule."""
    if 200 <= status < 300:
        return
    if special and status in special:
        kind, code = special[status]
        if kind is TransientProviderError:
            raise TransientProviderError(
                provider, code, message, status=status, retry_after=retry_after
            )
        raise kind(provider, code, message, status=status)
    if classify_status(status) == "retryable_error":
        code = "rate_limited" if status == 429 else "provider_unavailable"
        raise TransientProviderError(
            provider, code, message, status=status, retry_after=retry_after
        )
    if status in (401, 403):
        raise PermanentProviderError(provider, "provider_auth_failed", message, status=status)
    raise PermanentProviderError(provider, "provider_rejected_request", message, status=status)


def provider_not_configured(provider: str, setting: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        "provider_not_configured",
        f"{provider} is not configured: set {setting}",
        details={"provider": provider},
    )


def excerpt(text: str, limit: int = 300) -> str:
    """A short, single-line piece of a provider response for errors and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def check_provider(
    provider: str, known: Iterable[str], settings: Settings, keys: dict[str, str]
) -> None:
    """The API error a request for `provider` should get, if any: unknown (400), the
    offline `sample` provider while not enabled (400), or a missing key (503)."""
    known = list(known)
    if provider not in known:
        raise BadRequest("unknown_provider", f"provider must be one of {', '.join(known)}")
    if provider == "sample" and not settings.sample_providers:
        raise BadRequest(
            "provider_not_enabled",
            "the sample provider is off; set LEADFLOOD_SAMPLE_PROVIDERS=true",
        )
    setting = keys.get(provider)
    if setting and getattr(settings, setting) is None:
        raise provider_not_configured(provider, f"LEADFLOOD_{setting.upper()}")
