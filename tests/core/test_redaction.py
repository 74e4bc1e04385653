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
from leadflood.integrations.apollo.client import ApolloClient
from tests.provider_fakes import APOLLO_SEARCH, FakeApollo, Scripted

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
    logged = stream.getvalue()
    assert logged and KEY not in logged
    assert orjson.loads(logged.splitlines()[-1])["raw"] == MASK


async def test_a_failed_statement_logs_no_parameters(runtime) -> None:
    """A duplicate user used to log the new user's password hash with the SQL error."""
    from leadflood.auth.service import create_user

    async with runtime.db.transaction() as conn:
        await create_user(conn, email="dup@example.com", password="pw-long-enough-1", role="agent")
    with pytest.raises(Exception) as caught:
        async with runtime.db.transaction() as conn:
            await create_user(
                conn, email="dup@example.com", password="pw-long-enough-2", role="agent"
            )
    text = str(caught.value)
    assert "$argon2" not in text and "pw-long-enough" not in text
