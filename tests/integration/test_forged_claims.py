"""Tokens signed with the real key but carrying claims auth never issues: each is a 401, never a
503 (auth answered; the token is wrong) and never accepted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Suite
from tests.integration.test_tokens import _assert_refused, _claims, _kid, _sign


async def test_a_cv_above_the_users_is_a_401_not_a_503(suite: Suite) -> None:
    user, _, token = await suite.new_user()
    forged = _sign(suite, _claims(suite, user, cv=2), _kid(suite, token))  # the user's cv is 1
    for _ in range(2):  # asked of auth, then from what the verifier remembers
        await _assert_refused(suite, forged, "cv above the user's")
    resp, _ = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200  # the real token still works


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("cv", True),  # a bool is an int to Python: True would pass as 1
        ("cv", 1.0),
        ("cv", "1"),
        ("cv", -1),
        ("roles", "admin"),
        ("roles", [["admin"]]),
        ("roles", [1]),
        ("email", ["a@b.c"]),
        ("sub", ""),
    ],
)
async def test_claims_of_the_wrong_type_are_a_401(suite: Suite, claim: str, value: Any) -> None:
    user, _, token = await suite.new_user()
    forged = _sign(suite, _claims(suite, user, **{claim: value}), _kid(suite, token))
    await _assert_refused(suite, forged, f"{claim}={value!r}")
