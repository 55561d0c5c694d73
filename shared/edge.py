"""The edge: nginx in front of the services. Its configuration is one template,
deploy/nginx/herald.conf.template, rendered here from the settings, for `python -m services`,
the tests, docker compose (a one-shot container of the Herald image) and Kubernetes alike:

    python -m shared.edge render [--run-dir DIR] [--out FILE] [--access-log PATH]

Which processes answer for each service (`upstreams`) is decided here too, so the supervisor
starts them on the ports nginx and the docs service expect."""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from shared.config import Settings, SettingsError

TEMPLATE = Path(
    os.environ.get(
        "HERALD_EDGE_TEMPLATE",
        Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "herald.conf.template",
    )
)
# The console's files (services/console/static), served by nginx at /console/.
CONSOLE_ROOT = Path(__file__).resolve().parent.parent / "services" / "console" / "static"
SERVICES = ("auth", "resource", "webhook_delivery")
# The i-th extra process of a service listens on its port + i * PORT_STEP.
PORT_STEP = 100
MAX_AUTO_PROCESSES = 8
PROBLEM_TYPE_BASE = "https://herald.dev/problems/"
_PLACEHOLDER = re.compile(r"\{\{([a-z_0-9]+)\}\}")
# Origins go into the configuration as map keys: nothing that nginx would read as syntax.
_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.:\[\]_-]+$")

# The answers the edge makes itself: (status, title, detail); detail may name $herald_service.
PROBLEMS = {
    "bad_request": (400, "Bad Request", "the request is malformed"),
    "not_found": (404, "Not Found", "no route matches this path"),
    "not_allowed": (405, "Method Not Allowed", "this method is not allowed here"),
    "timeout": (408, "Request Timeout", "the request was not sent in time"),
    "uri_too_long": (414, "Request-URI Too Long", "the URI is too long"),
    "headers_too_large": (431, "Request Header Fields Too Large", "the request headers are too large"),
    "internal": (500, "Internal Server Error", "the edge failed to handle the request"),
    "upstream_timeout": (504, "Gateway Timeout", "the $herald_service service did not answer in time"),
    "version_not_supported": (505, "HTTP Version Not Supported", "send HTTP/1.0 or HTTP/1.1"),
}
# nginx's own status -> the location answering it (494: nginx's name for 431).
ERROR_PAGES = {
    400: "bad_request",
    404: "not_found",
    405: "not_allowed",
    408: "timeout",
    413: "too_large",
    414: "uri_too_long",
    429: "too_many",
    494: "headers_too_large",
    500: "internal",
    502: "upstream_failed",
    503: "upstream_failed",
    504: "upstream_timeout",
    505: "version_not_supported",
}


def process_count(settings: Settings, service: str) -> int:
    """How many processes of `service` the supervisor starts (0 in a setting: fit the machine)."""
    count = {
        "auth": settings.auth_processes,
        "resource": settings.resource_processes,
        "webhook_delivery": settings.webhook_processes,
    }[service]
    if count > 0:
        return count
    # The read path is resource's: one process per core but one, which is left to nginx,
    # PostgreSQL and the other services. Measured on 2 cores (make bench, same run of code):
    # one resource process served GET 5,474/s (p99 16 ms), list-50 3,336/s and event -> first
    # webhook attempt p95 23 ms; two served 5,029/s (p99 36 ms), 3,243/s and p95 78 ms, each
    # process waking more often for fewer requests and half the creates finding the outbox
    # relay in the other process. Auth (logins are rare, tokens are verified where they
    # arrive) and webhook delivery (waits on receivers) need one each to start with.
    if service != "resource":
        return 1
    return max(1, min((os.cpu_count() or 1) - 1, MAX_AUTO_PROCESSES))


def service_url(settings: Settings, service: str) -> str:
    return {
        "auth": settings.auth_url,
        "resource": settings.resource_url,
        "webhook_delivery": settings.webhook_url,
        "docs": settings.docs_url,
    }[service]


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise SettingsError(f"{url!r} names no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def upstreams(settings: Settings) -> dict[str, list[tuple[str, int]]]:
    """Every process behind the edge, by service: the first at the service's URL, the others
    on the same host at that port + i * PORT_STEP (where the supervisor starts them)."""
    result = {}
    for service in SERVICES:
        host, port = host_port(service_url(settings, service))
        result[service] = [(host, port + i * PORT_STEP) for i in range(process_count(settings, service))]
    result["docs"] = [host_port(settings.docs_url)]
    return result


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _seconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def problem_json(status: int, title: str, detail: str) -> str:
    """An nginx string literal holding the problem+json body; `instance` is the request id."""
    body = orjson.dumps(
        {
            "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": "$herald_request_id",
        }
    ).decode()
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"


# A request line nginx refused while reading it (malformed: 400; too long: 414; another HTTP
# version: 505) leaves no URI,
# and nginx cannot go to a named location without one ("empty URI in redirect to named
# location": a 500 of its own): those go to an internal page by URI. The others go to named
# locations, which keep the URI ($herald_service).
_BY_URI = {"bad_request": "/.edge/400", "uri_too_long": "/.edge/414", "version_not_supported": "/.edge/505"}


def _problem_locations(settings: Settings) -> str:
    problems = dict(PROBLEMS)
    problems["too_large"] = (
        413,
        "Request Entity Too Large",
        f"the body is larger than {settings.max_body_bytes} bytes",
    )
    lines = []
    for name, (status, title, detail) in problems.items():
        where = f"= {_BY_URI[name]}" if name in _BY_URI else f"@{name}"
        lines += [
            f"        location {where} {{",
            *(["            internal;"] if name in _BY_URI else []),
            f"            return {status} {problem_json(status, title, detail)};",
            "        }",
        ]
    too_many = problem_json(429, "Too Many Requests", "too many requests; slow down")
    unavailable = problem_json(
        503, "Service Unavailable", "the $herald_service service is unavailable; try again shortly"
    )
    failed = problem_json(502, "Bad Gateway", "the $herald_service service failed to answer")
    lines += [
        "        location @too_many {",
        "            set $herald_retry_after $herald_limit_retry_after;",
        f"            return 429 {too_many};",
        "        }",
        "        # 503 when no connection could be made (the service is down or restarting), else 502.",
        "        location @upstream_failed {",
        "            if ($herald_unreachable) {",
        "                set $herald_retry_after 5;",
        f"                return 503 {unavailable};",
        "            }",
        f"            return 502 {failed};",
        "        }",
    ]
    pages: dict[str, list[str]] = {}
    for status, name in ERROR_PAGES.items():
        pages.setdefault(name, []).append(str(status))
    error_pages = [
        f"        error_page {' '.join(codes)} = {_BY_URI.get(name, '@' + name)};"
        for name, codes in pages.items()
    ]
    return "\n".join([*error_pages, "", *lines])


def _cors_origins(origins: tuple[str, ...]) -> str:
    if "*" in origins:
        return '        "~." "*";'
    lines = []
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise SettingsError(f"HERALD_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
        lines.append(f'        "{origin}" $http_origin;')
    return "\n".join(lines)


def _limits(settings: Settings) -> tuple[str, str, int, int]:
    """(zones, limit_req lines, Retry-After of the login limit, of the token limit).
    nginx's limit lets `burst` requests more than one through at once: burst - 1 is a
    token bucket of `burst`."""
    zones, limits = [], []
    login = settings.requesttoken_rate_per_minute
    if login > 0:
        zones.append(f"    limit_req_zone $herald_login_key zone=herald_login:10m rate={login}r/m;")
        limits.append(f"            limit_req zone=herald_login burst={login - 1} nodelay;")
    rate = settings.user_rate_per_second
    if rate > 0:
        per_minute = max(1, round(rate * 60))
        # Keys are whole Authorization headers (a JWT is under 1 KiB): some 30,000 tokens.
        zones.append(f"    limit_req_zone $herald_token_key zone=herald_token:32m rate={per_minute}r/m;")
        limits.append(
            f"            limit_req zone=herald_token burst={max(settings.user_burst - 1, 0)} nodelay;"
        )
    login_retry = math.ceil(60 / login) if login > 0 else 1
    user_retry = math.ceil(1 / rate) if rate > 0 else 1
    return "\n".join(zones), "\n".join(limits), login_retry, user_retry


def _upstream_blocks(settings: Settings) -> str:
    blocks = []
    for service, servers in upstreams(settings).items():
        lines = [f"    upstream {service} {{"]
        # A process that refused a connection is left alone for a moment; with one process
        # nginx never marks it down (nothing else to send to).
        lines += [f"        server {_address(h, p)} max_fails=1 fail_timeout=2s;" for h, p in servers]
        lines += ["        keepalive 64;", "        keepalive_timeout 60s;", "    }"]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _status_server(settings: Settings) -> str:
    if not settings.edge_status_address:
        return ""
    return "\n".join(
        [
            "    # The edge's own figures (stub_status), never on the public port.",
            "    server {",
            f"        listen {settings.edge_status_address};",
            "        access_log off;",
            "        location = /status {",
            "            stub_status;",
            "        }",
            "        location / {",
            "            return 404;",
            "        }",
            "    }",
        ]
    )


def _real_ip(settings: Settings) -> str:
    if not settings.edge_trusted_proxies:
        return "        # (none trusted: $remote_addr is the peer)"
    lines = [f"        set_real_ip_from {net};" for net in settings.edge_trusted_proxies]
    return "\n".join([*lines, "        real_ip_header X-Forwarded-For;", "        real_ip_recursive on;"])


def _console_root(path: str | Path) -> str:
    text = str(Path(path).resolve())
    if any(c in text for c in '"\\;{}$') or any(c.isspace() and c != " " for c in text):
        raise SettingsError(f"the console's folder {text!r} holds a character nginx would read as syntax")
    return text


def copy_console(target: Path) -> Path:
    """The console's files copied to `target` (a volume the edge's nginx image reads), readable
    by any user: nginx's workers are not the user that copies."""
    shutil.copytree(CONSOLE_ROOT, target, dirs_exist_ok=True)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def render(
    settings: Settings,
    run_dir: str | Path,
    *,
    access_log: str = "/dev/stdout",
    console_root: str | Path = CONSOLE_ROOT,
) -> str:
    """The nginx configuration for these settings; `run_dir` holds its pid and temp files,
    `console_root` the console's files."""
    zones, limits, login_retry, user_retry = _limits(settings)
    problems = _problem_locations(settings)
    values = {
        "worker_processes": str(settings.edge_workers) if settings.edge_workers > 0 else "auto",
        "run_dir": str(run_dir),
        "error_log_level": "info" if settings.log_level.upper() == "DEBUG" else "warn",
        "access_log": f"{access_log} herald" if access_log != "off" else "off",
        "cors_origins": _cors_origins(settings.cors_origins),
        "login_retry_after": str(login_retry),
        "user_retry_after": str(user_retry),
        "limit_zones": zones,
        "limit_req": limits,
        "upstreams": _upstream_blocks(settings),
        "status_server": _status_server(settings),
        "listen": _address(settings.host, settings.edge_port),
        "listen_options": " reuseport" if settings.edge_workers != 1 else "",
        "real_ip": _real_ip(settings),
        "max_body_bytes": str(settings.max_body_bytes),
        "body_buffer_bytes": str(min(settings.max_body_bytes, 1024 * 1024)),
        "header_timeout": _seconds(settings.edge_header_timeout),
        "body_timeout": _seconds(settings.edge_body_timeout),
        "send_timeout": _seconds(settings.edge_body_timeout),
        "connect_timeout": "5s",
        "upstream_timeout": _seconds(settings.upstream_timeout),
        "problem_403": problem_json(403, "Forbidden", "this origin may not call this API"),
        "problem_bad_path": problem_json(
            400, "Bad Request", "the path must not hold . or .. segments, empty segments or encoded slashes"
        ),
        "problem_locations": problems,
        "console_root": _console_root(console_root),
    }
    template = TEMPLATE.read_text()

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError names a placeholder the template added

    return _PLACEHOLDER.sub(fill, template)


def write_config(settings: Settings, run_dir: Path, *, access_log: str = "/dev/stdout") -> Path:
    """Render into `run_dir` (made readable for nginx's workers, which drop root)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)
    conf = run_dir / "nginx.conf"
    conf.write_text(render(settings, run_dir, access_log=access_log))
    return conf


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise FileNotFoundError("nginx is not installed: `make install` installs Debian's (apt-get, as root)")
    return found


def nginx_command(conf: Path, run_dir: Path) -> list[str]:
    """nginx in the foreground, its early errors and its error log on stderr."""
    return [nginx_binary(), "-p", str(run_dir), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.edge")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("render", help="write the nginx configuration for the HERALD_* settings")
    cmd.add_argument("--run-dir", default="/var/cache/nginx", help="where nginx keeps its pid and temp files")
    cmd.add_argument("--out", default="-", help="the file to write (- for stdout)")
    cmd.add_argument("--access-log", default="/dev/stdout")
    cmd.add_argument(
        "--console-copy",
        default="",
        help="copy the console's files to this folder and serve them from there (an image without the repository)",
    )
    args = parser.parse_args(argv)
    # The edge holds no secret: production's checks of passwords and keys are the services'.
    environ = {k: v for k, v in os.environ.items() if k != "HERALD_ENV"}
    console = copy_console(Path(args.console_copy)) if args.console_copy else CONSOLE_ROOT
    text = render(Settings.from_env(environ), args.run_dir, access_log=args.access_log, console_root=console)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
