"""The README's settings table is `Settings.variables()`, names and defaults, row for row (it
is made by deploy/dev/settings_table.py), and its operator sections are there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = ROOT / "deploy" / "dev" / "settings_table.py"
ROW = re.compile(r"^\| `(HERALD_[A-Z0-9_]+)` \| (`[^`]*`|) \| (.+) \|$")


def _readme_table() -> list[str]:
    start = README.index("| Variable | Default | Description |")
    return README[start:].split("\n\n", 1)[0].strip().splitlines()


def _generated_table() -> list[str]:
    printed = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=True
    )
    return printed.stdout.strip().splitlines()


def test_the_table_lists_exactly_the_settings_with_their_defaults() -> None:
    rows = [ROW.match(line) for line in _readme_table()[2:]]
    assert all(rows), [line for line, row in zip(_readme_table()[2:], rows, strict=True) if not row]
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


def test_the_table_is_what_the_script_prints() -> None:
    assert _readme_table() == _generated_table(), (
        "regenerate it: .venv/bin/python deploy/dev/settings_table.py"
    )
    assert "deploy/dev/settings_table.py" in README


def test_the_defaults_in_the_table_parse_back_to_the_defaults() -> None:
    environ = {row[1]: row[2].strip("`") for line in _readme_table()[2:] if (row := ROW.match(line))}
    assert Settings.from_env(environ) == Settings()


@pytest.mark.parametrize(
    "heading",
    [
        "## Docker compose",
        "## Kubernetes",
        "## Scaling",
        "## Managed PostgreSQL and a RabbitMQ cluster",
        "## Backups",
        "## Upgrading",
        "## Troubleshooting",
        "## Configuration",
    ],
)
def test_the_operator_sections_are_there(heading: str) -> None:
    assert re.search(rf"^{re.escape(heading)}\b", README, re.MULTILINE), heading
