"""The API document: valid OpenAPI 3.1, complete against the routes the code registers, its
references resolving, its models matching what the services really answer, the webhooks of
the catalog, and the docs service's merge surviving services that are down, late or wrong."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from swagger_ui_bundle import swagger_ui_path

from services.auth.app import create_app as auth_app
from services.auth.openapi import TOKEN_EXAMPLE
from services.docs.app import create_app as docs_app
from services.docs.openapi import API_DOCUMENT
from services.resource.app import create_app as resource_app
from services.webhook_delivery.app import create_app as webhook_app
from shared.appkeys import PUBLIC_PATHS
from shared.catalog import TOPICS, envelope_schema
from shared.config import Settings
from shared.openapi import add_fragment_route, fragment, operation, problems
from shared.problems import Problem
from tests.conftest import Suite, server_url

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SWAGGER_UI = Path(str(swagger_ui_path))
NOT_DOCUMENTED = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def public_routes(settings: Settings) -> dict[tuple[str, str], bool]:
    """(METHOD, path) of every public route the four apps register -> whether it needs no
    token, read from the same app objects the processes run."""
    found: dict[tuple[str, str], bool] = {}
    for create in (auth_app, resource_app, webhook_app, docs_app):
        app = create(settings)
        for route in app.router.routes():
            if route.method in ("HEAD", "OPTIONS") or route.resource is None:
                continue
            path = route.resource.canonical
            if path in NOT_DOCUMENTED or path.startswith("/internal/"):
                continue
            if not (path.startswith("/v2/") or path == "/docs"):
                continue  # Swagger UI's assets
            is_public = path in app[PUBLIC_PATHS] or getattr(route.handler, "herald_public", False)
            found[(route.method, path)] = is_public
    return found


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def inline(doc: dict[str, Any], node: Any) -> Any:
    """`node` with every $ref replaced by what it points at (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return inline(doc, resolve(doc, node["$ref"]))
        return {k: inline(doc, v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(doc, v) for v in node]
    return node


def assert_matches(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    errors = list(Draft202012Validator(inline(doc, schema)).iter_errors(value))
    assert not errors, [e.message for e in errors]


async def fetch_document(suite: Suite) -> dict[str, Any]:
    resp, doc = await suite.request("GET", "/v2/openapi.json")
    assert resp.status == 200, doc
    assert resp.content_type == "application/json"
    return doc


async def test_the_merged_document_is_valid_openapi_3_1(suite: Suite) -> None:
    doc = await fetch_document(suite)
    assert doc["openapi"] == "3.1.0"
    validate_openapi(doc)
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The token from POST /v2/requesttoken, without the quotes.",
    }
    problems_by_status = doc["components"]["responses"]
    assert {"Problem401", "Problem404", "Problem422", "Problem503"} <= set(problems_by_status)
    for problem in problems_by_status.values():
        assert set(problem["content"]) == {"application/problem+json"}


async def test_every_public_route_is_in_the_document(suite: Suite) -> None:
    doc = await fetch_document(suite)
    routes = public_routes(suite.settings)
    # The walk itself sees the routes (else this test could not fail).
    assert {("POST", "/v2/requesttoken"), ("PATCH", "/v2/user/{id}"), ("GET", "/docs")} <= set(routes)
    assert ("GET", "/v2/openapi.json") in routes
    documented = {(method, path) for method, path, _ in operations(doc)}
    missing = sorted(set(routes) - documented)
    assert not missing, f"routes the document lacks: {missing}"


async def test_every_documented_operation_is_a_route(suite: Suite) -> None:
    doc = await fetch_document(suite)
    routes = public_routes(suite.settings)
    invented = sorted({(m, p) for m, p, _ in operations(doc)} - set(routes))
    assert not invented, f"documented but not routed: {invented}"


async def test_operations_follow_the_fragment_contract(suite: Suite) -> None:
    doc = await fetch_document(suite)
    routes = public_routes(suite.settings)
    ids = []
    for method, path, op in operations(doc):
        where = f"{method} {path}"
        assert op.get("operationId") and op.get("summary") and op.get("tags"), where
        # Parameters on the operation, or on its path item (shared by its methods).
        assert isinstance(op.get("parameters", doc["paths"][path].get("parameters")), list), where
        ids.append(op["operationId"])
        successes = [s for s in op["responses"] if s.startswith(("2", "3"))]
        assert successes, f"{where} documents no success"
        for status in successes:
            if status not in ("204", "304"):  # the others carry a body: its schema is documented
                content = inline(doc, op["responses"][status]).get("content") or {}
                assert content and all("schema" in m for m in content.values()), f"{where} {status}"
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                content = inline(doc, response)["content"]
                assert set(content) == {"application/problem+json"}, f"{where} {status}"
                assert content["application/problem+json"]["schema"]["title"] == "Problem", (
                    f"{where} {status}"
                )
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            assert media_type.endswith("json") and "schema" in media, f"{where} body {media_type}"
        # `security: []` exactly where the code lets a request in without a token.
        if (method, path) in routes:
            assert (op.get("security") == []) == routes[(method, path)], f"{where}: security"
        shared_params = doc["paths"][path].get("parameters", [])  # a path item's, for all its methods
        declared = {p["name"] for p in [*shared_params, *op.get("parameters", [])] if p["in"] == "path"}
        for name in path.strip("/").split("/"):
            if name.startswith("{"):
                assert name[1:-1] in declared, f"{where} does not declare {name}"
    assert len(ids) == len(set(ids)), "operationIds repeat"


async def test_every_reference_resolves_and_every_example_fits_its_schema(suite: Suite) -> None:
    doc = await fetch_document(suite)
    refs: list[str] = []
    examples: list[tuple[dict[str, Any], Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            if "examples" in node and isinstance(node["examples"], list) and "type" in node:
                examples.extend((node, e) for e in node["examples"])  # a JSON Schema's examples
            if "schema" in node and "example" in node:
                examples.append((node["schema"], node["example"]))  # a media type's example
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert len(refs) > 20
    for ref in refs:
        resolve(doc, ref)
    assert examples
    for schema, example in examples:
        assert_matches(doc, {k: v for k, v in schema.items() if k != "examples"}, example)


async def test_every_topic_is_a_webhook_with_its_envelope_and_signature_headers(suite: Suite) -> None:
    doc = await fetch_document(suite)
    assert set(doc["webhooks"]) == set(TOPICS)
    for topic, item in doc["webhooks"].items():
        post = item["post"]
        schema = inline(doc, post["requestBody"]["content"]["application/json"]["schema"])
        assert {k: v for k, v in schema.items() if k != "title"} == envelope_schema(topic)
        headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
        assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert all(h["required"] for h in headers.values())
        assert "2XX" in post["responses"]


async def test_the_models_match_what_the_services_answer(suite: Suite) -> None:
    """Real answers validated against the documented schemas: the models cannot drift."""
    doc = await fetch_document(suite)

    def success_schema(method: str, path: str, status: str) -> dict[str, Any]:
        response = inline(doc, doc["paths"][path][method]["responses"][status])
        return response["content"]["application/json"]["schema"]

    problem_schema = doc["components"]["schemas"]["Problem"]
    token = await suite.admin_token()
    assert_matches(doc, success_schema("post", "/v2/requesttoken", "200"), token)
    resp, jwks = await suite.request("GET", "/v2/.well-known/jwks.json")
    assert_matches(doc, success_schema("get", "/v2/.well-known/jwks.json", "200"), jwks)
    resp, me = await suite.request("GET", "/v2/user/me", token=token)
    assert_matches(doc, success_schema("get", "/v2/user/me", "200"), me)
    resp, users = await suite.request("GET", "/v2/user/list?limit=1", token=token)
    assert users and resp.status == 200
    assert_matches(doc, success_schema("get", "/v2/user/list", "200"), users)
    user, _, _ = await suite.new_user()
    assert_matches(doc, success_schema("post", "/v2/user/list", "201"), user)
    for method, path, body, status in (
        ("GET", "/v2/user/me", None, 401),
        ("POST", "/v2/user/list", {"email": "not-an-email", "password": "x"}, 422),
    ):
        resp, problem = await suite.request(method, path, json=body, token=token if status != 401 else None)
        assert resp.status == status
        assert resp.content_type == "application/problem+json"
        assert_matches(doc, problem_schema, problem)
        assert str(status) in doc["paths"][path][method.lower()]["responses"]
    assert problem["errors"]


def error_examples(doc: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    """(where, documented status, response, its example) of every error response."""
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                if "$ref" in response:
                    response = resolve(doc, response["$ref"])
                example = response["content"]["application/problem+json"]["example"]
                yield f"{method} {path} {status}", int(status), response, example


async def test_each_error_example_has_the_status_it_is_documented_under(suite: Suite) -> None:
    """Swagger UI shows the example of each status: a 401 reads as a 401, not as a 404."""
    doc = await fetch_document(suite)
    seen: dict[int, set[str]] = {}
    for where, status, response, example in error_examples(doc):
        assert example["status"] == status, where
        assert example["title"] == Problem(status, "").title, where  # what the services answer
        assert example["detail"] and example["instance"], where
        assert ("errors" in example) == (status == 422), where
        if status == 422:
            assert all(set(e) == {"field", "message"} for e in example["errors"]), where
        if status in (429, 503):
            assert response["headers"]["Retry-After"]["example"] > 0, where
        if status == 401:
            assert "WWW-Authenticate" in response["headers"], where
        seen.setdefault(status, set()).add(example["detail"])
    assert {400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 502, 503, 504} <= set(seen)
    # A login's 401 is about the password, not a token; both are documented.
    assert "the email or password is wrong" in seen[401] and len(seen[401]) == 2


async def test_error_examples_are_shaped_as_the_real_answers(suite: Suite) -> None:
    """The example of a status has the `type` and `title` the API really answers with."""
    doc = await fetch_document(suite)
    examples = {status: example for _, status, _, example in error_examples(doc)}
    token = await suite.admin_token()
    _, _, member = await suite.new_user()
    answers = [
        await suite.request("GET", "/v2/user/list?limit=0", token=token),
        await suite.request("GET", "/v2/user/me"),
        await suite.request("GET", "/v2/user/list", token=member),
        await suite.request("GET", "/v2/event/00000000-0000-4000-8000-000000000000", token=token),
        await suite.request(
            "POST", "/v2/event/list", token=token, data="x", headers={"Content-Type": "text/plain"}
        ),
        await suite.request("POST", "/v2/user/list", token=token, json={"email": "x@example.com"}),
    ]
    for resp, problem in answers:
        example = examples[resp.status]
        assert (problem["type"], problem["title"]) == (example["type"], example["title"]), problem
        assert set(problem) == set(example), problem
    assert sorted(resp.status for resp, _ in answers) == [400, 401, 403, 404, 415, 422]


async def test_the_token_example_is_shaped_as_a_real_token(suite: Suite) -> None:
    doc = await fetch_document(suite)
    media = doc["paths"]["/v2/requesttoken"]["post"]["responses"]["200"]["content"]["application/json"]
    assert media["example"] == TOKEN_EXAMPLE
    real = await suite.admin_token()
    assert jwt.get_unverified_header(TOKEN_EXAMPLE).keys() == jwt.get_unverified_header(real).keys()
    example_claims = jwt.decode(TOKEN_EXAMPLE, options={"verify_signature": False})
    real_claims = jwt.decode(real, options={"verify_signature": False})
    assert example_claims.keys() == real_claims.keys()
    assert len(TOKEN_EXAMPLE.split(".")[2]) == len(real.split(".")[2])  # a 2048-bit RS256 signature


async def test_the_document_is_public_and_revalidates_with_its_etag(suite: Suite) -> None:
    resp, _ = await suite.request("GET", "/v2/openapi.json", headers={"Authorization": "Bearer junk"})
    assert resp.status == 200
    etag = resp.headers["ETag"]
    resp, _ = await suite.request("GET", "/v2/openapi.json", headers={"If-None-Match": etag})
    assert resp.status == 304
    resp, fragment_doc = await suite.request("GET", "/openapi.json", base=suite.auth_url)
    assert resp.status == 200 and "/v2/user/me" in fragment_doc["paths"]
    assert "/internal/users/{id}/credentials" not in fragment_doc["paths"]


async def test_docs_is_swagger_ui_served_from_the_installed_package(suite: Suite) -> None:
    resp, html = await suite.request("GET", "/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert '<script src="/docs/swagger-ui-bundle.js">' in html
    resp, init = await suite.request("GET", "/docs/herald-docs.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    assert 'url: "/v2/openapi.json"' in init and "persistAuthorization: true" in init
    assert "http" not in html + init  # every URL is the edge's own
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        async with suite.session.get(f"{suite.edge_url}/docs/{name}") as resp:
            assert resp.status == 200
            assert await resp.read() == (SWAGGER_UI / name).read_bytes()
    for name in ("index.j2", "swagger-initializer.js"):
        resp, problem = await suite.request("GET", f"/docs/{name}")
        assert resp.status == 404 and problem["status"] == 404
    resp, problem = await suite.request("GET", "/docs/..%2F..%2F__init__.py")
    assert resp.status == 400 and problem["status"] == 400  # the edge refuses encoded slashes


# -- the docs service's merge: services down, late, restarted with other routes, or conflicting -------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _thing_fragment(*paths: str) -> dict[str, Any]:
    return fragment(
        "things",
        {
            path: {
                "get": operation(
                    "get" + path.replace("/", "_"), "A thing", ["things"], {"200": {"description": "ok"}}
                )
            }
            for path in paths
        },
    )


def _fragment_app(document: dict[str, Any]) -> web.Application:
    app = web.Application()

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", serve)
    return app


async def test_a_late_service_is_left_out_then_added(
    aiohttp_server: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A service that does not answer yet is left out (200, one log line), and is in the
    document once it answers; a restart with other routes shows after max_age."""
    port = _closed_port()
    auth = await aiohttp_server(auth_app(settings))
    wired = dataclasses.replace(
        settings,
        auth_url=server_url(auth),
        resource_url=f"http://127.0.0.1:{port}",
        webhook_url=f"http://127.0.0.1:{_closed_port()}",
    )
    docs = await aiohttp_server(docs_app(wired))
    document = docs.app[API_DOCUMENT]
    now = [1000.0]  # the document's clock, moved by hand: no sleeping
    document.clock = lambda: now[0]
    document.retry_seconds = 0.0
    async with aiohttp.ClientSession() as session:

        async def paths() -> set[str]:
            async with session.get(server_url(docs) + "/v2/openapi.json") as resp:
                assert resp.status == 200
                return set((await resp.json())["paths"])

        with caplog.at_level(logging.WARNING, logger="herald.docs.openapi"):
            first = await paths()
            await paths()
        assert "/v2/user/me" in first and "/v2/thing/list" not in first
        left_out = [r for r in caplog.records if "resource" in r.getMessage()]
        assert len(left_out) == 1 and "left out" in left_out[0].getMessage()

        late = await aiohttp_server(_fragment_app(_thing_fragment("/v2/thing/list")), port=port)
        assert "/v2/thing/list" in await paths()
        await late.close()

        # Down at revalidation: the last fragment is kept (it is most likely restarting)...
        now[0] += document.max_age
        assert "/v2/thing/list" in await paths()
        assert next(u for u in document.upstreams if u.name == "resource").failing
        # ...and replaced once it answers again with other routes.
        restarted = await aiohttp_server(_fragment_app(_thing_fragment("/v2/thing/{id}")), port=port)
        assert "/v2/thing/{id}" in (seen := await paths())
        assert "/v2/thing/list" not in seen and "/v2/user/me" in seen
        await restarted.close()

        # A fragment that answered is asked again only after max_age.
        await aiohttp_server(_fragment_app(_thing_fragment("/v2/thing/new")), port=port)
        now[0] += document.max_age - 1
        assert "/v2/thing/new" not in await paths()
        now[0] += 1
        assert "/v2/thing/new" in await paths()


async def test_a_conflicting_fragment_is_left_out_and_logged(
    aiohttp_server: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    auth = await aiohttp_server(auth_app(settings))
    rogue = await aiohttp_server(_fragment_app(_thing_fragment("/v2/user/me", "/v2/rogue")))
    wired = dataclasses.replace(
        settings,
        auth_url=server_url(auth),
        resource_url=f"http://127.0.0.1:{_closed_port()}",
        webhook_url=server_url(rogue),
    )
    docs = await aiohttp_server(docs_app(wired))
    with caplog.at_level(logging.ERROR, logger="herald.docs.openapi"):
        async with aiohttp.ClientSession() as session:
            async with session.get(server_url(docs) + "/v2/openapi.json") as resp:
                assert resp.status == 200
                doc = await resp.json()
    assert "/v2/rogue" not in doc["paths"]
    assert doc["paths"]["/v2/user/me"]["get"]["operationId"] == "getMe"
    assert any(
        "webhook_delivery" in r.getMessage() and "/v2/user/me" in r.getMessage() for r in caplog.records
    )
    assert docs.app[API_DOCUMENT].included == ["auth"]


def test_problem_refs_helper_sorts_and_dedupes() -> None:
    assert list(problems(422, 401, 401)) == ["401", "422"]


async def test_one_fetch_for_many_callers_and_a_304_when_unchanged(
    aiohttp_server: Any, settings: Settings
) -> None:
    """Concurrent requests share one refresh; revalidation sends If-None-Match and an
    unchanged fragment costs the service a 304, leaving the document (and its ETag) as it was."""
    answered: list[int] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        answered.append(response.status)
        return response

    upstream_app = web.Application(middlewares=[count])
    add_fragment_route(upstream_app, _thing_fragment("/v2/thing/list"))
    upstream = await aiohttp_server(upstream_app)
    closed = f"http://127.0.0.1:{_closed_port()}"
    wired = dataclasses.replace(
        settings, auth_url=closed, resource_url=server_url(upstream), webhook_url=closed
    )
    docs = await aiohttp_server(docs_app(wired))
    document = docs.app[API_DOCUMENT]
    now = [1000.0]
    document.clock = lambda: now[0]
    async with aiohttp.ClientSession() as session:

        async def get() -> tuple[str, set[str]]:
            async with session.get(server_url(docs) + "/v2/openapi.json") as resp:
                assert resp.status == 200
                return resp.headers["ETag"], set((await resp.json())["paths"])

        results = await asyncio.gather(*(get() for _ in range(20)))
        assert answered == [200]
        assert {etag for etag, _ in results} == {results[0][0]}
        assert all("/v2/thing/list" in paths for _, paths in results)
        now[0] += document.max_age
        etag, paths = await get()
        assert answered == [200, 304]
        assert etag == results[0][0] and "/v2/thing/list" in paths
