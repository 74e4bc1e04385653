"""Request bodies of the prospecting API (unknown fields refused)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_SIZE = re.compile(r"^\d+,\d*$")


def _sizes(values: list[str]) -> list[str]:
    out = []
    for value in values:
        compact = value.replace(" ", "")
        if not _SIZE.match(compact):
            raise ValueError(f"company size ranges look like '11,50' or '5001,' (got {value!r})")
        low, _, high = compact.partition(",")
        if high and int(high) < int(low):
            raise ValueError(f"range {value!r} ends before it starts")
        out.append(compact)
    return out


# Apollo's person_seniorities values (its People API Search documents exactly these).
SENIORITIES = (
    "owner",
    "founder",
    "c_suite",
    "partner",
    "vp",
    "head",
    "director",
    "manager",
    "senior",
    "entry",
    "intern",
)


def _seniorities(values: list[str]) -> list[str]:
    out = []
    for value in values:
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in SENIORITIES:
            raise ValueError(f"seniority {value!r} is not one of {', '.join(SENIORITIES)}")
        out.append(key)
    return out


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Terms = Annotated[list[Text], Field(max_length=50)]


class IcpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    titles: Terms = Field(default_factory=list)
    seniorities: Annotated[Terms, AfterValidator(_seniorities)] = Field(default_factory=list)
    locations: Terms = Field(default_factory=list)
    industries: Terms = Field(default_factory=list)
    company_sizes: Annotated[Terms, AfterValidator(_sizes)] = Field(default_factory=list)
    keywords: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    domains: Terms = Field(default_factory=list)


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = None  # default: LEADFLOOD_PROSPECT_PROVIDER
    pages: int = Field(1, ge=1, le=10)
    per_page: int = Field(25, ge=1, le=100)
    # After the search, enrich this many of its leads that have no email, top-ranked
    # first. Apollo's search returns no emails; its People Enrichment spends one credit
    # per lead, so it runs only when asked, and never for more than this many.
    enrich_top: int = Field(0, ge=0, le=100)


Optional = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None


class LeadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+$")]
    first_name: Optional = None
    last_name: Optional = None
    title: Optional = None
    phone: Optional = None
    linkedin_url: Optional = None
    company: Optional = None
    company_domain: Optional = None
    industry: Optional = None
    city: Optional = None
    state: Optional = None
    country: Optional = None
    icp_id: uuid.UUID | None = None
    # Start an enrichment (the default provider) once the lead is created; the response
    # carries its job id.
    enrich: bool = False
