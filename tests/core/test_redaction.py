"""Issue 14: credentials echoed by a provider, or carried by a failed statement, are
never stored, returned or logged."""

from __future__ import annotations

import io

import orjson
import pytest
from pydantic import SecretStr

from leadflood.core.logging import configure_logging
from leadflood.core.providers import PermanentProviderError
from leadflood.core.redact import MASK, redact, register
from leadflood.core.settings import Settings
from leadflood.core.uow import unit_of_work
from leadflood.integrations.apollo.client import ApolloClient
from tests.provider_fakes import APOLLO_SEARCH, FakeApollo, Scripted
from tests.sql import run

KEY = "apollo-live-key-9f8e7d6c5b4a"


@pytest.mark.parametrize(
    "echo",
    [
        f"Authorization: Bearer {KEY}",
        f'{{"headers": {{"x-api-key": "{KEY}"}}}}',
        f"GET /v1/people?api_key={KEY}&page=1",
        "Authorization: Basic dXNlcjpzZWNyZXQtcGFzc3dvcmQ=",
        "password=hunter2-but-longer",
    ],
)
def test_credential_shapes_are_masked_even_when_unknown(echo) -> None:
    out = redact(echo)
    assert MASK in out
    for secret in (KEY, "dXNlcjpzZWNyZXQtcGFzc3dvcmQ=", "hunter2-but-longer"):
        assert secret not in out


def test_configured_secrets_are_masked_anywhere() -> None:
    Settings(database_url="postgresql://x/y", hunter_api_key=SecretStr("hunter-key-abcdef123"))
    assert redact("the key hunter-key-abcdef123 was echoed") == f"the key {MASK} was echoed"


async def test_a_provider_echoing_our_key_leaks_it_nowhere() -> None:
    register([KEY])
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    with FakeApollo(total=1) as apollo:
        apollo.script(
            APOLLO_SEARCH,
            Scripted(401, {"error": f"invalid key; you sent X-Api-Key: {KEY}", "key": KEY}),
        )
        client = ApolloClient(KEY, apollo.base)
        try:
            with pytest.raises(PermanentProviderError) as caught:
                await client.search_people(filters={})
        finally:
            await client.close()
    assert KEY not in caught.value.message and KEY not in str(caught.value)
    import structlog

    structlog.get_logger("t").warning("provider_failed", error=str(caught.value), raw=KEY)
    configure_logging("INFO", json=True)  # back to stderr for the tests after this one
    logged = stream.getvalue()
    assert logged and KEY not in logged
    assert orjson.loads(logged.splitlines()[-1])["raw"] == MASK


async def test_a_failed_statement_logs_no_parameters(runtime) -> None:
    """A failed insert used to carry its parameters (a new user's password hash) into the
    exception text, and so into the unhandled-error log line and the CLI's output."""

    secret_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    with pytest.raises(Exception) as caught:
        async with unit_of_work(runtime.db) as conn:
            await run(
                conn,
                "INSERT INTO users (email, name, role, password_hash) "
                "VALUES (:email, :name, 'agent', :hash)",
                {"email": "x@example.com", "name": "bad\x00name", "hash": secret_hash},
            )
    assert secret_hash not in str(caught.value)
    assert secret_hash not in repr(caught.value)
    assert "UTF8" in str(caught.value)  # the real error, without the values


def test_the_cli_prints_no_password_hash_when_a_user_exists(database_url, monkeypatch, cli) -> None:
    monkeypatch.setenv("LEADFLOOD_DATABASE_URL", database_url)
    monkeypatch.setenv("LEADFLOOD_ENV", "test")
    monkeypatch.setenv("LEADFLOOD_NEW_USER_PASSWORD", "a long enough password")
    args = ["users", "create", "--email", "cli-dup@example.com", "--role", "agent"]
    first = cli(*args)
    second = cli(*args)
    assert first.exit_code == 0, first.output
    assert second.exit_code != 0
    assert "$argon2" not in second.output and "a long enough password" not in second.output
    assert "$argon2" not in str(second.exception or "")
