"""Who may read a resource, who may move it through its workflow, and where edits take it."""

from __future__ import annotations

from typing import Any

from services.resource.types import REVIEWER_ROLES, ResourceType, Transition
from shared.problems import Conflict, Forbidden, NotFound
from shared.verifier import Principal


def _is_owner(caller: Principal, row: dict[str, Any]) -> bool:
    return str(row["owner_id"]) == caller.user_id


def may_read(rtype: ResourceType, caller: Principal, row: dict[str, Any]) -> bool:
    flow = rtype.workflow
    if flow is None or row["status"] in flow.public_states:
        return True
    return _is_owner(caller, row) or bool(REVIEWER_ROLES.intersection(caller.roles))


def check_transition(rtype: ResourceType, name: str, caller: Principal, row: dict[str, Any]) -> Transition:
    """The transition, if this caller may make it on this resource (403 otherwise)."""
    step = rtype.workflow.transition(name) if rtype.workflow else None
    if step is None:
        raise NotFound(f"{rtype.name} has no transition {name}")
    owner = _is_owner(caller, row)
    if step.who == "owner" and not (owner or caller.is_admin):
        raise Forbidden(f"only the owner (or an admin) may {name} this {rtype.name}")
    if step.who == "owner_or_admin" and not (owner or caller.is_admin):
        raise Forbidden(f"only the owner or an admin may {name} this {rtype.name}")
    if step.who == "reviewer":
        if not REVIEWER_ROLES.intersection(caller.roles):
            raise Forbidden(f"only an approver or an admin may {name} {rtype.name}s")
        if owner:
            raise Forbidden(f"nobody may {name} their own {rtype.name} (four-eyes rule)")
    return step


def check_source(rtype: ResourceType, step: Transition, row: dict[str, Any]) -> None:
    if row["status"] not in step.sources:
        raise Conflict(
            f"cannot {step.name} a {row['status']} {rtype.name}; only from {' or '.join(step.sources)}"
        )


def status_after_edit(rtype: ResourceType, status: str | None) -> str | None:
    """Editing the content of an approved event sends it back for approval; a cancelled one is
    final (409)."""
    flow = rtype.workflow
    if flow is None or status is None:
        return status
    if status in flow.frozen_states:
        raise Conflict(f"a {status} {rtype.name} cannot be changed")
    return flow.edit_moves.get(status, status)
