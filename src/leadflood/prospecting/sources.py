"""Prospect search providers behind one interface: Apollo (real) and `sample` (offline)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from leadflood.core.providers import check_provider
from leadflood.core.settings import Settings
from leadflood.integrations.apollo.client import ApolloClient

LEAD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "title",
    "seniority",
    "phone",
    "linkedin_url",
    "company",
    "company_domain",
    "company_size",
    "industry",
    "city",
    "state",
    "country",
)

if TYPE_CHECKING:
    from leadflood.prospecting.repository import Icp


class ProspectProvider(StrEnum):
    apollo = "apollo"
    sample = "sample"


@dataclass(frozen=True)
class SearchFilters:
    """An ICP's filters, normalized (trimmed, de-duplicated, sorted) so equal ICPs hash equal."""

    titles: tuple[str, ...] = ()
    seniorities: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    company_sizes: tuple[str, ...] = ()
    keywords: str = ""
    domains: tuple[str, ...] = ()

    @classmethod
    def from_icp(cls, icp: Icp) -> SearchFilters:
        def norm(values: Any, lower: bool = False) -> tuple[str, ...]:
            # Case-insensitive de-duplication; the first spelling given is kept.
            seen: dict[str, str] = {}
            for value in values or ():
                text = " ".join(str(value).split())
                if text:
                    seen.setdefault(text.casefold(), text.lower() if lower else text)
            return tuple(seen[k] for k in sorted(seen))

        return cls(
            titles=norm(icp.titles),
            seniorities=norm(icp.seniorities, lower=True),
            locations=norm(icp.locations),
            industries=norm(icp.industries),
            company_sizes=tuple(sorted({s.replace(" ", "") for s in icp.company_sizes or ()})),
            keywords=" ".join(str(icp.keywords or "").split()),
            domains=norm(icp.domains, lower=True),
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Prospect:
    provider_ref: str
    fields: dict[str, str | None]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProspectPage:
    prospects: list[Prospect]
    has_more: bool
    total: int | None
    meta: dict[str, Any] = field(default_factory=dict)


class ProspectSource(Protocol):
    name: str

    async def search(self, filters: SearchFilters, page: int, per_page: int) -> ProspectPage: ...

    async def close(self) -> None: ...


# ---- Apollo ---------------------------------------------------------------------------


def apollo_filters(filters: SearchFilters) -> dict[str, Any]:
    return {
        "person_titles": list(filters.titles),
        "person_seniorities": list(filters.seniorities),
        "person_locations": list(filters.locations),
        "organization_num_employees_ranges": list(filters.company_sizes),
        "q_organization_domains_list": list(filters.domains),
        "q_organization_keyword_tags": list(filters.industries),
        "q_keywords": filters.keywords.strip(),
    }


def _locked(email: str | None) -> bool:
    # Apollo returns placeholders such as email_not_unlocked@domain.com for hidden emails.
    return not email or "not_unlocked" in email or "@" not in email


def map_apollo_person(person: dict[str, Any]) -> Prospect:
    org = person.get("organization") or {}
    email = person.get("email")
    size = org.get("estimated_num_employees")
    domain = org.get("primary_domain") or (org.get("website_url") or "").split("//")[-1].strip("/")
    phones = person.get("phone_numbers") or []
    return Prospect(
        provider_ref=str(person.get("id")),
        fields={
            "first_name": person.get("first_name"),
            # api_search shows only `last_name_obfuscated` ("Sm***h"); that is no name.
            "last_name": person.get("last_name"),
            "email": None if _locked(email) else email,
            "title": person.get("title"),
            "seniority": person.get("seniority"),
            "phone": (phones[0] or {}).get("sanitized_number") if phones else None,
            "linkedin_url": person.get("linkedin_url"),
            "company": org.get("name"),
            "company_domain": domain or None,
            "company_size": str(size) if size else None,
            "industry": org.get("industry"),
            "city": person.get("city"),
            "state": person.get("state"),
            "country": person.get("country"),
        },
        raw=person,
    )


class ApolloSource:
    name = ProspectProvider.apollo.value

    def __init__(self, client: ApolloClient) -> None:
        self.client = client

    async def search(self, filters: SearchFilters, page: int, per_page: int) -> ProspectPage:
        result = await self.client.search_people(apollo_filters(filters), page, per_page)
        return ProspectPage(
            prospects=[map_apollo_person(p) for p in result.people if p.get("id")],
            has_more=result.has_more,
            total=result.total_entries,
            meta={"requests_left": result.requests_left},
        )

    async def close(self) -> None:
        await self.client.close()


# ---- sample (offline, deterministic) ---------------------------------------------------

SAMPLE_FILE = Path(__file__).with_name("sample_people.csv")


@lru_cache(maxsize=1)
def sample_people() -> tuple[dict[str, str], ...]:
    with SAMPLE_FILE.open(newline="") as handle:
        return tuple(csv.DictReader(handle))


def _matches(person: dict[str, str], filters: SearchFilters) -> bool:
    def any_in(needles: tuple[str, ...], haystack: str) -> bool:
        return not needles or any(n.lower() in haystack.lower() for n in needles)

    place = f"{person['city']}, {person['state']}, {person['country']}"
    words = filters.keywords.lower().split()
    text = f"{person['title']} {person['company']} {person['industry']}".lower()
    return (
        any_in(filters.titles, person["title"])
        and (not filters.seniorities or person["seniority"] in filters.seniorities)
        and any_in(filters.locations, place)
        and any_in(filters.industries, person["industry"])
        and (not filters.company_sizes or person["company_size"] in filters.company_sizes)
        and (not filters.domains or person["company_domain"] in filters.domains)
        and all(w in text for w in words)
    )


class SampleSource:
    """The data set in sample_people.csv; like Apollo, a third of it has no email."""

    name = ProspectProvider.sample.value

    async def search(self, filters: SearchFilters, page: int, per_page: int) -> ProspectPage:
        found = [p for p in sample_people() if _matches(p, filters)]
        chunk = found[(page - 1) * per_page : page * per_page]
        return ProspectPage(
            prospects=[
                Prospect(p["id"], {k: (p.get(k) or None) for k in LEAD_FIELDS}, dict(p))
                for p in chunk
            ],
            has_more=page * per_page < len(found),
            total=len(found),
        )

    async def close(self) -> None:
        return None


def check_available(provider: str, settings: Settings) -> None:
    check_provider(provider, ProspectProvider, settings, {"apollo": "apollo_api_key"})


def source_for(provider: str, settings: Settings) -> ProspectSource:
    check_available(provider, settings)
    if provider == ProspectProvider.sample:
        return SampleSource()
    assert settings.apollo_api_key is not None
    return ApolloSource(
        ApolloClient(
            settings.apollo_api_key.get_secret_value(),
            settings.apollo_base_url,
            settings.provider_timeout_s,
        )
    )
