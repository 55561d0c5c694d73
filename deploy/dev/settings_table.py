"""Write docs/configuration.md, the table of every setting, from `shared.config.Settings.variables()`.

    .venv/bin/python deploy/dev/settings_table.py          # rewrites docs/configuration.md
    .venv/bin/python deploy/dev/settings_table.py --check  # exit 1 if it is out of date

Run it after changing a setting; tests/unit/test_readme.py fails until the page agrees."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
HEADER = "| Variable | Default | Description |\n|---|---|---|"
INTRO = """\
# Configuration

Every setting is an environment variable, the same for every service (each reads the ones it
needs); the defaults run against PostgreSQL and RabbitMQ on 127.0.0.1. Lists are
comma-separated. Settings are declared, with their defaults and descriptions, in
`shared/config.py`; production (`HERALD_ENV=production`) refuses placeholders and development
secrets ([operations](operations.md#production-settings)). With docker compose they come from
`.env` (`.env.example` describes each); on Kubernetes from the `herald-config` ConfigMap and the
Secrets ([operations](operations.md#kubernetes)).

This page is written by `.venv/bin/python deploy/dev/settings_table.py` from
`shared.config.Settings.variables()`: run it after changing a setting (`tests/unit/test_readme.py`
fails until this page agrees).
"""


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


def configuration_page() -> str:
    return f"{INTRO}\n{settings_table()}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is up to date")
    args = parser.parse_args()
    page = configuration_page()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run deploy/dev/settings_table.py")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
