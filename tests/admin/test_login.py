"""Signing in and out of the console, sessions, CSRF and the slowdown after failures."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sms_sender.app import create_app
from sms_sender.audit.models import AuditEntry, AuditTarget
from sms_sender.auth import users
from sms_sender.auth.models import LoginFailure, Role, UserSession
from sms_sender.auth.sessions import SESSION_COOKIE
from sms_sender.auth.throttle import LoginThrottle
from sms_sender.config import Settings
from tests.admin.conftest import HTML, PASSWORD, MakeUser, SignedIn, csrf_of, page_csrf, sign_in
from tests.conftest import FakeClock
from tests.dispatch.test_logging import json_log_lines  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_root_and_console_send_a_stranger_to_sign_in(
    browser_like: httpx.AsyncClient,
) -> None:
    root = await browser_like.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/admin"
    console = await browser_like.get("/admin?tab=running")
    assert console.status_code == 303
    assert console.headers["location"] == "/admin/login?next=/admin%3Ftab%3Drunning"


async def test_sign_in_sets_a_guarded_cookie_and_opens_the_console(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("olga", Role.VIEWER)
    response = await sign_in(browser_like, "olga")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    page = await browser_like.get("/admin")
    assert page.status_code == 200
    assert "olga" in page.text


async def test_wrong_password_and_unknown_name_look_the_same(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("olga")
    wrong = await sign_in(browser_like, "olga", "not the password")
    unknown = await sign_in(browser_like, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


async def test_sign_in_form_without_its_token_is_refused(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("olga")
    response = await browser_like.post(
        "/admin/login", data={"name": "olga", "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_next_never_leaves_the_console(
    browser_like: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("olga")
    form = await browser_like.get("/admin/login")
    response = await browser_like.post(
        "/admin/login",
        data={
            "name": "olga",
            "password": "correct horse battery",
            "csrf_token": csrf_of(form.text),
            "next": "https://evil.example/admin",
        },
    )
    assert response.headers["location"] == "/admin"


async def test_a_write_without_the_session_csrf_token_is_refused(
    signed_in: SignedIn, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client = await signed_in(Role.OPERATOR)
    refused = await client.post("/admin/logout", data={})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    forged = await client.post("/admin/logout", data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert (await client.get("/admin")).status_code == 200  # still signed in


async def test_logout_ends_the_session_even_for_a_copied_cookie(
    signed_in: SignedIn, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client = await signed_in(Role.VIEWER)
    copied = client.cookies[SESSION_COOKIE]
    response = await client.post("/admin/logout", data={"csrf_token": await page_csrf(client)})
    assert response.status_code == 303
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 0
    client.cookies.set(SESSION_COOKIE, copied)
    assert (await client.get("/admin")).status_code == 303


async def test_a_disabled_users_session_stops_working(
    signed_in: SignedIn, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    client = await signed_in(Role.ADMIN)
    assert (await client.get("/admin")).status_code == 200
    async with sessionmaker() as session:
        user = await users.by_name(session, "user-admin")
        await users.disable(session, user, clock.now())
        await session.commit()
    assert (await client.get("/admin")).status_code == 303
    assert (await sign_in(client, "user-admin")).status_code == 401


async def test_a_session_ends_after_its_lifetime(signed_in: SignedIn, clock: FakeClock) -> None:
    client = await signed_in(Role.VIEWER)
    clock.advance(minutes=719)
    assert (await client.get("/admin")).status_code == 200
    clock.advance(minutes=2)
    assert (await client.get("/admin")).status_code == 303


async def test_repeated_failures_slow_down_sign_in(
    browser_like: httpx.AsyncClient, make_user: MakeUser, clock: FakeClock
) -> None:
    await make_user("olga")
    for _ in range(5):
        assert (await sign_in(browser_like, "olga", "guess")).status_code == 401
    assert (await sign_in(browser_like, "olga", "guess")).status_code == 401  # 5 free, then 1 s
    refused = await sign_in(browser_like, "olga")  # even the right password waits its turn
    assert refused.status_code == 429
    assert "Wait 1 seconds" in refused.text
    clock.advance(seconds=1)
    assert (await sign_in(browser_like, "olga")).status_code == 303


async def test_throttle_doubles_the_wait_per_user_and_limits_an_address(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    throttle = LoginThrottle(free_failures=2, free_failures_per_address=4)
    async with sessionmaker() as session:
        for _ in range(3):
            await throttle.failed(session, "olga", "10.0.0.1", now)
        assert await throttle.wait_needed(session, "Olga ", "10.0.0.9", now) == timedelta(seconds=1)
        await throttle.failed(session, "olga", "10.0.0.2", now)
        assert await throttle.wait_needed(session, "olga", "10.0.0.9", now) == timedelta(seconds=2)
        assert await throttle.wait_needed(session, "ivan", "10.0.0.9", now) == timedelta(0)
        await throttle.failed(session, "ivan", "10.0.0.1", now)  # fourth from the address: free
        await throttle.failed(session, "petr", "10.0.0.1", now)  # fifth: the address must wait
        assert await throttle.wait_needed(session, "somebody", "10.0.0.1", now) == timedelta(
            seconds=1
        )
        await throttle.succeeded(session, "olga")
        assert await throttle.wait_needed(session, "olga", "10.0.0.9", now) == timedelta(0)
        later = now + timedelta(hours=1)
        assert await throttle.wait_needed(session, "somebody", "10.0.0.1", later) == timedelta(0)
        # A failure after the count was forgotten starts again from one: free, no wait.
        await throttle.failed(session, "petr", "10.0.0.1", later)
        assert await throttle.wait_needed(session, "petr", "10.0.0.1", later) == timedelta(0)


async def test_the_slowdown_holds_across_processes(
    app: FastAPI,
    browser_like: httpx.AsyncClient,
    make_user: MakeUser,
    settings: Settings,
    clock: FakeClock,
    clean_db: AsyncEngine,
) -> None:
    """Failures counted by one API process make another refuse: the count is in the database."""
    await make_user("olga")
    for _ in range(6):  # five free, the sixth sets a wait of 1 s
        assert (await sign_in(browser_like, "olga", "guess")).status_code == 401
    other = create_app(settings, clock=clock, db_engine=clean_db)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=HTML
        ) as elsewhere:
            refused = await sign_in(elsewhere, "olga")
            assert refused.status_code == 429
            assert "Wait 1 seconds" in refused.text
            clock.advance(seconds=1)
            assert (await sign_in(elsewhere, "olga")).status_code == 303


async def test_the_stored_slowdown_keeps_no_name_readable(
    browser_like: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # A password typed in the name field must not end up readable in the database.
    await sign_in(browser_like, "hunter2-secret", "guess")
    async with sessionmaker() as session:
        keys = (await session.scalars(select(LoginFailure.key))).all()
    assert len(keys) == 2  # the name's count and the address's
    assert all(re.fullmatch("[0-9a-f]{64}", key) for key in keys)


async def test_sign_ins_and_sign_outs_are_audited_without_the_password(
    browser_like: httpx.AsyncClient,
    make_user: MakeUser,
    sessionmaker: async_sessionmaker[AsyncSession],
    json_log_lines: io.StringIO,  # noqa: F811
) -> None:
    olga = await make_user("olga")
    assert (await sign_in(browser_like, "olga", "wrong-password-1")).status_code == 401
    assert (await sign_in(browser_like, "my-password-2", "x")).status_code == 401
    assert (await sign_in(browser_like, "olga")).status_code == 303
    logout = await browser_like.post(
        "/admin/logout", data={"csrf_token": await page_csrf(browser_like)}
    )
    assert logout.status_code == 303
    async with sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target == AuditTarget.USER, AuditEntry.action != "created")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(e.actor, e.action, e.target_id, e.detail) for e in entries] == [
        ("olga", "sign_in_failed", olga.id, "wrong name or password from 127.0.0.1"),
        ("(unknown name)", "sign_in_failed", None, "wrong name or password from 127.0.0.1"),
        ("olga", "signed_in", olga.id, "password from 127.0.0.1"),
        ("olga", "signed_out", olga.id, "from 127.0.0.1"),
    ]
    assert {e.source for e in entries} == {"admin"}
    lines = [json.loads(line) for line in json_log_lines.getvalue().splitlines() if line.strip()]
    audit_lines = [line for line in lines if line.get("event") == "audit"]
    assert [line["action"] for line in audit_lines][-4:] == [
        "sign_in_failed",
        "sign_in_failed",
        "signed_in",
        "signed_out",
    ]
    assert audit_lines[-1]["user_id"] == olga.id
    everything = json_log_lines.getvalue()
    assert "wrong-password-1" not in everything
    assert "my-password-2" not in everything
    assert PASSWORD not in everything


async def test_passwords_are_stored_as_argon2_hashes(
    make_user: MakeUser, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await make_user("olga")
    async with sessionmaker() as session:
        user = await users.by_name(session, "olga")
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash


async def test_language_follows_the_browser_and_the_switch(
    browser_like: httpx.AsyncClient,
) -> None:
    russian = await browser_like.get("/admin/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Вход в консоль" in russian.text
    english = await browser_like.get("/admin/login", headers={"Accept-Language": "de, en;q=0.5"})
    assert "Sign in to the console" in english.text
    switched = await browser_like.get("/admin/lang?to=ru&next=/admin/login")
    assert switched.headers["location"] == "/admin/login"
    chosen = await browser_like.get("/admin/login", headers={"Accept-Language": "en"})
    assert "Вход в консоль" in chosen.text


async def test_the_session_cookie_is_secure_over_https(app: FastAPI, make_user: MakeUser) -> None:
    await make_user("olga")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await sign_in(client, "olga")
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]
