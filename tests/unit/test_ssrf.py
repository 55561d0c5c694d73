"""The SSRF guards: the address matrix, the URL check and its normalized key, and resolution
(literals need no network; `localhost` resolves through the machine's own resolver)."""

from __future__ import annotations

import ipaddress

import pytest

from services.webhook_delivery.ssrf import (
    UnresolvableHost,
    UnsafeTarget,
    check_url,
    is_forbidden,
    resolve_checked,
    url_key,
)

pytestmark = pytest.mark.unit

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # shared address space (carrier NAT)
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%1",
    "fec0::1",  # deprecated site-local
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # deprecated IPv4-compatible
    "::8.8.8.8",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
]

ALLOWED = [
    "8.8.8.8",
    "93.184.215.14",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # mapped public
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize("literal", FORBIDDEN)
def test_non_public_addresses_are_forbidden(literal: str) -> None:
    assert is_forbidden(ipaddress.ip_address(literal))


@pytest.mark.parametrize("literal", ALLOWED)
def test_public_addresses_are_allowed(literal: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(literal))


# Internal hosts as literals, IPv4-mapped, bracketed and by name (loopback, private, link-local with
# the cloud metadata address, carrier-grade NAT, IPv6 unique-local): each refused with
# allow_private off, allowed with it on.
MATRIX = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "::1",
    "fc00::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "[::1]",
    "localhost",
]


@pytest.mark.parametrize("host", MATRIX)
async def test_resolve_refuses_internal_hosts_unless_private_is_allowed(host: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        await resolve_checked(host, 443, allow_private=False)
    assert "resolves to" in str(caught.value)
    addresses = await resolve_checked(host, 443, allow_private=True)
    assert addresses and all(is_forbidden(ipaddress.ip_address(a)) for a in addresses)


async def test_localhost_returns_only_loopback_addresses_to_connect_to() -> None:
    addresses = await resolve_checked("localhost", 80, allow_private=True)
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    assert len(addresses) == len(set(addresses))


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "127.1", "017700000001"])
async def test_numeric_spellings_of_loopback_are_refused(host: str) -> None:
    # inet_aton spellings: the resolver turns them into 127.0.0.1, which is then checked.
    try:
        addresses = await resolve_checked(host, 80, allow_private=True)
    except UnresolvableHost:
        pytest.skip(f"this resolver does not accept {host!r}")
    assert addresses == ["127.0.0.1"]
    with pytest.raises(UnsafeTarget):
        await resolve_checked(host, 80, allow_private=False)


@pytest.mark.parametrize("host", ["127.0.0.1.", "localhost.", "LOCALHOST"])
async def test_other_spellings_of_local_hosts_never_pass(host: str) -> None:
    # Refused as loopback or as unresolvable, whichever this resolver makes of them.
    with pytest.raises(UnsafeTarget):
        await resolve_checked(host, 80, allow_private=False)


async def test_public_literals_pass_without_network() -> None:
    assert await resolve_checked("93.184.215.14", 443, allow_private=False) == ["93.184.215.14"]
    assert await resolve_checked("[2606:4700:4700::1111]", 443, allow_private=False) == [
        "2606:4700:4700::1111"
    ]


async def test_a_host_that_does_not_resolve_is_unresolvable() -> None:
    with pytest.raises(UnresolvableHost):
        await resolve_checked("no-such-host.invalid", 443, allow_private=True)
    assert issubclass(UnresolvableHost, UnsafeTarget)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("example.com/hook", "http or https"),
        ("http:///hook", "name a host"),
        ("https://user:pass@example.com/hook", "user name or password"),
        ("https://user@example.com/hook", "user name or password"),
        ("https://example.com:0/hook", "port"),
        ("https://example.com:70000/hook", "malformed"),
        ("https://exa mple.com/hook", "spaces or control"),
        (" https://example.com/hook", "spaces or control"),
        ("https://example.com/ho\nok", "spaces or control"),
        ("https://%31%32%37.0.0.1/", "valid host"),
        ("https://-bad-.example/", "valid host"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url)
    assert reason in str(caught.value)


def test_check_url_accepts_http_and_https() -> None:
    assert check_url("https://hooks.example.com/in?x=1").host == "hooks.example.com"
    assert check_url("http://127.0.0.1:8080/hook").port == 8080
    assert check_url("http://[::1]:9000/").host == "::1"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Hooks.Example.COM/in", "https://hooks.example.com/in"),
        ("https://hooks.example.com:443/in", "https://hooks.example.com/in"),
        ("http://hooks.example.com:80/in#frag", "http://hooks.example.com/in"),
        ("https://hooks.example.com", "https://hooks.example.com/"),
        ("https://hooks.example.com./in", "https://hooks.example.com/in"),
        ("http://[::1]:80/a?b=c", "http://[::1]/a?b=c"),
    ],
)
def test_url_key_normalizes(a: str, b: str) -> None:
    assert url_key(check_url(a)) == url_key(check_url(b)) == b


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://hooks.example.com/in", "http://hooks.example.com/in"),
        ("https://hooks.example.com/in", "https://hooks.example.com:8443/in"),
        ("https://hooks.example.com/in", "https://hooks.example.com/In"),
        ("https://hooks.example.com/in?a=1", "https://hooks.example.com/in?a=2"),
    ],
)
def test_url_key_keeps_what_reaches_a_different_receiver(a: str, b: str) -> None:
    assert url_key(check_url(a)) != url_key(check_url(b))
