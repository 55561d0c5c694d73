"""`python -m services`: the whole suite as plain processes (what `make run` starts): migrations,
then the services (as many processes of each as HERALD_*_PROCESSES say), the docs service and
nginx at the edge, supervised (services/supervisor.py says how)."""

from __future__ import annotations

import sys

from services.supervisor import run
from shared.config import Settings
from shared.logging import setup_logging


def main() -> int:
    settings = Settings.from_env()
    setup_logging("suite", settings.log_level)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
