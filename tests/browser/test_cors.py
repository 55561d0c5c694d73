"""CORS as a browser enforces it: a page from another origin calls the edge (nginx) with `fetch`
and an `Authorization` header (so the browser sends a preflight first). From an origin in
HERALD_CORS_ORIGINS the call succeeds and the exposed headers are readable; from any other
origin the browser blocks it and `fetch` rejects."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from tests.browser.conftest import ARTIFACTS
from tests.conftest import ADMIN_EMAIL, server_url

# Chromium parses Swagger UI's 1.5 MB bundle: slow on a busy 2-core machine.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Another origin</title></head>
<body><h1>A page of another origin</h1><pre id="result">not called yet</pre></body></html>
"""

# Runs in the page: the call a browser app would make, its outcome written on the page too.
CALL = """async ([url, token]) => {
  const out = document.getElementById("result");
  try {
    const resp = await fetch(url, {headers: {"Authorization": "Bearer " + token}});
    const result = {
      fetched: true,
      status: resp.status,
      requestId: resp.headers.get("X-Request-ID"),
      body: await resp.json(),
    };
    out.textContent = location.origin + " -> " + JSON.stringify(result, null, 2);
    return result;
  } catch (error) {
    out.textContent = location.origin + " -> fetch rejected: " + error;
    return {fetched: false, error: String(error)};
  }
}"""


def _page_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


async def test_fetch_with_a_token_from_another_origin(
    edge_with_auth: Any, aiohttp_server: Any, browser: Any
) -> None:
    allowed = server_url(await aiohttp_server(_page_app()))
    other = server_url(await aiohttp_server(_page_app()))
    edge = await edge_with_auth(cors_origins=(allowed,))
    token = await edge.admin_token()
    url = edge.edge_url + "/v2/user/me"
    assert allowed != other and not edge.edge_url.startswith((allowed, other))

    page = await browser.new_page()
    await page.goto(allowed + "/")
    result = await page.evaluate(CALL, [url, token])
    await page.screenshot(path=ARTIFACTS / "cors-allowed-origin.png")
    assert result["fetched"] is True, result
    assert result["status"] == 200 and result["body"]["email"] == ADMIN_EMAIL
    assert result["requestId"], "X-Request-ID is exposed to the page"

    page = await browser.new_page()
    await page.goto(other + "/")
    result = await page.evaluate(CALL, [url, token])
    await page.screenshot(path=ARTIFACTS / "cors-disallowed-origin.png")
    assert result["fetched"] is False, result
    assert "Failed to fetch" in result["error"]

    # The edge was up and answering all along: the block was the browser's, on CORS.
    resp, _ = await edge.request("GET", "/v2/user/me", token=token, headers={"Origin": other})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
