"""Subscription filters: what a save refuses (filter_problems) and what an event passes
(compile_filter), each rule of docs/filters.md once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.webhook_delivery.engine.index import IndexedSubscription
from services.webhook_delivery.filters import (
    MAX_BYTES,
    MAX_CONDITIONS,
    MAX_DEPTH,
    compile_filter,
    filter_problems,
)

EVENT: dict[str, Any] = {
    "id": "9d0617aa-1f72-4647-af34-f405884368ef",
    "type": "event.approved",
    "timestamp": "2026-12-02T04:16:57.170Z",
    "actor": {"id": "c2c1847e-989b-43fb-9482-c9ba92656dc7"},
    "data": {
        "title": "Launch party",
        "locationId": "loc-1",
        "capacity": 80,
        "ratio": 0.5,
        "tags": ["public", "music"],
        "description": None,
        "public": True,
        "startsAt": "2026-12-24T18:00:00.000Z",
        "venue": {"floor": 2, "room": "A"},
    },
}


def passes(spec: dict[str, Any] | None, event: dict[str, Any] = EVENT) -> bool:
    assert filter_problems(spec) == []
    return compile_filter(spec)(event)


def test_no_filter_and_the_empty_filter_pass_everything() -> None:
    assert passes(None)
    assert passes({})
    assert compile_filter(None)({})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "event.approved"}, True),
        ({"type": "event.created"}, False),
        ({"actor.id": "c2c1847e-989b-43fb-9482-c9ba92656dc7"}, True),
        ({"data.locationId": "loc-1", "data.capacity": 80}, True),
        ({"data.locationId": "loc-1", "data.capacity": 81}, False),  # every key must hold
        ({"data.capacity": 80.0}, True),  # JSON numbers: 80 equals 80.0
        ({"data.public": 1}, False),  # ... but true is not 1
        ({"data.capacity": True}, False),
        ({"data.description": None}, True),
        ({"data.capacity": "80"}, False),  # no conversions
        ({"data.venue": {"eq": {"floor": 2, "room": "A"}}}, True),
        ({"data.venue": {"eq": {"floor": 2}}}, False),
        ({"data.venue.room": {"eq": "A"}}, True),
        ({"data.capacity": {"ne": 80}}, False),
        ({"data.capacity": {"ne": 79}}, True),
        ({"data.locationId": {"in": ["loc-2", "loc-1"]}}, True),
        ({"data.locationId": {"in": ["loc-2", 3]}}, False),
        ({"data.capacity": {"in": [80, "x"]}}, True),
        ({"data.locationId": {"nin": ["loc-2"]}}, True),
        ({"data.locationId": {"nin": ["loc-1"]}}, False),
        ({"data.capacity": {"gt": 79}}, True),
        ({"data.capacity": {"gt": 80}}, False),
        ({"data.capacity": {"gte": 80}}, True),
        ({"data.capacity": {"lt": 80.5}}, True),
        ({"data.capacity": {"lte": 79}}, False),
        ({"data.ratio": {"lt": 1}}, True),
        ({"data.startsAt": {"gte": "2026-12-01T00:00:00.000Z"}}, True),  # ISO times as strings
        ({"data.startsAt": {"lt": "2026-12-01T00:00:00.000Z"}}, False),
        ({"data.description": {"exists": True}}, True),  # a present null exists
        ({"data.nothing": {"exists": False}}, True),
        ({"data.capacity": {"exists": False}}, False),
    ],
)
def test_each_operator(spec: dict[str, Any], expected: bool) -> None:
    assert passes(spec) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"data.tags": "music"}, True),  # an array contains the value
        ({"data.tags": "jazz"}, False),
        ({"data.tags": {"ne": "music"}}, False),
        ({"data.tags": ["public", "music"]}, True),  # an array operand: the whole array
        ({"data.tags": ["music", "public"]}, False),
        ({"data.tags": {"in": ["jazz", "music"]}}, True),  # shares an element
        ({"data.tags": {"in": ["jazz", 1]}}, False),
        ({"data.tags": {"nin": ["jazz", "rock"]}}, True),
        ({"data.tags": {"gt": "a"}}, False),  # comparisons never look inside arrays
    ],
)
def test_arrays_in_the_event(spec: dict[str, Any], expected: bool) -> None:
    assert passes(spec) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"data.missing": "x"}, False),
        ({"data.missing": None}, False),  # missing is not null
        ({"data.missing": {"ne": "x"}}, True),
        ({"data.missing": {"in": ["x"]}}, False),
        ({"data.missing": {"nin": ["x"]}}, True),
        ({"data.missing": {"gt": 0}}, False),
        ({"data.missing": {"lte": "z"}}, False),
        ({"data.missing": {"exists": True}}, False),
        ({"data.capacity.deeper": {"exists": False}}, True),  # through a number: missing
        ({"data.tags.0": {"exists": False}}, True),  # paths do not index arrays
        ({"data.title.length": {"exists": False}}, True),
    ],
)
def test_missing_paths(spec: dict[str, Any], expected: bool) -> None:
    assert passes(spec) is expected


@pytest.mark.parametrize(
    "spec",
    [
        {"data.capacity": {"gt": "79"}},  # a number against a string
        {"data.title": {"gt": 1}},
        {"data.public": {"gte": 0}},  # booleans are not numbers
        {"data.description": {"lt": "z"}},
        {"data.venue": {"gt": 1}},
    ],
)
def test_comparisons_across_types_are_false(spec: dict[str, Any]) -> None:
    assert not passes(spec)
    assert passes({"$not": spec})


def test_or_and_not_combine() -> None:
    either = [{"data.capacity": {"gt": 100}}, {"data.tags": "music"}]
    assert passes({"$or": either})
    assert not passes({"$or": [either[0], {"data.tags": "jazz"}]})
    assert passes({"$and": [*either, {"type": "event.approved"}]}) is False
    assert passes({"$and": [either[1], {"type": "event.approved"}]})
    assert passes({"$not": {"data.capacity": {"gt": 100}}})
    assert not passes({"$not": {"$or": either}})
    # A range on one path, and a combinator beside plain keys (AND).
    in_range = {"$and": [{"data.capacity": {"gte": 50}}, {"data.capacity": {"lt": 100}}]}
    assert passes({**in_range, "type": "event.approved"})
    assert not passes({**in_range, "type": "event.created"})


def test_envelope_without_data_objects() -> None:
    odd = {"id": "x", "type": "location.deleted", "data": ["not", "an", "object"]}
    assert passes({"data.name": {"exists": False}}, odd)
    assert not passes({"data.name": "x"}, odd)
    assert passes({"actor.id": {"exists": False}}, {"type": "t"})


@pytest.mark.parametrize(
    ("spec", "where", "words"),
    [
        ([], "filter", "must be an object"),
        ("type", "filter", "must be an object"),
        ({"data.capacity": {"gt": True}}, "filter.data.capacity.gt", "gt needs a number or a string"),
        ({"data.capacity": {"lte": [1]}}, "filter.data.capacity.lte", "lte needs a number or a string"),
        ({"data.capacity": {"between": [1, 2]}}, "filter.data.capacity.between", "unknown operator"),
        ({"data.venue": {"floor": 2}}, "filter.data.venue.floor", '{"eq": {...}}'),
        ({"data.capacity": {"gt": 1, "lt": 9}}, "filter.data.capacity", "one operator"),
        ({"data.capacity": {}}, "filter.data.capacity", "one operator"),
        ({"data.tags": {"in": "music"}}, "filter.data.tags.in", "in needs a non-empty array"),
        ({"data.tags": {"nin": []}}, "filter.data.tags.nin", "nin needs a non-empty array"),
        ({"data.x": {"exists": "yes"}}, "filter.data.x.exists", "exists needs a boolean"),
        ({"$or": []}, "filter.$or", "$or needs a non-empty array of filters"),
        ({"$or": {"type": "x"}}, "filter.$or", "$or needs a non-empty array of filters"),
        ({"$and": [{"type": "x"}, "y"]}, "filter.$and.1", "must be a filter object"),
        ({"$not": [{"type": "x"}]}, "filter.$not", "must be a filter object"),
        ({"$nor": [{"type": "x"}]}, "filter.$nor", "unknown combinator"),
        ({"locationId": "x"}, "filter.locationId", "starts with one of id, type, timestamp, actor, data"),
        ({"data..x": 1}, "filter.data..x", "empty segment"),
        ({"data.": 1}, "filter.data.", "empty segment"),
        ({"data." + "x" * 200: 1}, "filter.data." + "x" * 200, "longer than 200"),
        (
            {"$or": [{"data.capacity": {"gt": None}}]},
            "filter.$or.0.data.capacity.gt",
            "gt needs a number or a string",
        ),
    ],
)
def test_problems_name_the_place(spec: Any, where: str, words: str) -> None:
    problems = filter_problems(spec)
    assert [at for at, _ in problems] == [where], problems
    assert words in problems[0][1]
    with pytest.raises(ValueError, match="filter"):
        compile_filter(spec)


def test_every_problem_is_reported() -> None:
    problems = filter_problems({"data.a": {"gt": None}, "data.b": {"exists": 1}, "$not": {"x": 1}})
    assert [at for at, _ in problems] == ["filter.data.a.gt", "filter.data.b.exists", "filter.$not.x"]


def _nested(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "event.approved"}
    for _ in range(depth - 1):
        spec = {"$not": spec}
    return spec


def test_depth_bound() -> None:
    assert filter_problems(_nested(MAX_DEPTH)) == []
    assert passes(_nested(MAX_DEPTH)) is (MAX_DEPTH % 2 == 1)  # an even number of $not
    [(where, problem)] = filter_problems(_nested(MAX_DEPTH + 1))
    assert where == "filter" + ".$not" * MAX_DEPTH
    assert f"at most {MAX_DEPTH} deep" in problem


def test_condition_bound() -> None:
    most = {f"data.f{i}": i for i in range(MAX_CONDITIONS)}
    assert filter_problems(most) == []
    assert passes(most) is False
    spread = {"$or": [{f"data.f{i}": i} for i in range(MAX_CONDITIONS + 1)]}
    [(where, problem)] = filter_problems(spread)
    assert where == "filter"
    assert f"has {MAX_CONDITIONS + 1} conditions; at most {MAX_CONDITIONS}" in problem


def test_size_bound() -> None:
    big = {"data.title": {"in": ["x" * 100 for _ in range(MAX_BYTES // 100)]}}
    [(where, problem)] = filter_problems(big)
    assert where == "filter"
    assert f"at most {MAX_BYTES} are allowed" in problem


def _indexed(stored: str | None) -> IndexedSubscription:
    row = {"id": uuid.uuid4(), "owner_id": uuid.uuid4(), "owner_roles": ["member"], "topics": ["*"]}
    return IndexedSubscription.from_row({**row, "active": True, "filter": stored})


def test_the_index_compiles_the_stored_filter_once_per_row(caplog: pytest.LogCaptureFixture) -> None:
    assert _indexed(None).passes_filter(EVENT)
    assert _indexed('{"data.capacity": {"gte": 50}}').passes_filter(EVENT)
    assert not _indexed('{"data.capacity": {"gte": 100}}').passes_filter(EVENT)
    # One the API would refuse (saved before a rule changed): nothing rather than everything.
    refused = _indexed('{"data.capacity": {"between": [1, 100]}}')
    assert not refused.passes_filter(EVENT)
    assert "filter.data.capacity.between" in caplog.text
