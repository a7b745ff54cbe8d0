"""deploy/k8s (a kustomize base) agrees with the CLI, the routes, the settings and the image.

No cluster is available where these tests run: every manifest is parsed and cross-checked, and
where kubectl exists `kubectl kustomize` (which needs no cluster) builds the base as well.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from sms_sender.config import Settings
from tests.deploy._contract import (
    K8S,
    ROOT,
    SECRET_FIELDS,
    api_paths,
    invoke,
    read_env_file,
    setting_env_names,
)

SECRET_EXAMPLE = "secret.example.yaml"


@cache
def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


@cache
def _manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object the base applies, by (kind, name)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in _kustomization()["resources"]:
        for document in yaml.safe_load_all((K8S / resource).read_text()):
            objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def _object(kind: str, name: str) -> dict[str, Any]:
    assert (kind, name) in _manifests(), f"deploy/k8s has no {kind} {name}"
    return _manifests()[(kind, name)]


def _pod_spec(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _object(kind, name)["spec"]["template"]["spec"]
    return spec


def _container(kind: str, name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _pod_spec(kind, name)["containers"]
    assert len(containers) == 1, f"{kind} {name}: one container per pod"
    return containers[0]


def _workloads() -> list[tuple[str, str]]:
    return [key for key in _manifests() if key[0] in {"Deployment", "Job"}]


def _secret_example() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / SECRET_EXAMPLE).read_text())
    return loaded


def _config_map_settings() -> dict[str, str]:
    (generator,) = _kustomization()["configMapGenerator"]
    (env_file,) = generator["envs"]
    return read_env_file(K8S / env_file)


def _dockerfile_user() -> int:
    users = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert users, "the Dockerfile must switch to a numeric, non-root USER"
    return int(users[-1])


def test_every_manifest_is_in_the_base_except_the_secret_example() -> None:
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_kustomization()["resources"]) == manifests - {SECRET_EXAMPLE}
    assert (K8S / SECRET_EXAMPLE).exists()


def test_the_base_has_what_a_deployment_needs() -> None:
    kinds = {kind for kind, _ in _manifests()}
    assert {"Deployment", "Job", "Service", "Ingress"} <= kinds
    assert _kustomization()["configMapGenerator"], "non-secret settings come from a ConfigMap"


@pytest.mark.parametrize(
    ("kind", "name", "command"),
    [
        ("Deployment", "sms-sender-api", ("api",)),
        ("Deployment", "sms-sender-worker", ("worker",)),
        ("Job", "sms-sender-migrate", ("migrate",)),
    ],
)
def test_workload_runs_a_real_cli_command(kind: str, name: str, command: tuple[str]) -> None:
    container = _container(kind, name)
    assert "command" not in container, "keep the image's sms-sender entry point; set args"
    assert invoke(container["args"]).path == command


def test_api_listens_on_its_container_port_on_every_interface() -> None:
    container = _container("Deployment", "sms-sender-api")
    params = invoke(container["args"]).params
    (port,) = container["ports"]
    assert port["containerPort"] == params["port"]
    assert params["host"] == "0.0.0.0"
    exposed = re.search(r"^EXPOSE (\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed
    assert int(exposed[1]) == params["port"]


@pytest.mark.parametrize(
    ("probe", "path"),
    [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")],
)
def test_api_probe_asks_a_real_route_on_the_api_port(probe: str, path: str) -> None:
    container = _container("Deployment", "sms-sender-api")
    http_get = container[probe]["httpGet"]
    assert http_get["path"] == path
    assert path in api_paths()
    ports = {each["name"]: each["containerPort"] for each in container["ports"]}
    port = ports.get(http_get["port"], http_get["port"])
    assert port == invoke(container["args"]).params["port"]


def test_workers_are_replicated_and_have_time_to_finish_their_sends() -> None:
    worker = _object("Deployment", "sms-sender-worker")
    assert worker["spec"]["replicas"] >= 1
    assert _pod_spec("Deployment", "sms-sender-worker")["terminationGracePeriodSeconds"] >= 30


def test_migration_job_is_not_restarted_forever() -> None:
    job = _object("Job", "sms-sender-migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}
    assert job["spec"]["backoffLimit"] >= 1


@pytest.mark.parametrize("workload", ["api", "worker", "migrate"])
def test_every_container_has_requests_limits_and_runs_unprivileged(workload: str) -> None:
    key = next(key for key in _workloads() if key[1].endswith(workload))
    container = _container(*key)
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][section]), section
    pod_security = _pod_spec(*key)["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == _dockerfile_user()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_deployments_select_their_own_pods() -> None:
    for kind, name in _workloads():
        if kind == "Deployment":
            spec = _object(kind, name)["spec"]
            selector = spec["selector"]["matchLabels"]
            assert selector.items() <= spec["template"]["metadata"]["labels"].items()


def test_service_routes_to_the_api_pods_and_port() -> None:
    service = _object("Service", "sms-sender-api")["spec"]
    api = _object("Deployment", "sms-sender-api")["spec"]["template"]
    assert service["selector"].items() <= api["metadata"]["labels"].items()
    container_ports = {port["name"] for port in api["spec"]["containers"][0]["ports"]}
    assert {port["targetPort"] for port in service["ports"]} <= container_ports


def test_ingress_sends_traffic_to_the_service() -> None:
    (ingress,) = [obj for (kind, _), obj in _manifests().items() if kind == "Ingress"]
    service = _object("Service", "sms-sender-api")["spec"]
    service_ports = {port["name"] for port in service["ports"]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "sms-sender-api"
            assert backend["port"]["name"] in service_ports


def test_workloads_read_the_settings_config_map_and_the_secret() -> None:
    (generator,) = _kustomization()["configMapGenerator"]
    secret_name = _secret_example()["metadata"]["name"]
    for key in _workloads():
        sources = _container(*key)["envFrom"]
        assert {"configMapRef": {"name": generator["name"]}} in sources, key
        assert {"secretRef": {"name": secret_name}} in sources, key


def test_config_map_and_secret_together_set_every_setting_once() -> None:
    config_map = set(_config_map_settings())
    secret = set(_secret_example()["stringData"])
    assert not config_map & secret, "a setting in both is ambiguous"
    assert sorted((config_map | secret) ^ set(setting_env_names())) == []


def test_secrets_are_kept_out_of_the_config_map() -> None:
    names = setting_env_names()
    assert not {names[key] for key in _config_map_settings()} & SECRET_FIELDS


def test_config_map_values_are_valid_settings() -> None:
    settings = Settings(_env_file=K8S / "settings.env")
    assert settings.log_format == "json", "a cluster's log store wants one JSON object per line"


def test_secret_example_is_in_the_namespace_of_the_base() -> None:
    assert _secret_example()["metadata"]["namespace"] == _kustomization()["namespace"]


def test_kubectl_builds_the_base() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    built = list(yaml.safe_load_all(result.stdout))
    kinds = sorted(document["kind"] for document in built)
    assert kinds == sorted(["ConfigMap", *(kind for kind, _ in _manifests())])
    config_map = next(document for document in built if document["kind"] == "ConfigMap")
    for document in built:
        if document["kind"] in {"Deployment", "Job"}:
            spec = document["spec"]["template"]["spec"]
            assert (
                spec["containers"][0]["envFrom"][0]["configMapRef"]["name"]
                == (config_map["metadata"]["name"])
            ), "kustomize links the hashed ConfigMap name into every workload"
