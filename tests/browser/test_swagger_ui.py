"""Swagger UI as a user drives it: open /docs, paste a real token into Authorize, "Try it out"
and "Execute" an operation, and see 200 on the page; nothing is fetched from elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.conftest import ADMIN_EMAIL, Suite

# Chromium parses Swagger UI's 1.5 MB bundle: slow on a busy 2-core machine.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# (method, path) of operations that need a token and answer 200 to a GET with no parameters.
OPERATIONS = [("GET", "/v2/event/list"), ("GET", "/v2/user/me")]


def operation_block(page: Any, method: str, path: str) -> Any:
    return page.locator(f".opblock-{method.lower()}:has(.opblock-summary-path[data-path='{path}'])")


async def authorize(page: Any, token: str) -> None:
    """The Authorize dialog: paste the token, apply it, close."""
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".dialog-ux .modal-ux")
    await dialog.locator("#auth-bearer-value").fill(token)
    await dialog.locator("button.authorize").click()
    await expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    await dialog.locator("button.btn-done").click()


async def execute(block: Any, expected_status: str) -> Any:
    """Open the operation, "Try it out", "Execute"; the answer's status shows on the page."""
    # Deep links reopen the operation after a reload: open it only when it is closed.
    if "is-open" not in (await block.get_attribute("class") or ""):
        await block.locator(".opblock-summary").first.click()
    await block.locator("button.try-out__btn").click()
    await block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    await expect(status).to_have_text(expected_status)
    return block.locator(".live-responses-table .response .response-col_description").first


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_authorize_then_execute_shows_200(suite: Suite, browser: Any, method: str, path: str) -> None:
    token = await suite.admin_token()
    page = await browser.new_page(viewport={"width": 1280, "height": 1600})
    foreign: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((suite.edge_url, "data:")) else foreign.append(r.url),
    )
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(suite.edge_url + "/docs")
    block = operation_block(page, method, path)
    await expect(block).to_have_count(1)

    await authorize(page, token)
    body = await execute(block, "200")
    name = path.strip("/").replace("/", "-").replace("{", "").replace("}", "")
    await page.screenshot(path=ARTIFACTS / f"docs-{method.lower()}-{name}.png", full_page=True)
    if path == "/v2/user/me":
        await expect(body).to_contain_text(ADMIN_EMAIL)

    # persistAuthorization: after a reload the token is still there.
    await page.reload()
    await expect(block).to_have_count(1)
    await execute(block, "200")
    assert not foreign, f"the page fetched from elsewhere: {foreign}"
    assert not problems, problems


async def test_without_a_token_the_same_operation_gets_401(suite: Suite, browser: Any) -> None:
    """The control of the test above: 200 there is the token's doing."""
    page = await browser.new_page()
    await page.goto(suite.edge_url + "/docs")
    await execute(operation_block(page, *OPERATIONS[0]), "401")


async def test_a_token_pasted_with_its_quotes_works_too(suite: Suite, browser: Any) -> None:
    """/v2/requesttoken answers with a JSON string; a user may copy it quotes and all."""
    page = await browser.new_page()
    await page.goto(suite.edge_url + "/docs")
    await authorize(page, f'"{await suite.admin_token()}"')
    await execute(operation_block(page, *OPERATIONS[0]), "200")


async def test_the_event_example_executes_as_it_stands(suite: Suite, browser: Any) -> None:
    """ "Try it out" fills the body with the document's example; "Execute" creates the event."""
    page = await browser.new_page(viewport={"width": 1280, "height": 1600})
    await page.goto(suite.edge_url + "/docs")
    await authorize(page, await suite.admin_token())
    body = await execute(operation_block(page, "POST", "/v2/event/list"), "201")
    await expect(body).to_contain_text("Herald launch party")
