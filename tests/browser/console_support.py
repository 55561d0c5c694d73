"""The console in Chromium for the browser tests: a fresh page (its own sessionStorage) that
signs in, and, when the test is done with it, the checks every console test makes: nothing was
fetched from outside the edge's origin, and nothing was logged as an error (a CSP violation is
one). A refusal the test provokes on purpose (a 412, a 409) is logged by Chromium as "Failed to
load resource": the test names the statuses it expects in `refusals`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import expect

from tests.conftest import ROOT, Suite

FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")
DOCS = ROOT / "docs" / "console"  # the screenshots docs/console.md and the README show


@dataclass
class Console:
    page: Any
    edge_url: str
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refusals: set[int] = field(default_factory=set)

    def log(self, message: Any) -> None:
        if message.type != "error":
            return
        refused = FAILED_LOAD.match(message.text)
        if refused is None or int(refused.group(1)) not in self.refusals:
            self.problems.append(f"{message.text} ({message.location.get('url')})")

    def url(self, route: str = "") -> str:
        return f"{self.edge_url}/console/{route}"

    async def sign_in(self, email: str, password: str) -> None:
        await self.page.goto(self.url("#/signin"))
        await self.page.get_by_label("Email").fill(email)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()


@asynccontextmanager
async def open_console(
    browser: Any, suite: Suite, width: int = 1280, timezone: str | None = None
) -> AsyncIterator[Console]:
    DOCS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(
        viewport={"width": width, "height": 900}, **({"timezone_id": timezone} if timezone else {})
    )
    page = await context.new_page()
    console = Console(page, suite.edge_url)
    page.on(
        "request",
        lambda r: None if r.url.startswith((suite.edge_url, "data:")) else console.foreign.append(r.url),
    )
    page.on("console", console.log)
    page.on("pageerror", lambda e: console.problems.append(str(e)))
    try:
        yield console
    finally:
        await context.close()
    assert not console.foreign, f"the console fetched from elsewhere: {console.foreign}"
    assert not console.problems, console.problems
