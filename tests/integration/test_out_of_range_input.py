"""Values a parser accepts but PostgreSQL, orjson or datetime cannot hold: each is a problem
naming the field (400 in a query or cursor, 422 in a body), never a 500. A time is valid when
its UTC value falls in years 1 to 9999; an integer when it fits the column (or, in a document,
PostgreSQL's bigint). What the pen test found, route by route."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from shared.config import Settings
from tests.conftest import Suite, make_settings
from tests.factories import EVENT, create, new_event, new_subscription

# Their UTC values fall before year 1 / after year 9999, though each reads as a valid time.
EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:00:00-12:00"
BEYOND_64_BITS = "18446744073709551616"
HUGE = "99999999999999999999999"


@pytest.fixture
def settings(database_url: str, amqp_prefix: str, signing_pem: str) -> Settings:
    """Subscriptions here point at a closed port on this machine: whatever events other tests
    fan out to them never leave it."""
    return make_settings(database_url, amqp_prefix, signing_pem, webhook_allow_private=True)


def _cursor(values: list[Any]) -> str:
    # json, not orjson: orjson cannot write integers past 64 bits, and a cursor may carry them.
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _problem(resp: Any, problem: Any, status: int, field: str) -> None:
    assert resp.status == status, problem
    assert resp.content_type == "application/problem+json"
    assert field in problem["detail"], problem


@pytest.mark.parametrize("moment", [EARLY, LATE])
@pytest.mark.parametrize("field", ["startsAt", "endsAt"])
async def test_event_times_out_of_range_are_a_422_on_every_write(
    suite: Suite, moment: str, field: str
) -> None:
    _, _, token = await suite.new_user()
    # endsAt must not be before startsAt: keep the other one on the valid side.
    body = {**EVENT, "startsAt": "0001-01-02T00:00:00Z", "endsAt": "9999-12-30T00:00:00Z", field: moment}
    resp, problem = await create(suite, token, "event", body)
    _problem(resp, problem, 422, field)
    assert problem["errors"] == [{"field": field, "message": problem["errors"][0]["message"]}]
    resp, problem = await create(suite, token, "event", [EVENT, body])
    _problem(resp, problem, 422, f"[1].{field}")
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    resp, problem = await suite.request("PATCH", path, token=token, json={field: moment})
    _problem(resp, problem, 422, field)
    resp, problem = await suite.request("PUT", path, token=token, json=body)
    _problem(resp, problem, 422, field)
    resp, current = await suite.request("GET", path, token=token)
    assert current["version"] == 1  # nothing written


@pytest.mark.parametrize("moment", [EARLY, LATE])
@pytest.mark.parametrize("key", ["startsAt[gte]", "endsAt", "createdAt[lt]", "updatedAt[in]"])
async def test_time_filters_out_of_range_are_a_400(suite: Suite, moment: str, key: str) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request("GET", f"/v2/event/list?{quote(key)}={quote(moment)}", token=token)
    _problem(resp, problem, 400, key.split("[")[0])


@pytest.mark.parametrize(
    ("type_", "query", "field"),
    [
        ("event", f"capacity={HUGE}", "capacity"),
        ("event", f"capacity[gt]={BEYOND_64_BITS}", "capacity"),
        ("event", f"capacity[in]=1,{BEYOND_64_BITS}", "capacity"),
        ("event", f"capacity[lt]=-{BEYOND_64_BITS}", "capacity"),
        ("location", f"capacity[in]=1,{HUGE}", "capacity"),
        ("location", "capacity=1_000", "capacity"),  # Python's int() takes it; the API does not
    ],
)
async def test_integer_filters_out_of_range_are_a_400(
    suite: Suite, type_: str, query: str, field: str
) -> None:
    _, _, token = await suite.new_user()
    resp, problem = await suite.request("GET", f"/v2/{type_}/list?{query}", token=token)
    _problem(resp, problem, 400, field)


async def test_the_largest_bigint_filters_fine(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, found = await suite.request("GET", f"/v2/event/list?capacity[lt]={2**63 - 1}", token=token)
    assert resp.status == 200, found


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("createdAt", [EARLY, "00000000-0000-0000-0000-000000000000"]),
        ("-updatedAt", [LATE, "00000000-0000-0000-0000-000000000000"]),
        ("createdAt", ["0000-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"]),
        ("createdAt", [int(HUGE), "00000000-0000-0000-0000-000000000000"]),
        ("startsAt", [2**64, "00000000-0000-0000-0000-000000000000"]),
    ],
)
async def test_resource_cursors_out_of_range_are_a_400(suite: Suite, sort: str, values: list[Any]) -> None:
    _, _, token = await suite.new_user()
    cursor = _cursor(values)
    resp, problem = await suite.request("GET", f"/v2/event/list?sort={sort}&cursor={cursor}", token=token)
    _problem(resp, problem, 400, "cursor")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": EARLY}, "since"),
        ({"since": LATE}, "since"),
        ({"since": "0000-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": LATE}, "until"),
        ({"since": "2026-01-01T00:00:00Z", "until": EARLY}, "until"),
    ],
)
async def test_recover_times_out_of_range_are_a_422(suite: Suite, body: dict[str, str], field: str) -> None:
    _, _, token = await suite.new_user()
    sub_id = (await new_subscription(suite, token))["id"]
    resp, problem = await suite.request("POST", f"/v2/subscription/{sub_id}/recover", token=token, json=body)
    _problem(resp, problem, 422, field)
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize(
    "values",
    [
        [EARLY, "00000000-0000-0000-0000-000000000000"],
        [LATE, "00000000-0000-0000-0000-000000000000"],
        [int(HUGE), "00000000-0000-0000-0000-000000000000"],
        [2**64 - 1, "00000000-0000-0000-0000-000000000000"],
    ],
)
async def test_webhook_cursors_out_of_range_are_a_400(suite: Suite, values: list[Any]) -> None:
    _, _, token = await suite.new_user()
    sub_id = (await new_subscription(suite, token))["id"]
    cursor = _cursor(values)
    for path in ("/v2/subscription/list", f"/v2/subscription/{sub_id}/deliveries"):
        resp, problem = await suite.request("GET", f"{path}?cursor={cursor}", token=token)
        _problem(resp, problem, 400, "cursor")


async def test_a_limit_of_thousands_of_digits_is_a_400(suite: Suite) -> None:
    """Python's int() refuses more than 4300 digits with a ValueError of its own."""
    _, _, token = await suite.new_user()
    for path in ("/v2/event/list", "/v2/subscription/list", "/v2/user/list"):
        resp, problem = await suite.request(
            "GET", f"{path}?limit={'9' * 5000}", token=await suite.admin_token()
        )
        _problem(resp, problem, 400, "limit")
    resp, problem = await suite.request("GET", f"/v2/event/list?capacity={'9' * 5000}", token=token)
    _problem(resp, problem, 400, "capacity")
