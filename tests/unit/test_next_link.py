"""The next page's Link keeps the query it pages through."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request
from yarl import URL

from shared.web.paging import next_link


def _target(link: str) -> URL:
    assert link.endswith('>; rel="next"'), link
    return URL(link[1 : link.index(">")])


def test_repeated_parameters_keep_every_value_in_order() -> None:
    request = make_mocked_request("GET", "/v2/event/list?tags=b&limit=2&tags=a&tags=c&cursor=old")
    url = _target(next_link(request, "new"))
    assert url.path == "/v2/event/list"
    assert url.query.getall("tags") == ["b", "a", "c"]
    assert url.query.getall("cursor") == ["new"]  # replaced, not added
    assert url.query["limit"] == "2"


def test_first_page_gets_a_cursor_and_odd_values_survive() -> None:
    request = make_mocked_request("GET", "/v2/things?q=a%26b%3Dc&q=%20")
    url = _target(next_link(request, "abc"))
    assert url.query.getall("q") == ["a&b=c", " "]
    assert url.query["cursor"] == "abc"
