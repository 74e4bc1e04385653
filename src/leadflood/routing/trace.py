"""A routing decision's trace as stored: every candidate still named, in less space.

A decision explains itself buyer by buyer (who was considered, why each was not chosen).
Stored as one dict per candidate it was 18 KB of JSON for 100 candidates (5.6 KB after
TOAST compression), more than half of everything a lead leaves in the database
(decision 0024). Most candidates are out for one reason everybody shares (another
postal code, a full cap), and their prices, priorities and rotation times explain
nothing. So the stored form keeps the full entry of each candidate that was in the
running (eligible, or chosen) and, for the others, only their ids grouped by their
reasons, each group's ids as their 16 bytes one after another in base64 (22 characters a
buyer where its UUID text is 36, and ids do not compress):

    {"v": 2, "buyers": [{"buyer_id": …, "priority": 3, …}, …],
     "excluded": {"outside_service_area": "<base64>", "daily_cap_reached,paused": "…"}}

`expand` gives back the list of one dict per candidate (in buyer id order, as routing
reads them) for the API and the lead page; rows written before keep their list form.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

VERSION = 2


def _defaults() -> dict[str, Any]:
    """What a stored entry omits when it holds it (an eligible, unselected candidate);
    a fresh dict each time, so no two entries share a reasons list."""
    return {"reasons": [], "selected": False, "last_routed_at": None}


def compact(entries: list[dict[str, Any]]) -> dict[str, Any]:
    defaults = _defaults()
    buyers: list[dict[str, Any]] = []
    excluded: dict[str, bytearray] = {}
    for entry in entries:
        if entry["reasons"] and not entry["selected"]:
            group = excluded.setdefault(",".join(entry["reasons"]), bytearray())
            group += uuid.UUID(entry["buyer_id"]).bytes
        else:
            buyers.append({k: v for k, v in entry.items() if defaults.get(k, ...) != v})
    return {
        "v": VERSION,
        "buyers": buyers,
        "excluded": {r: base64.b64encode(ids).decode() for r, ids in excluded.items()},
    }


def expand(stored: Any) -> list[dict[str, Any]]:
    if isinstance(stored, list):  # written before decision 0024
        return stored
    entries = [_defaults() | entry for entry in stored.get("buyers", [])]
    for reasons, packed in stored.get("excluded", {}).items():
        named = reasons.split(",")
        ids = base64.b64decode(packed)
        entries.extend(
            {
                "buyer_id": str(uuid.UUID(bytes=ids[i : i + 16])),
                "reasons": list(named),
                "selected": False,
            }
            for i in range(0, len(ids), 16)
        )
    entries.sort(key=lambda entry: entry["buyer_id"])
    return entries
