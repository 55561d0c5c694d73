"""docker-compose.yml and deploy/Dockerfile, checked without Docker (our dev machines have
none): the structure `make up` relies on, and settings that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings
from tests.edge import assert_nginx_accepts

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
INFRASTRUCTURE = ("postgres", "rabbitmq")
HERALD_SERVICES = ("auth", "resource", "webhook_delivery", "docs")
MIGRATE = "migrate"
EDGE, EDGE_CONFIG = "edge", "edge-config"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves YAML anchors and `<<` merge keys, as docker compose does.
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _healthcheck_enabled(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    return bool(check) and not check.get("disable", False) and bool(check.get("test"))


def test_the_expected_services_exist(services: dict[str, Any]) -> None:
    assert set(services) == {*INFRASTRUCTURE, MIGRATE, *HERALD_SERVICES, EDGE_CONFIG, EDGE}


def test_postgres_and_rabbitmq_have_healthchecks_and_named_volumes(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    named = set(compose.get("volumes") or {})
    expected = {"postgres": "pg_isready", "rabbitmq": "rabbitmq-diagnostics"}
    for name, probe in expected.items():
        service = services[name]
        assert _healthcheck_enabled(service), f"{name} needs a healthcheck"
        test = service["healthcheck"]["test"]
        assert probe in (test if isinstance(test, str) else " ".join(test)), (
            f"{name} should probe with {probe}"
        )
        volumes = service.get("volumes") or []
        sources = {(v.split(":", 1)[0] if isinstance(v, str) else v.get("source")) for v in volumes}
        assert sources & named, f"{name} must keep its data in a named volume, has {volumes}"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")


@pytest.mark.parametrize("name", (MIGRATE, *HERALD_SERVICES, EDGE_CONFIG))
def test_herald_services_build_from_the_one_dockerfile(services: dict[str, Any], name: str) -> None:
    build = services[name].get("build")
    assert isinstance(build, dict), f"{name} must build the image (directly or through an anchor)"
    assert (ROOT / build.get("context", ".")).resolve() == ROOT
    assert build.get("dockerfile") == "deploy/Dockerfile"


def test_every_service_but_the_one_shots_has_a_healthcheck(services: dict[str, Any]) -> None:
    missing = [
        n for n, s in services.items() if n not in (MIGRATE, EDGE_CONFIG) and not _healthcheck_enabled(s)
    ]
    assert not missing, f"services without a healthcheck: {missing}"


def test_only_the_edge_publishes_a_port_and_only_8080(services: dict[str, Any]) -> None:
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {EDGE}
    ports = services[EDGE]["ports"]
    assert len(ports) == 1
    port = ports[0]
    if isinstance(port, dict):
        assert (str(port.get("published")), str(port.get("target"))) == ("8080", "8080")
    else:
        assert str(port).rsplit(":", 2)[-2:] == ["8080", "8080"], port


@pytest.mark.parametrize("name", HERALD_SERVICES)
def test_services_wait_for_migrations_and_healthy_infrastructure(services: dict[str, Any], name: str) -> None:
    depends = services[name].get("depends_on")
    assert isinstance(depends, dict), f"{name} needs depends_on with conditions"
    assert depends.get(MIGRATE, {}).get("condition") == "service_completed_successfully"
    for infra in INFRASTRUCTURE:
        assert depends.get(infra, {}).get("condition") == "service_healthy", f"{name} -> {infra}"


def test_migrate_runs_every_services_migrations(services: dict[str, Any]) -> None:
    migrate = services[MIGRATE]
    command = migrate["command"]
    text = command if isinstance(command, str) else " ".join(command)
    for name in ("auth", "resource", "webhook_delivery"):
        assert f"python -m services.{name} migrate" in text
    for infra in INFRASTRUCTURE:
        assert migrate["depends_on"][infra]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", HERALD_SERVICES)
def test_services_run_their_own_module_and_reach_each_other_by_compose_name(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    command = service.get("command")
    assert command is not None, f"{name} must pick its service by the command"
    text = command if isinstance(command, str) else " ".join(command)
    assert f"services.{name}" in text
    env = _environment(service)
    assert env.get("HERALD_HOST") == "0.0.0.0"
    assert "@postgres:" in env["HERALD_DATABASE_URL"]
    assert "@rabbitmq:" in env["HERALD_AMQP_URL"]
    assert env["HERALD_AUTH_URL"] == "http://auth:8081"
    assert env["HERALD_RESOURCE_URL"] == "http://resource:8082"
    assert env["HERALD_WEBHOOK_URL"] == "http://webhook_delivery:8083"


def test_every_herald_variable_in_the_file_is_a_setting(services: dict[str, Any]) -> None:
    known = {variable for variable, *_ in Settings.variables()}
    keys = {
        key for service in services.values() for key in _environment(service) if key.startswith("HERALD_")
    }
    assert keys, "the compose file sets no HERALD_* variable"
    # ... and every one named anywhere, interpolations (`${HERALD_X:-}`) included.
    named = set(re.findall(r"\bHERALD_[A-Z0-9_]+", COMPOSE.read_text(encoding="utf-8")))
    assert not (keys | named) - known, f"not in Settings.variables(): {sorted((keys | named) - known)}"


def test_secrets_come_from_the_environment_file(services: dict[str, Any]) -> None:
    auth = _environment(services["auth"])
    assert auth["HERALD_ADMIN_PASSWORD"].startswith("${HERALD_ADMIN_PASSWORD")
    assert auth["HERALD_SIGNING_KEY"].startswith("${HERALD_SIGNING_KEY")


def test_dockerfile_is_multi_stage_non_root_and_healthchecked(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    stages = [args for keyword, args in dockerfile_instructions if keyword == "FROM"]
    assert len(stages) >= 2, "the Dockerfile needs a builder stage and a final stage"
    assert stages[-1].split()[0] == "python:3.11-slim"
    users = [args for keyword, args in dockerfile_instructions if keyword == "USER"]
    assert users, "the final image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    from_lines = [i for i, (keyword, _) in enumerate(dockerfile_instructions) if keyword == "FROM"]
    user_lines = [i for i, (keyword, _) in enumerate(dockerfile_instructions) if keyword == "USER"]
    assert user_lines[-1] > from_lines[-1], "USER must be set in the final stage"
    healthchecks = [args for keyword, args in dockerfile_instructions if keyword == "HEALTHCHECK"]
    assert healthchecks and "/healthz" in healthchecks[-1]
    commands = [args for keyword, args in dockerfile_instructions if keyword == "CMD"]
    assert commands and "services." in commands[-1]


def _compose_cli() -> list[str] | None:
    """`docker compose` (v2), else the standalone `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker is not None:
        version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        if version.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.mark.parametrize("env_file", (None, ".env.example"))
def test_docker_compose_accepts_the_file(env_file: str | None) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose CLI is installed (docker compose or docker-compose)")
    options = ["--env-file", str(ROOT / env_file)] if env_file else []
    result = subprocess.run(
        [*cli, *options, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICE_PORTS = {
    "auth": "auth_port",
    "resource": "resource_port",
    "webhook_delivery": "webhook_port",
    "docs": "docs_port",
}


def _env_example_keys() -> set[str]:
    keys = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            keys.add(line.split("=", 1)[0])
    return keys


@pytest.mark.parametrize("name", HERALD_SERVICES)
def test_each_healthcheck_probes_the_port_its_service_listens_on(services: dict[str, Any], name: str) -> None:
    env = _environment(services[name])
    defaults = {field: default for _, field, default, _ in Settings.variables()}
    port_field = SERVICE_PORTS[name]
    listens = env.get(next(v for v, f, *_ in Settings.variables() if f == port_field), defaults[port_field])
    assert env["PORT"] == str(listens), f"{name}'s healthcheck would probe another port"
    test = " ".join(services[name]["healthcheck"]["test"])
    assert "os.environ['PORT']" in test and "/readyz" in test


def _interpolated(env: dict[str, str]) -> dict[str, str]:
    """Values as docker compose makes them without a .env file: `${VAR:-default}` -> default."""
    return {k: re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", v) for k, v in env.items()}


@pytest.mark.parametrize("name", (MIGRATE, *HERALD_SERVICES, EDGE_CONFIG))
def test_the_settings_each_service_gets_parse(services: dict[str, Any], name: str) -> None:
    settings = Settings.from_env(_interpolated(_environment(services[name])))
    assert settings.host == "0.0.0.0"


def test_webhook_delivery_runs_its_api_and_its_worker(services: dict[str, Any]) -> None:
    settings = Settings.from_env(_interpolated(_environment(services["webhook_delivery"])))
    assert settings.webhook_api and settings.webhook_worker


def test_the_environment_file_documents_every_variable_the_compose_file_reads() -> None:
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    documented = _env_example_keys()
    assert read - documented == set(), (
        f"read by docker-compose.yml, missing in .env.example: {read - documented}"
    )
    assert documented - read == set(), f"in .env.example, never read: {documented - read}"
    known = {variable for variable, *_ in Settings.variables()}
    assert {k for k in documented if k.startswith("HERALD_")} <= known


def test_the_environment_file_holds_no_real_secret() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    )
    for key in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"):
        assert values[key].startswith("change-this"), key
    assert values["HERALD_SIGNING_KEY"] == "" and values["HERALD_ADMIN_PASSWORD"] == ""


def test_services_get_longer_to_stop_than_they_take_to_drain(services: dict[str, Any]) -> None:
    shutdown = float(
        _environment(services["auth"]).get("HERALD_SHUTDOWN_TIMEOUT") or Settings().shutdown_timeout
    )
    for name in (*HERALD_SERVICES, EDGE):
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s") and float(grace[:-1]) > shutdown, name


def test_make_up_and_down_wrap_docker_compose() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target, command in (("up", "docker compose up"), ("down", "docker compose down")):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert recipe and command in recipe.group(1), f"make {target} should run {command}"


def test_the_build_context_keeps_secrets_out_and_the_code_in() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".env", ".git", "*.pem", "tests"} <= ignored
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    sources = {part for line in copied for part in line.split()}
    assert sources == {
        "requirements-runtime.lock",
        "pyproject.toml",
        "README.md",
        "shared",
        "services",
        "deploy/nginx",
    }
    assert not sources & ignored


def test_migrate_is_one_shot_and_the_edge_waits_for_healthy_services(services: dict[str, Any]) -> None:
    for one_shot in (MIGRATE, EDGE_CONFIG):
        assert str(services[one_shot].get("restart", "no")) == "no", "a restart loop would hide failures"
        assert "ports" not in services[one_shot]
    depends = services[EDGE]["depends_on"]
    for name in HERALD_SERVICES:
        assert depends[name]["condition"] == "service_healthy", name
    assert depends[EDGE_CONFIG]["condition"] == "service_completed_successfully"


def test_the_edge_is_the_official_nginx_reading_the_rendered_configuration(services: dict[str, Any]) -> None:
    edge, config = services[EDGE], services[EDGE_CONFIG]
    assert edge["image"].startswith("nginx:")
    assert edge["stop_signal"] == "SIGQUIT"  # graceful: requests in flight finish
    rendered = config["command"][config["command"].index("--out") + 1]
    assert edge["command"][edge["command"].index("-c") + 1] == rendered
    volume = {v.split(":")[0] for v in config["volumes"]}
    assert volume == {v.split(":")[0] for v in edge["volumes"]}
    assert any(v.split(":")[1] == str(Path(rendered).parent) for v in edge["volumes"])
    assert " ".join(config["command"]).startswith("python -m shared.edge render")


def test_the_rendered_compose_configuration_passes_nginx_t(services: dict[str, Any], tmp_path: Path) -> None:
    """The configuration edge-config renders, checked by nginx itself. Offline, the compose
    host names cannot be resolved: they are replaced by 127.0.0.1 for the check."""
    from shared.edge import render, upstreams

    env = _interpolated(_environment(services[EDGE_CONFIG]))
    env["HERALD_CORS_ORIGINS"] = "https://app.example,https://admin.example"
    settings = Settings.from_env(env)
    assert {name: [h for h, _ in hosts] for name, hosts in upstreams(settings).items()} == {
        "auth": ["auth"],
        "resource": ["resource"],
        "webhook_delivery": ["webhook_delivery"],
        "docs": ["docs"],
    }
    text = render(settings, tmp_path)
    assert_nginx_accepts(text, ("auth", "resource", "webhook_delivery", "docs"), tmp_path)
    assert "listen 0.0.0.0:8080" in text
