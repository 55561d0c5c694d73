"""Headless Chromium from Debian (`make browser-deps` installs it), driven by Playwright's
async API with `executable_path`: Playwright's own browser downloads are never used."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
# A name on PATH or a path; `CHROMIUM=...` picks another build.
CHROMIUM = shutil.which(os.environ.get("CHROMIUM", "chromium")) or "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make browser-deps` installs Debian's (needs apt-get as root)"
        )
    from playwright.async_api import async_playwright, expect

    # Swagger UI renders the whole document before the first operation shows: on a busy
    # 2-core machine that can take seconds, so waits are generous (they end as soon as it shows).
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
