"""The benchmark's own code runs (its figures are taken by `make bench`, not here)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

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
    # Failing first attempts: each (subscription, webhook-id)'s first arrival gets 500, later ones 200.
    assert (await client.post("/reset?fail_first=1")).status == 204
    answers = [(await client.post("/hook/0", data=body, headers={"webhook-id": "m3"})).status for _ in "ab"]
    assert answers == [500, 200]
    # Only the subscriptions named fail their first arrivals.
    assert (await client.post("/reset?fail_first=1&hooks=1")).status == 204
    answers = [
        (await client.post(f"/hook/{n}", data=body, headers={"webhook-id": "m4"})).status for n in "011"
    ]
    assert answers == [200, 500, 200]


def test_percentile_is_the_nearest_rank() -> None:
    run = _bench_run()
    values = [float(v) for v in range(100, 0, -1)]
    assert (run.percentile(values, 0.5), run.percentile(values, 0.95), run.percentile(values, 0.99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert math.isnan(run.percentile([], 0.5))


def _figures(big: dict[str, Any]) -> dict[str, Any]:
    def http(rps: int, p99: float) -> dict[str, Any]:
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
    return {
        "baseline": http(1000, 10),
        "get_event": http(850, 40),
        "list_50": {**http(400, 120), "events": 1000, "items_per_page": 50},
        "list_50_big": big,
        "create_event": http(900, 40),
        "first_attempt": first,
        "first_attempt_low_rate": first,
        "worker": worker,
        "retry_lateness": {"achieved_rate": 200, "p50_ms": 3.0, "p95_ms": 9.0, "max_ms": 40.0}
        | {"retries_measured": 5, "retries_expected": 5},
        "peak_rss_mib": {"nginx worker": 9.0, "auth": 120.0, "resource": 60.0, "bench_receiver": 500.0},
    }


def test_verdicts_compare_with_targets_and_the_baseline() -> None:
    run = _bench_run()
    big = {"req_per_s": 290, "p50_ms": 1.0, "p99_ms": 90, "non_2xx": 0, "events": 10**6, "items_per_page": 50}
    figures = _figures(big) | {"peak_rss_mib_big_list_suite": {"resource": 101.0, "docs": 50.0}}
    rows = run.verdicts(figures)
    assert [row[0].split(" ")[0] for row in rows[:3]] == ["baseline:", "GET", "GET"]
    assert [row[3] for row in rows[:3]] == ["1.00", "0.85", "0.40"]  # req/s over the baseline's
    # baseline; GET; list-50 (0.4 x but p99 120 > 100 ms); list-50 at a million (290/400 = 0.725
    # < 0.75); creates; first attempt (p95); the same at a low rate (no target); worker; retry
    # lateness; RSS of
    # nginx's worker, auth (120), resource (the larger of 60 and 101, from the second suite), docs;
    # not the receiver
    assert [row[4] for row in rows] == [
        "-",
        "yes",
        "**no**",
        "**no**",
        "**no**",
        "**no**",
        "-",
        "yes",
        "yes",
        "yes",
        "**no**",
        "**no**",
        "yes",
    ]
    assert "0.72 x the list at 1,000" in rows[3][1]


def test_verdicts_pass_a_list_that_holds_at_a_million_and_say_when_it_was_skipped() -> None:
    run = _bench_run()
    big = {"req_per_s": 300, "p50_ms": 1.0, "p99_ms": 90, "non_2xx": 0, "events": 10**6, "items_per_page": 50}
    assert run.verdicts(_figures(big))[3][4] == "yes"  # 300/400 = 0.75: within 25 %
    short_page = big | {"items_per_page": 7}  # a fast list of fewer items is no pass
    assert run.verdicts(_figures(short_page))[3][4] == "**no**"
    skipped = run.verdicts(_figures({"skipped": "bench/seed_events.py is missing"}))[3]
    assert (skipped[1], skipped[4]) == ("bench/seed_events.py is missing", "skipped")


def test_cpu_table_has_a_row_per_process_and_a_column_per_run() -> None:
    run = _bench_run()
    results = {
        "baseline": {"cpu_ms_per_request": {"hello": 0.05, "nginx worker": 0.02}, "machine_idle_pct": 1.0},
        "get_event": {"cpu_ms_per_request": {"resource": 0.2, "nginx worker": 0.03}, "machine_idle_pct": 2.0},
        "list_50_big": {"skipped": "no seeder"},
    }
    assert run.cpu_table(results) == [
        "| CPU ms per request | baseline | get_event |",
        "|---|---:|---:|",
        "| hello | 0.05 | - |",
        "| nginx worker | 0.02 | 0.03 |",
        "| resource | - | 0.2 |",
        "| machine idle % | 1.0 | 2.0 |",
    ]


@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed")
def test_nginx_baseline_answers_through_its_own_prefix_and_names_its_processes() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.baseline import nginx_two_hops
    from bench.harness import free_ports, peak_rss_of

    with nginx_two_hops(*free_ports(2)) as (url, pids):
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (our own http URL)
            assert (resp.status, resp.read()) == (200, b'{"hello":"world"}')
        assert {"hello", "nginx master", "nginx worker"} <= pids.keys()
        assert all(peak_rss_of(pid) > 0 for pid in pids.values())
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())


def test_seeder_is_there_exactly_when_bench_seed_events_is() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.population import seeder

    assert (seeder() is not None) == (ROOT / "bench" / "seed_events.py").exists()


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


def _peers() -> Any:
    sys.path.insert(0, str(ROOT))
    from bench.peers import directus

    return directus


def test_peer_rounds_take_each_figure_s_median() -> None:
    peers = _peers()
    runs = [
        {"req_per_s": rps, "p50_ms": 1.0, "p99_ms": p99, "non_2xx": bad, "socket_errors": 0}
        for rps, p99, bad in ((300, 50.0, 0), (100, 900.0, 2), (200, 70.0, 0))
    ]
    figures = peers.median_of(runs)
    assert (figures["req_per_s"], figures["p99_ms"], figures["non_2xx"]) == (200, 70.0, 2)
    assert figures["runs"] == runs


def test_peer_table_holds_herald_to_the_ratios_and_counts_errors() -> None:
    peers = _peers()

    def side(rps: int, errors: int = 0) -> dict[str, Any]:
        return {"req_per_s": rps, "p99_ms": 10.0, "non_2xx": errors, "socket_errors": 0}

    figures = {
        "get": {"herald": side(4000), "directus": side(1000)},  # 4.0 x: met
        "list": {"herald": side(3900), "directus": side(1000)},  # 3.9 x: not
        "create": {"herald": side(6000, errors=3), "directus": side(1000)},  # 6 x, but errors
        "rss_mib": {"herald": {"auth": 80.0, "resource": 60.0}, "directus": {"1": 300.0}},
    }
    lines = peers.table(figures)
    assert [line.rsplit("|", 2)[1].strip() for line in lines[2:5]] == ["yes", "**no**", "**no**"]
    assert "| 4.0 x |" in lines[2] and "| 3.9 x |" in lines[3]
    assert lines[5].startswith("| peak RSS, all processes | 140 MiB (2 processes) | 300 MiB (1 process) |")


def test_suite_processes_are_named_by_service_and_numbered_when_several() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.harness import suite_processes

    # A launcher with two children that carry `services.resource` on their command line, as
    # `python -m services.resource` does; each child waits for its stdin to close.
    child = "import sys; sys.stdin.read()"
    launcher = (
        "import subprocess, sys\n"
        f"kids = [subprocess.Popen([sys.executable, '-c', {child!r}, 'services.resource'], stdin=subprocess.PIPE)"
        " for _ in range(2)]\n"
        # Popen returns once exec has begun: /proc shows the new command line a moment later.
        "import time\n"
        "while not all(b'services.resource' in open(f'/proc/{k.pid}/cmdline', 'rb').read() for k in kids):\n"
        "    time.sleep(0.001)\n"
        "print('started', flush=True)\n"
        "sys.stdin.read()\n"
        "for kid in kids:\n"
        "    kid.stdin.close()\n"
        "    kid.wait()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        named = suite_processes(proc.pid)
        assert sorted(named) == ["resource", "resource 2", "suite"]
        assert named["suite"] == proc.pid and len(set(named.values())) == 3
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


def test_filter_cost_micro_benchmark_runs() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.filter_cost import FILTERS, micro

    figures = micro(50)
    assert set(figures) == set(FILTERS)
    assert all(f["per_s"] > 0 for f in figures.values()), figures
