"""Who may read an event: one rule for the resource API and for webhook delivery, which must
never send a subscriber what its owner could not GET.

An event in a public state (approved, cancelled) is everyone's; in any other state (draft,
pending, rejected) only its owner's and the reviewers' (approvers and admins). Resources without
a workflow (locations) are everyone's; the callers decide that before asking."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from shared.catalog import PUBLIC_EVENT_STATUSES

REVIEWER_ROLES = frozenset({"approver", "admin"})


def may_read(
    status: str | None,
    owner_id: str,
    reader_id: str,
    reader_roles: Iterable[str],
    public_states: Collection[str] = PUBLIC_EVENT_STATUSES,
) -> bool:
    """Whether `reader_id` (with `reader_roles`) may read an event in `status` owned by `owner_id`."""
    if status in public_states:
        return True
    return owner_id == reader_id or not REVIEWER_ROLES.isdisjoint(reader_roles)
