"""Step templates: Jinja2 in a sandbox, and a missing value is an error, never a blank.

`check()` runs when a step is saved: syntax, and only known variables. `render()` runs
before each send: a variable the lead has no value for stops that message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from leadflood.core.errors import BadRequest

VARIABLES = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "title",
    "company",
    "industry",
    "city",
    "country",
    "sender_name",
    "unsubscribe_url",
)

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

if TYPE_CHECKING:
    from leadflood.prospecting.repository import Prospect


class MissingVariables(Exception):
    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"no value for {', '.join(names)}")


def check(text: str, field: str) -> None:
    try:
        used = meta.find_undeclared_variables(_env.parse(text))
    except TemplateSyntaxError as exc:
        raise BadRequest(
            "invalid_template",
            f"{field}: {exc.message} (line {exc.lineno})",
            details={"field": field},
        ) from None
    unknown = sorted(used - set(VARIABLES))
    if unknown:
        raise BadRequest(
            "unknown_template_variable",
            f"{field}: unknown variable(s) {', '.join(unknown)}; use {', '.join(VARIABLES)}",
            details={"field": field, "unknown": unknown},
        )


def variables_used(text: str | None) -> set[str]:
    return set(meta.find_undeclared_variables(_env.parse(text or "")))


def context_for(lead: Prospect, extra: dict[str, Any]) -> dict[str, Any]:
    full = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    values = {name: lead.field(name) for name in VARIABLES} | {"full_name": full or None} | extra
    return {k: v for k, v in values.items() if v not in (None, "")}


def render(text: str | None, context: dict[str, Any]) -> str:
    text = text or ""
    missing = sorted(variables_used(text) - set(context))
    if missing:
        raise MissingVariables(missing)
    try:
        return _env.from_string(text).render(context)
    except (UndefinedError, SecurityError) as exc:
        raise MissingVariables([str(exc)]) from None
