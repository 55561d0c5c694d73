"""What the console's browser tests share: a page on the edge that records every request
leaving the edge's origin and every console error (CSP violations are logged as errors), signing
in through the form, and the settings that let webhooks reach a receiver on 127.0.0.1."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from shared.config import Settings
from tests.browser.conftest import ARTIFACTS
from tests.conftest import Suite, make_settings

# The screenshots of docs/console/ are refreshed on request (CONSOLE_SCREENSHOTS=docs), so that
# a test run leaves the repository as it found it; otherwise they go with the test artifacts.
SCREENSHOTS = (
    Path(__file__).resolve().parent.parent.parent / "docs" / "console"
    if os.environ.get("CONSOLE_SCREENSHOTS") == "docs"
    else ARTIFACTS / "console"
)
SESSION_ENDED = "Your session has ended. Sign in again."
# The browser's own line for an answer that is not 2xx (fetch still resolves): expected where a
# test provokes that status, an error anywhere else.
FAILED_RESOURCE = "Failed to load resource: the server responded with a status of {status}"


def console_settings(database_url: str, amqp_prefix: str, signing_pem: str, **changes: Any) -> Settings:
    """Receivers on 127.0.0.1 allowed; no automatic retry (a failed attempt fails the delivery,
    so "Retry" is the user's), no breaker opening on a test's failures."""
    return make_settings(
        database_url,
        amqp_prefix,
        signing_pem,
        webhook_allow_private=True,
        webhook_retry_schedule=(),
        webhook_retry_jitter=0.0,
        webhook_breaker_failures=1000,
        webhook_sweep_seconds=0.2,
        **changes,
    )


@dataclass
class ConsolePage:
    page: Any
    origin: str
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self, *expected_statuses: int) -> None:
        """Nothing fetched from elsewhere, no console error but the failed answers expected."""
        allowed = {FAILED_RESOURCE.format(status=s) for s in expected_statuses}
        unexpected = [p for p in self.problems if not any(p.startswith(a) for a in allowed)]
        assert not self.foreign, f"the console fetched from elsewhere: {self.foreign}"
        assert not unexpected, (unexpected, self.failed)

    async def screenshot(self, name: str, *, full_page: bool = True) -> None:
        """<SCREENSHOTS>/<name>.png, without the passing notices."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.evaluate("() => document.getElementById('notices')?.replaceChildren()")
        await self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)

    async def token(self) -> Any:
        return await self.page.evaluate("() => sessionStorage.getItem('herald.token')")


async def open_console(browser: Any, suite: Suite, *, width: int = 1280, height: int = 900) -> ConsolePage:
    context = await browser.new_context(
        viewport={"width": width, "height": height}, timezone_id="Europe/Paris"
    )
    page = await context.new_page()
    watched = ConsolePage(page, suite.edge_url)
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((suite.edge_url + "/", "data:")) else watched.foreign.append(r.url)
        ),
    )
    page.on("console", lambda m: watched.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.problems.append(str(e)))
    # Which answer a "Failed to load resource" line was about (the line does not say).
    page.on("response", lambda r: watched.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto(suite.edge_url + "/console/")
    return watched


async def sign_in(console: ConsolePage, email: str, password: str) -> None:
    page = console.page
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Subscriptions", exact=True)).to_be_visible()
