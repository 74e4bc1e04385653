"""Enrichment providers behind one interface: Hunter and Apollo (real), `sample` (offline)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from leadflood.core.providers import check_provider
from leadflood.core.settings import Settings
from leadflood.integrations.apollo.client import ApolloClient
from leadflood.integrations.hunter.client import HunterClient
from leadflood.prospecting.sources import map_apollo_person

EMAIL_STATUSES = ("valid", "invalid", "accept_all", "webmail", "disposable", "unknown")

if TYPE_CHECKING:
    from leadflood.prospecting.repository import Prospect


class EnrichmentProvider(StrEnum):
    hunter = "hunter"
    apollo = "apollo"
    sample = "sample"


@dataclass(frozen=True)
class Enrichment:
    fields: dict[str, Any]
    outcome: str  # found | not_found
    raw: dict[str, Any] = field(default_factory=dict)


class Enricher(Protocol):
    name: str

    async def enrich(self, lead: Prospect) -> Enrichment: ...

    async def close(self) -> None: ...


def _dict(value: Any) -> dict[str, Any]:
    """A nested object of a provider's answer, or {} when it is missing or odd."""
    return value if isinstance(value, dict) else {}


def _status(value: Any) -> str:
    return value if value in EMAIL_STATUSES else "unknown"


class HunterEnricher:
    """Find the email when missing (by domain or company, and the person's name), take the
    finder's own verification when it made one (no second, billed verifier call), verify
    an address the lead already had, and fill company facts from Company Enrichment."""

    name = EnrichmentProvider.hunter.value

    def __init__(self, client: HunterClient) -> None:
        self.client = client

    async def enrich(self, lead: Prospect) -> Enrichment:
        raw: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        email = lead.email
        domain = lead.company_domain or (email.split("@")[-1] if email else None)
        status = None
        if not email:
            if not (domain or lead.company):
                return Enrichment({}, "not_found", {"reason": "no company domain or name"})
            if not (lead.first_name and lead.last_name):
                # Hunter needs the whole name; a search may bring only a first name.
                return Enrichment({}, "not_found", {"reason": "no full name to search for"})
            found = await self.client.email_finder(
                domain=domain,
                company=lead.company,
                first_name=lead.first_name,
                last_name=lead.last_name,
            )
            raw["email_finder"] = found
            email = found.get("email")
            if not email:
                return Enrichment({}, "not_found", raw)
            status = _dict(found.get("verification")).get("status")
            domain = domain or found.get("domain")
            fields.update(
                email=email,
                title=found.get("position"),
                linkedin_url=found.get("linkedin_url"),
                phone=found.get("phone_number"),
                company=found.get("company"),
                company_domain=found.get("domain"),
            )
        if status is None:
            verified = await self.client.email_verifier(email)
            raw["email_verifier"] = verified
            status = verified.get("status")
        fields["email_status"] = _status(status)
        if domain and not (lead.industry and lead.company_size):
            org = await self.client.company(domain)
            raw["company"] = org
            category, metrics = _dict(org.get("category")), _dict(org.get("metrics"))
            geo = _dict(org.get("geo"))
            employees = metrics.get("employeesRange") or metrics.get("employees")
            fields.update(
                company=fields.get("company") or org.get("name"),
                industry=category.get("industry"),
                company_size=str(employees) if employees else None,
                country=geo.get("country"),
            )
        return Enrichment({k: v for k, v in fields.items() if v}, "found", raw)

    async def close(self) -> None:
        await self.client.close()


# Apollo's email_status values, read as our verification verdicts.
_APOLLO_EMAIL_STATUS = {"verified": "valid", "bounced": "invalid", "invalid": "invalid"}


class ApolloEnricher:
    """People Enrichment by the Apollo id a search found (one credit per lead): the email,
    full last name, LinkedIn profile and company facts that the search never returns."""

    name = EnrichmentProvider.apollo.value

    def __init__(self, client: ApolloClient) -> None:
        self.client = client

    async def enrich(self, lead: Prospect) -> Enrichment:
        if lead.source != "apollo" or not lead.source_ref:
            return Enrichment({}, "not_found", {"reason": "the lead was not found by Apollo"})
        return self._read(await self.client.match_person(lead.source_ref))

    async def enrich_many(self, leads: list[Prospect]) -> list[Enrichment]:
        """Up to 10 leads in one Bulk People Enrichment call, answers in the same order."""
        found = [lead for lead in leads if lead.source == "apollo" and lead.source_ref]
        people = (
            await self.client.bulk_match([lead.source_ref or "" for lead in found]) if found else []
        )
        by_lead = {lead.id: person for lead, person in zip(found, people, strict=True)}
        return [
            self._read(by_lead[lead.id])
            if lead.id in by_lead
            else Enrichment({}, "not_found", {"reason": "the lead was not found by Apollo"})
            for lead in leads
        ]

    @staticmethod
    def _read(person: dict | None) -> Enrichment:
        if person is None:
            return Enrichment({}, "not_found", {"reason": "Apollo has no match for this id"})
        fields = {k: v for k, v in map_apollo_person(person).fields.items() if v}
        if fields.get("email"):
            fields["email_status"] = _APOLLO_EMAIL_STATUS.get(
                str(person.get("email_status") or ""), "unknown"
            )
        return Enrichment(fields, "found" if fields else "not_found", {"people_match": person})

    async def close(self) -> None:
        await self.client.close()


class SampleEnricher:
    """Deterministic offline enrichment: first.last@domain, a stable verification verdict."""

    name = EnrichmentProvider.sample.value

    async def enrich(self, lead: Prospect) -> Enrichment:
        email = lead.email
        first, last = (lead.first_name or "").lower(), (lead.last_name or "").lower()
        if not email and lead.company_domain and first and last:
            email = f"{first}.{last}@{lead.company_domain}"
        if not email:
            return Enrichment({}, "not_found", {"reason": "no email, name or domain"})
        bucket = int(hashlib.sha256(email.encode()).hexdigest(), 16) % 20
        status = (
            "valid"
            if bucket < 14
            else "accept_all"
            if bucket < 17
            else "invalid"
            if bucket < 19
            else "unknown"
        )
        return Enrichment(
            {"email": email, "email_status": status},
            "found",
            {"sample": {"email": email, "status": status}},
        )

    async def close(self) -> None:
        return None


def check_available(provider: str, settings: Settings) -> None:
    keys = {"hunter": "hunter_api_key", "apollo": "apollo_api_key"}
    check_provider(provider, EnrichmentProvider, settings, keys)


def enricher_for(provider: str, settings: Settings) -> Enricher:
    check_available(provider, settings)
    if provider == EnrichmentProvider.sample:
        return SampleEnricher()
    if provider == EnrichmentProvider.apollo:
        assert settings.apollo_api_key is not None
        return ApolloEnricher(
            ApolloClient(
                settings.apollo_api_key.get_secret_value(),
                settings.apollo_base_url,
                settings.provider_timeout_s,
            )
        )
    assert settings.hunter_api_key is not None
    return HunterEnricher(
        HunterClient(
            settings.hunter_api_key.get_secret_value(),
            settings.hunter_base_url,
            settings.provider_timeout_s,
        )
    )
