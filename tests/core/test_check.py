"""`leadflood check`: each production problem named with its setting, non-zero exit; a
good configuration passes; development has no production rules."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from leadflood.core import migrate
from leadflood.core.checks import configuration_problems, environment_problems
from leadflood.core.settings import Environment
from tests.conftest import make_settings
from tests.live import free_port
from tests.pg import recreate_database, server_url

STRONG = "s" * 48


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "LEADFLOOD_LOG_JSON": "false"}
    return subprocess.run(
        [sys.executable, "-m", "leadflood.cli", "check"],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=120,
    )


def test_production_problems_name_their_settings(database_url) -> None:
    bad = make_settings(
        database_url,
        env=Environment.production,
        secret_key=STRONG,
        public_base_url="http://leads.example.com",
        allow_private_networks=True,
        smtp_sink_port=2525,
        cors_origins=["*"],
        otlp_endpoint="http://collector.example.com:4318",
        otlp_headers="authorization=Bearer k",
    )
    named = {p.setting for p in configuration_problems(bad)}
    assert named == {
        "LEADFLOOD_PUBLIC_BASE_URL",
        "LEADFLOOD_ALLOW_PRIVATE_NETWORKS",
        "LEADFLOOD_SMTP_SINK_PORT",
        "LEADFLOOD_CORS_ORIGINS",
        "LEADFLOOD_METRICS_TOKEN",
        "LEADFLOOD_OTLP_ENDPOINT",
    }
    good = make_settings(
        database_url,
        env=Environment.production,
        secret_key=STRONG,
        public_base_url="https://leads.example.com",
        allow_private_networks=False,
        metrics_token="t" * 24,
        otlp_endpoint="https://collector.example.com:4318",
        otlp_headers="authorization=Bearer k",
    )
    assert configuration_problems(good) == []
    assert configuration_problems(make_settings(database_url)) == []


async def test_the_environment_checks_the_database_and_smtp(database_url) -> None:
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=free_port())
    problems = await environment_problems(settings, database_url, migrate.head())
    assert [p.setting for p in problems] == ["LEADFLOOD_SMTP_HOST"]
    stale = await asyncio.to_thread(recreate_database, server_url(), "leadflood_check_stale")
    problems = await environment_problems(make_settings(stale), stale, migrate.head())
    assert [p.setting for p in problems] == ["database"] and "leadflood migrate" in problems[
        0
    ].message
    gone = "postgresql://postgres@127.0.0.1:1/nothing"
    problems = await environment_problems(make_settings(gone), gone, migrate.head())
    assert [p.setting for p in problems] == ["LEADFLOOD_DATABASE_URL"]


def test_the_command_exits_non_zero_on_problems_and_zero_when_fit(database_url) -> None:
    url = recreate_database(server_url(), "leadflood_check_cli")
    migrate.upgrade(url)
    production = {
        "LEADFLOOD_ENV": "production",
        "LEADFLOOD_DATABASE_URL": url,
        "LEADFLOOD_SECRET_KEY": STRONG,
    }
    bad = run_check(production)
    assert bad.returncode == 1
    assert "LEADFLOOD_PUBLIC_BASE_URL" in bad.stderr and STRONG not in bad.stderr + bad.stdout
    good = run_check(
        {
            **production,
            "LEADFLOOD_PUBLIC_BASE_URL": "https://leads.example.com",
            "LEADFLOOD_METRICS_TOKEN": "m" * 24,
        }
    )
    assert good.returncode == 0, good.stderr
    assert "ok: production" in good.stdout
    weak = run_check({**production, "LEADFLOOD_SECRET_KEY": "short"})
    assert weak.returncode == 2 and "LEADFLOOD_SECRET_KEY" in weak.stderr


def test_a_collector_url_that_is_no_url_stops_the_settings_loading(database_url) -> None:
    import pytest
    from pydantic import ValidationError

    for bad in ("collector:4318", "ftp://collector", "https://", "not a url"):
        with pytest.raises(ValidationError, match="LEADFLOOD_OTLP_ENDPOINT"):
            make_settings(database_url, otlp_endpoint=bad)
    assert make_settings(database_url, otlp_endpoint="  ").otlp_endpoint is None
    kept = make_settings(database_url, otlp_endpoint=" https://collector:4318 ")
    assert kept.otlp_endpoint == "https://collector:4318"
    refused = run_check({"LEADFLOOD_DATABASE_URL": database_url, "LEADFLOOD_OTLP_ENDPOINT": "x"})
    assert refused.returncode == 2 and "LEADFLOOD_OTLP_ENDPOINT" in refused.stderr
