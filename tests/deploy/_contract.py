"""What the deployment files must agree with, read from the code itself.

The Dockerfile, compose.yaml, deploy/k8s and the Postman collection name commands, settings,
ports and routes as plain text; these helpers turn the code's own Typer app, Settings and
FastAPI routes into the sets those names are checked against, so renaming anything in the code
without the deployment files fails here instead of in somebody's cluster.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import AliasChoices, SecretStr

from sms_sender import cli
from sms_sender.app import create_app
from sms_sender.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SETTINGS_PREFIX = "SMS_SENDER_"
# Settings that carry a password or a key: never in a ConfigMap, only in the Secret.
SECRET_FIELDS = frozenset(
    {"database_url"}
    | {name for name, field in Settings.model_fields.items() if field.annotation is SecretStr}
)
# The PostgreSQL image's own variables, set for the compose `db` service.
POSTGRES_IMAGE_VARS = frozenset({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"})
# Routes FastAPI serves itself, outside the OpenAPI document.
FASTAPI_ROUTES = frozenset({("GET", "/docs"), ("GET", "/openapi.json")})


def env_name_of(field_name: str) -> str:
    """The environment variable that sets one Settings field."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{SETTINGS_PREFIX}{field_name.upper()}"


@cache
def setting_env_names() -> dict[str, str]:
    """Every environment variable Settings reads, mapped to its field name."""
    return {env_name_of(name): name for name in Settings.model_fields}


@cache
def api_operations() -> frozenset[tuple[str, str]]:
    """(METHOD, path template) of every operation in the app's OpenAPI document."""
    paths: dict[str, dict[str, Any]] = create_app().openapi()["paths"]
    return frozenset(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


def api_paths() -> frozenset[str]:
    return frozenset(path for _, path in api_operations())


@dataclass(frozen=True)
class Invocation:
    """A command line resolved against the real `sms-sender` Typer app."""

    path: tuple[str, ...]
    params: dict[str, Any]


def invoke(argv: list[str]) -> Invocation:
    """Parse ``sms-sender ARGV`` as the CLI would; fails the test if it is not a valid call."""
    command = typer.main.get_command(cli.app)
    args = list(argv)
    path: list[str] = []
    while (subcommands := getattr(command, "commands", None)) is not None:
        if not args:
            pytest.fail(f"`sms-sender {shlex.join(argv)}` names no subcommand")
        name = args.pop(0)
        if name not in subcommands:
            pytest.fail(
                f"`sms-sender {shlex.join(argv)}`: no command {name!r} "
                f"(there are: {', '.join(sorted(subcommands))})"
            )
        command = subcommands[name]
        path.append(name)
    try:
        context = command.make_context(f"sms-sender {' '.join(path)}", args)
    except typer.TyperException as error:
        pytest.fail(f"`sms-sender {shlex.join(argv)}` is not a valid call: {error}")
    return Invocation(tuple(path), dict(context.params))


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a dotenv file, as compose and pydantic-settings read them."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, separator, value = line.partition("=")
            assert separator, f"{path.name}: not KEY=value: {line!r}"
            assert key not in values, f"{path.name}: {key} is set twice"
            values[key] = value
    return values


def placeholders_to_templates(path: str) -> str:
    """``/a/{{clientId}}``, ``/a/42`` (Postman) and ``/a/{client_id}`` (OpenAPI): ``/a/{}``."""
    return re.sub(r"\{\{[^}]+\}\}|\{[^}]+\}|(?<=/)[0-9]+(?=/|$)", "{}", path)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())
