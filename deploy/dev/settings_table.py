"""Print the README's settings table (Markdown) from `shared.config.Settings.variables()`.

    .venv/bin/python deploy/dev/settings_table.py

Paste the output over the table under "Configuration" in README.md; tests/unit/test_readme.py
fails until the two agree."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

from shared.config import Settings

HEADER = "| Variable | Default | Description |\n|---|---|---|"


def format_default(value: Any) -> str:
    """The default as it would be written in the environment, in backticks (empty: nothing)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, tuple):
        text = ",".join(value)
    else:
        text = str(value)
    return f"`{text}`" if text else ""


def settings_table() -> str:
    rows = [
        f"| `{variable}` | {format_default(default)} | {doc} |"
        for variable, _field, default, doc in Settings.variables()
    ]
    return "\n".join([HEADER, *rows])


if __name__ == "__main__":
    print(settings_table())
