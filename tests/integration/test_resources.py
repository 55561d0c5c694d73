"""Resources through the edge: CRUD, conditional requests, idempotency, bulk creates, and
the errors of each. Real PostgreSQL and RabbitMQ, the four services in-process."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import Suite
from tests.factories import EVENT, MERGE, create, new_event, new_location


async def test_create_returns_the_resource_with_location_and_etag(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    place = await new_location(suite, token)
    resp, event = await create(suite, token, "event", {**EVENT, "locationId": place["id"]})
    assert resp.status == 201, event
    assert resp.headers["Location"] == f"/v2/event/{event['id']}"
    assert resp.headers["ETag"] == '"1"'
    assert event["status"] == "draft" and event["version"] == 1
    assert event["startsAt"] == "2027-03-01T18:00:00.000Z"  # normalized to UTC with milliseconds
    assert event["endsAt"] == "2027-03-01T21:00:00.000Z"
    assert event["locationId"] == place["id"]
    assert event["tags"] == ["party", "launch"]
    resp, fetched = await suite.request("GET", resp.headers["Location"], token=token)
    assert resp.status == 200 and fetched == event


async def test_if_none_match_gives_304_and_a_change_a_new_etag(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    resp, _ = await suite.request("GET", path, token=token, headers={"If-None-Match": '"1"'})
    assert resp.status == 304
    resp, changed = await suite.request("PATCH", path, token=token, json={"title": "Renamed"})
    assert resp.status == 200 and changed["version"] == 2 and resp.headers["ETag"] == '"2"'
    resp, body = await suite.request("GET", path, token=token, headers={"If-None-Match": '"1"'})
    assert resp.status == 200 and body["title"] == "Renamed"


async def test_put_replaces_and_patch_merges(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    # PUT: the writable fields are replaced; what is left out is cleared.
    resp, body = await suite.request(
        "PUT",
        path,
        token=token,
        json={"title": "Only this", "startsAt": "2027-01-01T10:00:00Z", "endsAt": "2027-01-01T11:00:00Z"},
    )
    assert resp.status == 200, body
    assert body["description"] is None and body["tags"] == [] and body["capacity"] is None
    # A GET body sent back unchanged (read-only fields included) is accepted.
    resp, again = await suite.request("PUT", path, token=token, json={**body, "title": "Round trip"})
    assert resp.status == 200 and again["title"] == "Round trip"
    # PATCH: merge patch; null clears, the rest stays.
    resp, body = await suite.request(
        "PATCH", path, token=token, data=b'{"capacity": 5, "description": "d", "title": null}', headers=MERGE
    )
    assert resp.status == 422, body  # title is required: clearing it breaks the schema
    assert body["errors"] == [{"field": "title", "message": "is required"}]
    resp, body = await suite.request(
        "PATCH", path, token=token, data=b'{"capacity": 5, "description": null}', headers=MERGE
    )
    assert resp.status == 200, body
    assert body["capacity"] == 5 and body["description"] is None and body["title"] == "Round trip"


async def test_put_never_creates(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, body = await suite.request("PUT", f"/v2/event/{uuid.uuid4()}", token=token, json=EVENT)
    assert resp.status == 404, body


async def test_delete_then_404(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    resp, _ = await suite.request("DELETE", path, token=token)
    assert resp.status == 204
    for method in ("GET", "DELETE", "PATCH"):
        resp, body = await suite.request(method, path, token=token, json={} if method == "PATCH" else None)
        assert resp.status == 404, (method, body)


async def test_stale_if_match_is_412_and_writes_nothing(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    resp, _ = await suite.request(
        "PATCH", path, token=token, json={"title": "v2"}, headers={"If-Match": '"1"'}
    )
    assert resp.status == 200
    for method, body in (("PATCH", {"title": "lost"}), ("PUT", {**EVENT, "title": "lost"}), ("DELETE", None)):
        resp, problem = await suite.request(method, path, token=token, json=body, headers={"If-Match": '"1"'})
        assert resp.status == 412, (method, problem)
        assert problem["status"] == 412
    resp, problem = await suite.request("POST", f"{path}/submit", token=token, headers={"If-Match": '"1"'})
    assert resp.status == 412, problem
    resp, current = await suite.request("GET", path, token=token)
    assert current["title"] == "v2" and current["version"] == 2 and current["status"] == "draft"
    # Without If-Match the change is applied (the header is optional).
    resp, body = await suite.request("PATCH", path, token=token, json={"title": "v3"})
    assert resp.status == 200 and body["version"] == 3


async def test_validation_errors_name_each_field(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, body = await create(
        suite,
        token,
        "event",
        {"title": "", "startsAt": "2027-03-01T18:00:00Z", "endsAt": "2027-03-01T17:00:00Z", "capacity": -1},
    )
    assert resp.status == 422
    assert {e["field"] for e in body["errors"]} == {"title", "capacity"}
    resp, body = await create(suite, token, "event", {**EVENT, "endsAt": "2027-03-01T17:00:00Z"})
    assert resp.status == 422 and body["errors"] == [
        {"field": "endsAt", "message": "must not be before startsAt"}
    ]
    resp, body = await create(suite, token, "event", {**EVENT, "startsAt": "tomorrow", "color": "red"})
    assert resp.status == 422
    assert {e["field"] for e in body["errors"]} == {"color"}
    resp, body = await create(suite, token, "event", {**EVENT, "startsAt": "2027-03-01T18:00:00"})
    assert resp.status == 422 and body["errors"][0]["field"] == "startsAt"
    resp, body = await create(suite, token, "event", {**EVENT, "locationId": str(uuid.uuid4())})
    assert resp.status == 422
    assert body["errors"] == [{"field": "locationId", "message": "must name an existing location"}]
    resp, body = await create(suite, token, "location", {"name": "x", "timezone": "Mars/Olympus"})
    assert resp.status == 422 and body["errors"][0]["field"] == "timezone"


async def test_read_only_fields_are_400_when_they_differ(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, body = await create(suite, token, "event", {**EVENT, "status": "approved"})
    assert resp.status == 400 and "status" in body["detail"]
    event = await new_event(suite, token)
    resp, body = await suite.request(
        "PATCH", f"/v2/event/{event['id']}", token=token, json={"ownerId": str(uuid.uuid4())}
    )
    assert resp.status == 400 and "ownerId" in body["detail"]


async def test_wrong_content_type_is_415_and_bad_json_400(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    resp, body = await suite.request(
        "POST", "/v2/event/list", token=token, data=b"title=x", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415, body
    resp, body = await suite.request(
        "POST", "/v2/event/list", token=token, data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, body
    event = await new_event(suite, token)
    resp, body = await suite.request(
        "PATCH", f"/v2/event/{event['id']}", token=token, data=b"{}", headers={"Content-Type": "text/csv"}
    )
    assert resp.status == 415, body


async def test_a_batch_is_created_all_or_none(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    tag = uuid.uuid4().hex[:10]
    batch = [{**EVENT, "title": f"e{i}", "tags": [tag]} for i in range(3)]
    resp, body = await create(suite, token, "event", batch)
    assert resp.status == 201, body
    assert [e["title"] for e in body] == ["e0", "e1", "e2"]
    bad = [{**EVENT, "tags": [tag]}, {**EVENT, "title": "", "tags": [tag]}]
    resp, problem = await create(suite, token, "event", bad)
    assert resp.status == 422 and problem["errors"][0]["field"] == "[1].title"
    resp, listed = await suite.request("GET", f"/v2/event/list?tags={tag}&count=exact", token=token)
    assert resp.headers["X-Total-Count"] == "3" and len(listed) == 3  # the failed batch left nothing
    resp, problem = await create(suite, token, "event", [EVENT] * 101)
    assert resp.status == 400
    resp, problem = await create(suite, token, "event", [])
    assert resp.status == 400


async def test_idempotency_key_replays_the_first_result(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    key = uuid.uuid4().hex
    resp1, first = await create(suite, token, "event", EVENT, **{"Idempotency-Key": key})
    resp2, second = await create(suite, token, "event", EVENT, **{"Idempotency-Key": key})
    assert resp1.status == resp2.status == 201
    assert first == second and resp2.headers["Location"] == resp1.headers["Location"]
    assert resp2.headers["Idempotent-Replayed"] == "true"
    resp, problem = await create(
        suite, token, "event", {**EVENT, "title": "other"}, **{"Idempotency-Key": key}
    )
    assert resp.status == 422, problem
    # Keys belong to their user: another user with the same key creates their own.
    _, _, other = await suite.new_user()
    resp, theirs = await create(suite, other, "event", EVENT, **{"Idempotency-Key": key})
    assert resp.status == 201 and theirs["id"] != first["id"]


async def test_a_retry_while_the_first_is_in_flight_is_409(suite: Suite) -> None:
    user, _, token = await suite.new_user()
    key = uuid.uuid4().hex
    # Hold the key's lock as an in-flight request would, in a transaction of our own.
    import asyncpg

    conn = await asyncpg.connect(suite.settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", user["id"], key)
            resp, problem = await create(suite, token, "event", EVENT, **{"Idempotency-Key": key})
            assert resp.status == 409, problem
    finally:
        await conn.close()
    resp, body = await create(suite, token, "event", EVENT, **{"Idempotency-Key": key})
    assert resp.status == 201, body


async def test_concurrent_patches_with_the_same_if_match_one_wins(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    path = f"/v2/event/{event['id']}"
    results = await asyncio.gather(
        *(
            suite.request("PATCH", path, token=token, json={"title": f"t{i}"}, headers={"If-Match": '"1"'})
            for i in range(5)
        )
    )
    statuses = sorted(resp.status for resp, _ in results)
    assert statuses == [200, 412, 412, 412, 412]


async def test_a_referenced_location_cannot_be_deleted(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    place = await new_location(suite, token)
    event = await new_event(suite, token, locationId=place["id"])
    resp, problem = await suite.request("DELETE", f"/v2/location/{place['id']}", token=token)
    assert resp.status == 409, problem
    assert problem["detail"] == "an event still refers to this location; change or delete it first"
    resp, _ = await suite.request("PATCH", f"/v2/event/{event['id']}", token=token, json={"locationId": None})
    assert resp.status == 200
    resp, _ = await suite.request("DELETE", f"/v2/location/{place['id']}", token=token)
    assert resp.status == 204


async def test_without_a_token_401_and_unknown_ids_404(suite: Suite) -> None:
    resp, _ = await suite.request("GET", "/v2/event/list")
    assert resp.status == 401
    _, _, token = await suite.new_user()
    for path in ("/v2/event/not-a-uuid", f"/v2/event/{uuid.uuid4()}", f"/v2/event/{uuid.uuid4()}/history"):
        resp, _ = await suite.request("GET", path, token=token)
        assert resp.status == 404, path


async def test_a_method_a_list_lacks_is_405_with_allow_not_a_404_for_an_id(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    allowed = {
        "/v2/event/list": "GET, POST",
        "/v2/location/list": "GET, POST",
        "/v2/subscription/list": "GET, HEAD, POST",  # aiohttp's GET routes answer HEAD unless told
        "/v2/user/list": "GET, HEAD, POST",
        "/v2/user/me": "GET, HEAD, PATCH",
    }
    for path, allow in allowed.items():
        for method in ("PUT", "PATCH", "DELETE"):
            if method in allow:
                continue
            resp, problem = await suite.request(method, path, token=token, json={})
            assert resp.status == 405, (method, path, problem)
            assert resp.headers["Allow"] == allow, (method, path)
            assert resp.content_type == "application/problem+json"
            assert problem["status"] == 405 and problem["detail"] == "this method is not allowed here"
