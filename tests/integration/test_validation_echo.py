"""A 422 names the field and says what is wrong, never what was sent: subscription headers
carry receivers' credentials (an `Authorization` value), and a problem body ends up in logs,
browser consoles and support tickets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.config import Settings
from tests.conftest import Suite, make_settings
from tests.factories import new_subscription

SECRET = "Bearer sk-live-never-echo-7f3a9c"
MERGE = {"Content-Type": "application/merge-patch+json"}
URL = "http://127.0.0.1:9/hook/echo"


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    """Subscriptions here point at a closed port on this machine: whatever events other tests
    fan out to them never leave it."""
    return make_settings(database_url, amqp_prefix, signing_pem, webhook_allow_private=True)


def _too_many_headers() -> dict[str, str]:
    return {"Authorization": SECRET, **{f"X-H{i}": f"{SECRET}-{i}" for i in range(20)}}


def _assert_no_echo(resp: Any, problem: Any, field: str) -> None:
    assert resp.status == 422, problem
    assert field in [e["field"] for e in problem["errors"]], problem
    assert "sk-live-never-echo" not in orjson.dumps(problem).decode(), problem


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        (_too_many_headers(), "headers"),
        ({"Authorization": 12}, "headers.Authorization"),
        ({"Authorization": SECRET + "x" * 2048}, "headers.Authorization"),
        ({"Authorization": SECRET + "\r\nX: y"}, "headers.Authorization"),
    ],
)
async def test_a_422_on_headers_never_shows_their_values(
    suite: Suite, headers: dict[str, Any], field: str
) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request(
        "POST", "/v2/subscription/list", token=token, json={"url": URL, "topics": ["*"], "headers": headers}
    )
    _assert_no_echo(resp, problem, field)
    sub = await new_subscription(suite, token, url=URL)
    path = f"/v2/subscription/{sub['id']}"
    replace = {"url": sub["url"], "topics": sub["topics"], "description": "", "active": True}
    resp, problem = await suite.request("PUT", path, token=token, json={**replace, "headers": headers})
    _assert_no_echo(resp, problem, field)
    resp, problem = await suite.request("PATCH", path, token=token, json={"headers": headers}, headers=MERGE)
    _assert_no_echo(resp, problem, field)


async def test_a_url_with_credentials_is_refused_without_showing_them(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    for url in (
        "https://user:sk-live-never-echo-7f3a9c@127.0.0.1/hook",
        "https://user:sk-live-never-echo-7f3a9c@127.0.0.1:99999/hook",
    ):
        resp, problem = await suite.request(
            "POST", "/v2/subscription/list", token=token, json={"url": url, "topics": ["*"]}
        )
        _assert_no_echo(resp, problem, "url")
