"""The configuration entities the admin API manages, declared once.

Endpoints, the web UI's forms and the audit trail are all driven by these
declarations; per-entity rules (secrets, canonical forms) live in the service.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field

from pydantic import BaseModel

from leadflood.admin import schemas


@dataclass(frozen=True)
class Resource:
    name: str  # URL segment, e.g. "buyer-offers"
    table: str
    entity: str  # audit entity type, singular
    create: type[BaseModel]
    title: str
    immutable: frozenset[str] = frozenset()
    # Columns never returned (replaced by a *_set / has_* flag in the output).
    hidden: frozenset[str] = frozenset()
    # Columns shown but not settable through `create` (balances, clocks).
    readonly: frozenset[str] = frozenset()
    # Query parameters that filter the list (equality on the column).
    filters: tuple[str, ...] = ()
    order_by: str = "created_at DESC, id DESC"
    label: str = "name"
    patch: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch", schemas.patch_model(self.create, self.immutable))

    @property
    def shown(self) -> frozenset[str]:
        """The columns the API returns: an allow-list, so a column added later (a key
        hash, a secret) stays out of every response until it is named here."""
        return (
            (frozenset(self.create.model_fields) | _ALWAYS_SHOWN | self.readonly)
            - self.hidden
            - WRITE_ONLY
        )

    @property
    def nullable(self) -> frozenset[str]:
        """Fields that a PATCH may set to null (clearing them)."""
        names = set()
        for name, info in self.create.model_fields.items():
            args = typing.get_args(info.annotation)
            if info.annotation is types.NoneType or types.NoneType in args:
                names.add(name)
        return frozenset(names)


_COUNTERS = frozenset({"cap_day_window", "cap_day_count", "cap_hour_window", "cap_hour_count"})
_ALWAYS_SHOWN = frozenset({"id", "created_at", "updated_at"})
# Accepted on input, never returned.
WRITE_ONLY = frozenset({"webhook_secret", "integration_secret"})

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("markets", "markets", "market", schemas.MarketIn, "Markets", order_by="slug"),
        Resource(
            "verticals", "verticals", "vertical", schemas.VerticalIn, "Verticals", order_by="slug"
        ),
        Resource(
            "validation-policies",
            "validation_policies",
            "validation_policy",
            schemas.ValidationPolicyIn,
            "Validation policies",
            order_by="name",
        ),
        Resource(
            "routing-policies",
            "routing_policies",
            "routing_policy",
            schemas.RoutingPolicyIn,
            "Routing policies",
            order_by="name",
        ),
        Resource(
            "offers",
            "offers",
            "offer",
            schemas.OfferIn,
            "Offers",
            readonly=frozenset({"return_window_days"}),
            filters=("market_id", "vertical_id", "active"),
            order_by="slug",
        ),
        Resource(
            "sources",
            "sources",
            "source",
            schemas.SourceIn,
            "Sources",
            immutable=frozenset({"with_api_key"}),
            hidden=frozenset({"api_key_hash"}),
            filters=("offer_id", "active"),
            order_by="name",
        ),
        Resource(
            "buyers",
            "buyers",
            "buyer",
            schemas.BuyerIn,
            "Buyers",
            hidden=frozenset({"webhook_secret", "integration_secret", "api_key_hash"}) | _COUNTERS,
            readonly=frozenset(
                {
                    "balance_cents",
                    "reserved_cents",
                    "max_return_rate",
                    "consecutive_failures",
                    "paused_reason",
                    "paused_at",
                }
            ),
            filters=("status",),
            order_by="name",
        ),
        Resource(
            "buyer-offers",
            "buyer_offers",
            "buyer_offer",
            schemas.BuyerOfferIn,
            "Buyer offers",
            immutable=frozenset({"buyer_id", "offer_id"}),
            hidden=_COUNTERS,
            readonly=frozenset({"last_routed_at"}),
            filters=("buyer_id", "offer_id", "active"),
            label="id",
        ),
        Resource(
            "service-areas",
            "buyer_service_areas",
            "service_area",
            schemas.ServiceAreaIn,
            "Service areas",
            immutable=frozenset({"buyer_id"}),
            filters=("buyer_id", "market_id", "postal_code"),
            order_by="postal_code NULLS FIRST, city NULLS FIRST, id",
            label="postal_code",
        ),
        Resource(
            "exclusivities",
            "offer_exclusivities",
            "exclusivity",
            schemas.ExclusivityIn,
            "Exclusivities",
            immutable=frozenset({"offer_id", "buyer_id"}),
            filters=("offer_id", "buyer_id", "active"),
            label="scope_value",
        ),
    )
}
