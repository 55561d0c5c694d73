"""The console's users page as an admin drives it in Chromium: create a user with roles, change
their roles, disable and delete them, and see the API refuse, in its own words, to demote the
last active admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from services.auth.handlers import LAST_ADMIN
from shared.db import ensure_database
from tests.browser.console_support import open_console, sign_in
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Suite, make_settings, start_suite

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture
async def lone_admin(
    fresh_database_url: str, aiohttp_server: Any, amqp_prefix: str, signing_pem: str
) -> AsyncIterator[Suite]:
    """A suite on a database of its own: its bootstrap admin is the only admin (other tests
    make admins in the shared one). The database comes first so that it goes last."""
    await ensure_database(fresh_database_url)
    started = await start_suite(aiohttp_server, make_settings(fresh_database_url, amqp_prefix, signing_pem))
    yield started
    await started.close()


async def test_admin_manages_users(lone_admin: Suite, browser: Any) -> None:
    suite = lone_admin
    email = "grace@example.com"
    console = await open_console(browser, suite)
    page = console.page
    await sign_in(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("heading", name="New user")).to_be_visible()

    form = page.get_by_role("form", name="New user")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill("short")
    await form.get_by_role("button", name="Create").click()  # a 422 lands on the field
    await expect(form.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    await form.get_by_label("Password").fill("grace-password-1")
    await form.get_by_label("approver", exact=True).check()
    await form.get_by_role("button", name="Create").click()
    row = page.locator("tr", has_text=email)
    await expect(row).to_be_visible()
    await expect(row.get_by_label("approver", exact=True)).to_be_checked()
    await expect(row.get_by_label("member", exact=True)).to_be_checked()
    await console.screenshot("users")

    await row.get_by_label("member", exact=True).uncheck()
    await row.get_by_role("button", name="Save roles").click()
    await expect(row.get_by_label("member", exact=True)).not_to_be_checked()
    await expect(row.get_by_label("approver", exact=True)).to_be_checked()
    token = await suite.admin_token()
    _resp, users = await suite.request("GET", "/v2/user/list", token=token)
    grace = next(u for u in users if u["email"] == email)
    assert grace["roles"] == ["approver"]

    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("no (disabled)")
    await expect(row.get_by_role("button", name="Enable")).to_be_visible()
    _, grace = await suite.request("GET", f"/v2/user/{grace['id']}", token=token)
    assert grace["active"] is False

    # The last admin: the API refuses and the page says why, as the API words it.
    me = page.locator("tr", has_text=ADMIN_EMAIL)
    await me.get_by_label("admin", exact=True).uncheck()
    await me.get_by_label("member", exact=True).check()
    await me.get_by_role("button", name="Save roles").click()
    await expect(page.get_by_role("alert").filter(has_text=LAST_ADMIN)).to_be_visible()
    await me.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("alert").filter(has_text=LAST_ADMIN)).to_be_visible()

    await row.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(page.locator("tr", has_text=email)).to_have_count(0)
    console.assert_clean(409, 422)

    _, users = await suite.request("GET", "/v2/user/list", token=token)
    assert [u["email"] for u in users] == [ADMIN_EMAIL]
    assert users[0]["roles"] == ["admin"]


async def test_a_member_is_told_users_are_for_admins(suite: Suite, browser: Any) -> None:
    user, password, _ = await suite.new_user(["member"])
    console = await open_console(browser, suite, width=390)
    await sign_in(console, user["email"], password)
    await console.page.goto(f"{console.origin}/console/#/users")
    await expect(console.page.get_by_text("Only admins manage users.")).to_be_visible()
    console.assert_clean()
