"""Bad OIDC settings stop start-up with a sentence naming the variable; who gets which role."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from sms_sender.admin.i18n import RUSSIAN
from sms_sender.app import create_app
from sms_sender.auth import oidc, oidc_access, users
from sms_sender.auth.models import Role
from sms_sender.auth.oidc_access import AccessPolicy, Identity, LoginRefused, OidcConfigurationError
from sms_sender.auth.oidc_config import OidcConfig
from sms_sender.cli import app as cli_app
from sms_sender.config import Settings

GOOD = {
    "oidc_issuer": "https://keycloak.example/realms/main",
    "oidc_client_id": "sms-sender",
    "oidc_client_secret": "s3cret",
    "oidc_group_roles": "sms-admins=admin,marketing=operator",
}


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        (GOOD | {"oidc_issuer": "http://keycloak.example/realms/main"}, "SMS_SENDER_OIDC_ISSUER="),
        (GOOD | {"oidc_issuer": "keycloak.example"}, "SMS_SENDER_OIDC_ISSUER="),
        (GOOD | {"oidc_client_id": ""}, "SMS_SENDER_OIDC_CLIENT_ID is required"),
        ({"oidc_client_id": "sms-sender"}, "SMS_SENDER_OIDC_CLIENT_ID is set but"),
        (GOOD | {"oidc_scopes": "email profile"}, "SMS_SENDER_OIDC_SCOPES="),
        (GOOD | {"oidc_group_roles": "sms-admins=boss"}, "SMS_SENDER_OIDC_GROUP_ROLES: "),
        (GOOD | {"oidc_group_roles": "admin"}, "SMS_SENDER_OIDC_GROUP_ROLES: "),
        (GOOD | {"oidc_default_role": "root"}, "SMS_SENDER_OIDC_DEFAULT_ROLE="),
        (GOOD | {"oidc_group_roles": "", "oidc_default_role": "viewer"}, "every account"),
        (GOOD | {"oidc_groups_claim": " "}, "SMS_SENDER_OIDC_GROUPS_CLAIM"),
        ({"local_login": "false"}, "SMS_SENDER_LOCAL_LOGIN=false needs an OpenID provider"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(
    values: dict[str, Any], variable: str
) -> None:
    with pytest.raises(OidcConfigurationError) as refused:
        create_app(Settings(**values))
    assert variable in str(refused.value)


def test_plain_http_is_allowed_for_a_provider_on_this_machine() -> None:
    for issuer in ("http://127.0.0.1:8080", "http://localhost:8080/realms/x/"):
        config = OidcConfig.from_settings(Settings(**GOOD | {"oidc_issuer": issuer}))
        assert config is not None
        assert config.issuer == issuer.rstrip("/")


def test_oidc_is_off_without_an_issuer() -> None:
    assert OidcConfig.from_settings(Settings()) is None


def _policy(**values: str) -> AccessPolicy:
    return AccessPolicy.from_settings(Settings(**GOOD | values))


def _person(email: str, *groups: str, verified: bool = True) -> Identity:
    return Identity(subject="s1", email=email, email_verified=verified, groups=groups)


def test_the_highest_role_of_the_mapped_groups_wins() -> None:
    policy = _policy()
    assert policy.role_for(_person("a@x.org", "marketing", "sms-admins"), "IdP") == Role.ADMIN
    assert policy.role_for(_person("a@x.org", "staff", "marketing"), "IdP") == Role.OPERATOR


def test_allowed_emails_and_domains_admit_with_the_default_role() -> None:
    policy = _policy(
        oidc_allowed_emails="Boss@Partner.org",
        oidc_allowed_domains="@example.com",
        oidc_group_roles="",
        oidc_default_role="viewer",
    )
    assert policy.role_for(_person("boss@partner.org"), "IdP") == Role.VIEWER
    assert policy.role_for(_person("Ann@Example.com"), "IdP") == Role.VIEWER
    with pytest.raises(LoginRefused, match=r"ann@partner\.org may not sign in here"):
        policy.role_for(_person("ann@partner.org"), "IdP")


def test_default_deny_refuses_those_without_a_mapped_group() -> None:
    with pytest.raises(LoginRefused, match=r"your groups: -\)"):
        _policy().role_for(_person("a@x.org"), "IdP")


def test_a_missing_e_mail_is_refused_with_the_way_out() -> None:
    with pytest.raises(LoginRefused, match="did not tell us your e-mail address"):
        _policy().role_for(_person("", "sms-admins"), "IdP")


def test_a_refusal_can_be_said_in_another_language() -> None:
    refused = LoginRefused("%(email)s may not sign in here.", email="a@x.org")
    assert (
        refused.say(lambda text: text.replace("may not", "cannot"))
        == "a@x.org cannot sign in here."
    )


@asynccontextmanager
async def _console(
    database_url: str, engine: AsyncEngine, **values: Any
) -> AsyncIterator[httpx.AsyncClient]:
    configured = Settings(database_url=database_url, provider="fake", **values)
    application = create_app(configured, db_engine=engine)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_without_oidc_there_is_no_provider_button_and_no_route(
    database_url: str, clean_db: AsyncEngine
) -> None:
    async with _console(database_url, clean_db) as client:
        page = await client.get("/admin/login")
        assert "/admin/login/oidc" not in page.text
        assert 'name="password"' in page.text
        assert (await client.get("/admin/login/oidc")).status_code == 404


async def test_with_password_sign_in_off_only_the_provider_is_offered(
    database_url: str, clean_db: AsyncEngine
) -> None:
    only_oidc = GOOD | {"oidc_provider_name": "Keycloak", "local_login": False}
    async with _console(database_url, clean_db, **only_oidc) as client:
        page = await client.get("/admin/login")
        assert "Sign in with Keycloak" in page.text
        assert 'name="password"' not in page.text
        refused = await client.post(
            "/admin/login", data={"name": "olga", "password": "x" * 12, "csrf_token": "t"}
        )
        assert refused.status_code == 403
        assert "Signing in with a password is turned off here." in refused.text


def test_every_refusal_has_a_russian_translation() -> None:
    """Each LoginRefused text in the code (read from the source) is in the console's Russian."""
    texts = []
    for module in (oidc, oidc_access, users):
        for node in ast.walk(ast.parse(Path(module.__file__ or "").read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "LoginRefused":
                first = node.args[0]
                texts.append(
                    oidc.START_AGAIN if isinstance(first, ast.Name) else ast.literal_eval(first)
                )
    assert len(texts) >= 12
    assert [text for text in texts if text not in RUSSIAN] == []


def test_serve_stops_with_the_sentence_and_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_SENDER_OIDC_ISSUER", "http://idp.example")
    monkeypatch.setenv("SMS_SENDER_OIDC_CLIENT_ID", "sms-sender")
    result = CliRunner().invoke(cli_app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert (
        "error: SMS_SENDER_OIDC_ISSUER='http://idp.example' must be an https:// URL"
        in result.output
    )
    assert "Traceback" not in result.output
