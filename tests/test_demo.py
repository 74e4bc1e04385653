"""`leadflood demo` runs the whole pipeline and ends each scenario where it should."""

from __future__ import annotations

import re

import leadflood.demo.run as demo
from tests.conftest import make_settings
from tests.live import free_port


def test_demo_pipeline_end_states(runtime, database_url, monkeypatch, capsys) -> None:
    monkeypatch.setattr(demo, "DEMO_BUYER_PORT", free_port())
    monkeypatch.setattr(demo, "DEMO_SINK_PORT", free_port())
    settings = make_settings(database_url, port=free_port(), log_level="WARNING")
    demo.run_demo(settings, database_url, serve=False)
    table = capsys.readouterr().out

    lines = [line for line in table.splitlines() if line[:8].strip() and "  " in line]
    by_scenario = {line[11:41].strip(): line[42:58].strip() for line in lines[2:]}
    assert by_scenario["invalid: no consent"] == "rejected"
    assert by_scenario["duplicate of Maria"] == "rejected"
    assert by_scenario["unroutable: no buyer in 86001"] == "validated"
    assert "no_route" in table and "duplicate" in table and "consent_missing" in table
    assert table.count("delivered") >= 4
    # The outreach half: an ICP, a sample search and five enrichments.
    assert "sample search completed" in table
    assert table.count("  enriched ") == 5
    enrolled = int(re.search(r"'Demo intro': (\d+) lead\(s\) enrolled", table).group(1))
    sent = int(re.search(r"(\d+) email\(s\) sent", table).group(1))
    assert enrolled >= 1 and sent == enrolled
