"""The Dockerfile builds from the hashed lock, runs unprivileged and starts a real command.

No Docker engine is available where these tests run, so the image is never built here: the
Dockerfile is parsed and every name in it is checked against the repository and the code.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.deploy._contract import ROOT, SETTINGS_PREFIX, api_paths, invoke, setting_env_names

BUILD_CONTEXT_FILES = ("requirements.lock", "pyproject.toml", "README.md", "sms_sender")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of ENTRYPOINT/CMD (the shell form would hide signals from the app)."""
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list), f"{self.keyword} must use the JSON (exec) form"
        return [str(part) for part in parsed]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [each for each in self.instructions if each.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def runs(self) -> str:
        return "\n".join(each.arguments for each in self.all("RUN"))


def _instructions(text: str) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [
        Instruction(line.split()[0].upper(), line.partition(" ")[2].strip()) for line in logical
    ]


@cache
def _dockerfile() -> tuple[dict[str, str], tuple[Stage, ...]]:
    """Build arguments declared before the first FROM, and the stages in order."""
    build_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in _instructions((ROOT / "Dockerfile").read_text()):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages and instruction.keyword == "ARG":
            key, _, default = instruction.arguments.partition("=")
            build_args[key] = default
        elif stages:
            stages[-1].instructions.append(instruction)
    return build_args, tuple(stages)


def _resolve(base: str) -> str:
    build_args, _ = _dockerfile()
    return re.sub(r"\$\{(\w+)\}", lambda match: build_args[match[1]], base)


def _builder() -> Stage:
    return _dockerfile()[1][0]


def _final() -> Stage:
    return _dockerfile()[1][-1]


def _exposed_port() -> int:
    return int(_final().last("EXPOSE").arguments.split("/")[0])


def test_builds_in_two_stages_on_the_python_the_lock_was_resolved_for() -> None:
    _, stages = _dockerfile()
    assert len(stages) >= 2, "a builder stage keeps compilers and pip caches out of the image"
    lock_header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    locked_python = re.search(r"--python-version (\d+\.\d+)", lock_header)
    assert locked_python, lock_header
    for stage in (_builder(), _final()):
        image = _resolve(stage.base)
        assert image.startswith(f"python:{locked_python[1]}-slim"), image


def test_installs_dependencies_only_from_the_hashed_lock() -> None:
    runs = _builder().runs()
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]*-r requirements\.lock", runs), runs
    project_install = re.search(r"pip install [^\n]*--no-deps[^\n]* \.(\s|$)", runs)
    assert project_install, "the project itself must be installed with --no-deps"


def test_image_runs_the_versions_the_tests_run_against() -> None:
    """requirements.lock (image) pins each package exactly as requirements-dev.lock (tests)."""
    runtime = _pins(ROOT / "requirements.lock")
    dev = _pins(ROOT / "requirements-dev.lock")
    drift = {name: (pin, dev.get(name)) for name, pin in runtime.items() if dev.get(name) != pin}
    assert not drift, f"runtime and dev locks disagree: {drift}"
    assert runtime, "requirements.lock pins nothing"


def _pins(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, flags=re.MULTILINE))
    hashed = len(re.findall(r"^[A-Za-z0-9_.\-\[\]]+==\S+ \\\n\s+--hash=sha256:", text, re.M))
    assert hashed == len(pins), "every pin in a lock file needs its hashes (--require-hashes)"
    return pins


def test_final_stage_copies_the_virtualenv_and_runs_as_a_non_root_user() -> None:
    builder, final = _builder(), _final()
    copies = [each.arguments for each in final.all("COPY")]
    assert any(f"--from={builder.name}" in each and "/opt/venv" in each for each in copies), copies
    user = final.last("USER").arguments.split(":")[0]
    assert user not in {"root", "0"}, "the service must not run as root"


def test_entry_point_is_the_installed_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert _final().last("ENTRYPOINT").exec_form() == ["sms-sender"]
    assert "sms-sender" in scripts


def test_default_command_serves_the_api_on_the_exposed_port() -> None:
    invocation = invoke(_final().last("CMD").exec_form())
    assert invocation.path == ("api",)
    assert invocation.params["host"] == "0.0.0.0", "inside a container, listen on every interface"
    assert invocation.params["port"] == _exposed_port()


def test_health_check_asks_the_liveness_route_on_the_exposed_port() -> None:
    health_check = _final().last("HEALTHCHECK").arguments
    command = json.loads(health_check[health_check.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"], "slim images have no curl: use the standard library"
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", command[2])
    assert url, command
    assert int(url[1]) == _exposed_port()
    assert url[2] == "/healthz"
    assert url[2] in api_paths()


def test_everything_copied_from_the_build_context_is_let_in_by_dockerignore() -> None:
    sources = [
        source
        for stage in _dockerfile()[1]
        for each in stage.all("COPY")
        if not each.arguments.startswith("--from")
        for source in shlex.split(each.arguments)[:-1]
    ]
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert sorted(set(sources)) == sorted(BUILD_CONTEXT_FILES)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert source.rstrip("/") in allowed, f".dockerignore keeps {source} out of the context"


def test_settings_given_in_the_image_are_real_settings() -> None:
    names = [
        assignment.partition("=")[0]
        for each in _final().all("ENV")
        for assignment in shlex.split(each.arguments)
    ]
    ours = [name for name in names if name.startswith((SETTINGS_PREFIX, "SMSAERO_"))]
    assert set(ours) <= set(setting_env_names()), ours


def _duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_health_check_reports_a_fresh_container_healthy_within_seconds() -> None:
    """The first check runs one interval after the start (no --start-interval before Docker 25)."""
    health_check = _final().last("HEALTHCHECK").arguments
    options = dict(re.findall(r"--([\w-]+)=(\S+)", health_check.split("CMD")[0]))
    first_check = _duration_seconds(options.get("start-interval", options["interval"]))
    assert first_check <= 5, health_check
    assert _duration_seconds(options["timeout"]) <= _duration_seconds(options["interval"])


def test_builds_without_pulling_a_dockerfile_frontend() -> None:
    """A `# syntax=` line makes BuildKit pull docker/dockerfile: no build without a registry."""
    first_lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert not any(re.match(r"#\s*syntax\s*=", line) for line in first_lines)


def test_final_virtualenv_holds_no_installer() -> None:
    """pip and setuptools are not in the lock: the builder drops them before the venv is copied."""
    runs = _builder().runs()
    removal = re.search(r"pip uninstall [^\n]*--yes[^\n]*", runs)
    assert removal, runs
    assert {"pip", "setuptools"} <= set(removal[0].split()), runs
    locked = _pins(ROOT / "requirements.lock")
    assert not {"pip", "setuptools"} & set(locked), "a locked package must stay installed"


def test_pip_index_settings_are_build_arguments_of_the_builder_only() -> None:
    declared = {each.arguments.partition("=")[0] for each in _builder().all("ARG")}
    assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"} <= declared
    assert not [each for each in _final().all("ARG") if each.arguments.startswith("PIP_")]
