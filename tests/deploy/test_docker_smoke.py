"""scripts/docker-smoke runs in CI and points compose.yaml at things that exist.

The smoke itself needs a Docker engine and minutes, so it runs from .ci/run, not here; these
tests check what it relies on without one: its compose override only sets real settings, sends
to the fake gateway it starts, publishes nothing beyond the host's loopback, and the gateway
and PostgreSQL stand-in it starts are called correctly.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy._contract import ROOT, setting_env_names
from tests.deploy.test_compose import compose_config

SMOKE = ROOT / "scripts" / "docker-smoke"
HERE = ROOT / "scripts" / "docker-smoke.d"
OVERRIDE = HERE / "compose.smoke.yaml"
APP_SERVICES = ("migrate", "api", "worker")


@cache
def _override() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OVERRIDE.read_text())
    return loaded


def _gateway_arguments() -> dict[str, str]:
    command = _override()["services"]["gateway"]["command"]
    return dict(argument.removeprefix("--").split("=", 1) for argument in command)


def test_ci_runs_the_smoke_unconditionally() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "scripts/docker-smoke" in lines, "a plain line of its own: no `|| true`, no condition"
    script = SMOKE.read_text()
    assert 'if [ "${CI:-}" = true ]; then fail' in script, "under CI a missing engine fails"


def test_make_target_runs_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^docker-smoke:.*\n\t(.+)$", makefile, flags=re.MULTILINE)
    assert target
    assert target[1].strip() == "scripts/docker-smoke"


def test_override_sets_only_real_settings_and_the_http_provider() -> None:
    names = set(setting_env_names())
    for name in APP_SERVICES:
        environment = _override()["services"][name]["environment"]
        assert set(environment) <= names, set(environment) - names
        assert environment["SMS_SENDER_PROVIDER"] == "http"
        # The gateway is plain http on the project's network: the start-up check must be told.
        assert environment["SMS_SENDER_ALLOW_INSECURE_GATEWAY"] == "true"


def test_workers_send_to_the_fake_gateway_service_on_its_port() -> None:
    environment = _override()["services"]["worker"]["environment"]
    url = urlsplit(environment["SMS_SENDER_HTTP_URL"])
    assert url.hostname == "gateway"
    assert str(url.port) == _gateway_arguments()["port"]
    assert environment["SMS_SENDER_HTTP_TOKEN"] == _gateway_arguments()["token"]


def test_killed_worker_is_not_restarted_by_compose() -> None:
    assert _override()["services"]["worker"]["restart"] == "no"


def test_fake_gateway_is_the_tests_own_and_published_on_loopback_only() -> None:
    gateway = _override()["services"]["gateway"]
    assert gateway["entrypoint"] == ["python", "-m", "tests.fakes.gateway"]
    assert (ROOT / "tests" / "fakes" / "gateway.py").exists()
    assert gateway["volumes"] == ["./tests:/srv/tests:ro"]
    assert _gateway_arguments()["host"] == "0.0.0.0", "reachable from the other containers"
    for published in gateway["ports"]:
        assert published.startswith("127.0.0.1:"), published


def test_fake_gateway_accepts_its_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import gateway

    served: list[Any] = []
    monkeypatch.setattr(gateway, "_serve", served.append)
    monkeypatch.setattr(gateway.asyncio, "run", lambda _: None)
    gateway.main([f"--{key}={value}" for key, value in _gateway_arguments().items()])
    (arguments,) = served
    assert (arguments.host, arguments.port) == ("0.0.0.0", 8080)


def test_scripts_are_valid_shell() -> None:
    for script, shell in ((SMOKE, "bash"), (HERE / "postgres-entrypoint", "sh")):
        result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert script.stat().st_mode & 0o111, f"{script.name} must be executable"


def test_postgres_stand_in_honours_the_variables_compose_gives_it() -> None:
    entrypoint = (HERE / "postgres-entrypoint").read_text()
    for variable in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert f"${{{variable}" in entrypoint
    assert "${POSTGRES_PASSWORD:?" in entrypoint, "no database without a password"


def test_docker_compose_accepts_the_override(tmp_path: Path) -> None:
    variables = {
        "POSTGRES_PASSWORD": "s3cret",
        "SMOKE_APP_IMAGE": "sms-sender:smoke",
        "SMOKE_POSTGRES_IMAGE": "sms-sender-smoke/postgres:test",
        "SMOKE_GATEWAY_TOKEN": "t0ken",
    }
    result = compose_config(tmp_path, variables, OVERRIDE)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"db", *APP_SERVICES, "gateway"}
    for name in APP_SERVICES:
        assert services[name]["image"] == "sms-sender:smoke"
        assert services[name]["environment"]["SMS_SENDER_HTTP_TOKEN"] == "t0ken"
        assert services[name]["environment"]["SMS_SENDER_DATABASE_URL"].count("s3cret") == 1
    assert services["db"]["image"] == "sms-sender-smoke/postgres:test"
