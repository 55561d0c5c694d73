"""Server-side request forgery guards for webhook URLs: which addresses a receiver may not have,
a URL check and its normalized form (the per-owner uniqueness key), and a resolver that refuses
a host if any of its addresses is forbidden. The API checks at save time; the delivery worker
checks again at connect time and connects only to the addresses `resolve_checked` returned, so a
DNS answer that changes after the save (rebinding) cannot reach an internal address."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket

import yarl

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 well-known prefix (RFC 6052) and the local-use one (RFC 8215): the IPv4 address sits in
# the low 32 bits, and a translator would forward to it.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_TEREDO = ipaddress.IPv6Network("2001::/32")

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeTarget(Exception):
    """The URL or host may not be a webhook receiver; the message says why."""


class UnresolvableHost(UnsafeTarget):
    """The host name has no address (a save-time 422, a connect-time failure)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries and would end up reaching, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_forbidden(address: Address) -> bool:
    """True for every address that is not plainly global unicast: loopback, private, shared
    (100.64/10), link-local (and so cloud metadata), multicast, reserved, unspecified, and IPv6
    forms that embed such an IPv4 address (mapped, 6to4, NAT64). Teredo and the deprecated
    IPv4-compatible and site-local forms are refused whatever they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # `fe80::1%eth0`: only link-local addresses carry a zone
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_forbidden(embedded)
        if address in _TEREDO or address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _valid_host(host: str) -> bool:
    if _literal(host) is not None:
        return True
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def check_url(url: str) -> yarl.URL:
    """Parse a webhook URL and refuse what can never be a receiver: a scheme other than http(s),
    no host or a malformed one, user info (credentials in URLs leak into logs), a port outside
    1-65535. Raises `UnsafeTarget`; the address check needs `resolve_checked`."""
    if url != url.strip() or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise UnsafeTarget("the URL must not contain spaces or control characters")
    try:
        parsed = yarl.URL(url)
    except ValueError as exc:
        raise UnsafeTarget(f"the URL is malformed ({exc})") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise UnsafeTarget("the URL must use http or https")
    if not parsed.raw_host:
        raise UnsafeTarget("the URL must name a host")
    if not _valid_host(parsed.raw_host):
        raise UnsafeTarget("the URL's host is not a valid host name or address")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeTarget("the URL must not contain a user name or password")
    port = parsed.port
    if port is None or not 1 <= port <= 65535:
        raise UnsafeTarget("the URL's port must be between 1 and 65535")
    return parsed


def url_key(url: yarl.URL) -> str:
    """The normalized form two URLs share when they reach the same receiver: lowercase scheme
    and host (yarl does both), no default port, no fragment, no trailing dot on the host, `/`
    for an empty path."""
    host = (url.raw_host or "").removesuffix(".")
    if ":" in host:
        host = f"[{host}]"
    port = "" if url.port == _DEFAULT_PORTS.get(url.scheme) else f":{url.port}"
    query = f"?{url.raw_query_string}" if url.raw_query_string else ""
    return f"{url.scheme}://{host}{port}{url.raw_path or '/'}{query}"


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve `host` and return the addresses to connect to (each once, in resolver order).
    Raises `UnsafeTarget` if ANY of them is forbidden (a host with one public and one internal
    address is refused: the connection could reach either), unless `allow_private`; raises
    `UnresolvableHost` when the name has no address."""
    literal = _literal(host)
    if literal is not None:
        candidates: list[Address] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host.strip("[]"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableHost(f"the host {host!r} does not resolve ({exc})") from None
        candidates = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]))
            if address not in candidates:
                candidates.append(address)
        if not candidates:
            raise UnresolvableHost(f"the host {host!r} does not resolve")
    if not allow_private:
        for address in candidates:
            if is_forbidden(address):
                raise UnsafeTarget(
                    f"the host {host!r} resolves to {address}, a loopback, private, link-local "
                    "or otherwise non-public address"
                )
    return [str(a) for a in candidates]
