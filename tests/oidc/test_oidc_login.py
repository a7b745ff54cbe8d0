"""Console sign-in through a real OpenID provider (authorization code + PKCE), on both databases."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth import users
from sms_sender.auth.models import Role
from sms_sender.auth.oidc import PendingLogin
from sms_sender.models import AuditEntry, User
from tests.conftest import FakeClock
from tests.oidc.conftest import SESSION_SECRET, through_provider

pytestmark = pytest.mark.usefixtures("clean_db")


async def _start(browser: httpx.AsyncClient, next_path: str = "/admin") -> str:
    """The provider's authorization URL the console sends the browser to."""
    response = await browser.get("/admin/login/oidc", params={"next": next_path})
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def _sign_in(browser: httpx.AsyncClient, login: str) -> httpx.Response:
    callback = await through_provider(await _start(browser), login)
    return await browser.get(callback)


async def _users(sessionmaker: async_sessionmaker[AsyncSession]) -> list[User]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(User).order_by(User.id))).all())


async def test_the_login_page_offers_the_provider(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/admin/login")
    assert "Sign in with Test IdP" in page.text
    assert 'href="/admin/login/oidc?next=/admin"' in page.text


async def test_the_request_carries_state_nonce_and_a_pkce_challenge(
    browser: httpx.AsyncClient, oidc_issuer: str
) -> None:
    url = urlsplit(await _start(browser))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}" == oidc_issuer
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["sms-sender"]
    assert query["redirect_uri"] == ["http://testserver/admin/auth/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32
    assert len(query["nonce"][0]) >= 32
    assert "openid" in query["scope"][0].split()


@pytest.mark.parametrize(
    ("login", "email", "role"),
    [("alice", "alice@example.com", "admin"), ("oscar", "oscar@example.com", "operator")],
)
async def test_a_user_lands_signed_in_with_the_role_of_their_group(
    browser: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    login: str,
    email: str,
    role: str,
) -> None:
    back = await _sign_in(browser, login)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/admin"
    dashboard = await browser.get("/admin")
    assert dashboard.status_code == 200
    assert email in dashboard.text
    [user] = await _users(sessionmaker)
    assert (user.name, user.email, user.role, user.auth_source) == (email, email, role, "oidc")
    assert user.password_hash is None
    assert user.last_login_at is not None
    async with sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.target == "user").order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.action, e.actor, e.source, e.target_id) for e in entries] == [
        ("created", email, "admin", user.id),
        ("signed_in", email, "admin", user.id),
    ]
    assert entries[1].detail == "oidc (Test IdP) from 127.0.0.1"


async def test_a_second_sign_in_finds_the_same_user(
    browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await _sign_in(browser, "alice")).status_code == 303
    browser.cookies.clear()
    assert (await _sign_in(browser, "alice")).status_code == 303
    assert [user.name for user in await _users(sessionmaker)] == ["alice@example.com"]


@pytest.mark.parametrize(
    ("login", "reason"),
    [
        ("eve", "eve@elsewhere.org may not sign in here"),
        ("nina", "nina@example.com is in no group that gives access here (your groups: staff)"),
        ("una", "Your e-mail address una@example.com is not verified at Test IdP"),
    ],
)
async def test_a_person_who_may_not_sign_in_is_told_why(
    browser: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    login: str,
    reason: str,
) -> None:
    refused = await _sign_in(browser, login)
    assert refused.status_code == 403
    assert reason in refused.text
    assert 'name="password"' in refused.text  # the sign-in page, to try another way
    assert (await browser.get("/admin")).status_code == 303  # still signed out
    assert await _users(sessionmaker) == []
    async with sessionmaker() as session:
        (entry,) = (await session.scalars(select(AuditEntry))).all()
    assert (entry.action, entry.target, entry.target_id) == ("sign_in_failed", "user", None)
    # An address the provider has not verified could be anybody's: not taken as the name.
    assert entry.actor == ("(unknown name)" if login == "una" else reason.split()[0])
    assert entry.detail is not None
    assert entry.detail.startswith("oidc (Test IdP) refused: ")


async def test_the_reason_is_given_in_the_browser_s_language(browser: httpx.AsyncClient) -> None:
    browser.headers["Accept-Language"] = "ru-RU,ru;q=0.9"
    refused = await _sign_in(browser, "eve")
    assert refused.status_code == 403
    assert "eve@elsewhere.org не может войти сюда" in refused.text


async def test_a_tampered_state_is_refused(
    browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    callback = urlsplit(await through_provider(await _start(browser), "alice"))
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    query["state"] = query["state"][:-4] + "AAAA"
    refused = await browser.get(f"{callback.path}?{urlencode(query)}")
    assert refused.status_code == 403
    assert "could not be trusted" in refused.text
    assert (await browser.get("/admin")).status_code == 303
    assert await _users(sessionmaker) == []


async def _callback_query(browser: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    callback = urlsplit(await through_provider(await _start(browser), "alice"))
    return callback.path, {key: values[0] for key, values in parse_qs(callback.query).items()}


async def test_an_answer_naming_another_issuer_is_refused(browser: httpx.AsyncClient) -> None:
    path, query = await _callback_query(browser)
    assert query["iss"].startswith("http://127.0.0.1:")  # the provider names itself (RFC 9207)
    query["iss"] = "https://evil.example"
    refused = await browser.get(f"{path}?{urlencode(query)}")
    assert refused.status_code == 403
    assert "could not be trusted" in refused.text


async def test_the_provider_s_refusal_is_shown_but_only_for_this_browser_s_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    path, query = await _callback_query(browser)
    said = {"error": "access_denied", "error_description": "the user said no"}
    forged = await browser.get(f"{path}?{urlencode(said | {'state': 'someone-elses'})}")
    assert forged.status_code == 403
    assert "the user said no" not in forged.text
    assert "could not be trusted" in forged.text
    path, query = await _callback_query(browser)
    refused = await browser.get(f"{path}?{urlencode(said | {'state': query['state']})}")
    assert refused.status_code == 403
    assert "Test IdP did not sign you in: the user said no." in refused.text


async def test_a_callback_in_another_browser_is_refused(
    browser: httpx.AsyncClient, app_client_without_cookies: httpx.AsyncClient
) -> None:
    callback = await through_provider(await _start(browser), "alice")
    refused = await app_client_without_cookies.get(callback)
    assert refused.status_code == 403
    assert "could not be trusted" in refused.text


async def test_an_id_token_for_another_nonce_is_refused(
    browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    callback = await through_provider(await _start(browser), "alice")
    signer = URLSafeTimedSerializer(SESSION_SECRET.encode(), salt="sms-sender-oidc")
    pending = PendingLogin.from_dict(signer.loads(browser.cookies["sms_sender_oidc"]))
    forged = PendingLogin(pending.state, "another-nonce", pending.code_verifier, pending.next_url)
    browser.cookies.set(
        "sms_sender_oidc", signer.dumps(forged.to_dict()), path="/admin/auth/callback"
    )
    refused = await browser.get(callback)
    assert refused.status_code == 403
    assert "could not be verified" in refused.text
    assert "nonce" in refused.text
    assert await _users(sessionmaker) == []


async def test_a_disabled_user_stays_out(
    browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    assert (await _sign_in(browser, "oscar")).status_code == 303
    async with sessionmaker() as session:
        user = await users.by_name(session, "oscar@example.com")
        await users.disable(session, user, clock.now())
        await session.commit()
    browser.cookies.clear()
    refused = await _sign_in(browser, "oscar")
    assert refused.status_code == 403
    assert "was disabled by an administrator" in refused.text


async def test_a_local_user_of_the_same_name_is_not_taken_over(
    browser: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with sessionmaker() as session:
        await users.create_local(
            session, "alice@example.com", Role.VIEWER, "a long password", clock.now()
        )
        await session.commit()
    refused = await _sign_in(browser, "alice")
    assert refused.status_code == 403
    assert "signs in with a password here" in refused.text
    [user] = await _users(sessionmaker)
    assert (user.auth_source, user.role) == ("local", "viewer")
