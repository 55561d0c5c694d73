"""The benchmark's own code runs (its figures are taken by `make bench`, not here)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


async def test_token_check_micro_benchmark_runs() -> None:
    spec = importlib.util.spec_from_file_location("token_check", ROOT / "bench" / "token_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = await module.micro(20)
    assert figures["verifier_cold_per_s"] > 0
    assert figures["verifier_cached_per_s"] > figures["verifier_cold_per_s"]
