"""deploy/k8s, checked without a cluster: every manifest validates against the Kubernetes API
schemas that kubernetes-validate ships (no network), and the structure operators rely on holds
(probes, resources, non-root read-only pods, HPA and PDB targets, settings that exist)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.config import Settings, SettingsError
from tests.edge import assert_nginx_accepts

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
DEPLOYMENTS = {
    # name: (module it runs, port, readiness path); the edge runs nginx, not a module.
    "edge": ("nginx", 8080, "/healthz"),
    "docs": ("services.docs", 8084, "/healthz"),
    "auth": ("services.auth", 8081, "/readyz"),
    "resource": ("services.resource", 8082, "/readyz"),
    "webhook-delivery": ("services.webhook_delivery", 8083, "/readyz"),
    "webhook-worker": ("services.webhook_delivery", 8083, "/readyz"),
}
AUTOSCALED = {"edge", "resource", "webhook-worker"}
SETTINGS = {variable for variable, *_ in Settings.variables()}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


MANIFEST_FILES = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
BASE = [doc for name in _kustomization()["resources"] for doc in _documents(K8S / name)]


def _of_kind(kind: str, docs: list[dict[str, Any]] = BASE) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod_spec(workload)["containers"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def _selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(_kustomization()["resources"])
    assert listed == {p.name for p in MANIFEST_FILES} - {SECRET_EXAMPLE.name}
    assert {image["name"] for image in _kustomization()["images"]} == {"herald"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    docs = _documents(path)
    assert docs
    for doc in docs:
        try:
            # strict: an unknown field (a typo such as `readinesProbe`) fails too
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_the_expected_deployments_and_services_exist() -> None:
    assert set(_of_kind("Deployment")) == set(DEPLOYMENTS)
    # Everything but the workers is reached over HTTP; the workers only take work.
    assert set(_of_kind("Service")) == set(DEPLOYMENTS) - {"webhook-worker"}
    assert set(_of_kind("ConfigMap")) == {"herald-config"}
    assert set(_of_kind("Job")) == {"herald-migrate"}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployments_run_their_service_with_both_probes(name: str) -> None:
    module, port, readiness = DEPLOYMENTS[name]
    deployment = _of_kind("Deployment")[name]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], deployment)
    (container,) = _containers(deployment)
    if name == "edge":
        assert container["image"].startswith("nginx:") and container["command"][0] == "nginx"
    else:
        assert container["image"] == "herald"
        assert container["command"] == ["python", "-m", module]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}
    assert container["readinessProbe"]["httpGet"] == {"path": readiness, "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployments_have_requests_and_limits_and_drain_in_time(name: str) -> None:
    deployment = _of_kind("Deployment")[name]
    (container,) = _containers(deployment)
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) >= {"cpu", "memory"}, f"{name} {kind}"
    # preStop sleep, then HERALD_SHUTDOWN_TIMEOUT for requests in flight, then closing pools;
    # the edge quits gracefully in its preStop and waits up to HERALD_UPSTREAM_TIMEOUT.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    data = _of_kind("ConfigMap")["herald-config"]["data"]
    if name == "edge":
        assert (
            pre_stop[:2] == ["sh", "-c"] and pre_stop[2].startswith("sleep 5;") and "-s quit" in pre_stop[2]
        )
        pause, drain = 5, float(data.get("HERALD_UPSTREAM_TIMEOUT", Settings().upstream_timeout))
    else:
        assert pre_stop[0] == "sleep"
        pause, drain = int(pre_stop[1]), float(data["HERALD_SHUTDOWN_TIMEOUT"])
    assert _pod_spec(deployment)["terminationGracePeriodSeconds"] >= pause + drain + 10


@pytest.mark.parametrize("name", [*sorted(DEPLOYMENTS), "herald-migrate"])
def test_pods_run_as_non_root_with_a_read_only_root(name: str) -> None:
    workload = {**_of_kind("Deployment"), **_of_kind("Job")}[name]
    pod = _pod_spec(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    for container in _containers(workload):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        # Python and its libraries may want a scratch directory; the root stays read-only.
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # noqa: S108


def test_services_select_a_deployment_and_reach_its_port() -> None:
    deployments = _of_kind("Deployment")
    for name, service in _of_kind("Service").items():
        selector = service["spec"]["selector"]
        (target,) = [d for d in deployments.values() if _selects(selector, d)]
        assert target["metadata"]["name"] == name
        (container,) = _containers(target)
        named = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named
            assert port["port"] == DEPLOYMENTS[name][1]


def test_hpas_scale_the_stateless_deployments_and_the_workers() -> None:
    hpas = _of_kind("HorizontalPodAutoscaler")
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas.values()} == AUTOSCALED
    deployments = _of_kind("Deployment")
    for hpa in hpas.values():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert ref["name"] in deployments
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        # The HPA owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in deployments[ref["name"]]["spec"]


def test_every_deployment_has_a_disruption_budget() -> None:
    deployments = _of_kind("Deployment")
    covered = set()
    for pdb in _of_kind("PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        covered |= {name for name, d in deployments.items() if _selects(selector, d)}
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]
    assert covered == set(deployments)


def test_webhook_api_and_workers_are_separate_deployments() -> None:
    deployments = _of_kind("Deployment")
    (api,) = _containers(deployments["webhook-delivery"])
    (worker,) = _containers(deployments["webhook-worker"])
    assert _env(api)["HERALD_WEBHOOK_API"] == "true" and _env(api)["HERALD_WEBHOOK_WORKER"] == "false"
    assert _env(worker)["HERALD_WEBHOOK_API"] == "false"
    assert _env(worker)["HERALD_WEBHOOK_WORKER"] == "true"


def test_only_auth_gets_the_signing_key_and_the_edge_and_docs_no_database() -> None:
    for name, deployment in _of_kind("Deployment").items():
        pod = _pod_spec(deployment)
        envs = [
            ref for c in [*pod["containers"], *pod.get("initContainers", [])] for ref in c.get("envFrom", [])
        ]
        secrets = {ref["secretRef"]["name"] for ref in envs if "secretRef" in ref}
        volumes = {v.get("secret", {}).get("secretName") for v in pod["volumes"]}
        assert ("herald-signing-key" in volumes) == (name == "auth")
        assert ("herald-admin" in secrets) == (name == "auth")
        assert ("herald-database" in secrets) == (name not in ("edge", "docs"))
        assert ("herald-amqp" in secrets) == (name not in ("edge", "docs"))
        assert ("herald-internal-token" in secrets) == (name != "edge")
    (auth,) = _containers(_of_kind("Deployment")["auth"])
    key_file = _env(auth)["HERALD_SIGNING_KEY_FILE"]
    mounts = [m["mountPath"] for m in auth["volumeMounts"]]
    assert any(key_file.startswith(mount + "/") for mount in mounts)


def test_every_secret_referenced_is_in_the_example() -> None:
    examples = _of_kind("Secret", _documents(SECRET_EXAMPLE))
    referenced = set()
    for workload in [*_of_kind("Deployment").values(), *_of_kind("Job").values()]:
        pod = _pod_spec(workload)
        referenced |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        for container in pod["containers"]:
            referenced |= {r["secretRef"]["name"] for r in container.get("envFrom", []) if "secretRef" in r}
            referenced |= {
                r["configMapRef"]["name"] for r in container.get("envFrom", []) if "configMapRef" in r
            } - set(_of_kind("ConfigMap"))
    assert referenced == set(examples)


def test_every_herald_variable_is_a_real_setting() -> None:
    named: set[str] = set()
    for path in MANIFEST_FILES:
        named |= set(re.findall(r"\bHERALD_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    assert named, "the manifests name no setting"
    assert not named - SETTINGS, f"not in Settings.variables(): {sorted(named - SETTINGS)}"
    for secret in _of_kind("Secret", _documents(SECRET_EXAMPLE)).values():
        for key in secret["stringData"]:
            assert key in SETTINGS or key.endswith(".pem"), key


def _production_environment(secrets: dict[str, str]) -> dict[str, str]:
    environ = dict(_of_kind("ConfigMap")["herald-config"]["data"])
    environ.update(secrets)
    return environ


def test_the_configmap_parses_and_the_example_secrets_are_refused_in_production() -> None:
    examples = _of_kind("Secret", _documents(SECRET_EXAMPLE))
    placeholders = {
        k: v for name in ("herald-database", "herald-amqp") for k, v in examples[name]["stringData"].items()
    }
    with pytest.raises(SettingsError, match="placeholder"):
        Settings.from_env(_production_environment(placeholders))
    real = {
        "HERALD_DATABASE_URL": "postgresql://herald:Zq8-real-db@db.internal:5432/herald",
        "HERALD_AMQP_URL": "amqps://herald:Zq8-real-mq@mq.internal:5671/",
        "HERALD_INTERNAL_TOKEN": "9b6d2f0e4a8c1e3f5a7b9d0c2e4f6a8b",
    }
    settings = Settings.from_env(_production_environment(real))
    assert settings.production and settings.host == "0.0.0.0"
    with pytest.raises(SettingsError, match="HERALD_ADMIN_PASSWORD"):
        Settings.from_env(_production_environment({**real, **examples["herald-admin"]["stringData"]}))
    # The internal URLs name Services of the base, on their ports.
    services = _of_kind("Service")
    for url in (settings.auth_url, settings.resource_url, settings.webhook_url, settings.docs_url):
        host, port = url.removeprefix("http://").split(":")
        assert host in services and int(port) == services[host]["spec"]["ports"][0]["port"]


def test_migrate_job_runs_every_services_migrations() -> None:
    (container,) = _containers(_of_kind("Job")["herald-migrate"])
    command = " ".join(container["command"])
    for name in ("auth", "resource", "webhook_delivery"):
        assert f"python -m services.{name} migrate" in command
    assert _pod_spec(_of_kind("Job")["herald-migrate"])["restartPolicy"] in ("OnFailure", "Never")


def test_kustomize_builds_the_base() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert len(docs) == len(BASE)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "herald"
        if doc["kind"] in ("Deployment", "Job"):
            pod = _pod_spec(doc)
            for container in [*pod["containers"], *pod.get("initContainers", [])]:
                if not container["image"].startswith("nginx:"):  # the edge's nginx: the official image
                    assert container["image"] == "registry.example.com/herald:0.1.0"


def test_pods_run_as_the_user_the_image_declares() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    uid, gid = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)[-1]
    for workload in [*_of_kind("Deployment").values(), *_of_kind("Job").values()]:
        context = _pod_spec(workload)["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid)


def test_the_documented_overlay_builds_and_patches_the_settings(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    example = operations.split("An overlay, `my-overlay/kustomization.yaml`:", 1)[1]
    overlay_text = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    overlay = yaml.safe_load(overlay_text)
    assert overlay["resources"] == ["../deploy/k8s"]
    overlay_dir = tmp_path / "my-overlay"
    overlay_dir.mkdir()
    overlay["resources"] = [os.path.relpath(K8S, overlay_dir)]  # kustomize wants it relative
    (overlay_dir / "kustomization.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    built = subprocess.run(
        [kubectl, "kustomize", str(overlay_dir)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert {doc["metadata"]["namespace"] for doc in docs} == {"herald"}
    (config,) = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert config["data"]["HERALD_CORS_ORIGINS"] == "https://app.example.com"
    Settings.from_env(
        {
            **config["data"],
            "HERALD_DATABASE_URL": "postgresql://herald:Zq8-real-db@db.internal:5432/herald",
            "HERALD_AMQP_URL": "amqps://herald:Zq8-real-mq@mq.internal:5671/",
            "HERALD_INTERNAL_TOKEN": "9b6d2f0e4a8c1e3f5a7b9d0c2e4f6a8b",
        }
    )


def test_the_edge_renders_its_configuration_from_the_settings_and_nginx_accepts_it(tmp_path: Path) -> None:
    """The init container renders into the volume nginx reads; the result passes `nginx -t`
    (the Service host names replaced by 127.0.0.1: they resolve only in the cluster)."""
    from shared.edge import render

    pod = _pod_spec(_of_kind("Deployment")["edge"])
    (render_step,) = pod["initContainers"]
    (nginx,) = pod["containers"]
    assert render_step["image"] == "herald"
    out = render_step["command"][render_step["command"].index("--out") + 1]
    run_dir = render_step["command"][render_step["command"].index("--run-dir") + 1]
    assert nginx["command"][nginx["command"].index("-c") + 1] == out
    mounts = {m["name"]: m["mountPath"] for m in nginx["volumeMounts"]}
    assert mounts["edge-config"] == str(Path(out).parent) and mounts["tmp"] == run_dir
    settings = Settings.from_env(
        dict(_of_kind("ConfigMap")["herald-config"]["data"], HERALD_ENV="development")
    )
    text = render(settings, tmp_path)
    assert_nginx_accepts(text, ("auth", "resource", "webhook-delivery", "docs"), tmp_path)
    assert "set_real_ip_from 10.0.0.0/8;" in text  # the ingress controller's X-Forwarded-For
