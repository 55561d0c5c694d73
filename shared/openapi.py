"""OpenAPI 3.1 fragments: each service documents its own public routes with these helpers and
serves the result at `/openapi.json`; the docs service merges the fragments with its own (which
defines the shared `Problem` response, the bearer scheme and the webhooks) into
`/v2/openapi.json`.

A fragment is `{"openapi", "info", "paths", "components": {"schemas": ...}}`; every error
response is `problem()`, a reference the docs service's fragment resolves. A service adopts it with

    paths = {"/v2/thing/{id}": {"get": operation("getThing", "Get a thing", ["things"],
             {"200": json_response("The thing.", schema_ref("Thing")), **problems(401, 404)},
             parameters=[path_param("id", "The thing's id.")])}}
    add_fragment_route(app, fragment("Herald things", paths, {"Thing": THING_SCHEMA}))

and the route-coverage test (tests/integration/test_openapi.py) checks it documents every route.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from shared.authn import public
from shared.http import JSON_CONTENT_TYPE

OPENAPI_VERSION = "3.1.0"
FRAGMENT_PATH = "/openapi.json"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}


def schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def problem() -> dict[str, str]:
    """An error response: RFC 9457 problem details, defined once in the docs service's fragment."""
    return {"$ref": "#/components/responses/Problem"}


def problems(*statuses: int) -> dict[str, Any]:
    """Error responses by status code, each the shared problem response."""
    return {str(status): problem() for status in sorted(set(statuses))}


def json_body(
    schema: Mapping[str, Any],
    *,
    description: str | None = None,
    content_types: Iterable[str] = (JSON_CONTENT_TYPE,),
    required: bool = True,
) -> dict[str, Any]:
    """A request body of JSON (or another JSON media type such as merge-patch)."""
    body: dict[str, Any] = {
        "required": required,
        "content": {ct: {"schema": dict(schema)} for ct in content_types},
    }
    if description:
        body["description"] = description
    return body


def header(description: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": dict(schema or {"type": "string"})}


def json_response(
    description: str,
    schema: Mapping[str, Any],
    *,
    headers: Mapping[str, Any] | None = None,
    example: Any = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": dict(schema)}
    if example is not None:
        media["example"] = example
    response: dict[str, Any] = {"description": description, "content": {JSON_CONTENT_TYPE: media}}
    if headers:
        response["headers"] = dict(headers)
    return response


def empty_response(description: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = dict(headers)
    return response


LINK_HEADER = header('The next page, when there is one: `<url>; rel="next"` (RFC 8288).')
TOTAL_COUNT_HEADER = header("How many items match, with `?count=exact`.", {"type": "integer"})


def paged_list(item: Mapping[str, Any], description: str, *, total_count: bool = False) -> dict[str, Any]:
    """A 200 with a JSON array, paged with a `Link: <...>; rel="next"` header."""
    headers = {"Link": LINK_HEADER}
    if total_count:
        headers["X-Total-Count"] = TOTAL_COUNT_HEADER
    return json_response(description, {"type": "array", "items": dict(item)}, headers=headers)


def path_param(name: str, description: str, schema: Mapping[str, Any] = UUID_SCHEMA) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": dict(schema)}


def query_param(
    name: str, description: str, schema: Mapping[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": dict(schema or {"type": "string"}),
    }


def header_param(
    name: str, description: str, schema: Mapping[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": dict(schema or {"type": "string"}),
    }


LIMIT_PARAM = query_param(
    "limit", "Items per page.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
)
CURSOR_PARAM = query_param("cursor", "The opaque cursor from the `Link` header of the previous page.")


def operation(
    operation_id: str,
    summary: str,
    tags: Iterable[str],
    responses: Mapping[str, Any],
    *,
    parameters: Iterable[Mapping[str, Any]] = (),
    request_body: Mapping[str, Any] | None = None,
    description: str | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """One operation; `public=True` means it needs no token (`security: []`)."""
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": list(tags),
        "parameters": [dict(p) for p in parameters],
    }
    if description:
        op["description"] = description
    if request_body is not None:
        op["requestBody"] = dict(request_body)
    op["responses"] = dict(responses)
    if public:
        op["security"] = []
    return op


def fragment(
    title: str,
    paths: Mapping[str, Any],
    schemas: Mapping[str, Any] | None = None,
    *,
    version: str = "2",
    description: str | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": dict(paths),
        "components": {"schemas": dict(schemas or {})},
    }


# -- merging ---------------------------------------------------------------------------------


class MergeConflict(ValueError):
    """Two fragments define the same path or component name differently."""


def _merge_named(target: dict[str, Any], source: Mapping[str, Any], where: str) -> None:
    for name, value in source.items():
        if name in target and target[name] != value:
            raise MergeConflict(f"{where} {name!r} is defined twice, differently")
        target[name] = copy.deepcopy(value)


def merge(fragments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One document from fragments. The first gives `info`, `security` and `servers`; paths,
    webhooks and every kind of component are united, and the same name defined twice
    differently is a `MergeConflict` (the same name with the same content is fine). Tags are
    united by name, in order. The fragments are not changed."""
    merged: dict[str, Any] = {"openapi": OPENAPI_VERSION, "paths": {}, "components": {}}
    tags: dict[str, dict[str, Any]] = {}
    for index, frag in enumerate(fragments):
        if index == 0:
            for key in ("info", "security", "servers", "jsonSchemaDialect"):
                if key in frag:
                    merged[key] = copy.deepcopy(frag[key])
        _merge_named(merged["paths"], frag.get("paths") or {}, "path")
        if frag.get("webhooks"):
            _merge_named(merged.setdefault("webhooks", {}), frag["webhooks"], "webhook")
        for kind, named in (frag.get("components") or {}).items():
            _merge_named(merged["components"].setdefault(kind, {}), named or {}, f"components.{kind}")
        for tag in frag.get("tags") or ():
            tags.setdefault(tag["name"], copy.deepcopy(tag))
    if tags:
        merged["tags"] = list(tags.values())
    return merged


# -- serving a fragment ----------------------------------------------------------------------


def document_response(request: web.Request, body: bytes, etag: str) -> web.Response:
    """The document, or a 304 when the caller already has this version."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _has_version(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type=JSON_CONTENT_TYPE, charset="utf-8")


def _has_version(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` (a list of tags, or `*`) names this one; compared weakly (RFC 9110)."""
    if not if_none_match:
        return False
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def etag_of(body: bytes) -> str:
    """A strong ETag: the hash of the bytes served."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def add_fragment_route(app: web.Application, document: Mapping[str, Any]) -> None:
    """Serve `document` at GET /openapi.json, public, with an ETag computed once (revalidated
    with If-None-Match: a 304 while it is the same; the docs service revalidates so). Every
    service serves its fragment so."""
    body = orjson.dumps(document)
    etag = etag_of(body)

    @public
    async def openapi_fragment(request: web.Request) -> web.Response:
        return document_response(request, body, etag)

    app.router.add_get(FRAGMENT_PATH, openapi_fragment)
