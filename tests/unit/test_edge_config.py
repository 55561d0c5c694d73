"""The edge's configuration as shared/edge.py renders it from the settings, and the
supervisor's restart policy; nginx itself is tested in tests/integration/test_edge.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.supervisor import GIVE_UP_AFTER, QUICK_DEATH_SECONDS, Child, port_problem
from shared.config import Settings, SettingsError
from shared.edge import CONSOLE_ROOT, process_count, render, upstreams
from tests.edge import free_ports

pytestmark = pytest.mark.unit


def test_extra_processes_listen_on_the_port_plus_100_each() -> None:
    settings = Settings(resource_processes=3, auth_processes=1, webhook_processes=2)
    found = upstreams(settings)
    assert found["resource"] == [("127.0.0.1", 8082), ("127.0.0.1", 8182), ("127.0.0.1", 8282)]
    assert found["auth"] == [("127.0.0.1", 8081)]
    assert found["webhook_delivery"] == [("127.0.0.1", 8083), ("127.0.0.1", 8183)]
    assert found["docs"] == [("127.0.0.1", 8084)]
    text = render(settings, "/run/x")
    assert "server 127.0.0.1:8282 max_fails=1 fail_timeout=2s;" in text


def test_by_default_resource_gets_a_process_per_core_and_the_others_one() -> None:
    settings = Settings()
    assert process_count(settings, "auth") == process_count(settings, "webhook_delivery") == 1
    assert 1 <= process_count(settings, "resource") <= 8


def test_limits_at_zero_are_left_out_and_others_are_a_bucket_of_burst() -> None:
    off = render(Settings(requesttoken_rate_per_minute=0, user_rate_per_second=0), "/run/x")
    assert "limit_req " not in off and "limit_req_zone" not in off
    on = render(Settings(requesttoken_rate_per_minute=3, user_rate_per_second=2.5, user_burst=10), "/run/x")
    assert "zone=herald_login:10m rate=3r/m;" in on and "zone=herald_login burst=2 nodelay;" in on
    assert "zone=herald_token:32m rate=150r/m;" in on and "zone=herald_token burst=9 nodelay;" in on
    assert "/v2/requesttoken 20;" in on and "default 1;" in on  # Retry-After, rounded up


def test_origins_that_are_not_origins_are_refused() -> None:
    for bad in ('https://a.example" $x', "https://a.example;", "a.example"):
        with pytest.raises(SettingsError, match="HERALD_CORS_ORIGINS"):
            render(Settings(cors_origins=(bad,)), "/run/x")


def test_no_trusted_proxy_means_the_peer_is_the_client() -> None:
    assert "set_real_ip_from" not in render(Settings(), "/run/x")
    text = render(Settings(edge_trusted_proxies=("10.0.0.0/8", "fd00::/8")), "/run/x")
    assert "set_real_ip_from 10.0.0.0/8;" in text and "set_real_ip_from fd00::/8;" in text


def test_every_placeholder_is_filled_and_the_status_server_can_be_off() -> None:
    text = render(Settings(edge_status_address=""), "/run/x")
    assert "{{" not in text and "stub_status" not in text
    assert "pid /run/x/nginx.pid;" in text


def test_the_render_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "conf" / "nginx.conf"
    subprocess.run(
        [sys.executable, "-m", "shared.edge", "render", "--run-dir", str(tmp_path), "--out", str(out)],
        check=True,
        env={"HERALD_ENV": "production", "HERALD_EDGE_PORT": "9090", "PATH": "/usr/bin:/bin"},
    )
    assert "listen 127.0.0.1:9090" in out.read_text()


def test_the_console_is_served_from_the_repository_or_from_a_copy(tmp_path: Path) -> None:
    text = render(Settings(), "/run/x")
    assert f'alias "{CONSOLE_ROOT}/";' in text and "location /console/ {" in text
    assert (CONSOLE_ROOT / "index.html").is_file()
    out, copy = tmp_path / "nginx.conf", tmp_path / "edge" / "console"
    command = ["render", "--run-dir", str(tmp_path), "--out", str(out), "--console-copy", str(copy)]
    subprocess.run(
        [sys.executable, "-m", "shared.edge", *command],
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert f'alias "{copy}/";' in out.read_text()
    assert (copy / "js" / "app.js").read_bytes() == (CONSOLE_ROOT / "js" / "app.js").read_bytes()
    assert (copy / "js" / "app.js").stat().st_mode & 0o777 == 0o644  # nginx's workers read it
    with pytest.raises(SettingsError, match="console"):
        render(Settings(), "/run/x", console_root='/srv/a"; evil')


def test_a_child_is_restarted_sooner_than_it_is_given_up() -> None:
    child = Child("quick", [sys.executable, "-c", "pass"], {})
    delays = []
    for _ in range(GIVE_UP_AFTER):
        child.start()
        assert child.proc is not None
        child.proc.wait()
        delays.append(child.died(child.started_at + 1))  # died a second after its start
    assert delays == [0.5, 1.0, 2.0, 4.0, None]
    child.start()
    assert child.proc is not None
    child.proc.wait()
    assert child.died(child.started_at + QUICK_DEATH_SECONDS + 1) == 0.5  # lived long enough


def test_a_port_wanted_twice_is_named() -> None:
    edge, status, auth, resource, docs = free_ports(5)
    settings = Settings(
        edge_port=edge,
        edge_status_address=f"127.0.0.1:{status}",
        auth_port=auth,
        docs_port=docs,
        resource_processes=2,
        resource_port=resource,
        webhook_port=resource + 100,
    )
    problem = port_problem(settings)
    assert problem == (
        f"port {resource + 100} is wanted twice: by HERALD_RESOURCE_PORT + 100 (process 2) and by HERALD_WEBHOOK_PORT"
    )
