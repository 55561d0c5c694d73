"""The shared/web helpers the services' handlers have in common (their HTTP behaviour is
covered end to end by the integration tests of each service)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import make_mocked_request

from shared.problems import Problem
from shared.web.conditional import check_if_match
from shared.web.paging import decode_time_cursor, page, time_key
from shared.web.params import path_uuid
from shared.web.writes import check_read_only, merge_patch


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch(target, ["x"]) == ["x"]  # not an object: replaces
    assert merge_patch("text", {"a": {"b": None}}) == {"a": {}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}  # left as it was


def test_read_only_fields_may_come_back_unchanged() -> None:
    body = {"id": "1", "name": "new"}
    check_read_only(body, ("id", "version"), {"id": "1", "version": 2})
    assert body == {"name": "new"}  # dropped: the server keeps them
    with pytest.raises(Problem) as caught:
        check_read_only({"version": 3}, ("id", "version"), {"id": "1", "version": 2})
    assert (caught.value.status, caught.value.detail) == (400, "version is read-only and cannot be changed")


def test_if_match_naming_another_version_is_a_412() -> None:
    check_if_match(make_mocked_request("PUT", "/"), 3, "thing")  # no If-Match: no condition
    check_if_match(make_mocked_request("PUT", "/", headers={"If-Match": '"3"'}), 3, "thing")
    with pytest.raises(Problem) as caught:
        check_if_match(make_mocked_request("PUT", "/", headers={"If-Match": '"2"'}), 3, "thing")
    assert caught.value.status == 412
    assert caught.value.detail == 'the thing changed since that ETag; it is now "3": GET it and retry'


def test_a_path_id_that_is_no_uuid_names_nothing() -> None:
    some = uuid.uuid4()
    request = make_mocked_request(
        "GET", f"/v2/thing/{some}/x/oops", match_info={"id": str(some), "other": "oops"}
    )
    assert path_uuid(request, "thing") == some
    with pytest.raises(Problem) as caught:
        path_uuid(request, "other thing", "other")
    assert (caught.value.status, caught.value.detail) == (404, "no such other thing")


def test_a_page_links_to_the_next_only_when_there_is_one() -> None:
    request = make_mocked_request("GET", "/v2/thing/list?limit=2&x=1&x=2")
    rows = [
        {"created_at": datetime(2026, 1, 1, 0, 0, 0, n, tzinfo=UTC), "id": uuid.uuid4()} for n in range(3)
    ]
    assert page(request, rows[:2], 2) == (rows[:2], {})
    shown, headers = page(request, rows, 2)
    assert shown == rows[:2]
    link = headers["Link"]
    assert link.startswith("</v2/thing/list?limit=2&x=1&x=2&cursor=") and link.endswith('>; rel="next"')
    cursor = link[link.index("cursor=") + len("cursor=") : link.index(">")]
    assert decode_time_cursor(cursor) == (rows[1]["created_at"], rows[1]["id"])
    assert time_key(rows[1])[0] == "2026-01-01T00:00:00.000001+00:00"  # full precision
