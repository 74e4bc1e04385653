"""Fixtures of the outreach tests: fake Apollo and Hunter wired into the settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from leadflood.core.circuit import BREAKERS
from tests.conftest import auth_headers
from tests.provider_fakes import FakeApollo, FakeHunter


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
