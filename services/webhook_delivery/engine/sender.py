"""Sending one webhook: Standard Webhooks headers and signature over the stored bytes, a POST
that follows no redirect, and connections only to addresses the SSRF check passed (a resolver
that checks each answer, so DNS cannot be rebound between the check and the connect)."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from services.webhook_delivery.sent_headers import USER_AGENT, signed_at
from services.webhook_delivery.ssrf import UnsafeTarget, resolve_checked
from services.webhook_delivery.store.delivery_repo import RESPONSE_KEEP, Claimed, Outcome
from shared.config import Settings
from shared.webhooks import signature_header


class CheckedResolver(AbstractResolver):
    """Resolves through `resolve_checked`: a forbidden answer fails the connection."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Sent:
    outcome: Outcome
    retry_after: str | None  # the receiver's Retry-After header, as sent


class Sender:
    def __init__(self, settings: Settings) -> None:
        self.allow_private = settings.webhook_allow_private
        self.timeout = settings.webhook_timeout
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                resolver=CheckedResolver(settings.webhook_allow_private),
                use_dns_cache=False,  # every new connection is checked again
                limit=0,  # the worker caps attempts; waiting here would eat into the timeout
            ),
            timeout=aiohttp.ClientTimeout(
                total=settings.webhook_timeout, sock_connect=settings.webhook_connect_timeout
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # one receiver's cookies never reach another
            auto_decompress=False,
            trust_env=False,
        )

    def headers(self, claimed: Claimed, timestamp: int) -> CIMultiDict[str]:
        msg_id = str(claimed.event_id)
        headers: CIMultiDict[str] = CIMultiDict(claimed.headers)
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = signature_header(claimed.secrets, msg_id, timestamp, claimed.body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        return headers

    async def send(self, claimed: Claimed) -> Sent:
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        kept = b""
        retry_after = None
        try:
            url = yarl.URL(claimed.url)
            if _is_literal(url.raw_host or ""):
                # aiohttp never asks a resolver about an address literal: check it here.
                await resolve_checked(url.raw_host or "", url.port or 0, allow_private=self.allow_private)
            async with self.session.post(
                url,
                data=claimed.body,
                headers=self.headers(claimed, signed_at(attempted_at)),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                kept = await _read_prefix(resp, RESPONSE_KEEP)
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except UnsafeTarget as exc:
            error = f"refused to connect: {exc}"
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        outcome = Outcome(
            status_code=status,
            duration_ms=(time.perf_counter() - started) * 1000,
            error=error[:1000] if error else None,
            response_body=kept.decode("utf-8", "replace").replace("\x00", "\ufffd"),
            attempted_at=attempted_at,
        )
        return Sent(outcome, retry_after)

    async def close(self) -> None:
        await self.session.close()


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def _read_prefix(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first `limit` bytes of the body; the rest is not read (the connection is dropped)."""
    kept = b""
    while len(kept) < limit:
        chunk = await resp.content.read(limit - len(kept))
        if not chunk:
            break
        kept += chunk
    return kept
