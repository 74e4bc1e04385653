"""A decision's trace is stored compactly (decision 0024) and read back whole: every
candidate still named with its reasons, the ones in the running with all their detail."""

from __future__ import annotations

import uuid

import orjson

from leadflood.routing.trace import compact, expand


def _entry(reasons: list[str], selected: bool = False, **extra: object) -> dict:
    return {
        "buyer_id": str(uuid.uuid4()),
        "reasons": reasons,
        "selected": selected,
        "priority": 3,
        "weight": 2,
        "price_cents": 2500,
        "last_routed_at": "2026-12-01T10:00:00+00:00",
        **extra,
    }


def test_every_candidate_comes_back_with_its_reasons_in_buyer_order() -> None:
    trace = (
        [_entry([], selected=True), _entry([]), _entry([], last_routed_at=None)]
        + [_entry(["outside_service_area"]) for _ in range(80)]
        + [_entry(["daily_cap_reached", "outside_schedule"]) for _ in range(10)]
        + [_entry([], bid_rank=2), _entry(["not_exclusive_buyer"], selected=False)]
    )
    trace.sort(key=lambda e: e["buyer_id"])
    back = expand(orjson.loads(orjson.dumps(compact(trace))))
    assert [e["buyer_id"] for e in back] == [e["buyer_id"] for e in trace]
    for original, read in zip(trace, back, strict=True):
        assert read["reasons"] == original["reasons"]
        assert read["selected"] == original["selected"]
        if not original["reasons"]:  # in the running: every detail kept
            assert read == original
        else:  # out: named, with its reasons, nothing else
            assert set(read) == {"buyer_id", "reasons", "selected"}


def test_the_stored_form_is_a_fraction_of_one_dict_per_candidate() -> None:
    trace = [_entry([]) for _ in range(20)] + [_entry(["outside_service_area"]) for _ in range(80)]
    full, stored = len(orjson.dumps(trace)), len(orjson.dumps(compact(trace)))
    assert stored < 0.4 * full, (stored, full)


def test_a_trace_written_before_keeps_its_list_form() -> None:
    legacy = [_entry(["paused"]), _entry([], selected=True)]
    assert expand(legacy) is legacy


def test_reading_does_not_share_defaults_between_entries() -> None:
    back = expand(compact([_entry([]), _entry([])]))
    back[0]["reasons"].append("changed")
    assert back[1]["reasons"] == []
