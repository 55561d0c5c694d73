"""What a subscription filter adds to the fan-out: evaluations per second of compiled filters
against an `event.approved` envelope, in one process (the fan-out tests each matching
subscription's filter once per event). The 5-condition filter passes, so every condition is
evaluated (its worst case); compiling, done once per subscription row loaded, is timed too.

    .venv/bin/python bench/filter_cost.py   (BENCH_EVALUATIONS, default 200000)"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.webhook_delivery.filters import compile_filter  # noqa: E402
from shared.events import make_event  # noqa: E402

ENVELOPE = make_event(
    "event.approved",
    {
        "id": "6f1c3d2e-9a8b-4c7d-8e6f-5a4b3c2d1e0f",
        "title": "Launch party",
        "startsAt": "2027-01-15T18:00:00.000Z",
        "endsAt": "2027-01-15T23:00:00.000Z",
        "locationId": "2f0e4c9a-5b7d-4a51-9a43-4d1c1f1e2b3c",
        "capacity": 80,
        "tags": ["music", "public"],
        "status": "approved",
        "ownerId": "123fc9b8-8680-44cd-9819-d91182e5ff2a",
    },
    "123fc9b8-8680-44cd-9819-d91182e5ff2a",
)
FILTERS: dict[str, dict[str, Any] | None] = {
    "no filter": None,
    "1 condition (equality)": {"data.locationId": "2f0e4c9a-5b7d-4a51-9a43-4d1c1f1e2b3c"},
    "5 conditions (AND, all pass)": {
        "type": {"in": ["event.approved", "event.cancelled"]},
        "data.locationId": "2f0e4c9a-5b7d-4a51-9a43-4d1c1f1e2b3c",
        "data.capacity": {"gte": 50},
        "data.tags": "public",
        "data.startsAt": {"gte": "2027-01-01T00:00:00.000Z"},
    },
    "5 conditions ($or, $not)": {
        "$or": [{"data.capacity": {"gt": 1000}}, {"data.tags": {"in": ["jazz", "public"]}}],
        "$not": {"actor.id": "00000000-0000-0000-0000-000000000000"},
        "data.title": {"exists": True},
        "data.status": {"ne": "draft"},
    },
}


def micro(count: int) -> dict[str, dict[str, float]]:
    figures = {}
    for name, spec in FILTERS.items():
        started = time.perf_counter()
        for _ in range(100):
            compile_filter(spec)
        compile_us = (time.perf_counter() - started) / 100 * 1e6
        passes = compile_filter(spec)
        assert passes(ENVELOPE), name  # every shape here passes: the whole filter is evaluated
        started = time.perf_counter()
        for _ in range(count):
            passes(ENVELOPE)
        seconds = time.perf_counter() - started
        figures[name] = {
            "per_s": round(count / seconds),
            "us": round(seconds / count * 1e6, 3),
            "compile_us": round(compile_us, 1),
        }
    return figures


def main() -> None:
    figures = micro(int(os.environ.get("BENCH_EVALUATIONS", "200000")))
    print(f"| filter, Python {sys.version.split()[0]} | evaluations/s | µs each | compile µs |")
    print("|---|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['per_s']:,} | {f['us']} | {f['compile_us']} |")


if __name__ == "__main__":
    main()
