"""Create and read rates of events through the gateway: the suite started as `make run` does
(limits off), wrk -t2 -c64 from a second process. Writes bench/results/resource-rates-<ts>.json
and prints a Markdown table.

    python bench/resource_rates.py            (BENCH_SECONDS=10 by default)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, running_suite, wrk

EVENT = {
    "title": "Benchmark event",
    "description": "Created by bench/resource_rates.py",
    "startsAt": "2027-06-01T18:00:00Z",
    "endsAt": "2027-06-01T20:00:00Z",
    "capacity": 50,
    "tags": ["bench"],
}


async def measure(seconds: int) -> dict[str, Any]:
    async with running_suite() as suite:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {suite.token}"}
            async with session.post(f"{suite.base}/v2/event/list", json=EVENT, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                event = await resp.json()
        one = f"{suite.base}/v2/event/{event['id']}"
        results = {
            "get_event_through_gateway": wrk(one, suite.token, seconds),
            "get_event_direct_to_resource": wrk(
                f"http://127.0.0.1:{suite.ports['resource']}/v2/event/{event['id']}", suite.token, seconds
            ),
            "list_50_events_through_gateway": wrk(
                f"{suite.base}/v2/event/list?tags=bench", suite.token, seconds
            ),
            "create_event_through_gateway": wrk(
                f"{suite.base}/v2/event/list", suite.token, seconds, body=orjson.dumps(EVENT)
            ),
        }
        return results


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench installs it)")
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "http": asyncio.run(measure(seconds)),
    }
    out = ROOT / "bench" / "results" / f"resource-rates-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("| wrk -t2 -c64 | req/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|")
    for name, r in results["http"].items():
        print(f"| {name} | {r['req_per_s']:,} | {r['p50_ms']} | {r['p99_ms']} | {r['non_2xx']} |")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
