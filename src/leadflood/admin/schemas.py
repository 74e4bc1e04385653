"""Admin API bodies: one Create model per entity, Patch models derived from them.

Every model forbids unknown fields. Field rules live in reusable annotated types, so
a Patch (all fields optional) validates a field exactly like its Create.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from leadflood.core.errors import AppError
from leadflood.core.text import single_line
from leadflood.delivery.integration import validate_integration, validate_rules
from leadflood.ingestion.payload import CONTACT_DETAILS
from leadflood.routing.schedule import compile_schedule, zone
from leadflood.validation.rules import parse_rules


def _timezone(value: str) -> str:
    try:
        zone(value)
    except Exception:  # ZoneInfoNotFoundError, ValueError on odd input
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


def _schedule(value: dict[str, Any]) -> dict[str, Any]:
    try:
        compile_schedule(orjson.dumps(value).decode())
    except Exception:
        raise ValueError(
            'schedule must look like {"mon": [["09:00", "17:00"]], ...} with HH:MM times'
        ) from None
    return value


def _rules(value: dict[str, Any]) -> dict[str, Any]:
    try:
        parse_rules(value)
    except AppError as exc:
        raise ValueError(exc.message) from None
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ValueError("must be an http:// or https:// URL")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(single_line),
]
Slug = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
]
Country = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{2}$")]
Currency = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{3}$")]
Timezone = Annotated[str, AfterValidator(_timezone)]
Schedule = Annotated[dict[str, Any], AfterValidator(_schedule)]
# A buyer's posting format and how to read its answer (delivery/integration.py).
IntegrationConfig = Annotated[dict[str, Any], AfterValidator(validate_integration)]
ResponseRulesConfig = Annotated[dict[str, Any], AfterValidator(validate_rules)]
Rules = Annotated[dict[str, Any], AfterValidator(_rules)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Cap = Annotated[int, Field(ge=0)]
Short = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(single_line),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MarketIn(Strict):
    slug: Slug
    name: Name
    country: Country = "US"
    timezone: Timezone = "UTC"
    active: bool = True


class VerticalIn(Strict):
    slug: Slug
    name: Name
    active: bool = True


class ValidationPolicyIn(Strict):
    name: Name
    rules: Rules = Field(default_factory=dict)


class RoutingPolicyIn(Strict):
    name: Name
    strategy: Literal["priority", "rotation", "weighted"] = "priority"
    exclusive_fallback: Literal["fail_closed", "fallback_allowed"] = "fallback_allowed"
    config: dict[str, Any] = Field(default_factory=dict)


def _ping_fields(value: list[str]) -> list[str]:
    named = set(value) & CONTACT_DETAILS
    if named:
        raise ValueError(f"contact details are never pinged: {', '.join(sorted(named))}")
    return list(dict.fromkeys(value))


PingFields = Annotated[
    list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]],
    Field(max_length=50),
    AfterValidator(_ping_fields),
]


class OfferIn(Strict):
    slug: Slug
    name: Name
    market_id: UUID
    vertical_id: UUID
    validation_policy_id: UUID
    routing_policy_id: UUID
    # How long an unrouted lead is retried before it ends `unsold` (0: at the next sweep).
    shelf_life_minutes: int = Field(default=15, ge=0, le=43200)
    active: bool = True
    # The waterfall: how many buyers a lead may be offered to before it ends unsold.
    max_buyer_attempts: int = Field(default=3, ge=1, le=20)
    # Ping-post (decision 0022): what a ping may carry (never contact details), the
    # auction's time budget, how long bids stand, and whether direct posts are auctioned.
    ping_fields: PingFields = Field(default_factory=lambda: ["postal_code", "state", "city"])
    ping_budget_ms: int = Field(default=300, ge=10, le=10_000)
    ping_ttl_seconds: int = Field(default=120, ge=5, le=86_400)
    post_auction: bool = False
    # Multi-sell: a lead may be sold to up to this many buyers as a shared lead.
    max_sales: int = Field(default=1, ge=1, le=10)


class SourceIn(Strict):
    name: Name
    offer_id: UUID
    source_key: Short
    hostname: Short | None = None
    path_prefix: Short | None = None
    # Issue an API key now; it is returned once in the response.
    with_api_key: bool = True
    active: bool = True
    # What the source earns for a lead that sells: a fixed amount, a share of the sale,
    # or (ping-post) the winning price less a margin of payout_cents.
    payout_type: Literal["none", "fixed", "revenue_share", "bid_margin"] = "none"
    payout_cents: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    payout_share: Annotated[float, Field(gt=0, le=1)] | None = None

    @model_validator(mode="after")
    def _payout(self) -> Self:
        if self.payout_type in ("fixed", "bid_margin") and self.payout_cents is None:
            raise ValueError(f"payout_cents is required with payout_type {self.payout_type}")
        if self.payout_type == "revenue_share" and self.payout_share is None:
            raise ValueError("payout_share is required with payout_type revenue_share")
        return self


class BuyerIn(Strict):
    name: Name
    status: Literal["active", "paused"] = "active"
    timezone: Timezone = "UTC"
    delivery_channel: Literal["webhook", "email"] = "webhook"
    webhook_url: HttpUrl | None = None
    # Write-only: stored encrypted, never returned.
    webhook_secret: Annotated[str, StringConstraints(min_length=8, max_length=256)] | None = None
    email: Email | None = None
    schedule: Schedule = Field(default_factory=dict)
    daily_cap: Cap | None = None
    hourly_cap: Cap | None = None
    payment_method: Literal["prepaid", "card", "ach", "wire", "check"] = "prepaid"
    currency: Currency = "USD"
    min_balance_cents: int = 0
    delivery_timeout_ms: Annotated[int, Field(gt=0, le=60_000)] | None = None
    integration: IntegrationConfig | None = None
    # Write-only: the password, token or API key the integration's auth sends.
    integration_secret: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = (
        None
    )
    response_rules: ResponseRulesConfig | None = None
    # Health: after this many failed attempts in a row the buyer pauses itself (0: never).
    pause_after_failures: int = Field(10, ge=0, le=10_000)
    # ... or when more than this share of its last 20 attempts failed (None: off).
    pause_error_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    # A buyer paused by its health resumes itself when a GET of health_url answers 2xx.
    auto_resume: bool = False
    health_url: HttpUrl | None = None
    # Ping-post: how to ask this buyer for a bid (its request and how to read the answer:
    # accepted, price at price_path, bid token at reference_path). Without one it bids
    # its contract price.
    ping_integration: IntegrationConfig | None = None
    ping_rules: ResponseRulesConfig | None = None
    ping_timeout_ms: int = Field(250, ge=10, le=10_000)


class BuyerOfferIn(Strict):
    buyer_id: UUID
    offer_id: UUID
    active: bool = True
    priority: int = 100
    weight: Annotated[int, Field(gt=0)] = 1
    price_cents: Annotated[int, Field(ge=0)] = 0  # for an exclusive lead
    # For a shared lead of an offer that sells to several buyers (None: exclusive only).
    shared_price_cents: Annotated[int, Field(ge=0)] | None = None
    daily_cap: Cap | None = None
    hourly_cap: Cap | None = None
    integration: IntegrationConfig | None = None  # this offer's own posting format


class ServiceAreaIn(Strict):
    buyer_id: UUID
    market_id: UUID
    postal_code: Short | None = None
    city: Short | None = None


class ExclusivityIn(Strict):
    offer_id: UUID
    buyer_id: UUID
    scope_type: Literal["market", "postal_code", "city"]
    scope_value: Short
    starts_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    ends_at: AwareDatetime | None = None
    active: bool = True


def patch_model(create: type[BaseModel], immutable: frozenset[str]) -> type[BaseModel]:
    """Every mutable field of `create`, optional, validated the same way."""
    fields: dict[str, Any] = {}
    for name, info in create.model_fields.items():
        if name in immutable:
            continue
        annotation = info.rebuild_annotation()
        fields[name] = (annotation | None, None)
    return create_model(create.__name__.removesuffix("In") + "Patch", __base__=Strict, **fields)


class ServiceAreaImport(Strict):
    market_id: UUID
    csv: Annotated[str, StringConstraints(max_length=2_000_000)]
    replace: bool = False
