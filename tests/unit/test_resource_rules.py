"""Rules of the resource engine that need no database: integers a document may hold, which
history rows are edits, and who wrote the content under review."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.resource.documents import writable_doc
from services.resource.types import EVENT_WORKFLOW, ResourceType, Transition, Workflow
from services.resource.workflow import authors_under_review
from shared.problems import ValidationFailed

COUNTER = ResourceType(
    name="counter",
    schema={
        "type": "object",
        "properties": {"count": {"type": "integer"}, "id": {"type": "string", "readOnly": True}},
        "required": ["count"],
    },
    filters=("count",),
    sorts=("count",),
    default_sort="count",
)


@pytest.mark.parametrize("count", [2**63, 2**64 - 1, -(2**63) - 1])
def test_a_document_integer_beyond_bigint_is_a_422(count: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        writable_doc(COUNTER, {"count": count})
    assert [e["field"] for e in caught.value.errors or ()] == ["count"]


def test_bigints_fit() -> None:
    assert writable_doc(COUNTER, {"count": 2**63 - 1}) == {"count": 2**63 - 1}


def test_a_workflow_whose_edit_reads_as_a_transition_is_refused() -> None:
    with pytest.raises(ValueError, match="would read as a transition"):
        Workflow(
            initial="draft",
            transitions=(Transition("reconsider", ("approved",), "pending", "owner", "x.updated"),),
            public_states=("approved",),
            edit_moves={"approved": "pending"},
        )


def _row(actor: str, source: str, target: str) -> dict[str, Any]:
    return {"actor_id": uuid.UUID(actor), "from_status": source, "to_status": target}


def test_authors_are_the_editors_since_the_last_approval() -> None:
    owner, admin, other, approver = (str(uuid.uuid4()) for _ in range(4))
    history = [
        _row(admin, "draft", "draft"),  # an edit before submission
        _row(owner, "draft", "pending"),
        _row(other, "pending", "pending"),
        _row(approver, "pending", "rejected"),
        _row(owner, "rejected", "draft"),
        _row(owner, "draft", "pending"),
    ]
    assert authors_under_review(EVENT_WORKFLOW, history) == {admin, other}
    history += [_row(approver, "pending", "approved"), _row(other, "approved", "pending")]
    assert authors_under_review(EVENT_WORKFLOW, history) == {other}
