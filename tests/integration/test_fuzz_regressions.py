"""Regressions of what the schemathesis fuzz suite found (tests/fuzz): each was a 500 or a
response that broke the document."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from shared.events import format_time
from tests.conftest import Suite
from tests.factories import EVENT, create


def test_times_before_the_year_1000_keep_four_digits() -> None:
    moment = datetime(104, 8, 17, 5, 27, 2, 428500, tzinfo=UTC)
    assert format_time(moment) == "0104-08-17T05:27:02.428Z"


async def test_an_early_start_is_shown_as_a_valid_rfc3339_time(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, event = await create(suite, token, "event", {**EVENT, "startsAt": "0104-08-17T05:27:02.4285Z"})
    assert resp.status == 201, event
    assert event["startsAt"] == "0104-08-17T05:27:02.428Z"


async def test_a_nul_character_in_a_body_is_a_400_not_a_500(suite: Suite) -> None:
    resp, problem = await suite.request(
        "POST", "/v2/requesttoken", json={"email": "a\u0000@x.io", "password": "p"}
    )
    assert resp.status == 400 and "NUL" in problem["detail"]
    _, _, token = await suite.new_user()
    resp, problem = await create(suite, token, "event", {**EVENT, "title": "nul\u0000title"})
    assert resp.status == 400, problem
    resp, problem = await create(suite, token, "location", {"name": "x", "address": {"k": "a\u0000"}})
    assert resp.status == 400, problem


async def test_a_nul_character_in_a_query_or_cursor_is_a_400(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    for query in ("title=%00", "q=a%00b", "tags=%00"):
        resp, problem = await suite.request("GET", f"/v2/event/list?{query}", token=token)
        assert resp.status == 400, (query, problem)
    cursor = base64.urlsafe_b64encode(
        orjson.dumps(["\u0000", "00000000-0000-0000-0000-000000000000"])
    ).decode()
    resp, problem = await suite.request(
        "GET", f"/v2/event/list?sort=title&cursor={cursor.rstrip('=')}", token=token
    )
    assert resp.status == 400, problem


async def test_whole_floats_are_integers_and_defaults_are_filled(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, event = await create(suite, token, "event", {**EVENT, "capacity": 12.0})
    assert resp.status == 201 and event["capacity"] == 12 and isinstance(event["capacity"], int)
    resp, place = await create(suite, token, "location", {"name": "No zone given"})
    assert resp.status == 201 and place["timezone"] == "UTC"
    resp, place = await suite.request(
        "PATCH", f"/v2/location/{place['id']}", token=token, json={"timezone": None}
    )
    assert resp.status == 200 and place["timezone"] == "UTC"


async def test_what_the_edge_answers_itself_is_documented_on_every_operation(suite: Suite) -> None:
    """The edge refuses a malformed path with a 400 whichever operation it was meant for."""
    token = await suite.admin_token()
    resp, problem = await suite.request("GET", "/v2/subscription/D%5C%C2%92/secret", token=token)
    assert resp.status == 400, problem
    resp, document = await suite.request("GET", "/v2/openapi.json")
    for path, item in document["paths"].items():
        for method in ("get", "put", "post", "patch", "delete"):
            if method in item:
                assert {"400", "429", "502", "503", "504"} <= set(item[method]["responses"]), (method, path)
