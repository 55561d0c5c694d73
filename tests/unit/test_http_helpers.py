from __future__ import annotations

import ipaddress
import uuid

import pytest
from aiohttp.test_utils import make_mocked_request

from shared.problems import Problem
from shared.web.client import client_address
from shared.web.middleware import make_request_id
from shared.web.paging import decode_cursor, encode_cursor

TRUSTED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"))


def _request(peer: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers)
    request._transport_peername = (peer, 1234)  # what aiohttp reads request.remote from
    return request


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    assert client_address(_request("203.0.113.9", "1.2.3.4"), TRUSTED) == "203.0.113.9"
    assert client_address(_request("127.0.0.1", "1.2.3.4"), TRUSTED) == "1.2.3.4"
    # A spoofed first hop does not help: the last untrusted hop is the client.
    assert client_address(_request("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.1.1"), TRUSTED) == "1.2.3.4"
    assert client_address(_request("127.0.0.1", "garbage"), TRUSTED) == "127.0.0.1"
    assert client_address(_request("127.0.0.1"), TRUSTED) == "127.0.0.1"


def test_request_ids() -> None:
    assert make_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", "x" * 129, "new\nline"):
        assert uuid.UUID(make_request_id(bad))


def test_cursors_round_trip_and_garbage_is_a_400() -> None:
    assert decode_cursor(encode_cursor(["2026-01-01", 5, "id"])) == ["2026-01-01", 5, "id"]
    for bad in ("%%%", "e30", "bm90IGpzb24"):
        with pytest.raises(Problem) as caught:
            decode_cursor(bad)
        assert caught.value.status == 400


def test_if_match_compares_strongly_and_if_none_match_weakly() -> None:
    from shared.web.conditional import etag, etag_matches

    assert etag(3) == '"3"'
    assert etag_matches('"2", "3"', 3, weak=False)
    assert etag_matches("*", 3, weak=False)
    assert not etag_matches('W/"3"', 3, weak=False)  # a weak tag never satisfies If-Match
    assert etag_matches('W/"3"', 3, weak=True)
    assert not etag_matches('"4"', 3, weak=True)
