"""compose.yaml and .env.example agree with the CLI, the settings, the Dockerfile and each other.

No Docker engine is available where these tests run: the file is parsed with PyYAML and, where
a Docker Compose v2 binary exists, also resolved by `docker compose config` itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sms_sender.config import Settings
from tests.deploy._contract import (
    POSTGRES_IMAGE_VARS,
    ROOT,
    invoke,
    read_env_file,
    setting_env_names,
)

APP_SERVICES = ("migrate", "api", "worker")
ENV_EXAMPLE = ROOT / ".env.example"
PASSWORD_MISSING = "set POSTGRES_PASSWORD in .env"
# ${NAME}, ${NAME:-default} or ${NAME:?error}: compose's interpolation of one variable.
VARIABLE = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


@cache
def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = _compose()["services"][name]
    return service


def _env_files(service: dict[str, Any]) -> list[tuple[str, bool]]:
    """(path, required) of each env_file entry, in the order compose layers them."""
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str) else entries
    return [
        (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        for entry in entries
    ]


def test_has_the_database_the_migration_the_api_and_the_workers() -> None:
    assert set(_compose()["services"]) == {"db", *APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_command_is_a_real_cli_command(name: str) -> None:
    assert invoke(_service(name)["command"]).path == (name,)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_application_services_run_the_image_built_here(name: str) -> None:
    service = _service(name)
    assert service["build"] in (".", {"context": "."})
    assert service["image"] == _service("api")["image"], "one image for the whole application"


def _defaults(text: str, **values: str) -> str:
    """``text`` as compose resolves it with ``values`` set: ${X:-default} → default if X is not."""
    return VARIABLE.sub(lambda match: values.get(match[1], match[3] or ""), text)


def test_api_publishes_the_port_it_listens_on_the_hosts_loopback_by_default() -> None:
    api = _service("api")
    port = invoke(api["command"]).params["port"]
    (published,) = api["ports"]
    assert _defaults(published) == f"127.0.0.1:{port}:{port}", "loopback unless opened on purpose"
    address = VARIABLE.match(published)
    assert address
    assert address[1] == "API_BIND_ADDRESS"
    assert invoke(api["command"]).params["host"] == "0.0.0.0"
    # The way to open it is written where people look.
    assert "API_BIND_ADDRESS=0.0.0.0" in (ROOT / "docs" / "deploy.md").read_text()


def test_workers_scale_out() -> None:
    worker = _service("worker")
    assert "container_name" not in worker, "a fixed name allows one container only"
    assert "ports" not in worker, "a published port allows one container only"


def test_start_order_database_then_migration_then_the_rest() -> None:
    assert _service("migrate")["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert _service("migrate")["restart"] == "no", "a one-shot job must not be restarted"
    for name in ("api", "worker"):
        assert _service(name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }


def test_database_keeps_its_data_in_a_named_volume_and_reports_health() -> None:
    db = _service("db")
    assert db["image"].startswith("postgres:")
    volume = db["volumes"][0].split(":")[0]
    assert volume in _compose()["volumes"], "a named volume survives `docker compose down`"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_services_without_an_http_port_do_not_inherit_the_image_health_check() -> None:
    for name in ("migrate", "worker"):
        assert _service(name)["healthcheck"] == {"disable": True}


def test_every_service_reads_the_example_and_then_an_optional_env_file() -> None:
    for name in ("db", *APP_SERVICES):
        assert _env_files(_service(name)) == [(".env.example", True), (".env", False)]


def test_env_example_sets_every_setting_and_nothing_unknown() -> None:
    example = read_env_file(ENV_EXAMPLE)
    settings = set(setting_env_names())
    assert sorted(settings - set(example)) == [], "settings missing from .env.example"
    assert sorted(set(example) - settings - POSTGRES_IMAGE_VARS) == [], "unknown variables"


def test_env_example_documents_each_setting_with_a_comment() -> None:
    """Each setting, or group of settings, sits right under the comment that explains it."""
    previous = ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            assert previous, f".env.example: no comment above {line.partition('=')[0]}"
        previous = line


def test_env_example_values_are_valid_settings() -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.database_url.startswith("postgresql://")


def test_app_database_url_is_the_compose_database_with_its_password() -> None:
    example = read_env_file(ENV_EXAMPLE)
    for name in APP_SERVICES:
        template = _service(name)["environment"]["SMS_SENDER_DATABASE_URL"]
        url = urlsplit(_defaults(template, POSTGRES_PASSWORD="s3cret"))
        assert url.hostname == "db", "inside compose the database is the `db` service"
        assert url.username == example["POSTGRES_USER"]
        assert url.path == f"/{example['POSTGRES_DB']}"
        assert url.password == "s3cret"


def test_database_password_has_no_default_and_its_absence_is_explained() -> None:
    """No password ships with the repository: compose stops with a sentence saying what to do."""
    assert "POSTGRES_PASSWORD" not in read_env_file(ENV_EXAMPLE)
    uses = [
        _service("db")["environment"]["POSTGRES_PASSWORD"],
        *(_service(name)["environment"]["SMS_SENDER_DATABASE_URL"] for name in APP_SERVICES),
    ]
    for text in uses:
        (password,) = [
            match for match in VARIABLE.finditer(text) if match[1] == "POSTGRES_PASSWORD"
        ]
        assert password[2] == ":?", f"{text}: a missing password must stop compose"
        assert PASSWORD_MISSING in password[3]
    assert urlsplit(read_env_file(ENV_EXAMPLE)["SMS_SENDER_DATABASE_URL"]).password is None


def _compose_v2() -> list[str] | None:
    """The Docker Compose v2 CLI: the docker plugin, or a standalone docker-compose binary."""
    docker = shutil.which("docker")
    if docker and _runs([docker, "compose", "version", "--short"]):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone and _runs([standalone, "version", "--short"], expect_prefix="2."):
        return [standalone]
    return None


def _runs(command: list[str], expect_prefix: str = "") -> bool:
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode == 0 and result.stdout.strip().lstrip("v").startswith(expect_prefix)


def compose_config(
    tmp_path: Path, variables: dict[str, str], *files: Path
) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` of compose.yaml (and ``files``) with only ``variables`` set."""
    compose = _compose_v2()
    if compose is None:
        pytest.skip("no Docker Compose v2 CLI here (docker compose plugin or docker-compose 2.x)")
    env_file = tmp_path / "compose.env"  # instead of a developer's own .env
    env_file.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "API_", "SMOKE_", "COMPOSE_"))
    }
    arguments = ["--project-directory", str(ROOT), "--env-file", str(env_file)]
    for each in (ROOT / "compose.yaml", *files):
        arguments += ["-f", str(each)]
    return subprocess.run(
        [*compose, *arguments, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


def test_docker_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    result = compose_config(tmp_path, {"POSTGRES_PASSWORD": "s3cret"})
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["worker"]["command"] == _service("worker")["command"]
    environment = resolved["services"]["api"]["environment"]
    assert environment["SMS_SENDER_DATABASE_URL"] == (
        "postgresql://sms_sender:s3cret@db:5432/sms_sender"
    )
    assert resolved["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    (published,) = resolved["services"]["api"]["ports"]
    assert published["host_ip"] == "127.0.0.1"
    assert published["published"] == "8000"


def test_docker_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    result = compose_config(tmp_path, {})
    assert result.returncode != 0
    assert PASSWORD_MISSING in result.stderr


def test_docker_compose_opens_the_api_only_when_told(tmp_path: Path) -> None:
    opened = {"POSTGRES_PASSWORD": "s3cret", "API_BIND_ADDRESS": "0.0.0.0", "API_PORT": "8080"}
    result = compose_config(tmp_path, opened)
    assert result.returncode == 0, result.stderr
    (published,) = yaml.safe_load(result.stdout)["services"]["api"]["ports"]
    assert (published["host_ip"], published["published"]) == ("0.0.0.0", "8080")
