"""The four-eyes rule: nobody approves or rejects content they wrote. The content under review
is everything written since the event was last approved (since its creation when never): its
owner wrote some, and so did everyone who edited it meanwhile (each edit is in its history)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Suite
from tests.factories import new_event
from tests.integration.test_workflow import move


async def _edit(suite: Suite, token: str, event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resp, body = await suite.request("PATCH", f"/v2/event/{event['id']}", token=token, json=fields)
    assert resp.status == 200, body
    return dict(body)


async def _refused(suite: Suite, token: str, event: dict[str, Any], step: str) -> None:
    resp, problem = await move(suite, token, event, step)
    assert resp.status == 403, problem
    assert "four-eyes" in problem["detail"] and "edited" in problem["detail"], problem


async def test_an_admin_who_edited_a_pending_event_may_not_approve_or_reject_it(suite: Suite) -> None:
    admin_user, _, admin = await suite.new_user(["admin"])
    _, _, member = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    event = await new_event(suite, member)
    await move(suite, member, event, "submit")
    edited = await _edit(suite, admin, event, title="Rewritten by the admin")
    assert edited["status"] == "pending"
    for step in ("approve", "reject"):
        await _refused(suite, admin, event, step)
    resp, current = await suite.request("GET", f"/v2/event/{event['id']}", token=member)
    assert current["status"] == "pending" and current["version"] == edited["version"]
    resp, body = await move(suite, approver, event, "approve")
    assert resp.status == 200 and body["status"] == "approved"
    resp, history = await suite.request("GET", f"/v2/event/{event['id']}/history", token=member)
    assert [(h["from"], h["to"], h["comment"]) for h in history] == [
        ("draft", "pending", None),
        ("pending", "pending", "edited"),
        ("pending", "approved", None),
    ]
    assert history[1]["actorId"] == admin_user["id"]


async def test_an_edit_of_an_approved_event_sends_it_back_and_its_author_may_not_approve(
    suite: Suite,
) -> None:
    _, _, member = await suite.new_user()
    _, _, approver = await suite.new_user(["approver"])
    admin = (await suite.new_user(["admin"]))[2]
    event = await new_event(suite, member)
    await move(suite, member, event, "submit")
    await move(suite, approver, event, "approve")
    edited = await _edit(suite, admin, event, capacity=5)
    assert edited["status"] == "pending"
    await _refused(suite, admin, event, "approve")
    resp, _ = await move(suite, approver, event, "approve")  # approved before, did not edit since
    assert resp.status == 200


async def test_an_edit_of_a_draft_before_submission_counts(suite: Suite) -> None:
    _, _, member = await suite.new_user()
    admin = (await suite.new_user(["admin"]))[2]
    _, _, approver = await suite.new_user(["approver"])
    event = await new_event(suite, member)
    await _edit(suite, admin, event, description="Written by the admin")
    await move(suite, member, event, "submit")
    await _refused(suite, admin, event, "approve")
    resp, _ = await move(suite, approver, event, "approve")
    assert resp.status == 200


async def test_every_editor_since_the_last_approval_is_out_not_only_the_last(suite: Suite) -> None:
    _, _, member = await suite.new_user()
    first = (await suite.new_user(["admin"]))[2]
    second = (await suite.new_user(["admin"]))[2]
    _, _, approver = await suite.new_user(["approver"])
    event = await new_event(suite, member)
    await move(suite, member, event, "submit")
    await _edit(suite, first, event, title="First edit")
    await _edit(suite, second, event, title="Second edit")  # the first's edit may live on
    await _refused(suite, first, event, "approve")
    await _refused(suite, second, event, "reject")
    resp, _ = await move(suite, approver, event, "approve")
    assert resp.status == 200
    # Approved by someone else, the first edit is reviewed: a later edit by the second admin
    # is under review now, and the first may approve it.
    await _edit(suite, second, event, title="Third edit")
    await _refused(suite, second, event, "approve")
    resp, body = await move(suite, first, event, "approve")
    assert resp.status == 200 and body["title"] == "Third edit"


async def test_a_rejected_edit_still_counts_after_the_owner_resubmits(suite: Suite) -> None:
    _, _, member = await suite.new_user()
    admin = (await suite.new_user(["admin"]))[2]
    _, _, approver = await suite.new_user(["approver"])
    event = await new_event(suite, member)
    await move(suite, member, event, "submit")
    await _edit(suite, admin, event, title="The admin's title")
    await move(suite, approver, event, "reject")
    await move(suite, member, event, "reopen")
    await move(suite, member, event, "submit")
    await _refused(suite, admin, event, "approve")
