"""The headers of a webhook request, for the sender (engine/sender.py) and for the delivery log,
which shows each attempt's: rebuilt from what is stored, with secrets masked. Nothing more is
stored per attempt: the signature's timestamp is the attempt's start, to the second."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

try:
    USER_AGENT = f"Herald-Webhooks/{version('herald')}"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "Herald-Webhooks/0"

MASK = "********"
# A custom header whose name holds one of these carries a credential: its value is not shown.
_SECRET_WORDS = ("auth", "token", "secret", "key", "signature", "password", "cookie", "session", "credential")


def signed_at(attempted_at: datetime) -> int:
    """The webhook-timestamp of an attempt that started at `attempted_at`."""
    return int(attempted_at.timestamp())


def shown(extra: dict[str, str], event_id: str, attempted_at: datetime) -> dict[str, str]:
    """What the attempt sent: the subscription's custom headers (as they are now; the reserved
    names below cannot be among them), then the Standard Webhooks ones, the signature masked."""
    headers = {name: MASK if _secret(name) else value for name, value in extra.items()}
    headers["webhook-id"] = event_id
    headers["webhook-timestamp"] = str(signed_at(attempted_at))
    headers["webhook-signature"] = f"v1,{MASK}"
    headers["content-type"] = "application/json"
    headers["user-agent"] = USER_AGENT
    return headers


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)
