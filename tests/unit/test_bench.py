"""The benchmark's own code runs (its figures are taken by `make bench`, not here)."""

from __future__ import annotations

import importlib.util
import math
import sys
from typing import Any

import orjson

from tests.conftest import ROOT


async def test_token_check_micro_benchmark_runs() -> None:
    spec = importlib.util.spec_from_file_location("token_check", ROOT / "bench" / "token_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = await module.micro(20)
    # Which is faster is the benchmark's to say on a quiet machine (the verifier's tests check
    # that a cached token costs no look-up); here: every figure was taken.
    assert set(figures) >= {"verifier_cold_per_s", "verifier_cached_per_s"}
    assert all(value > 0 for value in figures.values()), figures


def _bench_run() -> Any:
    sys.path.insert(0, str(ROOT))
    from bench import run

    return run


async def test_receiver_keeps_each_first_arrival_once(aiohttp_client: Any) -> None:
    from bench.receiver import receiver_app

    client = await aiohttp_client(receiver_app())
    body = orjson.dumps({"type": "event.created", "data": {"id": "e1"}})
    for n, webhook_id in (("0", "m1"), ("0", "m1"), ("1", "m1"), ("0", "m2")):
        resp = await client.post(f"/hook/{n}", data=body, headers={"webhook-id": webhook_id})
        assert resp.status == 200
    stats = await (await client.get("/stats")).json()
    assert (stats["requests"], stats["unique"]) == (4, 3)
    assert stats["first_at"] <= stats["last_at"]
    arrivals = await (await client.get("/arrivals")).json()
    assert [(n, data_id) for n, data_id, _at in arrivals] == [("0", "e1"), ("1", "e1"), ("0", "e1")]
    assert (await client.post("/reset")).status == 204
    assert (await (await client.get("/stats")).json())["unique"] == 0


def test_percentile_is_the_nearest_rank() -> None:
    run = _bench_run()
    values = [float(v) for v in range(100, 0, -1)]
    assert (run.percentile(values, 0.5), run.percentile(values, 0.95), run.percentile(values, 0.99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert math.isnan(run.percentile([], 0.5))


def test_verdicts_compare_with_targets_and_the_baseline() -> None:
    run = _bench_run()

    def http(rps: int, p99: float) -> dict[str, float]:
        return {"req_per_s": rps, "p50_ms": 1.0, "p99_ms": p99, "non_2xx": 0}

    worker = {
        "deliveries_per_s": 1600,
        "deliveries_arrived": 10,
        "deliveries_expected": 10,
        "seconds_first_to_last": 1.0,
    }
    first = {"achieved_rate": 200, "p50_ms": 5, "p95_ms": 60, "p99_ms": 70}
    first |= {"attempts_measured": 5, "attempts_expected": 5}
    first |= {"create_answered_p50_ms": 4.0, "create_answered_p95_ms": 9.0}
    rows = run.verdicts(
        {
            "baseline": http(1000, 10),
            "get_event": http(700, 40),
            "create_event": http(900, 40),
            "first_attempt": first,
            "first_attempt_low_rate": first,
            "worker": worker,
            "peak_rss_mib": {"gateway": 99.0, "auth": 120.0, "bench_receiver": 500.0},
        }
    )
    assert rows[1][3] == "0.70"  # GET req/s over the baseline's
    # baseline, GET, creates, first attempt (p95), the same at a low rate (no target), worker,
    # RSS gateway, RSS auth; not the receiver
    assert [row[4] for row in rows] == ["-", "yes", "**no**", "**no**", "-", "yes", "yes", "**no**"]


def test_profile_summary_counts_self_inclusive_and_parts() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.profile import top_frames

    raw = "\n".join(
        (
            "run (/v/site-packages/aiormq/connection.py:9);write (/p/lib/python3.11/asyncio/streams.py:3) 5",
            "run (/v/site-packages/aiormq/connection.py:9) 3",
            f"get ({ROOT}/services/resource/handlers.py:3);fetch (/v/site-packages/asyncpg/pool.py:1) 2",
        )
    )
    lines = top_frames(raw, 5).splitlines()
    assert lines[0] == "10 samples"
    assert "  80.0  AMQP client (aio-pika, aiormq, pamqp)" in lines
    assert "  20.0  PostgreSQL client (asyncpg)" in lines
    assert "  50.0  write (asyncio/streams.py)" in lines  # self
    assert "  80.0  run (aiormq/connection.py)" in lines  # inclusive
    assert "  20.0  get (services/resource/handlers.py)" in lines
