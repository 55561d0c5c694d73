"""Auth's internal look-up (a user's credential version and active flag) answers only the
services, which send HERALD_INTERNAL_TOKEN; whoever else reaches auth's port gets 401/403."""

from __future__ import annotations

import dataclasses
from typing import Any

from services.resource.app import create_app as resource_app
from shared.verifier import INTERNAL_TOKEN_HEADER
from tests.conftest import Suite, server_url


async def test_the_look_up_needs_the_internal_token(suite: Suite) -> None:
    user, _, _ = await suite.new_user()
    path = f"/internal/users/{user['id']}/credentials"
    resp, problem = await suite.request("GET", path, base=suite.auth_url)
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    assert INTERNAL_TOKEN_HEADER in problem["detail"] and "cv" not in problem
    # A user's token is no internal credential.
    resp, problem = await suite.request("GET", path, base=suite.auth_url, token=await suite.admin_token())
    assert resp.status == 401, problem
    for wrong in ("wrong", suite.settings.internal_token[:-1], suite.settings.internal_token + "x"):
        resp, problem = await suite.request(
            "GET", path, base=suite.auth_url, headers={INTERNAL_TOKEN_HEADER: wrong}
        )
        assert resp.status == 403 and problem["status"] == 403
    resp, body = await suite.request(
        "GET", path, base=suite.auth_url, headers={INTERNAL_TOKEN_HEADER: suite.settings.internal_token}
    )
    assert resp.status == 200 and body == {"cv": 1, "active": True}


async def test_a_service_with_the_wrong_internal_token_cannot_confirm_tokens(
    suite: Suite, aiohttp_server: Any
) -> None:
    """The services send the token with their look-ups: with the right one, a token is
    accepted; with a wrong one, auth refuses the look-up and the service answers 503 (it cannot
    confirm the token), never 200."""
    _, _, token = await suite.new_user()
    base = suite.settings
    for internal_token, expected in ((base.internal_token, 200), ("not-the-internal-token", 503)):
        resource = await aiohttp_server(
            resource_app(dataclasses.replace(base, internal_token=internal_token))
        )
        resp, body = await suite.request("GET", "/v2/event/list", base=server_url(resource), token=token)
        assert resp.status == expected, body
