"""Every request example of the API document, sent as it stands through the edge, succeeds:
what Swagger UI's "Try it out" then "Execute" sends cannot drift from what the API accepts.

The examples are executed in the order a newcomer would: the user example first (the token
example logs in as that user), then the other creates, then the operations on what they made.
Only what Swagger UI asks the user to fill is filled here: the path ids (of resources created
by the examples themselves) and, for a subscription, the receiver's URL (the example's host must
resolve to a public address, and this machine has no DNS: a local receiver stands for it)."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import jwt
import orjson

from services.resource.types import TYPES, ResourceType, Transition
from shared.config import Settings
from tests.conftest import Suite, start_suite
from tests.receiver import Receiver

BODY_METHODS = ("post", "put", "patch")
RESOURCE_TYPES = {rtype.name: rtype for rtype in TYPES}


@dataclasses.dataclass(frozen=True)
class Example:
    method: str
    path: str
    operation_id: str
    media_type: str
    body: Any

    @property
    def kind(self) -> str:
        """The collection: `/v2/event/{id}/approve` -> `event`."""
        return self.path.split("/")[2]

    @property
    def creates(self) -> bool:
        return self.method == "POST" and self.path.endswith("/list")


def request_examples(doc: dict[str, Any]) -> list[Example]:
    """Every request body's example, each media type of it; a body without one fails."""
    found = []
    for path, item in doc["paths"].items():
        for method in BODY_METHODS:
            op = item.get(method)
            for media_type, media in (op or {}).get("requestBody", {}).get("content", {}).items():
                assert "example" in media, f"{method.upper()} {path} ({media_type}) has no example"
                found.append(Example(method.upper(), path, op["operationId"], media_type, media["example"]))
    return found


def newcomer_order(example: Example) -> int:
    """The user first, the rest of the creates, logging in, then everything else."""
    if example.operation_id == "createUser":
        return 0
    if example.creates:
        return 1
    return 2 if example.operation_id == "requestToken" else 3


def steps_to(rtype: ResourceType, sources: tuple[str, ...]) -> list[Transition]:
    """The shortest walk of the workflow from its initial state to one of `sources`."""
    assert rtype.workflow is not None
    walks: deque[tuple[str, list[Transition]]] = deque([(rtype.workflow.initial, [])])
    seen = {rtype.workflow.initial}
    while walks:
        state, walk = walks.popleft()
        if state in sources:
            return walk
        for step in rtype.workflow.transitions:
            if state in step.sources and step.target not in seen:
                seen.add(step.target)
                walks.append((step.target, [*walk, step]))
    raise AssertionError(f"{rtype.name}: no walk reaches {sources}")


@dataclasses.dataclass
class Newcomer:
    """Sends the examples as an administrator would from Swagger UI, and keeps what they made."""

    suite: Suite
    admin: str
    approver: str
    receiver_url: str
    made: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> id of what its example made
    creates: dict[str, Example] = dataclasses.field(default_factory=dict)

    async def send(self, example: Example, path: str, body: Any, token: str | None) -> tuple[Any, Any]:
        if isinstance(body, dict) and "url" in body and example.kind == "subscription":
            body = {**body, "url": self.receiver_url}
        return await self.suite.request(
            example.method,
            path,
            token=token,
            data=orjson.dumps(body),
            headers={"Content-Type": example.media_type},
        )

    async def execute(self, example: Example) -> tuple[Any, Any]:
        if example.creates:
            self.creates[example.kind] = example
        token: str | None = self.admin
        path = example.path
        if example.operation_id == "requestToken":
            token = None
        elif "{id}" in path:
            target, token = await self.target(example)
            path = path.replace("{id}", target)
        resp, answer = await self.send(example, path, example.body, token)
        if example.creates and resp.status == 201 and example.kind not in self.made:
            self.made[example.kind] = answer["id"]
        return resp, answer

    async def target(self, example: Example) -> tuple[str, str]:
        """The id to put in the path and who sends it: what the create example made, by the
        administrator; for a workflow step, a new one walked to a state the step starts from,
        and the step sent by whom it needs (an approver reviews, never the owner)."""
        rtype = RESOURCE_TYPES.get(example.kind)
        step = rtype.workflow.transition(example.path.split("/")[-1]) if rtype and rtype.workflow else None
        if rtype is None or step is None:
            return self.made[example.kind], self.admin
        create = self.creates[example.kind]
        resp, made = await self.send(create, create.path, create.body, self.admin)
        assert resp.status == 201, made
        for earlier in steps_to(rtype, step.sources):
            resp, moved = await self.suite.request(
                "POST", f"/v2/{rtype.name}/{made['id']}/{earlier.name}", token=self.actor(earlier)
            )
            assert resp.status == 200, (earlier.name, moved)
        return str(made["id"]), self.actor(step)

    def actor(self, step: Transition) -> str:
        return self.approver if step.who == "reviewer" else self.admin


async def test_every_request_example_succeeds_as_it_stands(
    aiohttp_server: Any, settings: Settings, receiver: Receiver
) -> None:
    suite = await start_suite(aiohttp_server, dataclasses.replace(settings, webhook_allow_private=True))
    try:
        resp, doc = await suite.request("GET", "/v2/openapi.json")
        assert resp.status == 200
        examples = sorted(request_examples(doc), key=newcomer_order)
        ids = {e.operation_id for e in examples}
        # The walk sees the bodies of every service (else this test could not fail).
        assert {"createUser", "requestToken", "create_event", "approve_event", "createSubscription"} <= ids
        assert {"patchSubscription", "recoverDeliveries", "patch_location"} <= ids
        _, _, approver = await suite.new_user(["approver"])
        newcomer = Newcomer(suite, await suite.admin_token(), approver, receiver.url)
        for example in examples:
            resp, answer = await newcomer.execute(example)
            where = f"{example.method} {example.path} ({example.media_type})"
            assert 200 <= resp.status < 300, (where, example.body, answer)
            if example.operation_id == "requestToken":
                # The token example logs in as the user the create example made.
                claims = jwt.decode(answer, options={"verify_signature": False})
                assert claims["sub"] == newcomer.made["user"] and claims["email"] == example.body["email"]
    finally:
        await suite.close()


def test_the_order_puts_the_user_first_and_logging_in_after_the_creates() -> None:
    def ex(method: str, path: str, op_id: str) -> Example:
        return Example(method, path, op_id, "application/json", {})

    shuffled = [
        ex("PATCH", "/v2/user/{id}", "patchUser"),
        ex("POST", "/v2/requesttoken", "requestToken"),
        ex("POST", "/v2/event/list", "create_event"),
        ex("POST", "/v2/user/list", "createUser"),
    ]
    assert [e.operation_id for e in sorted(shuffled, key=newcomer_order)] == [
        "createUser",
        "create_event",
        "requestToken",
        "patchUser",
    ]


def test_the_walk_to_a_step_starts_where_the_step_can_be_taken() -> None:
    event = RESOURCE_TYPES["event"]
    assert event.workflow is not None
    by_name = {step.name: step for step in event.workflow.transitions}
    assert [s.name for s in steps_to(event, by_name["submit"].sources)] == []
    assert [s.name for s in steps_to(event, by_name["cancel"].sources)] == ["submit", "approve"]
    assert [s.name for s in steps_to(event, by_name["reopen"].sources)] == ["submit", "reject"]
