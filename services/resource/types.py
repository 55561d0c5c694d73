"""Resource types: each is one declaration (its representation schema, what filters and sorts,
who may do what, its workflow and topics). Handlers, storage, list queries, OpenAPI and events
are generic over it: a new type is a new `ResourceType` in `TYPES`, nothing else."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shared.catalog import EVENT, LOCATION, PUBLIC_EVENT_STATUSES

Errors = list[dict[str, str]]
Check = Callable[[dict[str, Any]], Errors]

# Fields every type has, kept in columns rather than in `doc`.
COLUMNS = {
    "id": "id",
    "ownerId": "owner_id",
    "status": "status",
    "version": "version",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}


@dataclass(frozen=True)
class Transition:
    name: str  # the URL segment: POST /v2/{type}/{id}/{name}
    sources: tuple[str, ...]
    target: str
    who: str  # "owner", "reviewer" (approver or admin, never the owner), "owner_or_admin"
    topic: str


@dataclass(frozen=True)
class Workflow:
    initial: str
    transitions: tuple[Transition, ...]
    public_states: tuple[str, ...]  # visible to every user; the rest to owner and reviewers
    edit_moves: dict[str, str] = field(default_factory=dict)  # editing in state A moves it to B
    frozen_states: tuple[str, ...] = ()  # content cannot change any more

    def transition(self, name: str) -> Transition | None:
        return next((t for t in self.transitions if t.name == name), None)

    @cached_property
    def _steps(self) -> frozenset[tuple[str, str]]:
        return frozenset((source, t.target) for t in self.transitions for source in t.sources)

    def is_edit(self, source: str | None, target: str) -> bool:
        """Whether a history row (from `source` to `target`) records an edit of the content
        rather than a transition: no transition goes from one to the other (checked below)."""
        return (source or "", target) not in self._steps

    @cached_property
    def accepted_states(self) -> frozenset[str]:
        """Where a reviewer's transition makes the content public: it was reviewed then."""
        return frozenset(
            t.target for t in self.transitions if t.who == "reviewer" and t.target in self.public_states
        )

    def __post_init__(self) -> None:
        states = {self.initial} | {s for t in self.transitions for s in (*t.sources, t.target)}
        for state in states - set(self.frozen_states):
            if not self.is_edit(state, self.edit_moves.get(state, state)):
                raise ValueError(f"an edit in {state} would read as a transition in the history")


@dataclass(frozen=True, eq=False)
class ResourceType:
    name: str
    schema: dict[str, Any]  # the representation, as GET returns it (readOnly marks server fields)
    filters: tuple[str, ...]
    sorts: tuple[str, ...]  # fields that are never null (keyset cursors need values)
    default_sort: str
    search: tuple[str, ...] = ()  # text fields behind `?q=`
    references: dict[str, str] = field(default_factory=dict)  # field -> type it must name
    workflow: Workflow | None = None
    checks: tuple[Check, ...] = ()  # rules across fields, after the schema
    # A body of POST and PUT that succeeds as it stands: Swagger UI's "Try it out" sends it (a
    # test executes it). Its first field alone is the PATCH example.
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return str(self.schema.get("title", self.name.capitalize()))

    @cached_property
    def properties(self) -> dict[str, Any]:
        return dict(self.schema["properties"])

    @cached_property
    def read_only(self) -> frozenset[str]:
        return frozenset(n for n, s in self.properties.items() if s.get("readOnly"))

    @cached_property
    def writable(self) -> dict[str, Any]:
        return {n: s for n, s in self.properties.items() if n not in self.read_only}

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """The body of POST and PUT (and of PATCH once merged): writable fields only."""
        return {
            "title": f"{self.title}Input",
            "type": "object",
            "properties": self.writable,
            "required": [n for n in self.schema.get("required", ()) if n in self.writable],
            "additionalProperties": False,
        }

    @cached_property
    def kinds(self) -> dict[str, str]:
        """`kind` of every field, worked out once."""
        return {name: self.kind(name) for name in self.properties}

    def topic(self, action: str) -> str:
        return f"{self.name}.{action}"

    def kind(self, name: str) -> str:
        """How a field's query values are read: time, uuid, integer, array, enum or text."""
        spec = self.properties[name]
        types = spec.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if spec.get("format") == "date-time":
            return "time"
        if spec.get("format") == "uuid":
            return "uuid"
        if "integer" in types:
            return "integer"
        if "array" in types:
            return "array"
        if "enum" in spec:
            return "enum"
        return "text"

    def validate_declaration(self) -> None:
        """Fail at import, not at the first request, on a declaration that cannot work."""
        for name in (*self.filters, *self.sorts, *self.search, *self.references):
            if name not in self.properties:
                raise ValueError(f"{self.name}: {name} is not a field")
        required = set(self.schema.get("required", ())) | set(COLUMNS)
        for name in self.sorts:
            if name not in required:
                raise ValueError(f"{self.name}: sort field {name} may be null")
        for name, spec in self.writable.items():
            kinds = spec.get("type")
            kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
            if name not in required and "default" not in spec and not {"null", "array"} & set(kinds):
                raise ValueError(f"{self.name}: optional field {name} needs a default or to allow null")
        if self.default_sort.lstrip("-") not in self.sorts:
            raise ValueError(f"{self.name}: default sort {self.default_sort} is not a sort field")
        if set(self.example) - set(self.writable):
            raise ValueError(f"{self.name}: the example sets fields that are not writable")


def _ends_after_start(doc: dict[str, Any]) -> Errors:
    starts, ends = doc.get("startsAt"), doc.get("endsAt")
    if starts and ends and ends < starts:  # both normalized, so text order is time order
        return [{"field": "endsAt", "message": "must not be before startsAt"}]
    return []


def _iana_timezone(doc: dict[str, Any]) -> Errors:
    name = doc.get("timezone")
    if name is None:
        return []
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [{"field": "timezone", "message": "must be an IANA time zone such as Europe/Paris"}]
    return []


EVENT_WORKFLOW = Workflow(
    initial="draft",
    transitions=(
        Transition("submit", ("draft",), "pending", "owner", "event.submitted"),
        Transition("approve", ("pending",), "approved", "reviewer", "event.approved"),
        Transition("reject", ("pending",), "rejected", "reviewer", "event.rejected"),
        Transition("withdraw", ("pending",), "draft", "owner", "event.updated"),
        Transition("reopen", ("rejected",), "draft", "owner", "event.updated"),
        Transition("cancel", ("approved",), "cancelled", "owner_or_admin", "event.cancelled"),
    ),
    public_states=PUBLIC_EVENT_STATUSES,
    edit_moves={"approved": "pending"},
    frozen_states=("cancelled",),
)

EVENT_TYPE = ResourceType(
    name="event",
    schema=EVENT,
    filters=(
        "id",
        "title",
        "status",
        "ownerId",
        "startsAt",
        "endsAt",
        "locationId",
        "capacity",
        "tags",
        "createdAt",
        "updatedAt",
    ),
    sorts=("startsAt", "endsAt", "title", "createdAt", "updatedAt"),
    default_sort="startsAt",
    search=("title", "description"),
    references={"locationId": "location"},
    workflow=EVENT_WORKFLOW,
    checks=(_ends_after_start,),
    # No locationId: it must name an existing location (the body's description says so).
    example={
        "title": "Herald launch party",
        "description": "Drinks and a demo of the new API.",
        "startsAt": "2027-03-04T18:00:00Z",
        "endsAt": "2027-03-04T21:00:00Z",
        "capacity": 80,
        "tags": ["launch", "party"],
    },
)

LOCATION_TYPE = ResourceType(
    name="location",
    schema=LOCATION,
    filters=("id", "name", "ownerId", "capacity", "timezone", "createdAt", "updatedAt"),
    sorts=("name", "createdAt", "updatedAt"),
    default_sort="name",
    search=("name", "address"),
    checks=(_iana_timezone,),
    example={
        "name": "Main hall",
        "address": "1 Example Street, 75001 Paris",
        "capacity": 120,
        "timezone": "Europe/Paris",
    },
)

TYPES: tuple[ResourceType, ...] = (EVENT_TYPE, LOCATION_TYPE)
for _declared in TYPES:
    _declared.validate_declaration()
