"""Console fixtures: users of each role and httpx clients signed in as them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth import users
from sms_sender.auth.models import Role, User
from tests.conftest import FakeClock

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html"}

MakeUser = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> MakeUser:
    async def make(name: str = "olga", role: Role = Role.OPERATOR) -> User:
        async with sessionmaker() as session:
            user = await users.create_local(session, name, role, PASSWORD, clock.now())
            await session.commit()
        return user

    return make


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/admin/login", headers=HTML)
    return await client.post(
        "/admin/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
        headers=HTML,
    )


@pytest.fixture
async def browser_like(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client that asks for HTML, as a browser does."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=HTML
    ) as client:
        yield client


SignedIn = Callable[[Role], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def signed_in(browser_like: httpx.AsyncClient, make_user: MakeUser) -> SignedIn:
    async def as_role(role: Role = Role.OPERATOR) -> httpx.AsyncClient:
        user = await make_user(f"user-{role}", role)
        response = await sign_in(browser_like, user.name)
        assert response.status_code == 303, response.text
        return browser_like

    return as_role


async def page_csrf(client: httpx.AsyncClient, path: str = "/admin") -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)
