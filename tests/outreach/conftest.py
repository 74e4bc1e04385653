"""Fixtures of the outreach tests: fake Apollo and Hunter wired into the settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from leadflood.core.circuit import BREAKERS
from leadflood.integrations.smtp.sink import start_sink
from tests.conftest import auth_headers
from tests.imap_server import dovecot  # noqa: F401 - a fixture for the mailbox tests
from tests.live import free_port
from tests.provider_fakes import FakeApollo, FakeHunter

INBOUND_SECRET = "inbound-secret"


@pytest.fixture
def fakes(runtime):
    BREAKERS.clear()
    with FakeApollo(total=5) as apollo, FakeHunter() as hunter:
        s = runtime.settings
        s.apollo_api_key, s.apollo_base_url = SecretStr("apollo-test-key"), apollo.base
        s.hunter_api_key, s.hunter_base_url = SecretStr("hunter-test-key"), hunter.base
        s.sample_providers = True
        yield apollo, hunter
    BREAKERS.clear()


@pytest.fixture
async def manager(client, runtime):
    return await auth_headers(client, runtime, "manager")


@pytest.fixture
def smtp(runtime):
    """A real SMTP server (the built-in sink) receiving what the sender sends."""
    port = free_port()
    sink = start_sink(runtime.db.url, port)
    s = runtime.settings
    s.smtp_host, s.smtp_port = "127.0.0.1", port
    s.inbound_email_secret = SecretStr(INBOUND_SECRET)
    s.public_base_url = "https://app.example.com"
    yield
    sink.stop()
