"""The approval workflow of events and who sees what, through the edge."""

from __future__ import annotations

from typing import Any

from tests.conftest import Suite
from tests.factories import new_event


async def move(suite: Suite, token: str, event: dict[str, Any], step: str, **body: Any) -> tuple[Any, Any]:
    return await suite.request("POST", f"/v2/event/{event['id']}/{step}", token=token, json=body or None)


async def test_the_whole_workflow_with_history(suite: Suite) -> None:
    owner, _, token = await suite.new_user()
    approver, _, approver_token = await suite.new_user(["approver"])
    event = await new_event(suite, token)
    resp, body = await move(suite, token, event, "submit")
    assert resp.status == 200 and body["status"] == "pending" and body["version"] == 2
    resp, body = await move(suite, approver_token, event, "reject", comment="needs a room")
    assert resp.status == 200 and body["status"] == "rejected"
    resp, body = await move(suite, token, event, "reopen")
    assert body["status"] == "draft"
    await move(suite, token, event, "submit")
    resp, body = await move(suite, token, event, "withdraw")
    assert body["status"] == "draft"
    await move(suite, token, event, "submit")
    resp, body = await move(suite, approver_token, event, "approve", comment="ok")
    assert resp.status == 200 and body["status"] == "approved"
    resp, problem = await move(suite, approver_token, event, "approve")
    assert resp.status == 409 and problem["detail"] == "cannot approve an approved event; only a pending one"
    # Editing an approved event's content sends it back for approval.
    resp, body = await suite.request(
        "PATCH", f"/v2/event/{event['id']}", token=token, json={"title": "New title"}
    )
    assert resp.status == 200 and body["status"] == "pending"
    await move(suite, approver_token, event, "approve")
    resp, body = await move(suite, token, event, "cancel")
    assert resp.status == 200 and body["status"] == "cancelled"
    resp, problem = await suite.request(
        "PATCH", f"/v2/event/{event['id']}", token=token, json={"title": "late"}
    )
    assert resp.status == 409 and problem["detail"] == "a cancelled event cannot be changed", problem
    resp, history = await suite.request("GET", f"/v2/event/{event['id']}/history", token=token)
    assert resp.status == 200
    steps = [(h["from"], h["to"]) for h in history]
    assert steps == [
        ("draft", "pending"),
        ("pending", "rejected"),
        ("rejected", "draft"),
        ("draft", "pending"),
        ("pending", "draft"),
        ("draft", "pending"),
        ("pending", "approved"),
        ("approved", "pending"),
        ("pending", "approved"),
        ("approved", "cancelled"),
    ]
    assert history[1]["comment"] == "needs a room" and history[1]["actorId"] == approver["id"]
    assert history[0]["actorId"] == owner["id"] and history[7]["comment"] == "edited"
    assert all(h["requestId"] for h in history)


async def test_a_transition_not_allowed_from_the_state_is_409(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    _, _, approver_token = await suite.new_user(["approver"])
    event = await new_event(suite, token)
    for step, who in (("approve", approver_token), ("cancel", token), ("withdraw", token), ("reopen", token)):
        resp, problem = await move(suite, who, event, step)
        assert resp.status == 409, (step, problem)
    await move(suite, token, event, "submit")
    resp, problem = await move(suite, token, event, "submit")
    assert resp.status == 409 and problem["detail"] == "cannot submit a pending event; only a draft one"
    resp, current = await suite.request("GET", f"/v2/event/{event['id']}", token=token)
    assert current["status"] == "pending" and current["version"] == 2


async def test_roles_and_the_four_eyes_rule(suite: Suite) -> None:
    _, _, member = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    admin = await suite.admin_token()
    # A member cannot approve their own event.
    event = await new_event(suite, member)
    await move(suite, member, event, "submit")
    resp, _ = await move(suite, member, event, "approve")
    assert resp.status == 403
    # An approver may not approve their own event, but may approve a member's.
    own = await new_event(suite, approver)
    await move(suite, approver, own, "submit")
    resp, problem = await move(suite, approver, own, "approve")
    assert resp.status == 403 and "four-eyes" in problem["detail"]
    resp, _ = await move(suite, approver, event, "approve")
    assert resp.status == 200
    # The approver cannot cancel someone else's event; the admin can.
    resp, _ = await move(suite, approver, event, "cancel")
    assert resp.status == 403
    resp, body = await move(suite, admin, event, "cancel")
    assert resp.status == 200 and body["status"] == "cancelled"


async def test_members_cannot_see_others_drafts_and_change_only_their_own(suite: Suite) -> None:
    _, _, alice = await suite.new_user()
    _, _, bob = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    tag = "vis-" + (await suite.new_user())[0]["id"][:8]
    draft = await new_event(suite, alice, tags=[tag], title="alice draft")
    path = f"/v2/event/{draft['id']}"
    # Invisible: 404 everywhere, and absent from lists.
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        resp, _ = await suite.request(method, path, token=bob, json=body)
        assert resp.status == 404, method
    for step in ("submit", "approve"):
        resp, _ = await move(suite, bob, draft, step)
        assert resp.status == 404, step
    resp, _ = await suite.request("GET", f"{path}/history", token=bob)
    assert resp.status == 404
    resp, listed = await suite.request("GET", f"/v2/event/list?tags={tag}&count=exact", token=bob)
    assert listed == [] and resp.headers["X-Total-Count"] == "0"
    # Approvers and the owner see it.
    resp, listed = await suite.request("GET", f"/v2/event/list?tags={tag}", token=approver)
    assert [e["id"] for e in listed] == [draft["id"]]
    resp, _ = await suite.request("GET", path, token=alice)
    assert resp.status == 200
    # Once approved everyone sees it, but only the owner (or an admin) changes it: 403.
    await move(suite, alice, draft, "submit")
    await move(suite, approver, draft, "approve")
    resp, listed = await suite.request("GET", f"/v2/event/list?tags={tag}", token=bob)
    assert [e["id"] for e in listed] == [draft["id"]]
    for method, body in (("PATCH", {"title": "x"}), ("PUT", {**draft, "title": "x"}), ("DELETE", None)):
        resp, _ = await suite.request(method, path, token=bob, json=body)
        assert resp.status == 403, method
    resp, _ = await move(suite, bob, draft, "cancel")
    assert resp.status == 403
    resp, current = await suite.request("GET", path, token=alice)
    assert current["title"] == "alice draft" and current["status"] == "approved"


async def test_transition_bodies_are_checked(suite: Suite) -> None:
    _, _, token = await suite.new_user()
    event = await new_event(suite, token)
    resp, problem = await move(suite, token, event, "submit", color="red")
    assert resp.status == 422 and problem["errors"][0]["field"] == "color"
    resp, problem = await suite.request(
        "POST",
        f"/v2/event/{event['id']}/submit",
        token=token,
        data=b"x",
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 415
    resp, problem = await suite.request("POST", f"/v2/event/{event['id']}/teleport", token=token)
    assert resp.status in (404, 405)
