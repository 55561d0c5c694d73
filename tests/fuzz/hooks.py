"""Edge values for the fuzz suite, loaded by schemathesis (SCHEMATHESIS_HOOKS, set by
run_fuzz.py): what parsers accept but PostgreSQL, orjson or datetime cannot hold. Times whose
UTC value leaves years 1 to 9999 (`0001-01-01T00:00:00+14:00`) or whose year is 0, integers past
64 bits, and cursors carrying either. They are drawn among schemathesis's own values, for every
operation: no list of routes to keep up to date. Operations on one resource also get the id of
one that exists (run_fuzz.py makes them), or a made-up id would stop each at its 404."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

EDGE_TIMES = (
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00.000001+00:01",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:00:00-12:00",
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
)
EDGE_INTEGERS = (
    "18446744073709551616",  # 2**64
    "9223372036854775808",  # bigint's maximum + 1
    "-9223372036854775809",
    "2147483648",  # integer's maximum + 1
    "99999999999999999999999",
    # Not past 4300 digits (what Python's int() reads from text): a few such parameters make
    # a request line longer than servers take. A regression test covers that one.
    "9" * 300,
    "1_000",  # Python's int() takes it
    "1,18446744073709551616",  # an [in] list with one too large
)
_ZERO_ID = "00000000-0000-0000-0000-000000000000"


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


EDGE_CURSORS = tuple(
    _cursor(values)
    for values in (
        *([moment, _ZERO_ID] for moment in EDGE_TIMES),
        [2**64, _ZERO_ID],
        [int("9" * 23), _ZERO_ID],
        [_ZERO_ID],
    )
)


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map("{:02d}".format)


# Any year 0 to 9999 with any offset up to ±23:59: hypothesis favours the ends of each range,
# so the extremes come often, and the listed ones at least once in a while.
_OFFSET = st.just("Z") | st.builds("{}{}:{}".format, st.sampled_from("+-"), _two(0, 23), _two(0, 59))
_TIME = st.builds(
    "{:04d}-{}-{}T{}:{}:{}{}{}".format,
    st.integers(0, 9999),
    _two(1, 12),
    _two(1, 28),
    _two(0, 23),
    _two(0, 59),
    _two(0, 59),
    st.just("") | st.integers(0, 999999).map(".{:06d}".format),
    _OFFSET,
)
schemathesis.openapi.format("date-time", _TIME | st.sampled_from(EDGE_TIMES))


@schemathesis.hook
def flatmap_query(ctx: Any, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Each query value as drawn, or an edge value (a cursor's own for `cursor`); or one of
    the parameters alone with an edge value, since a query stops at its first bad parameter
    and a drawn one is seldom all good."""
    if not query:
        return st.just(query)
    edges = {
        name: st.sampled_from(EDGE_CURSORS if name == "cursor" else (*EDGE_INTEGERS, *EDGE_TIMES))
        for name in query
    }
    mixed = st.fixed_dictionaries({name: st.just(value) | edges[name] for name, value in query.items()})
    alone = st.sampled_from(sorted(query)).flatmap(lambda name: edges[name].map(lambda value: {name: value}))
    return mixed | alone


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> st.SearchStrategy[Any]:
    """A body object's integers as drawn, or past 64 bits (JSON has no limit; orjson does)."""
    if not isinstance(body, dict):
        return st.just(body)
    huge = st.sampled_from((2**64, -(2**63) - 1, 10**30))
    return st.fixed_dictionaries(
        {
            name: st.just(value) | huge
            if isinstance(value, int) and not isinstance(value, bool)
            else st.just(value)
            for name, value in body.items()
        }
    )


# Made by run_fuzz.py. Not for the subscription's own PUT, PATCH and DELETE: a fuzzed URL there
# would send its deliveries off this machine; its deliveries, recover, ping and secret are safe.
_KNOWN_IDS = (
    ("/v2/event/{id}", os.environ.get("HERALD_FUZZ_EVENT_ID"), ("GET", "PUT", "PATCH", "POST")),
    ("/v2/location/{id}", os.environ.get("HERALD_FUZZ_LOCATION_ID"), ("GET", "PUT", "PATCH")),
    ("/v2/subscription/{id}/", os.environ.get("HERALD_FUZZ_SUBSCRIPTION_ID"), ("GET", "POST")),
)


@schemathesis.hook
def flatmap_path_parameters(ctx: Any, params: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    operation = ctx.operation
    if not params or "id" not in params or operation is None:
        return st.just(params)
    for prefix, known, methods in _KNOWN_IDS:
        if known and operation.path.startswith(prefix) and operation.method.upper() in methods:
            return st.just(params) | st.just({**params, "id": known})
    return st.just(params)
