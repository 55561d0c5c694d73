"""The gateway: routing, CORS, request ids, edge token checks, limits and upstream failures."""

from __future__ import annotations

import asyncio
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

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, AMQP_URL, Suite, server_url

ORIGIN = "https://app.example"
READY_REQUEST_IDS: list[str] = []


def _echo_app() -> web.Application:
    """Stands in for a service behind the gateway and tells what reached it."""

    async def echo(request: web.Request) -> web.Response:
        if request.path.endswith("/slow"):
            await asyncio.sleep(5)
        if request.path.endswith("/big"):
            return web.Response(body=b"x" * (1024 * 1024), content_type="application/octet-stream")
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
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": body.decode(errors="replace"),
            },
            headers={"Connection": "keep-alive", "X-Upstream": "echo"},
        )

    async def ready(request: web.Request) -> web.Response:
        READY_REQUEST_IDS.append(request.headers.get("X-Request-ID", ""))
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
    return server_url(await aiohttp_server(_echo_app()))


@pytest.fixture
async def edge(gateway_with_auth: Any, echo_url: str) -> Suite:
    """Auth, and the gateway in front of an echo server (as resource) and a dead port
    (as webhook delivery)."""
    return await gateway_with_auth(
        resource_url=echo_url,
        webhook_url=f"http://127.0.0.1:{_closed_port()}",
        cors_origins=(ORIGIN, "https://other.example"),
        max_body_bytes=64 * 1024,
        upstream_timeout=0.5,
    )


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
    assert "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_disallowed_origin_gets_no_cors_headers(edge: Suite) -> None:
    resp, _ = await edge.request(
        "OPTIONS",
        "/v2/event/list",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Methods" not in resp.headers
    token = await edge.admin_token()
    resp, _ = await edge.request(
        "GET", "/v2/user/me", token=token, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Origin" in resp.headers["Vary"]


async def test_actual_responses_expose_the_listed_headers(edge: Suite) -> None:
    token = await edge.admin_token()
    for path, status, tok in (
        ("/v2/user/me", 200, token),
        ("/v2/user/me", 401, None),
        ("/v2/event/list", 200, token),
    ):
        resp, _ = await edge.request("GET", path, token=tok, headers={"Origin": ORIGIN})
        assert resp.status == status
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "Location", "Link", "Retry-After", "X-Request-ID"} <= exposed


async def test_request_id_is_kept_when_well_formed_and_made_otherwise(edge: Suite) -> None:
    token = await edge.admin_token()
    resp, echoed = await edge.request(
        "GET", "/v2/event/list", token=token, headers={"X-Request-ID": "client-req-42"}
    )
    assert resp.headers["X-Request-ID"] == "client-req-42"
    assert echoed["headers"]["X-Request-ID"] == "client-req-42"
    resp, echoed = await edge.request(
        "GET", "/v2/event/list", token=token, headers={"X-Request-ID": "bad id with spaces\t" + "x" * 200}
    )
    made = resp.headers["X-Request-ID"]
    assert uuid.UUID(made) and echoed["headers"]["X-Request-ID"] == made
    resp, problem = await edge.request("GET", "/v2/user/me", headers={"X-Request-ID": "req-401"})
    assert problem["instance"] == "req-401"


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
            "Keep-Alive": "timeout=5",
            "If-Match": '"v1"',
            "Idempotency-Key": "k1",
        },
    )
    assert echoed["method"] == "POST" and echoed["path"] == "/v2/event/list?status=approved&q=a%20b"
    assert echoed["body"] == '{"raw": true}'
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert sent["authorization"] == f"Bearer {token}"
    assert sent["if-match"] == '"v1"' and sent["idempotency-key"] == "k1"
    assert "proxy-authorization" not in sent and "keep-alive" not in sent
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert resp.headers["X-Upstream"] == "echo"
    resp, _ = await edge.request("GET", "/v2/event/big", token=token)
    assert resp.status == 200 and resp.content_length == 1024 * 1024


async def test_a_made_up_forwarded_chain_is_not_passed_on(gateway_with_auth: Any, echo_url: str) -> None:
    """At the edge (no trusted proxies) the caller's own X-Forwarded-For is dropped: services
    behind the gateway throttle by the address the gateway saw."""
    suite = await gateway_with_auth(resource_url=echo_url, trusted_proxies=())
    _, echoed = await suite.request(
        "GET",
        "/v2/event/list",
        token=await suite.admin_token(),
        headers={"X-Forwarded-For": "198.51.100.99, 10.0.0.1"},
    )
    assert echoed["headers"]["X-Forwarded-For"] == "127.0.0.1"


async def test_a_bad_token_never_reaches_a_service(edge: Suite) -> None:
    resp, body = await edge.request("GET", "/v2/event/list", token="forged.token.value")
    assert resp.status == 401 and body["status"] == 401  # a problem from the gateway, not the echo
    assert "X-Upstream" not in resp.headers


async def test_oversized_bodies_get_413(edge: Suite) -> None:
    token = await edge.admin_token()
    big = b"x" * (64 * 1024 + 1)
    resp, problem = await edge.request(
        "POST", "/v2/event/list", token=token, data=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and problem["status"] == 413

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 8192

    resp, problem = await edge.request(
        "POST", "/v2/event/list", token=token, data=chunked(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413 and problem["status"] == 413


async def test_upstream_failures_become_problems(edge: Suite, aiohttp_server: Any) -> None:
    token = await edge.admin_token()
    resp, problem = await edge.request("GET", "/v2/subscription/list", token=token)
    assert resp.status == 503 and resp.content_type == "application/problem+json"
    assert "webhook_delivery" in problem["detail"] and resp.headers["Retry-After"]
    resp, problem = await edge.request("GET", "/v2/event/slow", token=token)
    assert resp.status == 504 and problem["status"] == 504


async def test_an_upstream_that_hangs_up_gives_502(gateway_with_auth: Any) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    suite = await gateway_with_auth(resource_url=f"http://127.0.0.1:{port}")
    resp, problem = await suite.request("GET", "/v2/event/list", token=await suite.admin_token())
    assert resp.status == 502 and problem["status"] == 502
    server.close()


async def test_readyz_reports_the_services(edge: Suite, suite: Suite) -> None:
    resp, body = await suite.request("GET", "/readyz")
    assert resp.status == 200 and body["status"] == "ready"
    await edge.request("GET", "/readyz", headers={"X-Request-ID": "ready-1"})
    assert "ready-1" in READY_REQUEST_IDS  # the gateway asked resource under the same request id

    resp, problem = await edge.request("GET", "/readyz")
    assert resp.status == 503 and "webhook_delivery" in problem["detail"]
    resp, body = await edge.request("GET", "/healthz")
    assert resp.status == 200


async def test_unknown_paths_are_problems(edge: Suite) -> None:
    resp, _problem = await edge.request("GET", "/nowhere")
    assert resp.status in (401, 404) and resp.content_type == "application/problem+json"


async def test_requesttoken_is_limited_per_client_address(gateway_with_auth: Any) -> None:
    suite = await gateway_with_auth(requesttoken_rate_per_minute=3)
    body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    statuses = []
    for _ in range(4):
        resp, problem = await suite.request(
            "POST", "/v2/requesttoken", json=body, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        statuses.append(resp.status)
        assert resp.headers["RateLimit-Limit"] == "3"
    assert statuses == [200, 200, 200, 429]
    assert int(resp.headers["Retry-After"]) >= 1 and problem["status"] == 429
    # Another address has its own allowance.
    resp, _ = await suite.request(
        "POST", "/v2/requesttoken", json=body, headers={"X-Forwarded-For": "198.51.100.8"}
    )
    assert resp.status == 200


async def test_each_user_has_a_token_bucket(gateway_with_auth: Any) -> None:
    suite = await gateway_with_auth(user_rate_per_second=1, user_burst=3)
    token = await suite.admin_token()
    statuses, remaining = [], []
    for _ in range(4):
        resp, _ = await suite.request("GET", "/v2/user/me", token=token)
        statuses.append(resp.status)
        remaining.append(resp.headers.get("RateLimit-Remaining"))
    assert statuses == [200, 200, 200, 429]
    assert remaining[:3] == ["2", "1", "0"]
    assert resp.headers["Retry-After"] == "1"
    await asyncio.sleep(1.05)
    resp, _ = await suite.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200


async def test_dot_segments_and_encoded_slashes_are_refused(edge: Suite) -> None:
    """The gateway picks the service from the path; an upstream must not resolve it to another
    route (here: auth's internal look-up, which the gateway never routes)."""
    token = await edge.admin_token()
    _, me = await edge.request("GET", "/v2/user/me", token=token)
    for path in (
        f"/v2/user/../../internal/users/{me['id']}/credentials",
        f"/v2/user/%2e%2e/%2E%2E/internal/users/{me['id']}/credentials",
        "/v2/user/..%2f..%2finternal/users",
        "/v2//user/me",
        "/v2/user/./me",
    ):
        async with edge.session.get(
            yarl.URL(edge.gateway_url + path, encoded=True), headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == 400, (path, body)
            assert "cv" not in body


async def test_an_answer_that_breaks_off_is_cut_not_spliced(edge: Suite) -> None:
    token = await edge.admin_token()
    async with edge.session.get(
        edge.gateway_url + "/v2/event/broken", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200 and resp.content_length == 400_000
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.read(), 5)
    resp, _ = await edge.request("GET", "/v2/user/me", token=token)
    assert resp.status == 200  # the gateway itself is fine


async def test_headers_named_by_connection_are_not_forwarded(edge: Suite) -> None:
    token = await edge.admin_token()
    _, echoed = await edge.request(
        "GET",
        "/v2/event/list",
        token=token,
        headers={
            "Connection": "keep-alive, X-Hop-Secret",
            "X-Hop-Secret": "1",
            "Proxy-Connection": "keep-alive",
            "X-End-To-End": "2",
        },
    )
    sent = {k.lower() for k in echoed["headers"]}
    assert "x-hop-secret" not in sent and "proxy-connection" not in sent
    assert "x-end-to-end" in sent
