"""The Postman collection covers the whole API contract and is well formed.

scripts/run-newman runs it against a live server; these tests check, without one, that it asks
every route the app has, asks none it lacks, asserts on every answer, and that every variable it
uses is set before it is needed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from tests.deploy._contract import (
    FASTAPI_ROUTES,
    ROOT,
    api_operations,
    load_json,
    placeholders_to_templates,
)

POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "sms-sender.postman_collection.json"
SCHEMA_V2_1 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
FOLDERS = (
    "Operations",
    "Auth",
    "Clients",
    "Tags",
    "Messages",
    "Mailings",
    "Reports",
    "Stats",
    "Consent",
    "Audit",
    "Full flow",
)
# Given on the newman command line (scripts/run-newman) or in Postman's collection variables.
RUN_VARIABLES = frozenset({"baseUrl", "token"})


@dataclass(frozen=True)
class Request:
    folder: str
    name: str
    method: str
    path: str
    body: str
    prerequest: str
    tests: str

    @property
    def route(self) -> tuple[str, str]:
        return self.method, placeholders_to_templates(self.path)

    def variables_used(self) -> set[str]:
        return set(re.findall(r"\{\{(\w+)\}\}", self.path + "\n" + self.body))


@cache
def _collection() -> dict[str, Any]:
    loaded: dict[str, Any] = load_json(COLLECTION)
    return loaded


def _script(item: dict[str, Any], kind: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in item.get("event", [])
        if event["listen"] == kind
    )


def _requests() -> Iterator[Request]:
    for folder in _collection()["item"]:
        for item in folder["item"]:
            request = item["request"]
            url = request["url"]
            assert url["host"] == ["{{baseUrl}}"], item["name"]
            assert url["raw"].startswith("{{baseUrl}}/"), item["name"]
            path = "/" + "/".join(url["path"])
            assert url["raw"].split("?")[0] == "{{baseUrl}}" + path, item["name"]
            yield Request(
                folder=folder["name"],
                name=item["name"],
                method=request["method"],
                path=path,
                body=request.get("body", {}).get("raw", ""),
                prerequest=_script(item, "prerequest"),
                tests=_script(item, "test"),
            )


def test_is_a_collection_v2_1() -> None:
    info = _collection()["info"]
    assert info["schema"] == SCHEMA_V2_1
    assert info["name"] == "sms-sender"


def test_has_the_base_url_and_token_variables() -> None:
    variables = {variable["key"]: variable for variable in _collection()["variable"]}
    assert set(variables) == RUN_VARIABLES
    assert variables["baseUrl"]["value"] == "http://127.0.0.1:8000"


def test_authenticates_every_request_with_the_token_unless_it_says_otherwise() -> None:
    assert _collection()["auth"] == {
        "type": "bearer",
        "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}],
    }


def test_has_a_folder_per_resource_and_the_full_flow() -> None:
    assert tuple(folder["name"] for folder in _collection()["item"]) == FOLDERS


def test_asks_every_route_of_the_api() -> None:
    asked = {request.route for request in _requests()}
    contract = {(method, placeholders_to_templates(path)) for method, path in api_operations()}
    assert sorted(contract - asked) == [], "routes with no request in the collection"


def test_asks_no_route_the_api_lacks() -> None:
    known = {
        (method, placeholders_to_templates(path))
        for method, path in api_operations() | FASTAPI_ROUTES
    }
    unknown = sorted(f"{r.folder} / {r.name}" for r in _requests() if r.route not in known)
    assert unknown == []


def test_every_request_asserts_its_status_code() -> None:
    for request in _requests():
        assert "pm.test(" in request.tests, f"{request.name}: no pm.test"
        assert "pm.response.to.have.status(" in request.tests, f"{request.name}: no status check"


@pytest.mark.parametrize("status", [200, 201, 204, 401, 404, 409, 422])
def test_asserts_success_and_error_status(status: int) -> None:
    assert any(f"to.have.status({status})" in request.tests for request in _requests())


def test_checks_problem_details_on_every_error_answer() -> None:
    collection_tests = _script(_collection(), "test")
    assert "application/problem+json" in collection_tests
    assert "below(500)" in collection_tests, "no 5xx anywhere"


def test_json_bodies_are_valid_json_once_variables_are_filled_in() -> None:
    for request in _requests():
        if request.body and request.body.lstrip().startswith("{"):
            json.loads(re.sub(r"\{\{\w+\}\}", "1", request.body))


def test_every_variable_is_set_before_a_request_uses_it() -> None:
    available = set(RUN_VARIABLES)
    for request in _requests():
        available |= _variables_set(request.prerequest)
        missing = request.variables_used() - available
        assert not missing, f"{request.folder} / {request.name} uses unset {sorted(missing)}"
        available |= _variables_set(request.tests)


def _variables_set(script: str) -> set[str]:
    return set(re.findall(r"pm\.collectionVariables\.set\(\s*'(\w+)'", script))


def test_full_flow_chains_client_message_mailing_reports_stats() -> None:
    flow = [request for request in _requests() if request.folder == "Full flow"]
    steps = [(request.method, request.route[1]) for request in flow]
    assert steps == [
        ("POST", "/api/v1/clients"),
        ("POST", "/api/v1/messages"),
        ("POST", "/api/v1/mailings"),
        ("GET", "/api/v1/reports"),
        ("GET", "/api/v1/mailings/{}/stats"),
        ("GET", "/api/v1/stats"),
    ]
    mailing = flow[2]
    assert {"flowTag", "flowMessageId"} <= mailing.variables_used()
    assert "new Date(" in mailing.prerequest, "start_at is computed at run time"


def test_runs_use_fresh_phones() -> None:
    creates = [r for r in _requests() if r.route == ("POST", "/api/v1/clients")]
    fresh = [r for r in creates if "Math.random()" in r.prerequest]
    assert fresh, "a fixed phone would make the second run fail with 409"


def test_newman_is_pinned_and_locked() -> None:
    package = load_json(POSTMAN / "package.json")
    lock = load_json(POSTMAN / "package-lock.json")
    pinned = package["devDependencies"]["newman"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin an exact newman version"
    assert lock["packages"]["node_modules/newman"]["version"] == pinned
    assert lock["packages"]["node_modules/newman"]["integrity"].startswith("sha512-")


def test_run_newman_script_is_executable() -> None:
    assert os.access(ROOT / "scripts" / "run-newman", os.X_OK)
