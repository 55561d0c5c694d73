"""The HTTP handlers of every resource type, generic over its declaration."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from services.resource import workflow
from services.resource.documents import (
    check_read_only,
    representation,
    writable_doc,
)
from services.resource.query import parse_list_query
from services.resource.repo import (
    CreateBatcher,
    HistoryRepo,
    IdempotencyRepo,
    ResourceRepo,
    changed_row,
    new_rows,
)
from services.resource.types import ResourceType
from shared.appkeys import DATABASE, SETTINGS
from shared.authn import principal
from shared.events import format_time, make_event
from shared.logging import request_id_var
from shared.outbox import LocalRelay, enqueue, notify_channel
from shared.problems import Conflict, Forbidden, NotFound, Problem, ValidationFailed, with_article
from shared.verifier import Principal
from shared.web.conditional import check_if_match, etag, etag_matches
from shared.web.json_io import JSON_CONTENT_TYPE, json_response, read_json
from shared.web.paging import next_link, parse_limit
from shared.web.params import ITEM_ID, path_uuid
from shared.web.writes import MERGE_PATCH, merge_patch

SCHEMA = "resource"
MAX_BATCH = 100
OUTBOX_RELAY = web.AppKey("outbox_relay", LocalRelay)


class ResourceHandlers:
    """CRUD, workflow and history of one type. `types` are all the app's types (references)."""

    def __init__(self, rtype: ResourceType, types: Sequence[ResourceType]) -> None:
        self.rtype = rtype
        self.types = types
        self._creates: CreateBatcher | None = None

    # -- helpers ------------------------------------------------------------------------------

    def _location(self, row: dict[str, Any]) -> str:
        return f"/v2/{self.rtype.name}/{row['id']}"

    def _visible(self, caller: Principal, row: Any) -> bool:
        return workflow.may_read(self.rtype, caller, row)

    async def _load(
        self, conn: asyncpg.Connection, request: web.Request, *, lock: bool = False
    ) -> dict[str, Any]:
        row = await ResourceRepo(conn, self.rtype).get(path_uuid(request, self.rtype.name), lock=lock)
        if row is None or not self._visible(principal(request), row):
            raise NotFound(f"no such {self.rtype.name}")
        return row

    def _check_change(self, request: web.Request, row: dict[str, Any]) -> None:
        """Owner or admin may change; If-Match, when sent, must name the current version."""
        caller = principal(request)
        if not (caller.is_admin or str(row["owner_id"]) == caller.user_id):
            raise Forbidden(f"only the owner of this {self.rtype.name} or an admin may change it")
        check_if_match(request, row["version"], self.rtype.name)

    async def _check_references(
        self, conn: asyncpg.Connection, doc: dict[str, Any], prefix: str = ""
    ) -> None:
        repo = ResourceRepo(conn, self.rtype)
        errors = []
        for name, target in self.rtype.references.items():
            if name in doc and not await repo.lock_referenced(target, doc[name]):
                errors.append({"field": prefix + name, "message": f"must name an existing {target}"})
        if errors:
            raise ValidationFailed(errors)

    async def _emit(self, conn: asyncpg.Connection, topic: str, row: dict[str, Any], actor: str) -> None:
        await enqueue(conn, SCHEMA, make_event(topic, _data(row), actor))

    def _shown(self, row: dict[str, Any]) -> dict[str, Any]:
        return representation(self.rtype, row)

    def _respond(self, row: Any, status: int = 200) -> web.Response:
        """The stored representation as it is, with its ETag (and Location for a 201)."""
        headers = {"ETag": etag(row["version"])}
        if status == 201:
            headers["Location"] = self._location(row)
        return _json_text(row["shown"], status, headers)

    # -- list and create ----------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        caller = principal(request)
        listing = parse_list_query(self.rtype, request.query, caller, parse_limit(request))
        text, params = listing.select()
        async with request.app[DATABASE].connection() as conn:
            records = await ResourceRepo(conn, self.rtype).page(text, params)
            total = await conn.fetchval(*_args(listing.count_query())) if listing.count else None
        headers = {}
        if len(records) > listing.limit:
            records = records[: listing.limit]
            headers["Link"] = next_link(request, listing.cursor_after(records[-1]))
        if total is not None:
            headers["X-Total-Count"] = str(total)
        # The items as stored (or as PostgreSQL projected them for ?fields=): joined, not parsed.
        return _json_text("[" + ",".join([record[0] for record in records]) + "]", 200, headers)

    async def create(self, request: web.Request) -> web.Response:
        caller = principal(request)
        body = await read_json(request)
        batch = isinstance(body, list)
        items = body if batch else [body]
        if batch and not 1 <= len(items) <= MAX_BATCH:
            raise Problem(400, f"send 1 to {MAX_BATCH} {self.rtype.name}s in one array")
        docs = [self._new_doc(item, f"[{i}]." if batch else "") for i, item in enumerate(items)]
        key = request.headers.get("Idempotency-Key")
        status = self.rtype.workflow.initial if self.rtype.workflow else None
        rows = new_rows(self.rtype, uuid.UUID(caller.user_id), status, docs)
        topic = self.rtype.topic("created")
        events = [make_event(topic, _data(row), caller.user_id) for row in rows]
        if batch:
            response = _json_text("[" + ",".join([row["shown"] for row in rows]) + "]", 201, {})
        else:
            response = self._respond(rows[0], 201)
        if key is None and not any(name in doc for doc in docs for name in self.rtype.references):
            # Nothing to check or lock first: one statement, atomic on its own, shared with the
            # creates that arrive meanwhile (CreateBatcher).
            await self._batcher(request).insert(rows, events)
            return response
        async with request.app[DATABASE].transaction() as conn:
            if key is not None:
                replay = await self._idempotent_replay(request, conn, caller, key, body)
                if replay is not None:
                    return replay
            for i, doc in enumerate(docs):
                await self._check_references(conn, doc, f"[{i}]." if batch else "")
            await ResourceRepo(conn, self.rtype).insert_with_events(rows, events, notify_channel(SCHEMA))
            if key is not None:
                await self._remember(request, conn, caller, key, body, response)
        return response

    def _batcher(self, request: web.Request) -> CreateBatcher:
        database = request.app[DATABASE]
        if self._creates is None or self._creates.db is not database:
            self._creates = CreateBatcher(self.rtype, database, request.app.get(OUTBOX_RELAY))
        return self._creates

    def _new_doc(self, item: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise Problem(400, f"each {self.rtype.name} must be a JSON object")
        check_read_only(self.rtype, item, None)
        try:
            return writable_doc(self.rtype, item)
        except ValidationFailed as exc:
            if not prefix:
                raise
            errors = [{**e, "field": prefix + e["field"]} for e in exc.errors or ()]
            raise ValidationFailed(errors) from None

    # -- Idempotency-Key ----------------------------------------------------------------------

    @staticmethod
    def _fingerprint(request: web.Request, body: Any) -> bytes:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(request.method.encode() + request.path.encode() + b"\n" + canonical).digest()

    async def _idempotent_replay(
        self, request: web.Request, conn: asyncpg.Connection, caller: Principal, key: str, body: Any
    ) -> web.Response | None:
        if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise Problem(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
        repo = IdempotencyRepo(conn)
        if not await repo.try_lock(caller.user_id, key):
            raise Conflict("a request with this Idempotency-Key is still in progress; retry later")
        found = await repo.find(caller.user_id, key, request.app[SETTINGS].idempotency_ttl)
        if found is None:
            return None
        if bytes(found["fingerprint"]) != self._fingerprint(request, body):
            raise Problem(422, "this Idempotency-Key was used with another request body")
        headers = orjson.loads(found["headers"])
        headers["Idempotent-Replayed"] = "true"
        return web.Response(
            body=bytes(found["body"]),
            status=found["status"],
            headers=headers,
            content_type=JSON_CONTENT_TYPE,
            charset="utf-8",
        )

    async def _remember(
        self,
        request: web.Request,
        conn: asyncpg.Connection,
        caller: Principal,
        key: str,
        body: Any,
        response: web.Response,
    ) -> None:
        kept = {name: response.headers[name] for name in ("Location", "ETag") if name in response.headers}
        assert isinstance(response.body, bytes)
        await IdempotencyRepo(conn).save(
            caller.user_id, key, self._fingerprint(request, body), response.status, kept, response.body
        )

    # -- one resource -------------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        async with request.app[DATABASE].connection() as conn:
            row = await ResourceRepo(conn, self.rtype).get_shown(path_uuid(request, self.rtype.name))
        if row is None or not self._visible(principal(request), row):
            raise NotFound(f"no such {self.rtype.name}")
        header = request.headers.get("If-None-Match")
        if header is not None and etag_matches(header, row["version"], weak=True):
            return web.Response(status=304, headers={"ETag": etag(row["version"])})
        return self._respond(row)

    async def put(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise Problem(400, "the body must be a JSON object")
        return await self._change(request, lambda current: body)

    async def patch(self, request: web.Request) -> web.Response:
        patch = await read_json(request, MERGE_PATCH)
        if not isinstance(patch, dict):
            raise Problem(400, "a merge patch must be a JSON object")
        return await self._change(request, lambda current: merge_patch(current, patch))

    async def _change(self, request: web.Request, new_body: Any) -> web.Response:
        caller = principal(request)
        async with request.app[DATABASE].transaction() as conn:
            row = await self._load(conn, request, lock=True)
            self._check_change(request, row)
            shown = self._shown(row)
            current = {name: shown[name] for name in self.rtype.writable if row["doc"].get(name) is not None}
            body = new_body(current)
            # Read-only fields may be sent back as they are (a GET body, edited, PUT back).
            check_read_only(self.rtype, body, shown)
            doc = writable_doc(self.rtype, body)
            if doc == row["doc"]:
                return self._respond(row)  # nothing changed: no new version, no event
            await self._check_references(conn, doc)
            status = workflow.status_after_edit(self.rtype, row["status"])
            updated = changed_row(self.rtype, row, doc, status)
            if not await ResourceRepo(conn, self.rtype).update(row, updated):
                raise Problem(412, f"the {self.rtype.name} changed meanwhile; GET it and retry")
            if status is not None:  # who wrote what: the four-eyes rule reads it (workflow.py)
                await HistoryRepo(conn).add(
                    row["id"], caller.user_id, row["status"], status, "edited", request_id_var.get()
                )
            await self._emit(conn, self.rtype.topic("updated"), updated, caller.user_id)
        return self._respond(updated)

    async def delete(self, request: web.Request) -> web.Response:
        caller = principal(request)
        async with request.app[DATABASE].transaction() as conn:
            row = await self._load(conn, request, lock=True)
            self._check_change(request, row)
            repo = ResourceRepo(conn, self.rtype)
            user = await repo.referenced_by(row["id"], self.types)
            if user is not None:
                raise Conflict(
                    f"{with_article(user)} still refers to this {self.rtype.name}; change or delete it first"
                )
            await repo.delete(row["id"], row["version"])
            await self._emit(conn, self.rtype.topic("deleted"), row, caller.user_id)
        return web.Response(status=204)

    # -- workflow -----------------------------------------------------------------------------

    def transition_handler(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return await self._transition(request, name)

        return handler

    async def _transition(self, request: web.Request, name: str) -> web.Response:
        caller = principal(request)
        comment = await _optional_comment(request)
        step = workflow.find_transition(self.rtype, name)
        async with request.app[DATABASE].transaction() as conn:
            row = await self._load(conn, request, lock=True)
            authors: set[str] = set()
            if step.who == "reviewer" and self.rtype.workflow is not None:
                # Read under the row's lock, which every edit takes too.
                history = await HistoryRepo(conn).list(row["id"])
                authors = workflow.authors_under_review(self.rtype.workflow, history)
            workflow.check_transition(self.rtype, step, caller, row, authors)
            check_if_match(request, row["version"], self.rtype.name)
            workflow.check_source(self.rtype, step, row)
            updated = changed_row(self.rtype, row, row["doc"], step.target)
            if not await ResourceRepo(conn, self.rtype).update(row, updated):
                raise Problem(412, f"the {self.rtype.name} changed meanwhile; GET it and retry")
            await HistoryRepo(conn).add(
                row["id"], caller.user_id, row["status"], step.target, comment, request_id_var.get()
            )
            await self._emit(conn, step.topic, updated, caller.user_id)
        return self._respond(updated)

    async def history(self, request: web.Request) -> web.Response:
        async with request.app[DATABASE].connection() as conn:
            row = await self._load(conn, request)
            entries = await HistoryRepo(conn).list(row["id"])
        return json_response(
            [
                {
                    "actorId": str(e["actor_id"]) if e["actor_id"] else None,
                    "from": e["from_status"],
                    "to": e["to_status"],
                    "comment": e["comment"],
                    "requestId": e["request_id"],
                    "at": format_time(e["at"]),
                }
                for e in entries
            ]
        )


def _data(row: dict[str, Any]) -> orjson.Fragment:
    """An event's `data`: the stored representation itself, spliced into the envelope as it is
    (the event carries exactly what GET answers)."""
    return orjson.Fragment(row["shown"])


def _json_text(text: str, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=text.encode(), status=status, headers=headers, content_type=JSON_CONTENT_TYPE, charset="utf-8"
    )


def _args(query: tuple[str, list[Any]]) -> list[Any]:
    text, params = query
    return [text, *params]


async def _optional_comment(request: web.Request) -> str | None:
    """Transitions take an optional `{comment}`; no body at all is fine."""
    if not request.body_exists:
        return None
    body = await read_json(request)
    if not isinstance(body, dict):
        raise Problem(400, "the body must be a JSON object")
    unknown = sorted(set(body) - {"comment"})
    if unknown:
        raise ValidationFailed(
            [{"field": name, "message": "is not a field of this request"} for name in unknown]
        )
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise ValidationFailed(
            [{"field": "comment", "message": "must be a string of at most 2000 characters"}]
        )
    return comment


def add_routes(app: web.Application, types: Sequence[ResourceType]) -> None:
    for rtype in types:
        handlers = ResourceHandlers(rtype, types)
        base = f"/v2/{rtype.name}"
        app.router.add_get(f"{base}/list", handlers.list, allow_head=False)
        app.router.add_post(f"{base}/list", handlers.create)
        app.router.add_get(f"{base}/{ITEM_ID}", handlers.get, allow_head=False)
        app.router.add_put(f"{base}/{ITEM_ID}", handlers.put)
        app.router.add_patch(f"{base}/{ITEM_ID}", handlers.patch)
        app.router.add_delete(f"{base}/{ITEM_ID}", handlers.delete)
        if rtype.workflow is not None:
            for step in rtype.workflow.transitions:
                app.router.add_post(f"{base}/{{id}}/{step.name}", handlers.transition_handler(step.name))
            app.router.add_get(f"{base}/{{id}}/history", handlers.history, allow_head=False)
