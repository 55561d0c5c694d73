"""docs/api-tour.md as a user runs it: the suite started as `make run` starts it (processes, on
free ports, a database and AMQP names of its own, the document's settings), then every ```bash
block of the document in order in one bash (docs/api_tour.py), each answer compared with the one
the document shows and every request's status checked. The document cannot drift from Herald."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT
from tests.e2e import test_processes
from tests.e2e.test_processes import _start_suite, _stop

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # hang bounds only

suite_env = test_processes.suite_env  # the same environment as the other process tests


def load_tour() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_tour", ROOT / "docs" / "api_tour.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_every_step_of_the_tour_answers_as_the_document_shows(
    suite_env: dict[str, str], tmp_path: Path
) -> None:
    tour = load_tour()
    settings = tour.started_with(tour.DOC.read_text(encoding="utf-8"))
    assert settings.pop("HERALD_DATABASE_URL"), "the tour starts on a database of its own"
    env = {**suite_env, **settings}
    del env["HERALD_ADMIN_EMAIL"]  # the document logs in as the default admin
    proc = await _start_suite(env, tmp_path / "suite.log")
    try:
        base = f"http://127.0.0.1:{env['HERALD_EDGE_PORT']}"
        results = await asyncio.to_thread(tour.run, base, tmp_path / "tour")
    finally:
        _stop(proc)
    assert len(results) >= 20, "the tour lost its steps"
    failures = {
        f"step {step.number}: {step.script.strip().splitlines()[0]}": problems
        for step, printed, statuses in results
        if (problems := tour.check(step, printed, statuses))
    }
    assert not failures, failures
    assert all(statuses for step, _printed, statuses in results if "curl" in step.script), "statuses unseen"
