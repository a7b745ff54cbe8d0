"""A real OpenID provider (the npm package oidc-provider, tests/oidc/provider.mjs) on 127.0.0.1.

Without node or ``npm ci --prefix tests/oidc`` the OIDC tests are skipped on a laptop and fail
in CI, like the PostgreSQL half of the suite.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sms_sender.config import Settings
from tests.conftest import IN_CI, FakeClock

HERE = Path(__file__).parent
PROVIDER_SCRIPT = HERE / "provider.mjs"
CLIENT_ID = "sms-sender"
CLIENT_SECRET = "sms-sender-test-secret"
SESSION_SECRET = "tests-only-session-secret"
APP_BASE = "http://testserver"
PUBLIC_URL = "http://127.0.0.1:8000"


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}: CI must run the OIDC tests against a real provider")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def served_console_port() -> int:
    """The port a real ``sms-sender serve`` of the browser test listens on (its redirect URI)."""
    return _free_port()


@pytest.fixture(scope="session")
def oidc_issuer(
    tmp_path_factory: pytest.TempPathFactory, served_console_port: int
) -> Iterator[str]:
    """The issuer URL of a provider started for the whole run, stopped at its end."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        _missing("oidc-provider is not installed: npm ci --prefix tests/oidc")
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("w")
    environment = os.environ | {
        "PORT": str(port),
        "REDIRECT_URIS": ",".join(
            f"{base}/admin/auth/callback"
            for base in (APP_BASE, PUBLIC_URL, f"http://127.0.0.1:{served_console_port}")
        ),
    }
    process = subprocess.Popen(
        [str(node), str(PROVIDER_SCRIPT)], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_ready(issuer, process)
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_until_ready(issuer: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the OpenID provider exited with {process.returncode}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("the OpenID provider did not start within 20 s")


@pytest.fixture
def clock() -> FakeClock:
    # The provider dates its tokens by the wall clock; the id_token's expiry is checked by ours.
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def oidc_settings(oidc_issuer: str) -> dict[str, str]:
    return {
        "oidc_issuer": oidc_issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_scopes": "openid email groups",
        "oidc_provider_name": "Test IdP",
        "oidc_allowed_domains": "example.com",
        "oidc_group_roles": "sms-admins=admin,sms-operators=operator",
        "session_secret": SESSION_SECRET,
    }


@pytest.fixture
def settings(database_url: str, oidc_settings: dict[str, str]) -> Settings:
    return Settings(database_url=database_url, provider="fake", **oidc_settings)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The console as a browser sees it: cookies kept, HTML asked for."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=APP_BASE, headers={"Accept": "text/html"}
    ) as client:
        yield client


async def through_provider(authorization_url: str, login: str) -> str:
    """Sign in as ``login`` at the provider's own pages; the callback URL it sends us back to."""
    async with httpx.AsyncClient() as provider:
        response = await provider.get(authorization_url)
        for _ in range(6):
            while response.is_redirect:
                target = str(response.url.join(response.headers["location"]))
                if not target.startswith("http://127.0.0.1"):
                    return target  # back to the service: the browser would go there now
                response = await provider.get(target)
            assert response.status_code == 200, response.text
            action = re.search(r'action="([^"]+)"', response.text)
            prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
            assert action, response.text
            assert prompt, response.text
            form = {"prompt": prompt.group(1), "login": login, "password": "any"}
            response = await provider.post(str(response.url.join(action.group(1))), data=form)
    raise AssertionError("the provider never sent the browser back")


@pytest.fixture
async def app_client_without_cookies(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser: none of ``browser``'s cookies."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=APP_BASE, headers={"Accept": "text/html"}
    ) as client:
        yield client
