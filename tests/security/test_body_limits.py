"""Bodies are limited before they are read, and an anonymous caller's body is never read.

Regression of issue 11: a 20 MB JSON body without a token was read and parsed whole (the
process grew by 500 MB) before the 401. Each test drives the app as a server would, counting
the body chunks the app asks for.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.security.conftest import AppFactory, raw_request

pytestmark = pytest.mark.usefixtures("clean_db")

MIB = 1024 * 1024
CLIENTS = "/api/v1/clients"
IMPORT = "/api/v1/clients/import"
HEADER = b"phone,operator_code,tag,timezone\n"


def _huge_json_chunks(total: int = 20 * MIB, chunk: int = 64 * 1024) -> list[bytes]:
    body = b'{"phone": "79001234567", "tag": "' + b"x" * total + b'"}'
    return [body[start : start + chunk] for start in range(0, len(body), chunk)]


async def test_an_anonymous_body_is_refused_before_a_byte_is_read(make_app: AppFactory) -> None:
    async with make_app() as app:
        # No Content-Length (chunked): only reading could tell the size, and nothing is read.
        answer = await raw_request(
            app,
            "POST",
            CLIENTS,
            headers={"content-type": "application/json"},
            chunks=_huge_json_chunks(),
        )

    assert answer.status == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.chunks_read == 0


async def test_a_revoked_or_unknown_token_is_refused_before_the_body_too(
    make_app: AppFactory,
) -> None:
    async with make_app() as app:
        answer = await raw_request(
            app,
            "PUT",
            f"{CLIENTS}/1",
            headers={"content-type": "application/json", "authorization": "Bearer sms_nope"},
            chunks=_huge_json_chunks(),
        )

    assert (answer.status, answer.chunks_read) == (401, 0)
    assert answer.json()["detail"] == "the bearer token is unknown or revoked"


async def test_a_declared_length_over_the_limit_is_413_unread(
    make_app: AppFactory, token: str
) -> None:
    async with make_app() as app:
        answer = await raw_request(
            app,
            "POST",
            CLIENTS,
            headers={
                "content-type": "application/json",
                "content-length": str(20 * MIB),
                "authorization": f"Bearer {token}",
            },
            chunks=_huge_json_chunks(),
        )

    assert (answer.status, answer.chunks_read) == (413, 0)
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["title"] == "Content too large"
    assert "65536 bytes" in problem["detail"]
    assert "SMS_SENDER_MAX_BODY_BYTES" in problem["detail"]


async def test_a_chunked_body_is_cut_off_at_the_limit(make_app: AppFactory, token: str) -> None:
    async with make_app() as app:
        answer = await raw_request(
            app,
            "POST",
            CLIENTS,
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
            chunks=_huge_json_chunks(),
        )

    assert answer.status == 413
    assert answer.json()["status"] == 413
    assert answer.chunks_read == 2  # 64 KiB chunks: the second passes 64 KiB; no third is read


async def test_the_limit_is_configurable_and_a_body_within_it_is_served(
    make_app: AppFactory, token: str
) -> None:
    async with make_app(max_body_bytes=2048) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            small = await client.post(CLIENTS, json={"phone": "79001234567"})
            large = await client.post(CLIENTS, json={"phone": "79001234568", "tag": "x" * 3000})

    assert small.status_code == 201
    assert large.status_code == 413
    assert "2048 bytes" in large.json()["detail"]


async def test_the_import_has_its_own_larger_limit(make_app: AppFactory, token: str) -> None:
    rows = b"".join(b"7%010d,,,\n" % number for number in range(10_000))  # 160 KB
    async with make_app() as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            response = await client.post(
                IMPORT, content=HEADER + rows, headers={"Content-Type": "text/csv"}
            )

    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 10_000


@pytest.mark.parametrize("form", ["text/csv", "multipart"])
async def test_an_import_over_its_limit_is_413_and_imports_nothing(
    make_app: AppFactory, token: str, form: str
) -> None:
    rows = b"".join(b"7%010d,,,\n" % number for number in range(1000))  # 16 KB
    async with make_app(max_import_bytes=8192) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            if form == "multipart":
                response = await client.post(IMPORT, files={"file": ("c.csv", HEADER + rows)})
            else:
                response = await client.post(
                    IMPORT, content=HEADER + rows, headers={"Content-Type": "text/csv"}
                )
            listed = (await client.get(CLIENTS)).json()["items"]

    assert response.status_code == 413
    assert "SMS_SENDER_MAX_IMPORT_BYTES" in response.json()["detail"]
    assert listed == []


async def test_no_token_route_reads_an_anonymous_body(make_app: AppFactory) -> None:
    """Walks every documented write, so a route added later cannot read bodies before the token."""
    checked = 0
    async with make_app() as app:
        for path, operations in app.openapi()["paths"].items():
            for method in set(operations) & {"post", "put", "patch", "delete"}:
                answer = await raw_request(
                    app,
                    method.upper(),
                    re.sub(r"\{[^}]+\}", "1", path),
                    headers={"content-type": "application/json"},
                    chunks=[b'{"a": 1', b"}"],
                )
                assert answer.status == 401, f"{method} {path} answered {answer.status}"
                assert answer.chunks_read == 0, f"{method} {path} read the body before the token"
                checked += 1
    assert checked >= 15
