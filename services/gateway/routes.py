"""Which service answers which public path: by the first segment after /v2/."""

from __future__ import annotations

from shared.config import Settings

AUTH, RESOURCE, WEBHOOK = "auth", "resource", "webhook_delivery"

_BY_SEGMENT = {
    "requesttoken": AUTH,
    "user": AUTH,
    ".well-known": AUTH,
    "subscription": WEBHOOK,
    "topic": WEBHOOK,
}

# Reachable without a token (the gateway's own documents are added by the app).
PUBLIC_PATHS = frozenset({"/v2/requesttoken", "/v2/.well-known/jwks.json"})
REQUESTTOKEN_PATH = "/v2/requesttoken"


def upstream_urls(settings: Settings) -> dict[str, str]:
    return {
        AUTH: settings.auth_url.rstrip("/"),
        RESOURCE: settings.resource_url.rstrip("/"),
        WEBHOOK: settings.webhook_url.rstrip("/"),
    }


def service_for(path: str) -> str:
    """`path` starts with /v2/; everything not named here is a resource type."""
    segment = path[4:].split("/", 1)[0]
    return _BY_SEGMENT.get(segment, RESOURCE)
