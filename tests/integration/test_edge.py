"""The edge (nginx, rendered from deploy/nginx/herald.conf.template) keeps every promise the
public door makes: routing, CORS, request ids, limits, problem+json for what it answers itself,
client addresses, path checks, timeouts, logs. Services behind it are stand-ins that tell what
reached them, or the real auth service where a token is needed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import aiohttp
import orjson
import pytest
import yarl
from aiohttp import web

from shared.config import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AMQP_URL, Suite, server_url
from tests.delivery_support import wait_until
from tests.edge import Edge, free_port, start_edge

ORIGIN = "https://app.example"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def _echo_app(name: str, ready_ids: list[str] | None = None) -> web.Application:
    """Stands in for a service behind the edge and tells what reached it."""

    async def echo(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/slow"):
            await asyncio.sleep(5)
        if request.path.endswith("/big"):
            return web.Response(body=b"x" * (1024 * 1024), content_type="application/octet-stream")
        if request.path.endswith("/unavailable"):  # the service's own 503: passed on untouched
            return web.Response(
                status=503,
                body=b'{"status":503,"detail":"mine"}',
                content_type="application/problem+json",
                headers={"Retry-After": "17", "X-Request-ID": "the-service-copy"},
            )
        if request.path.endswith("/broken"):
            # Promises 400,000 bytes, sends a quarter, then dies.
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.content_length = 400_000
            await response.prepare(request)
            await response.write(b"y" * 100_000)
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return response
        body = await request.read()
        return web.json_response(
            {
                "service": name,
                "method": request.method,
                "path": request.raw_path,
                "headers": dict(request.headers),
                "body": body.decode(errors="replace"),
            },
            headers={"X-Upstream": name, "X-Request-ID": request.headers.get("X-Request-ID", "")},
        )

    async def ready(request: web.Request) -> web.Response:
        if ready_ids is not None:
            ready_ids.append(request.headers.get("X-Request-ID", ""))
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/readyz", ready)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def echo_url(aiohttp_server: Any) -> str:
    return server_url(await aiohttp_server(_echo_app("resource")))


@pytest.fixture
async def edge(edge_with_auth: Any, echo_url: str) -> Suite:
    """Auth, and the edge in front of it, of an echo server (as resource) and of a dead port
    (as webhook delivery)."""
    return await edge_with_auth(
        resource_url=echo_url,
        webhook_url=f"http://127.0.0.1:{_closed_port()}",
        cors_origins=(ORIGIN, "https://other.example"),
        max_body_bytes=64 * 1024,
        upstream_timeout=0.5,
    )


@pytest.fixture
async def echoes(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Any]:
    """`await echoes(**settings)`: an edge in front of four echo servers, one per service."""
    edges: list[Edge] = []
    session = aiohttp.ClientSession()

    async def start(**changes: Any) -> tuple[Edge, aiohttp.ClientSession]:
        urls = {
            f"{name}_url": server_url(
                await aiohttp_server(_echo_app(name.replace("webhook", "webhook_delivery")))
            )
            for name in ("auth", "resource", "webhook", "docs")
        }
        edges.append(await start_edge(dataclasses.replace(settings, **{**urls, **changes})))
        return edges[-1], session

    yield start
    await session.close()
    for started in edges:
        await started.stop()


async def _get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, Any]:
    async with session.get(url, **kwargs) as resp:
        raw = await resp.read()
        return resp, orjson.loads(raw) if raw[:1] in (b"{", b"[") else raw


# -- routing ------------------------------------------------------------------------------------


async def test_paths_go_to_the_service_their_first_segment_names(echoes: Any) -> None:
    edge, session = await echoes()
    expected = {
        "/v2/requesttoken": "auth",
        "/v2/user/me": "auth",
        "/v2/user": "auth",
        "/v2/.well-known/jwks.json": "auth",
        "/v2/subscription/list": "webhook_delivery",
        "/v2/topic/list": "webhook_delivery",
        "/v2/event/list": "resource",
        "/v2/location/123?x=1": "resource",
        "/v2/userx/me": "resource",
        "/v2/requesttokens": "resource",
        "/v2/openapi.json": "docs",
        "/docs": "docs",
        "/docs/swagger-ui.css": "docs",
    }
    for path, service in expected.items():
        resp, body = await _get(session, edge.url + path)
        assert resp.status == 200, path
        assert body["service"] == service, path
        assert body["path"] == path, "the path and query pass unchanged"


async def test_unknown_paths_and_metrics_are_problem_404s(echoes: Any) -> None:
    edge, session = await echoes()
    # "/v2" too, not nginx's HTML redirect to "/v2/" (a prefix location that proxies makes one).
    for path in ("/nowhere", "/metrics", "/v1/event/list", "/openapi.json", "/v2"):
        resp, problem = await _get(
            session, edge.url + path, headers={"X-Request-ID": "nf-1"}, allow_redirects=False
        )
        assert resp.status == 404 and resp.content_type == "application/problem+json", path
        assert set(problem) == PROBLEM_KEYS and problem["instance"] == "nf-1"


async def test_a_request_line_or_headers_too_long_get_problems(echoes: Any) -> None:
    """Past nginx's 16 KiB buffers: the request line (no URI left, so no named location: it was
    nginx's HTML 500) and the headers get problem+json with a request id (a made-up one when
    nginx stopped before the caller's headers)."""
    edge, session = await echoes()
    headers = {"X-Request-ID": "long-1"}
    resp, problem = await _get(session, edge.url + "/v2/event/list?q=" + "a" * 20_000, headers=headers)
    assert resp.status == 414 and resp.content_type == "application/problem+json"
    assert problem["status"] == 414 and problem["instance"] == resp.headers["X-Request-ID"]
    resp, problem = await _get(
        session, edge.url + "/v2/event/list", headers={**headers, "X-Big": "a" * 20_000}
    )
    assert resp.status == 431 and resp.content_type == "application/problem+json"
    assert problem["status"] == 431 and problem["instance"] == "long-1"


async def test_another_http_version_gets_a_problem(echoes: Any) -> None:
    """A request line nginx refuses for its version has no URI either (it was nginx's HTML 505)."""
    edge, _ = await echoes()
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.settings.edge_port)
    writer.write(b"GET /v2/event/list HTTP/2.0\r\nHost: herald\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 505 ") and b"Content-Type: application/problem+json" in head, head
    assert orjson.loads(body)["status"] == 505


async def test_no_version_banner(echoes: Any) -> None:
    edge, session = await echoes()
    for path in ("/v2/event/list", "/nowhere", "/healthz"):
        resp, _ = await _get(session, edge.url + path)
        assert resp.headers.get("Server") == "nginx", resp.headers.get("Server")


async def test_the_edges_own_figures_are_on_its_status_port_only(echoes: Any) -> None:
    edge, session = await echoes()
    resp, body = await _get(session, edge.status_url + "/status")
    assert resp.status == 200 and b"Active connections" in body
    assert edge.settings.edge_status_address.startswith("127.0.0.1:")
    resp, _ = await _get(session, edge.url + "/status")
    assert resp.status == 404


async def test_processes_of_one_service_share_its_requests(
    echoes: Any, aiohttp_server: Any, settings: Settings
) -> None:
    """Two resource processes (port and port + 100): requests alternate, and when one is gone
    the other answers every idempotent request."""
    for _ in range(20):
        port = free_port()
        with contextlib.suppress(OSError):
            second = await aiohttp_server(_echo_app("resource-2"), port=port + 100)
            break
    first = await aiohttp_server(_echo_app("resource-1"), port=port)
    edge, session = await echoes(resource_url=f"http://127.0.0.1:{port}", resource_processes=2)
    seen = [(await _get(session, edge.url + "/v2/event/list"))[1]["service"] for _ in range(6)]
    assert set(seen) == {"resource-1", "resource-2"}
    await first.close()
    for _ in range(6):
        resp, body = await _get(session, edge.url + "/v2/event/list")
        assert resp.status == 200 and body["service"] == "resource-2"
    await second.close()


# -- CORS ---------------------------------------------------------------------------------------


def _origins(resp: aiohttp.ClientResponse) -> list[str]:
    return [v.strip() for value in resp.headers.getall("Vary", []) for v in value.split(",")]


async def test_preflight_from_an_allowed_origin_needs_no_token(edge: Suite) -> None:
    resp, _ = await edge.request(
        "OPTIONS",
        "/v2/event/list",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "x-request-id",
    }
    assert _origins(resp).count("Origin") == 1
    assert "Access-Control-Allow-Credentials" not in resp.headers
    assert "X-Upstream" not in resp.headers  # answered by the edge


async def test_disallowed_origin_gets_no_cors_headers(edge: Suite) -> None:
    resp, problem = await edge.request(
        "OPTIONS",
        "/v2/event/list",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert resp.status == 403 and problem["status"] == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Methods" not in resp.headers
    token = await edge.admin_token()
    resp, _ = await edge.request(
        "GET", "/v2/user/me", token=token, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert _origins(resp).count("Origin") == 1


async def test_actual_responses_expose_the_listed_headers(edge: Suite) -> None:
    token = await edge.admin_token()
    for path, status, tok in (
        ("/v2/user/me", 200, token),
        ("/v2/user/me", 401, None),
        ("/v2/event/list", 200, token),
        ("/nowhere", 404, None),
    ):
        resp, _ = await edge.request("GET", path, token=tok, headers={"Origin": ORIGIN})
        assert resp.status == status
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "Location", "Link", "Retry-After", "X-Request-ID"} <= exposed
        assert _origins(resp).count("Origin") == 1, resp.headers.getall("Vary")
        assert "Access-Control-Allow-Methods" not in resp.headers


async def test_any_origin_with_a_star(echoes: Any) -> None:
    edge, session = await echoes(cors_origins=("*",))
    resp, _ = await _get(session, edge.url + "/v2/event/list", headers={"Origin": "https://any.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp, _ = await _get(session, edge.url + "/v2/event/list")
    assert "Access-Control-Allow-Origin" not in resp.headers  # no Origin, no CORS


# -- request ids --------------------------------------------------------------------------------


async def test_request_id_is_kept_when_well_formed_and_made_otherwise(edge: Suite) -> None:
    token = await edge.admin_token()
    resp, echoed = await edge.request(
        "GET", "/v2/event/list", token=token, headers={"X-Request-ID": "client-req-42"}
    )
    assert resp.headers.getall("X-Request-ID") == ["client-req-42"]  # exactly once
    assert echoed["headers"]["X-Request-ID"] == "client-req-42"
    resp, echoed = await edge.request(
        "GET", "/v2/event/list", token=token, headers={"X-Request-ID": "bad id with spaces\t" + "x" * 200}
    )
    made = resp.headers["X-Request-ID"]
    assert str(uuid.UUID(made)) == made and echoed["headers"]["X-Request-ID"] == made
    resp, _ = await edge.request("GET", "/v2/event/list", token=token, headers={"X-Request-ID": "x" * 129})
    assert resp.headers["X-Request-ID"] != "x" * 129
    resp, problem = await edge.request("GET", "/v2/user/me", headers={"X-Request-ID": "req-401"})
    assert problem["instance"] == "req-401" and resp.headers.getall("X-Request-ID") == ["req-401"]


async def test_request_id_travels_into_amqp_headers(edge: Suite) -> None:
    user, password, token = await edge.new_user()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(edge.settings.auth_exchange, "topic", durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, "user.credentials_changed")
        resp, _ = await edge.request(
            "PATCH",
            "/v2/user/me",
            token=token,
            headers={"X-Request-ID": "req-amqp-1"},
            json={"password": "changed-password", "currentPassword": password},
        )
        assert resp.status == 200
        async with asyncio.timeout(10):
            async with queue.iterator() as messages:
                async for message in messages:
                    event = orjson.loads(message.body)
                    await message.ack()
                    if event["data"]["id"] == user["id"]:
                        break
        assert message.headers["x-request-id"] == "req-amqp-1"
        assert message.message_id == event["id"]
        assert event["type"] == "user.credentials_changed" and event["data"]["cv"] == 2
        assert set(event) == {"id", "type", "timestamp", "data", "actor"}
        assert event["actor"] == {"id": user["id"]}
    finally:
        await connection.close()


async def test_one_json_access_log_line_per_request(echoes: Any) -> None:
    edge, session = await echoes()
    await _get(session, edge.url + "/v2/event/list?q=1", headers={"X-Request-ID": "log-1"})
    await _get(session, edge.url + "/nowhere", headers={"X-Request-ID": "log-2"})

    def logged() -> dict[str, Any] | None:
        lines = {line["request_id"]: line for line in edge.access_log()}
        return lines if {"log-1", "log-2"} <= lines.keys() else None

    lines = await wait_until(logged, what="both requests' access-log lines")
    proxied, refused = lines["log-1"], lines["log-2"]
    assert proxied["method"] == "GET" and proxied["path"] == "/v2/event/list"
    assert proxied["status"] == 200 and proxied["bytes"] > 0 and proxied["service"] == "edge"
    # nginx's times are seconds: named so, the total a JSON number.
    assert isinstance(proxied["duration_s"], float) and proxied["duration_s"] >= 0
    assert float(proxied["upstream_s"]) >= 0 and "duration_ms" not in proxied
    assert refused["status"] == 404 and refused["upstream"] == ""


# -- forwarding ---------------------------------------------------------------------------------


async def test_forwarding_drops_hop_by_hop_headers_and_passes_the_rest(edge: Suite) -> None:
    token = await edge.admin_token()
    resp, echoed = await edge.request(
        "POST",
        "/v2/event/list?status=approved&q=a%20b",
        token=token,
        data=b'{"raw": true}',
        headers={
            "Content-Type": "application/json",
            "Proxy-Authorization": "secret",
            "Proxy-Connection": "keep-alive",
            "Keep-Alive": "timeout=5",
            "If-Match": '"v1"',
            "Idempotency-Key": "k1",
            "X-End-To-End": "2",
        },
    )
    assert echoed["method"] == "POST" and echoed["path"] == "/v2/event/list?status=approved&q=a%20b"
    assert echoed["body"] == '{"raw": true}'
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert sent["authorization"] == f"Bearer {token}"
    assert sent["if-match"] == '"v1"' and sent["idempotency-key"] == "k1" and sent["x-end-to-end"] == "2"
    for hop in ("proxy-authorization", "keep-alive", "proxy-connection"):
        assert hop not in sent, hop
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert resp.headers["X-Upstream"] == "resource"
    resp, _ = await edge.request("GET", "/v2/event/big", token=token)
    assert resp.status == 200 and resp.content_length == 1024 * 1024


async def test_a_made_up_forwarded_chain_is_not_passed_on(echoes: Any) -> None:
    """At the edge (no trusted proxies) the caller's own X-Forwarded-For is dropped: services
    behind it throttle by the address the edge saw."""
    edge, session = await echoes()
    _, echoed = await _get(
        session, edge.url + "/v2/event/list", headers={"X-Forwarded-For": "198.51.100.99, 10.0.0.1"}
    )
    assert echoed["headers"]["X-Forwarded-For"] == "127.0.0.1"


async def test_behind_a_trusted_proxy_the_client_it_names_is_passed_on(echoes: Any) -> None:
    edge, session = await echoes(edge_trusted_proxies=("127.0.0.0/8",))
    _, echoed = await _get(
        session, edge.url + "/v2/event/list", headers={"X-Forwarded-For": "198.51.100.99, 203.0.113.5"}
    )
    # The last address not a trusted proxy; the chain before it is not passed on.
    assert echoed["headers"]["X-Forwarded-For"] == "203.0.113.5"


async def test_oversized_bodies_get_413(edge: Suite) -> None:
    token = await edge.admin_token()
    big = b"x" * (64 * 1024 + 1)
    resp, problem = await edge.request(
        "POST", "/v2/event/list", token=token, data=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and set(problem) == PROBLEM_KEYS and "65536" in problem["detail"]

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 8192

    resp, problem = await edge.request(
        "POST", "/v2/event/list", token=token, data=chunked(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and problem["status"] == 413


# -- failures -----------------------------------------------------------------------------------


async def test_upstream_failures_become_problems(edge: Suite) -> None:
    token = await edge.admin_token()
    resp, problem = await edge.request(
        "GET", "/v2/subscription/list", token=token, headers={"X-Request-ID": "down-1"}
    )
    assert resp.status == 503 and resp.content_type == "application/problem+json"
    assert "webhook_delivery" in problem["detail"] and resp.headers["Retry-After"] == "5"
    assert set(problem) == PROBLEM_KEYS and problem["instance"] == "down-1"
    resp, problem = await edge.request("GET", "/v2/event/slow", token=token)
    assert resp.status == 504 and problem["status"] == 504 and "resource" in problem["detail"]
    assert "Retry-After" not in resp.headers


async def test_a_services_own_503_passes_through_untouched(edge: Suite) -> None:
    token = await edge.admin_token()
    resp, body = await edge.request(
        "GET", "/v2/event/unavailable", token=token, headers={"X-Request-ID": "own-503"}
    )
    assert resp.status == 503 and body == {"status": 503, "detail": "mine"}
    assert resp.headers.getall("Retry-After") == ["17"]
    assert resp.headers.getall("X-Request-ID") == ["own-503"]


async def test_an_upstream_that_hangs_up_gives_502(echoes: Any) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    edge, session = await echoes(resource_url=f"http://127.0.0.1:{port}")
    async with session.post(edge.url + "/v2/event/list", json={}) as resp:
        problem = await resp.json(content_type=None)
    assert resp.status == 502 and problem["status"] == 502 and "resource" in problem["detail"]
    server.close()


async def test_an_answer_that_breaks_off_is_cut_not_spliced(edge: Suite) -> None:
    token = await edge.admin_token()
    async with edge.session.get(
        edge.edge_url + "/v2/event/broken", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200 and resp.content_length == 400_000
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.read(), 5)
    resp, _ = await edge.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200  # the edge itself is fine


async def test_readyz_reports_the_services(edge: Suite, suite: Suite, aiohttp_server: Any) -> None:
    resp, body = await suite.request("GET", "/readyz")
    assert resp.status == 200 and body["status"] == "ready"
    resp, body = await edge.request("GET", "/healthz")
    assert resp.status == 200 and body == {"status": "ok", "service": "edge"}
    resp, problem = await edge.request("GET", "/readyz")
    assert resp.status == 503 and "webhook_delivery" in problem["detail"]


async def test_readyz_asks_every_process_under_the_callers_request_id(
    aiohttp_server: Any, settings: Settings
) -> None:
    ready_ids: list[str] = []
    from services.docs.app import create_app as docs_app

    urls = {
        f"{name}_url": server_url(await aiohttp_server(_echo_app(name, ready_ids)))
        for name in ("auth", "resource", "webhook")
    }
    wired = dataclasses.replace(settings, **urls)
    docs = await aiohttp_server(docs_app(wired))
    edge = await start_edge(dataclasses.replace(wired, docs_url=server_url(docs)))
    try:
        async with aiohttp.ClientSession() as session:
            resp, _ = await _get(session, edge.url + "/readyz", headers={"X-Request-ID": "ready-1"})
    finally:
        await edge.stop()
    assert resp.status == 200 and ready_ids == ["ready-1"] * 3


# -- limits -------------------------------------------------------------------------------------


async def test_requesttoken_is_limited_per_client_address(edge_with_auth: Any) -> None:
    suite = await edge_with_auth(requesttoken_rate_per_minute=3, edge_trusted_proxies=("127.0.0.0/8",))
    body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    statuses = []
    for _ in range(4):
        resp, problem = await suite.request(
            "POST", "/v2/requesttoken", json=body, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429]
    assert resp.content_type == "application/problem+json" and set(problem) == PROBLEM_KEYS
    assert resp.headers.getall("Retry-After") == ["20"]  # a request every 60/3 seconds
    # Another address has its own allowance; other paths are not counted.
    resp, _ = await suite.request(
        "POST", "/v2/requesttoken", json=body, headers={"X-Forwarded-For": "198.51.100.8"}
    )
    assert resp.status == 200
    resp, _ = await suite.request(
        "GET", "/v2/.well-known/jwks.json", headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert resp.status == 200


async def test_each_token_has_a_limit_with_a_burst(edge_with_auth: Any) -> None:
    suite = await edge_with_auth(user_rate_per_second=1, user_burst=3)
    token = await suite.admin_token()
    statuses = []
    for _ in range(4):
        resp, problem = await suite.request("GET", "/v2/user/me", token=token)
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429]
    assert resp.headers["Retry-After"] == "1" and problem["status"] == 429
    other = await suite.admin_token()  # another token: its own allowance
    resp, _ = await suite.request("GET", "/v2/user/me", token=other)
    assert resp.status == 200 or other == token
    await asyncio.sleep(1.2)
    resp, _ = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200


# -- paths and slow clients ---------------------------------------------------------------------


async def test_dot_segments_and_encoded_slashes_are_refused(edge: Suite) -> None:
    """The edge picks the service from the normalised path but passes the raw one: a service
    must not resolve it to another route (here: auth's internal look-up, never routed)."""
    token = await edge.admin_token()
    _, me = await edge.request("GET", "/v2/user/me", token=token)
    for path in (
        f"/v2/user/../../internal/users/{me['id']}/credentials",
        f"/v2/user/%2e%2e/%2E%2E/internal/users/{me['id']}/credentials",
        "/v2/user/..%2f..%2finternal/users",
        "/v2/user/%2F..",
        "/v2/user/..%5cinternal",
        "/v2//user/me",
        "/v2/user/./me",
        "/v2/user/.",
        "/v2/user/../../../../etc/passwd",
    ):
        async with edge.session.get(
            yarl.URL(edge.edge_url + path, encoded=True), headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == 400, (path, body)
            assert set(body) == PROBLEM_KEYS
    # Dots inside a segment are fine.
    resp, _ = await edge.request("GET", "/v2/event/a..b", token=token)
    assert resp.status == 200


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the edge sent before closing the connection; fails if it stays open."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_slow_clients_are_dropped(echoes: Any) -> None:
    edge, _ = await echoes(edge_header_timeout=0.5, edge_body_timeout=0.5)
    # Headers that never end.
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.settings.edge_port)
    writer.write(b"GET /v2/event/list HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    await _closed_within(reader, 10)
    writer.close()
    # A body that never comes.
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.settings.edge_port)
    writer.write(b"POST /v2/event/list HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    await writer.drain()
    answer = await _closed_within(reader, 10)
    writer.close()
    assert b"X-Upstream" not in answer  # never reached the service
