"""Typed state of the auth app."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from services.auth.passwords import Passwords
from services.auth.tokens import SigningKey

PASSWORDS = web.AppKey("passwords", Passwords)
SIGNING_KEY = web.AppKey("signing_key", SigningKey)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...])
# The login throttle's clock (tests move one by hand instead of waiting).
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
