"""Every service serves its OpenAPI fragment at /openapi.json with a strong ETag, and answers a
304 without the document to a caller that already has this version."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import orjson

from services.auth.app import create_app as auth_app
from services.resource.app import create_app as resource_app
from services.webhook_delivery.app import create_app as webhook_app
from shared.config import Settings
from tests.conftest import server_url


async def _get(
    session: aiohttp.ClientSession, url: str, if_none_match: str | None = None
) -> tuple[int, str, bytes]:
    headers = {"If-None-Match": if_none_match} if if_none_match is not None else {}
    async with session.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("ETag", ""), await resp.read()


async def test_every_service_fragment_has_an_etag_and_revalidates(
    aiohttp_server: Any, settings: Settings
) -> None:
    auth = await aiohttp_server(auth_app(settings))
    wired = dataclasses.replace(settings, auth_url=server_url(auth), webhook_worker=False)
    resource = await aiohttp_server(resource_app(wired))
    webhook = await aiohttp_server(webhook_app(wired))
    etags = set()
    async with aiohttp.ClientSession() as session:
        for server in (auth, resource, webhook):
            url = server_url(server) + "/openapi.json"
            status, etag, body = await _get(session, url)  # no token: the fragment is public
            assert status == 200, (url, body)
            assert orjson.loads(body)["paths"]
            assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, (url, etag)  # strong
            assert await _get(session, url) == (200, etag, body)  # the same bytes, the same tag
            etags.add(etag)
            # The caller has it: 304, no body, the tag again (weakly compared, from a list, or *).
            for has_it in (etag, f"W/{etag}", f'"older", {etag}', "*"):
                assert await _get(session, url, has_it) == (304, etag, b""), (url, has_it)
            # Another version: the document.
            for other in ('"older"', etag[:-2] + '"', ""):
                assert await _get(session, url, other) == (200, etag, body), (url, other)
    assert len(etags) == 3  # three documents, three tags
