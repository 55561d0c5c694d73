"""Subscription filters: which events of its topics a subscription wants, said as conditions on
the event envelope (`id`, `type`, `timestamp`, `actor`, `data`). The API checks a filter when it
is saved (`filter_problems`); the fan-out and the replay evaluate it per event
(`compile_filter`), in memory, without a query. The language, as docs/filters.md explains it:

- `{"data.locationId": "abc", "data.capacity": {"gte": 10}}`: every key must hold (AND). A key is
  a dotted path through objects, starting at an envelope field; a value is a JSON value
  (equality) or an object of exactly one operator: eq ne in nin gt gte lt lte exists.
- `{"$or": [filter, ...]}`, `{"$and": [filter, ...]}`, `{"$not": filter}` combine filters.
- A path that is missing: equality, `in` and comparisons are false; `ne`, `nin` true;
  `exists: false` true. `exists` is about the key: a present `null` exists.
- Equality is JSON's (1 equals 1.0, never true). When the event's value is an array and the
  filter's is not, equality means "contains" and `in` means "shares an element".
- gt/gte/lt/lte compare numbers with numbers and strings with strings (code points, so ISO
  times in one format compare as times); anything else is false."""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

Envelope = Mapping[str, Any]
Predicate = Callable[[Envelope], bool]
Test = Callable[[Any], bool]

MAX_DEPTH = 5  # filters inside filters ($or, $and, $not), the outermost one counting 1
MAX_CONDITIONS = 50  # path conditions in the whole filter
MAX_BYTES = 4096  # the filter encoded as compact JSON
MAX_PATH = 200  # characters of one path
ROOTS = ("id", "type", "timestamp", "actor", "data")
OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists")
COMBINATORS = ("$or", "$and", "$not")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_MISSING = object()

log = logging.getLogger("herald.webhook.filters")

Problems = list[tuple[str, str]]


# -- checking ------------------------------------------------------------------------------


def filter_problems(spec: Any) -> Problems:
    """What is wrong with a filter as (path, problem) pairs, paths starting at `filter`; empty
    when it may be saved. None (no filter) is fine."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [("filter", "must be an object (or null for no filter)")]
    size = len(orjson.dumps(spec))
    if size > MAX_BYTES:
        return [("filter", f"is {size} bytes as JSON; at most {MAX_BYTES} are allowed")]
    problems: Problems = []
    conditions = _check(spec, "filter", 1, problems)
    if conditions > MAX_CONDITIONS:
        problems.append(("filter", f"has {conditions} conditions; at most {MAX_CONDITIONS} are allowed"))
    return problems


def _check(spec: dict[str, Any], where: str, depth: int, problems: Problems) -> int:
    """Check one filter object; the number of path conditions in it."""
    conditions = 0
    for key, value in spec.items():
        at = f"{where}.{key}"
        if key in ("$or", "$and"):
            if not isinstance(value, list) or not value:
                problems.append((at, f"{key} needs a non-empty array of filters"))
                continue
            for i, item in enumerate(value):
                conditions += _check_nested(item, f"{at}.{i}", depth, problems)
        elif key == "$not":
            conditions += _check_nested(value, at, depth, problems)
        elif key.startswith("$"):
            problems.append((at, f"unknown combinator; use one of {', '.join(COMBINATORS)}"))
        else:
            conditions += 1
            _check_path(key, at, problems)
            if isinstance(value, dict):
                _check_operator(value, at, problems)
    return conditions


def _check_nested(spec: Any, at: str, depth: int, problems: Problems) -> int:
    if not isinstance(spec, dict):
        problems.append((at, "must be a filter object"))
        return 0
    if depth >= MAX_DEPTH:
        problems.append((at, f"filters nest at most {MAX_DEPTH} deep"))
        return 0
    return _check(spec, at, depth + 1, problems)


def _check_path(path: str, at: str, problems: Problems) -> None:
    if len(path) > MAX_PATH:
        problems.append((at, f"the path is longer than {MAX_PATH} characters"))
    elif path.split(".", 1)[0] not in ROOTS:
        problems.append((at, f"a path starts with one of {', '.join(ROOTS)} (e.g. data.locationId)"))
    elif "" in path.split("."):
        problems.append((at, "a path has no empty segment (two dots, or a dot at an end)"))


def _check_operator(value: dict[str, Any], at: str, problems: Problems) -> None:
    if len(value) != 1:
        problems.append(
            (
                at,
                'an object here is one operator (e.g. {"gte": 10}), not '
                f"{len(value)} keys; combine conditions with $and, or compare with an object "
                'as {"eq": {...}}',
            )
        )
        return
    [(name, operand)] = value.items()
    at = f"{at}.{name}"
    if name not in OPERATORS:
        problems.append(
            (
                at,
                f"unknown operator; use one of {', '.join(OPERATORS)} "
                '(to compare with an object, write {"eq": {...}})',
            )
        )
    elif name in ("in", "nin") and (not isinstance(operand, list) or not operand):
        problems.append((at, f"{name} needs a non-empty array of values"))
    elif name in _COMPARE and not (_is_number(operand) or isinstance(operand, str)):
        problems.append((at, f"{name} needs a number or a string"))
    elif name == "exists" and not isinstance(operand, bool):
        problems.append((at, "exists needs a boolean"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- evaluating ----------------------------------------------------------------------------


def _always(_envelope: Envelope) -> bool:
    return True


def _never(_envelope: Envelope) -> bool:
    return False


def stored_filter(sub_id: uuid.UUID, stored: str | None) -> Predicate:
    """A subscription row's filter (its `filter` column), compiled: by the fan-out's index once
    per row, by replay once per request. One the API would refuse now (it was saved by an older
    version) matches nothing rather than everything it meant to keep out."""
    try:
        return compile_filter(None if stored is None else orjson.loads(stored))
    except ValueError as exc:
        log.error("subscription %s has a filter that cannot be used; it gets no events: %s", sub_id, exc)
        return _never


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate:
    """The filter as a function of an event envelope; None matches every event. Raises
    ValueError on a filter `filter_problems` refuses."""
    if spec is None:
        return _always
    problems = filter_problems(spec)
    if problems:
        raise ValueError("; ".join(f"{at}: {problem}" for at, problem in problems))
    return _compile(spec)


def _compile(spec: Mapping[str, Any]) -> Predicate:
    parts: list[Predicate] = []
    for key, value in spec.items():
        if key == "$or":
            parts.append(_any([_compile(s) for s in value]))
        elif key == "$and":
            parts.append(_all([_compile(s) for s in value]))
        elif key == "$not":
            parts.append(_negated(_compile(value)))
        else:
            [(name, operand)] = value.items() if isinstance(value, dict) else [("eq", value)]
            parts.append(_condition(_getter(key), _test(name, operand)))
    return _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    checks = tuple(parts)

    def every(envelope: Envelope) -> bool:
        for check in checks:
            if not check(envelope):
                return False
        return True

    return every


def _any(parts: list[Predicate]) -> Predicate:
    checks = tuple(parts)

    def some(envelope: Envelope) -> bool:
        for check in checks:
            if check(envelope):
                return True
        return False

    return some


def _negated(part: Predicate) -> Predicate:
    return lambda envelope: not part(envelope)


def _condition(get: Callable[[Envelope], Any], test: Test) -> Predicate:
    return lambda envelope: test(get(envelope))


def _getter(path: str) -> Callable[[Envelope], Any]:
    first, *rest = path.split(".")
    if not rest:
        return lambda envelope: envelope.get(first, _MISSING)
    keys = tuple(rest)

    def get(envelope: Envelope) -> Any:
        value = envelope.get(first, _MISSING)
        for key in keys:
            if type(value) is not dict:
                return _MISSING
            value = value.get(key, _MISSING)
        return value

    return get


def _test(name: str, operand: Any) -> Test:
    if name == "exists":
        return (lambda v: v is not _MISSING) if operand else (lambda v: v is _MISSING)
    if name in _COMPARE:
        compare = _COMPARE[name]
        if isinstance(operand, str):
            return lambda v: type(v) is str and compare(v, operand)
        return lambda v: (type(v) is int or type(v) is float) and compare(v, operand)
    if name in ("eq", "ne"):
        test = _equals(operand)
    else:
        test = _one_of(operand)
    if name in ("ne", "nin"):
        return lambda v: not test(v)
    return test


def _equals(expected: Any) -> Test:
    """Equality, or "contains" when the event holds an array and `expected` is not one."""
    if isinstance(expected, list):
        return lambda v: _same(v, expected)
    one = _scalar_equals(expected)

    def test(v: Any) -> bool:
        if type(v) is list:
            return any(one(item) for item in v)
        return one(v)

    return test


def _scalar_equals(expected: Any) -> Test:
    if isinstance(expected, str):
        return lambda v: v == expected  # a str equals nothing but a str
    if expected is None or isinstance(expected, bool):
        return lambda v: v is expected
    if _is_number(expected):
        return lambda v: (type(v) is int or type(v) is float) and v == expected
    return lambda v: _same(v, expected)


def _one_of(values: list[Any]) -> Test:
    if all(isinstance(v, str) for v in values):
        strings = frozenset(values)

        def among(v: Any) -> bool:
            if type(v) is str:
                return v in strings
            if type(v) is list:
                return any(type(item) is str and item in strings for item in v)
            return False

        return among
    tests = tuple(_equals(v) for v in values)
    return lambda v: any(test(v) for test in tests)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: Python's would take True for 1."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)
