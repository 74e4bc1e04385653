"""Process-wide configuration, read from `LEADFLOOD_*` environment variables."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadflood.core.redact import register

# Public (it is in the source): for development and tests only; production refuses it.
DEV_SECRET_KEY = "dev-insecure-change-me-0123456789abcdef"  # noqa: S105 - public by design
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOOD_", extra="ignore")

    env: Environment = Environment.development
    # No URL → an embedded PostgreSQL is started in `data_dir/pg`.
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEADFLOOD_DATABASE_URL", "DATABASE_URL"),
    )
    # The schema owner's URL for `migrate` and `db grant-app` (unset: the same URL).
    migration_database_url: str | None = None
    data_dir: Path = Path(".leadflood")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    # Connections of the one asyncpg pool per process (decision 0015: more than this
    # only adds contention on a small machine; the bench measured it).
    db_pool_size: int = 20
    max_body_bytes: int = 64 * 1024
    # Every other route's body limit, enforced while reading (413 above it).
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Slow clients are cut off: headers must arrive within this many seconds of the
    # request's first byte, and the whole body within the second (408 request_timeout).
    request_header_timeout_s: float = Field(default=10.0, gt=0)
    request_body_timeout_s: float = Field(default=30.0, gt=0)
    # Addresses (or "*") of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Key for encrypting buyer webhook secrets at rest and signing tokens.
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    # Private/loopback delivery targets: allowed in development and test only by default.
    allow_private_networks: bool | None = None
    worker_concurrency: int = 20
    # Delivery retry schedule: seconds to wait after each failed attempt of a round; a
    # round has one attempt more than delays (the default: 5 attempts over ~42 minutes).
    delivery_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [30.0, 120.0, 600.0, 1800.0], min_length=1, max_length=20
    )
    # Attempts in flight to one buyer at once (0 = no limit): a slow or hanging buyer
    # holds at most this many worker slots; its other deliveries wait their turn.
    delivery_max_in_flight_per_buyer: int = Field(default=10, ge=0)
    # The reconciler (a periodic job) re-enqueues stranded work; and the unrouted sweep
    # retries validated leads until their offer's shelf life ends.
    reconcile_interval_s: float = Field(default=60.0, gt=0)
    # pgqueuer's job log (a row per state of every job) is kept this long, then pruned.
    job_log_retention_days: float = Field(default=7.0, gt=0)
    # A worker backs the database up this often when set (`leadflood backup` on a
    # timer), into backup_dir (default data_dir/backups), keeping the newest backup_keep.
    backup_interval_hours: float | None = Field(default=None, gt=0)
    backup_dir: Path | None = None
    backup_keep: int = Field(default=14, ge=1)
    # A job whose worker stopped heartbeating this long ago is handed to another worker.
    job_heartbeat_timeout_s: float = Field(default=30.0, ge=1)
    unrouted_retry_interval_s: float = Field(default=60.0, gt=0)
    # How often every mailbox with an IMAP inbox is read for replies and bounces.
    imap_poll_interval_s: float = Field(default=60.0, gt=0)
    # SMTP for the email delivery channel (and outreach email later).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "leads@leadflood.local"
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    embedded_worker: bool = True
    # Outreach providers. A missing key makes the provider answer 503 provider_not_configured.
    apollo_api_key: SecretStr | None = None
    apollo_base_url: str = "https://api.apollo.io"
    hunter_api_key: SecretStr | None = None
    hunter_base_url: str = "https://api.hunter.io"
    provider_timeout_s: float = 15.0
    prospect_provider: str = "apollo"
    enrichment_provider: str = "hunter"
    # Outreach messaging. Links in emails (unsubscribe) use the public base URL.
    public_base_url: str | None = None
    trengo_api_key: SecretStr | None = None
    trengo_base_url: str = "https://app.trengo.com"
    trengo_channel_id: int | None = None
    # SMS goes through its own Trengo channel when set (else through trengo_channel_id);
    # inbound messages on it are recorded as SMS.
    trengo_sms_channel_id: int | None = None
    trengo_webhook_secret: SecretStr | None = None
    # Shared secret of the inbound email webhook (X-Leadflood-Signature: sha256=<hex HMAC>).
    inbound_email_secret: SecretStr | None = None
    # Operator alerts (a buyer paused itself, ...): an email address and/or a webhook that
    # takes a Slack-compatible {"text": ...} body.
    alert_email: str | None = None
    alert_webhook_url: str | None = None
    # The built-in catch-all SMTP sink for local use; None = not started.
    smtp_sink_port: int | None = None
    # Requests per minute per client address on /v1 (0 = no limit), and the browser
    # origins allowed to call the API cross-origin (none by default).
    api_rate_limit_per_minute: int = 600
    cors_origins: list[str] = Field(default_factory=list)
    # The offline `sample` providers, only when enabled explicitly (the demo does).
    sample_providers: bool = False
    # Alert rules (evaluated every minute by a worker; see README "Operating Lead Flood").
    alert_queue_age_minutes: float = Field(default=5.0, gt=0)
    alert_buyer_error_rate: float = Field(default=0.5, gt=0, le=1)  # of its last 20 attempts
    alert_source_silent_hours: float = Field(default=3.0, gt=0)
    alert_unsold_per_hour: int = Field(default=20, ge=1)
    alert_mailbox_bounce_rate: float = Field(default=0.05, gt=0, le=1)  # over 24 h, 20+ sent
    alert_heartbeat_minutes: float = Field(default=3.0, gt=0)
    # Unexpected errors of requests and jobs go to this Sentry-compatible DSN when set.
    sentry_dsn: SecretStr | None = None
    # OpenTelemetry traces (request -> jobs, OTLP over HTTP) when set, e.g.
    # http://collector:4318; headers as "name=value,name2=value2" (an API key: secret).
    otlp_endpoint: str | None = None
    otlp_headers: SecretStr | None = None
    # GET /metrics (Prometheus): open in development and test; in production only with
    # `Authorization: Bearer <metrics_token>` (404 when no token is set).
    metrics_token: SecretStr | None = None

    @field_validator("otlp_endpoint")
    @classmethod
    def _collector_url(cls, value: str | None) -> str | None:
        """A collector's base URL, e.g. https://collector:4318 (/v1/traces is added):
        anything else would fail every export, silently, in a background thread."""
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("LEADFLOOD_OTLP_ENDPOINT must be an http:// or https:// URL")
        return value.strip()

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        """Every configured secret is masked wherever it would be stored or logged."""
        register(
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        )
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        """Production refuses to start with a public or weak key: anyone who knows it can
        forge an admin's access token and read every buyer's webhook secret."""
        if self.env == Environment.production:
            key = self.secret_key.get_secret_value()
            if key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    "LEADFLOOD_SECRET_KEY must be set in production to a random value of at "
                    f"least {MIN_SECRET_KEY_LENGTH} characters (the built-in development key "
                    "is public). Generate one with: python3 -c "
                    "'import secrets; print(secrets.token_urlsafe(48))'"
                )
        return self

    @property
    def backup_directory(self) -> Path:
        """Where `leadflood backup` and the scheduled backups write."""
        return self.backup_dir or self.data_dir / "backups"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def private_networks_allowed(self) -> bool:
        if self.allow_private_networks is not None:
            return self.allow_private_networks
        return self.env != Environment.production


@lru_cache
def get_settings() -> Settings:
    return Settings()
