"""The caller's address, behind trusted proxies."""

from __future__ import annotations

import ipaddress

from aiohttp import web


def client_address(
    request: web.Request, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> str:
    """The caller's address: the peer's, or the last hop X-Forwarded-For names when the peer is
    a trusted proxy (so a caller cannot pick its own address by sending the header)."""
    peer = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    if not _trusted(peer, trusted):  # not an address, or not a proxy of ours
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        hop_trusted = _trusted(hop, trusted)
        if hop_trusted is None:
            return peer
        if not hop_trusted:
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool | None:
    """Whether `address` is in a trusted network; None when it is not an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return any(ip in net for net in trusted)
