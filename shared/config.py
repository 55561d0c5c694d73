"""Settings from `HERALD_*` environment variables, one frozen dataclass for every service.

Each field's metadata names its variable, so docs/configuration.md, the compose check and
`Settings.from_env` all read the same list (`Settings.variables()`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

PLACEHOLDERS = frozenset(
    {"", "change-me", "changeme", "admin", "password", "secret", "example", "herald", "guest", "postgres"}
)


def _placeholder(value: str) -> bool:
    lowered = value.lower()
    return lowered in PLACEHOLDERS or lowered.startswith(("change-this", "change-me", "changeme"))


# Works out of the box for `make run` (every process reads the same environment); refused by
# production, where each deployment sets a random one (openssl rand -hex 32).
DEVELOPMENT_INTERNAL_TOKEN = "herald-development-internal-token"  # noqa: S105 (refused by production)
MIN_INTERNAL_TOKEN_LENGTH = 16


MAX_EVENT_RETENTION = 100 * 365 * 24 * 3600  # seconds; anything longer is a typo


class SettingsError(ValueError):
    """A setting is malformed, or a production deployment still carries a placeholder."""


def _env(name: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = _env("HERALD_ENV", "development", "`development` or `production` (refuses placeholders)")
    log_level: str = _env("HERALD_LOG_LEVEL", "INFO", "Log level of every service")
    host: str = _env("HERALD_HOST", "127.0.0.1", "Address the services bind to")
    edge_port: int = _env("HERALD_EDGE_PORT", 8080, "The edge's port (nginx: the public one)")
    auth_port: int = _env("HERALD_AUTH_PORT", 8081, "Auth service port")
    resource_port: int = _env("HERALD_RESOURCE_PORT", 8082, "Resource service port")
    webhook_port: int = _env("HERALD_WEBHOOK_PORT", 8083, "Webhook delivery service port")
    docs_port: int = _env(
        "HERALD_DOCS_PORT", 8084, "Docs service port (/v2/openapi.json, /docs, the edge's /readyz)"
    )
    auth_url: str = _env(
        "HERALD_AUTH_URL", "http://127.0.0.1:8081", "Where the edge, docs and verifiers reach auth"
    )
    resource_url: str = _env(
        "HERALD_RESOURCE_URL", "http://127.0.0.1:8082", "Where the edge and docs reach resource"
    )
    webhook_url: str = _env(
        "HERALD_WEBHOOK_URL", "http://127.0.0.1:8083", "Where the edge and docs reach webhook delivery"
    )
    docs_url: str = _env(
        "HERALD_DOCS_URL", "http://127.0.0.1:8084", "Where the edge reaches the docs service"
    )
    auth_processes: int = _env(
        "HERALD_AUTH_PROCESSES", 1, "`python -m services`: auth processes (0: fit the machine)"
    )
    resource_processes: int = _env(
        "HERALD_RESOURCE_PROCESSES",
        0,
        "`python -m services`: resource processes (0: one per core but one, at least 1, up to 8)",
    )
    webhook_processes: int = _env(
        "HERALD_WEBHOOK_PROCESSES", 1, "`python -m services`: webhook delivery processes (0: fit the machine)"
    )
    database_url: str = _env(
        "HERALD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald", "PostgreSQL DSN"
    )
    db_pool_size: int = _env("HERALD_DB_POOL_SIZE", 10, "Connections per service process")
    amqp_url: str = _env("HERALD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL")
    auth_exchange: str = _env("HERALD_AUTH_EXCHANGE", "herald.auth", "Topic exchange of auth events")
    domain_exchange: str = _env("HERALD_DOMAIN_EXCHANGE", "herald.domain", "Topic exchange of domain events")
    queue_prefix: str = _env("HERALD_QUEUE_PREFIX", "herald", "Prefix of every queue name")
    token_ttl: int = _env("HERALD_TOKEN_TTL", 365 * 24 * 3600, "Token lifetime in seconds")
    token_issuer: str = _env("HERALD_TOKEN_ISSUER", "herald", "`iss` of issued tokens")
    token_audience: str = _env("HERALD_TOKEN_AUDIENCE", "herald-api", "`aud` of issued tokens")
    signing_key: str = _env(
        "HERALD_SIGNING_KEY",
        "",
        "RSA private key (PEM) that signs tokens; empty: generated and stored (development only)",
    )
    signing_key_file: str = _env(
        "HERALD_SIGNING_KEY_FILE", "", "Path of a PEM file, instead of HERALD_SIGNING_KEY"
    )
    internal_token: str = _env(
        "HERALD_INTERNAL_TOKEN",
        DEVELOPMENT_INTERNAL_TOKEN,
        "Shared secret the services send to auth's internal look-up (`X-Herald-Internal-Token`);"
        " production refuses the default",
    )
    cv_cache_seconds: float = _env(
        "HERALD_CV_CACHE_SECONDS", 60.0, "How long a verifier trusts a credential version without an event"
    )
    admin_email: str = _env(
        "HERALD_ADMIN_EMAIL", "admin@herald.local", "First admin, created when no user exists"
    )
    admin_password: str = _env(
        "HERALD_ADMIN_PASSWORD", "", "Its password; empty: one is generated and printed once"
    )
    # OWASP's argon2id setting for a bounded memory budget (m = 19 MiB, t = 2, p = 1): a login
    # burst keeps auth under 100 MiB; hashes made with other parameters are redone at login.
    argon2_time_cost: int = _env("HERALD_ARGON2_TIME_COST", 2, "argon2id iterations")
    argon2_memory_kib: int = _env("HERALD_ARGON2_MEMORY_KIB", 19456, "argon2id memory in KiB")
    argon2_parallelism: int = _env("HERALD_ARGON2_PARALLELISM", 1, "argon2id lanes")
    login_max_failures: int = _env(
        "HERALD_LOGIN_MAX_FAILURES",
        5,
        "Failed logins for one email from one client address before that pair is locked for a while",
    )
    login_max_failures_per_address: int = _env(
        "HERALD_LOGIN_MAX_FAILURES_PER_ADDRESS",
        20,
        "Failed logins from one client address (any emails) before that address is locked",
    )
    login_max_failures_per_email: int = _env(
        "HERALD_LOGIN_MAX_FAILURES_PER_EMAIL",
        50,
        "Failed logins for one email from all addresses before it is locked for addresses"
        " that never logged in to it (known addresses still get in)",
    )
    login_known_address_days: int = _env(
        "HERALD_LOGIN_KNOWN_ADDRESS_DAYS",
        90,
        "Days an address a user logged in from stays known to the per-email lock",
    )
    login_failure_window: int = _env("HERALD_LOGIN_FAILURE_WINDOW", 900, "Seconds over which failures count")
    login_lockout_seconds: int = _env("HERALD_LOGIN_LOCKOUT_SECONDS", 300, "How long a lock-out lasts")
    trusted_proxies: tuple[str, ...] = _env(
        "HERALD_TRUSTED_PROXIES",
        ("127.0.0.0/8", "::1/128"),
        "Services: networks whose X-Forwarded-For is believed (the edge's)",
    )
    edge_trusted_proxies: tuple[str, ...] = _env(
        "HERALD_EDGE_TRUSTED_PROXIES",
        (),
        "Edge: proxies in front of it whose X-Forwarded-For is believed (none: it is the first hop)",
    )
    edge_header_timeout: float = _env(
        "HERALD_EDGE_HEADER_TIMEOUT", 10.0, "Edge: seconds a client has to send the request headers"
    )
    edge_body_timeout: float = _env(
        "HERALD_EDGE_BODY_TIMEOUT",
        30.0,
        "Edge: seconds between two reads (or writes) of a body before the client is dropped",
    )
    edge_status_address: str = _env(
        "HERALD_EDGE_STATUS_ADDRESS",
        "127.0.0.1:8085",
        "Edge: address of its own figures (nginx stub_status at /status; empty: off)",
    )
    edge_workers: int = _env("HERALD_EDGE_WORKERS", 0, "Edge: nginx worker processes (0: one per core)")
    cors_origins: tuple[str, ...] = _env(
        "HERALD_CORS_ORIGINS", (), "Origins browsers may call from (`*` for any)"
    )
    requesttoken_rate_per_minute: int = _env(
        "HERALD_REQUESTTOKEN_RATE", 60, "Edge: /v2/requesttoken calls per client address a minute (0: off)"
    )
    user_rate_per_second: float = _env(
        "HERALD_USER_RATE", 100.0, "Edge: requests per token a second (0: off)"
    )
    user_burst: int = _env("HERALD_USER_BURST", 200, "Edge: burst of the per-token limit")
    max_body_bytes: int = _env("HERALD_MAX_BODY_BYTES", 1024 * 1024, "Largest request body (413 beyond)")
    upstream_timeout: float = _env(
        "HERALD_UPSTREAM_TIMEOUT", 30.0, "Edge: seconds a service has to answer before a 504"
    )
    shutdown_timeout: float = _env(
        "HERALD_SHUTDOWN_TIMEOUT", 20.0, "Seconds SIGTERM waits for requests in flight"
    )

    # -- resource service
    idempotency_ttl: int = _env(
        "HERALD_IDEMPOTENCY_TTL", 24 * 3600, "Seconds an `Idempotency-Key` and its response are kept"
    )
    outbox_retention: int = _env(
        "HERALD_OUTBOX_RETENTION", 7 * 24 * 3600, "Seconds published outbox rows are kept before pruning"
    )
    outbox_poll_seconds: float = _env(
        "HERALD_OUTBOX_POLL_SECONDS", 1.0, "Outbox relay: poll interval besides LISTEN/NOTIFY"
    )
    # -- webhook delivery
    webhook_api: bool = _env(
        "HERALD_WEBHOOK_API", True, "Webhook delivery process serves the subscriptions API"
    )
    webhook_worker: bool = _env(
        "HERALD_WEBHOOK_WORKER", True, "Webhook delivery process runs the fan-out and delivery worker"
    )
    webhook_allow_private: bool = _env(
        "HERALD_WEBHOOK_ALLOW_PRIVATE", False, "Allow webhook URLs on loopback/private addresses (dev, tests)"
    )
    webhook_timeout: float = _env("HERALD_WEBHOOK_TIMEOUT", 15.0, "Seconds a receiver has to answer")
    webhook_connect_timeout: float = _env(
        "HERALD_WEBHOOK_CONNECT_TIMEOUT", 5.0, "Seconds to connect to a receiver"
    )
    webhook_retry_schedule: tuple[str, ...] = _env(
        "HERALD_WEBHOOK_RETRY_SCHEDULE",
        ("5", "300", "1800", "7200", "18000", "36000", "50400", "72000", "86400"),
        "Seconds before each retry (comma-separated)",
    )
    webhook_retry_jitter: float = _env(
        "HERALD_WEBHOOK_RETRY_JITTER", 0.2, "Jitter added to each retry (fraction)"
    )
    webhook_retry_after_max: int = _env(
        "HERALD_WEBHOOK_RETRY_AFTER_MAX", 24 * 3600, "Longest `Retry-After` honoured, in seconds"
    )
    webhook_disable_after: int = _env(
        "HERALD_WEBHOOK_DISABLE_AFTER",
        5 * 24 * 3600,
        "Seconds of only failures before a subscription is disabled",
    )
    webhook_max_in_flight: int = _env(
        "HERALD_WEBHOOK_MAX_IN_FLIGHT", 10, "Attempts in flight per subscription"
    )
    webhook_concurrency: int = _env(
        "HERALD_WEBHOOK_CONCURRENCY", 256, "Attempts in flight per worker process"
    )
    webhook_breaker_failures: int = _env(
        "HERALD_WEBHOOK_BREAKER_FAILURES", 5, "Consecutive failures that open a subscription's circuit"
    )
    webhook_breaker_seconds: float = _env(
        "HERALD_WEBHOOK_BREAKER_SECONDS", 30.0, "Seconds an open circuit holds deliveries"
    )
    webhook_sweep_seconds: float = _env(
        "HERALD_WEBHOOK_SWEEP_SECONDS",
        5.0,
        "How often the sweeper re-enqueues deliveries that are due and that nothing carries (the"
        " safety net: retries start on their own timers)",
    )
    webhook_secret_overlap: int = _env(
        "HERALD_WEBHOOK_SECRET_OVERLAP", 24 * 3600, "Seconds the old secret keeps signing after a rotation"
    )
    event_retention: int = _env(
        "HERALD_EVENT_RETENTION",
        30 * 24 * 3600,
        "Seconds every domain event is kept for replay, with its deliveries' log, before pruning",
    )

    @classmethod
    def variables(cls) -> list[tuple[str, str, Any, str]]:
        """(variable, field name, default, description) for every setting."""
        return [(f.metadata["env"], f.name, f.default, f.metadata["doc"]) for f in fields(cls)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _parse(f.metadata["env"], raw, f.default)
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    def check(self) -> None:
        if self.env not in ("development", "production"):
            raise SettingsError(f"HERALD_ENV must be development or production, not {self.env!r}")
        for name, nets in (
            ("HERALD_TRUSTED_PROXIES", self.trusted_proxies),
            ("HERALD_EDGE_TRUSTED_PROXIES", self.edge_trusted_proxies),
        ):
            for net in nets:
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError as exc:
                    raise SettingsError(f"{name}: {exc}") from None
        if not self.internal_token:
            raise SettingsError("HERALD_INTERNAL_TOKEN must not be empty")
        if not 0 < self.event_retention <= MAX_EVENT_RETENTION:
            raise SettingsError("HERALD_EVENT_RETENTION must be between 1 second and 100 years")
        if not self.production:
            return
        if self.admin_password and _placeholder(self.admin_password):
            raise SettingsError("HERALD_ADMIN_PASSWORD is a placeholder; set a real one")
        for name, url in (("HERALD_DATABASE_URL", self.database_url), ("HERALD_AMQP_URL", self.amqp_url)):
            parts = urlsplit(url)
            # aio-pika logs in as guest/guest when the URL names no user or password.
            implicit_guest = name == "HERALD_AMQP_URL" and not (parts.username and parts.password)
            if (
                implicit_guest
                or parts.username == "guest"
                or (parts.password is not None and _placeholder(parts.password))
            ):
                raise SettingsError(f"{name} carries a placeholder or default password; set a real one")
        if (
            self.internal_token == DEVELOPMENT_INTERNAL_TOKEN
            or _placeholder(self.internal_token)
            or len(self.internal_token) < MIN_INTERNAL_TOKEN_LENGTH
        ):
            raise SettingsError(
                "HERALD_INTERNAL_TOKEN is the development default, a placeholder or shorter than"
                f" {MIN_INTERNAL_TOKEN_LENGTH} characters; set a random one (openssl rand -hex 32)"
            )

    def signing_key_pem(self) -> str:
        if self.signing_key_file:
            with open(self.signing_key_file, encoding="ascii") as fh:
                return fh.read()
        return self.signing_key


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(default).__name__}") from None
