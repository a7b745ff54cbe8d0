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
    api_operations,
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


def _ingresses() -> list[dict[str, Any]]:
    return [obj for (kind, _), obj in _manifests().items() if kind == "Ingress"]


def _ingress_paths() -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(ingress, host, path entry) for every path of every Ingress."""
    return [
        (ingress, rule["host"], path)
        for ingress in _ingresses()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def _body_limit_bytes(ingress: dict[str, Any]) -> int:
    """ingress-nginx's proxy-body-size (its default is 1m when the annotation is absent)."""
    annotations = ingress["metadata"].get("annotations", {})
    size = str(annotations.get("nginx.ingress.kubernetes.io/proxy-body-size", "1m"))
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]


def test_ingress_sends_traffic_to_the_service() -> None:
    service = _object("Service", "sms-sender-api")["spec"]
    service_ports = {port["name"] for port in service["ports"]}
    assert _ingress_paths()
    for _, _, path in _ingress_paths():
        backend = path["backend"]["service"]
        assert backend["name"] == "sms-sender-api"
        assert backend["port"]["name"] in service_ports


def test_every_ingress_host_is_served_over_tls() -> None:
    for ingress in _ingresses():
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        tls = ingress["spec"].get("tls", [])
        covered = {host for entry in tls if entry.get("secretName") for host in entry["hosts"]}
        assert hosts <= covered, (
            f"Ingress {ingress['metadata']['name']}: no TLS for {hosts - covered}"
        )


def test_only_the_csv_import_gets_a_larger_request_body_limit() -> None:
    """The import's limit sits on an Ingress of its own path, not raised for every route."""
    import_route = "/api/v1/clients/import"
    assert ("POST", import_route) in api_operations()
    (import_ingress,) = [
        ingress for ingress, _, path in _ingress_paths() if path["path"] == import_route
    ]
    own_paths = [path["path"] for each, _, path in _ingress_paths() if each is import_ingress]
    assert own_paths == [import_route]
    others = [ingress for ingress in _ingresses() if ingress is not import_ingress]
    assert others, "the other routes need an Ingress of their own"
    settings = Settings(_env_file=K8S / "settings.env")
    for ingress in others:
        assert _body_limit_bytes(ingress) <= 2**20, "every other route keeps a small limit"
        # Above the API's own limit, so an oversized body gets the API's problem+json 413.
        assert _body_limit_bytes(ingress) >= settings.max_body_bytes
    assert _body_limit_bytes(import_ingress) == settings.max_import_bytes, "the same limit twice"
    annotations = import_ingress["metadata"]["annotations"]
    assert annotations.get("nginx.ingress.kubernetes.io/proxy-request-buffering") == "off"
    hosts = {host for _, host, _ in _ingress_paths()}
    assert len(hosts) == 1, "the import path must be on the same host as the rest"


def _policies() -> list[dict[str, Any]]:
    return [obj for (kind, _), obj in _manifests().items() if kind == "NetworkPolicy"]


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return bool(wanted.items() <= labels.items())


def _allowed(labels: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, pod name label, port) of each peer allowed in by a policy selecting labels."""
    allowed = []
    for policy in _policies():
        if not _selects(policy, labels):
            continue
        assert "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), "a rule without `from` lets every peer in"
            assert rule.get("ports"), "a rule without `ports` opens every port"
            for peer in rule["from"]:
                namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                pods = peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                allowed += [(namespace, pods, port) for port in rule["ports"]]
    return allowed


def test_network_policy_denies_every_connection_not_allowed_below() -> None:
    default = [policy for policy in _policies() if policy["spec"]["podSelector"] == {}]
    assert len(default) == 1, "one policy selecting every pod of the namespace"
    assert default[0]["spec"]["policyTypes"] == ["Ingress"]
    assert not default[0]["spec"].get("ingress"), "no rule: nothing comes in by default"
    migrate_pod = _object("Job", "sms-sender-migrate")["spec"]["template"]["metadata"]["labels"]
    assert _allowed(migrate_pod) == [], "nothing connects to the migration"


def test_network_policy_lets_only_the_ingress_controller_and_prometheus_reach_the_api() -> None:
    pod = _object("Deployment", "sms-sender-api")["spec"]["template"]
    ports = {port["name"] for port in pod["spec"]["containers"][0]["ports"]}
    allowed = _allowed(pod["metadata"]["labels"])
    assert {pods for _, pods, _ in allowed} == {"ingress-nginx", "prometheus"}
    assert {port["port"] for _, _, port in allowed} == {"http"} <= ports


def test_network_policy_lets_only_prometheus_reach_a_workers_metrics() -> None:
    pod = _object("Deployment", "sms-sender-worker")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    (metrics,) = container["ports"]
    assert metrics["containerPort"] == invoke(container["args"]).params["metrics_port"]
    allowed = _allowed(pod["metadata"]["labels"])
    assert {(namespace, pods) for namespace, pods, _ in allowed} == {("monitoring", "prometheus")}
    assert [port["port"] for _, _, port in allowed] == [metrics["name"]]


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
