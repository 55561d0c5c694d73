"""Who may read a resource, who may move it through its workflow, and where edits take it.

The four-eyes rule: nobody approves or rejects content they wrote. The content under review is
what was written since the resource was last approved (since its creation when never): its
owner never reviews it, nor does anyone who edited it in that time (every edit, in any state,
writes a history row that names its author)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.resource.types import ResourceType, Transition, Workflow
from shared import visibility
from shared.problems import Conflict, Forbidden, NotFound, with_article
from shared.verifier import Principal
from shared.visibility import REVIEWER_ROLES


def _is_owner(caller: Principal, row: dict[str, Any]) -> bool:
    return str(row["owner_id"]) == caller.user_id


def may_read(rtype: ResourceType, caller: Principal, row: dict[str, Any]) -> bool:
    flow = rtype.workflow
    if flow is None:
        return True
    return visibility.may_read(
        row["status"], str(row["owner_id"]), caller.user_id, caller.roles, flow.public_states
    )


def find_transition(rtype: ResourceType, name: str) -> Transition:
    step = rtype.workflow.transition(name) if rtype.workflow else None
    if step is None:
        raise NotFound(f"{with_article(rtype.name)} has no step named {name!r}")
    return step


def authors_under_review(flow: Workflow, history: Iterable[Mapping[str, Any]]) -> set[str]:
    """Who wrote the content now under review, besides its owner: everyone who edited it since
    a reviewer last accepted it (approved it), or since its creation when none has yet. Edits
    before that were reviewed by someone else; edits since were not, whatever came after them
    (another edit may keep them, a rejection and a resubmission do not undo them). An edit is
    recorded in every state, drafts included, so an edit before submission counts too."""
    authors: set[str] = set()
    for entry in history:  # oldest first
        source, target = entry["from_status"], entry["to_status"]
        if flow.is_edit(source, target):
            if entry["actor_id"] is not None:
                authors.add(str(entry["actor_id"]))
        elif target in flow.accepted_states:
            authors.clear()
    return authors


def check_transition(
    rtype: ResourceType, step: Transition, caller: Principal, row: dict[str, Any], authors: set[str]
) -> None:
    """403 unless this caller may make this step on this resource. `authors`: who wrote the
    content under review besides the owner (`authors_under_review`; needed for reviewer
    steps only): the four-eyes rule keeps the owner and them from approving or rejecting it."""
    name = step.name
    owner = _is_owner(caller, row)
    if step.who == "owner" and not (owner or caller.is_admin):
        raise Forbidden(f"only the owner or an admin may {name} this {rtype.name}")
    if step.who == "owner_or_admin" and not (owner or caller.is_admin):
        raise Forbidden(f"only the owner or an admin may {name} this {rtype.name}")
    if step.who == "reviewer":
        if not REVIEWER_ROLES.intersection(caller.roles):
            raise Forbidden(f"only an approver or an admin may {name} {rtype.name}s")
        if owner:
            raise Forbidden(f"nobody may {name} their own {rtype.name} (four-eyes rule)")
        if caller.user_id in authors:
            raise Forbidden(
                f"nobody may {name} content they wrote (four-eyes rule): you edited this "
                f"{rtype.name} since it was last approved; another approver or admin must review it"
            )


def wrong_source(rtype: ResourceType, step: Transition, status: str) -> Conflict:
    """The 409 of `step` on a resource in `status`, a state it does not start from."""
    return Conflict(
        f"cannot {step.name} {with_article(status + ' ' + rtype.name)}; "
        f"only {with_article(' or '.join(step.sources))} one"
    )


def check_source(rtype: ResourceType, step: Transition, row: dict[str, Any]) -> None:
    if row["status"] not in step.sources:
        raise wrong_source(rtype, step, row["status"])


def status_after_edit(rtype: ResourceType, status: str | None) -> str | None:
    """Editing the content of an approved event sends it back for approval; a cancelled one is
    final (409)."""
    flow = rtype.workflow
    if flow is None or status is None:
        return status
    if status in flow.frozen_states:
        raise Conflict(f"{with_article(status + ' ' + rtype.name)} cannot be changed")
    return flow.edit_moves.get(status, status)
