"""What a subscription's fields must satisfy beyond their JSON Schema: topics that exist in the
catalog, extra headers that cannot break or forge a delivery, a filter the fan-out can evaluate,
and a URL that reaches a public receiver. Each check raises `ValidationFailed` naming the field and the offending item."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yarl

from services.webhook_delivery import filters, ssrf
from services.webhook_delivery.api.schemas import MAX_HEADERS
from shared.catalog import TOPICS
from shared.problems import ValidationFailed

RESOLVE_TIMEOUT = 5.0  # seconds a save waits for DNS; a slow resolver must not hold requests
_PREFIXES = frozenset(name.split(".", 1)[0] for name in TOPICS)
# RFC 9110 field-name token, and a field value of visible ASCII, spaces and tabs (no CR/LF/NUL).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
# Names Herald sets on every delivery, framing headers, and hop-by-hop ones. `Authorization`
# stays allowed: it is how most receivers want to be called.
RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "expect",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}])


def topic_is_known(topic: str) -> bool:
    if topic == "*" or topic in TOPICS:
        return True
    prefix, dot_star, rest = topic.partition(".*")
    return bool(dot_star) and not rest and prefix in _PREFIXES


def check_topics(topics: Iterable[str]) -> list[str]:
    unknown = [t for t in topics if not topic_is_known(t)]
    if unknown:
        raise _fail(
            "topics",
            f"unknown {'topic' if len(unknown) == 1 else 'topics'} {', '.join(repr(t) for t in unknown)}: "
            "use names from GET /v2/topic/list, "
            "`<prefix>.*` or `*`",
        )
    return list(topics)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    if len(headers) > MAX_HEADERS:
        raise _fail("headers", f"must have at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        lowered = name.lower()
        if not _HEADER_NAME.match(name):
            raise _fail(f"headers.{name}", "is not a valid header name")
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise _fail(f"headers.{name}", "is reserved: Herald sets it on each delivery")
        if lowered in seen:
            raise _fail(f"headers.{name}", "is given twice (header names ignore case)")
        seen.add(lowered)
        if not _HEADER_VALUE.match(value):
            # Never echo the value: it is often a credential.
            raise _fail(f"headers.{name}", "must be printable ASCII without line breaks")
    return dict(headers)


def check_filter(spec: Any) -> dict[str, Any] | None:
    """Every problem at once, each naming its place (`filter.data.capacity.gt`)."""
    problems = filters.filter_problems(spec)
    if problems:
        raise ValidationFailed([{"field": at, "message": problem} for at, problem in problems])
    return spec  # an object or None: filter_problems made sure


def parse_url(url: str) -> yarl.URL:
    try:
        return ssrf.check_url(url)
    except ssrf.UnsafeTarget as exc:
        raise _fail("url", str(exc)) from None


async def check_target(url: yarl.URL, *, allow_private: bool) -> None:
    """The save-time SSRF check: every address the host resolves to must be public. The
    delivery worker checks again at connect time (DNS answers change)."""
    assert url.raw_host is not None and url.port is not None  # parse_url made sure
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            await ssrf.resolve_checked(url.raw_host, url.port, allow_private=allow_private)
    except ssrf.UnsafeTarget as exc:
        raise _fail("url", str(exc)) from None
    except TimeoutError:
        raise _fail("url", f"the host {url.raw_host!r} did not resolve within {RESOLVE_TIMEOUT} s") from None
