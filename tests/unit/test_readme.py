"""The README and docs/ stay true: the README gives the two set-up commands and leads to every
page; the settings table of docs/configuration.md is `Settings.variables()`, names and defaults,
row for row (written by deploy/dev/settings_table.py); the operator sections are in
docs/operations.md; every link and every repository path the pages name exists; and the checker
of docs/api-tour.md (docs/api_tour.py, run by tests/e2e/test_api_tour.py) refuses a drifted
answer."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from shared.config import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
OPERATIONS = (DOCS / "operations.md").read_text(encoding="utf-8")
SCRIPT = ROOT / "deploy" / "dev" / "settings_table.py"
ROW = re.compile(r"^\| `(HERALD_[A-Z0-9_]+)` \| (`[^`]*`|) \| (.+) \|$")
LINK = re.compile(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]+))?\)")
REPO_PATH = re.compile(r"`((?:services|shared|deploy|tests|bench|docs|\.ci)/[\w./-]*)`")


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table() -> list[str]:
    start = CONFIGURATION.index("| Variable | Default | Description |")
    return CONFIGURATION[start:].split("\n\n", 1)[0].strip().splitlines()


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


# -- the README ---------------------------------------------------------------------------------


def test_the_readme_gives_the_two_set_up_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = setup.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in block.splitlines()] == [["make", "test"], ["make", "run"]]
    assert "http://127.0.0.1:8080" in README and "/docs" in README


def test_the_readme_is_short_and_leads_to_every_page() -> None:
    assert len(README.splitlines()) <= 160, "the rest belongs in docs/"
    linked = {match[1] for match in LINK.finditer(README)}
    assert {f"docs/{page.name}" for page in DOCS.glob("*.md")} <= linked


# -- every page ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_lead_to_pages_and_headings_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for match in LINK.finditer(text):
        target = (page.parent / match[1]).resolve() if match[1] else page
        assert target.exists(), f"{page.name}: {match[0]}"
        if match[2] and target.suffix == ".md":
            assert match[2] in _anchors(target.read_text(encoding="utf-8")), f"{page.name}: {match[0]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_repository_paths_a_page_names_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    named = {path for path in REPO_PATH.findall(text) if "<" not in path and "*" not in path}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{page.name} names {missing}"


# -- docs/configuration.md ----------------------------------------------------------------------


def test_the_table_lists_exactly_the_settings_with_their_defaults() -> None:
    rows = [ROW.match(line) for line in _table()[2:]]
    assert all(rows), [line for line, row in zip(_table()[2:], rows, strict=True) if not row]
    listed = [(row[1], row[2].strip("`")) for row in rows if row]
    expected = []
    for variable, _field, default, _doc in Settings.variables():
        if isinstance(default, bool):
            text = str(default).lower()
        elif isinstance(default, tuple):
            text = ",".join(default)
        else:
            text = str(default)
        expected.append((variable, text))
    assert listed == expected


def test_the_page_is_what_the_script_writes() -> None:
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert CONFIGURATION == _load(SCRIPT).configuration_page()


def test_the_defaults_in_the_table_parse_back_to_the_defaults() -> None:
    environ = {row[1]: row[2].strip("`") for line in _table()[2:] if (row := ROW.match(line))}
    assert Settings.from_env(environ) == Settings()


# -- docs/operations.md -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "## Running it: `make run`",
        "## Health, logs and metrics",
        "## Graceful shutdown",
        "## Operator commands",
        "## Production settings",
        "## Rate limits and login throttling",
        "## Docker compose",
        "## Kubernetes",
        "## Scaling",
        "## Managed PostgreSQL and a RabbitMQ cluster",
        "## Backups",
        "## Upgrading",
        "## Troubleshooting",
        "## Troubleshooting by metric",
    ],
)
def test_the_operator_sections_are_there(heading: str) -> None:
    assert re.search(rf"^{re.escape(heading)}$", OPERATIONS, re.MULTILINE), heading


# -- docs/api-tour.md and its checker -----------------------------------------------------------


def test_the_tour_checker_refuses_a_drifted_answer() -> None:
    tour = _load(DOCS / "api_tour.py")
    steps = tour.steps(tour.DOC.read_text(encoding="utf-8"))
    assert len(steps) >= 20
    created = next(s for s in steps if s.answer.startswith("HTTP/1.1 201") and "/v2/user/list" in s.script)
    assert tour.check(created, created.answer, [201]) == []
    # Ids, times and request ids may change; the rest may not.
    other_ids = re.sub(r"[0-9a-f]{8}-", "01234567-", created.answer)
    assert tour.check(created, other_ids, [201]) == []
    assert tour.check(created, created.answer.replace('"Ada"', '"Bob"'), [201])
    assert tour.check(created, created.answer.replace('"active":true,', ""), [201])
    assert tour.check(created, created.answer.replace("201 Created", "200 OK"), [200])
    assert tour.check(created, created.answer, [201, 409]), "a request that failed unseen"
    assert tour.check(created, created.answer.replace("Location:", "X-Location:"), [201])
    silent = next(s for s in steps if not s.answer)
    assert tour.check(silent, "", [200]) == []
    assert tour.check(silent, "", [401])
    assert tour.check(silent, '{"unexpected": true}', [200])
