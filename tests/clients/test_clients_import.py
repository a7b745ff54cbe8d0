from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from sms_sender import text_lines
from sms_sender.clients import csv_import
from sms_sender.clients.models import ClientFacetCount
from sms_sender.consent.service import hasher_for
from sms_sender.errors import InvalidInput
from sms_sender.models import Client
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("clean_db")

IMPORT = "/api/v1/clients/import"
HEADER = "phone,operator_code,tag,timezone"

# One CSV with every kind of broken row among good ones; line numbers count the header as 1.
MIXED_CSV = (
    "\r\n".join(
        [
            "\ufeff" + HEADER,  # 1: a BOM, as Excel writes it
            "79001234567,,vip,Europe/Moscow",  # 2: ok, operator_code defaults to 900
            "79161234567,916,,",  # 3: ok, no tag, default time zone
            "",  # 4: blank, skipped
            "89001234567,,,",  # 5: bad phone
            "79261234567,,,Mars/Olympus",  # 6: bad time zone
            "79001234567,,again,",  # 7: repeats line 2
            "79031234567,903,new,UTC,extra",  # 8: too many cells
            "79041234567,904",  # 9: too few cells
            "79551234567,,,",  # 10: already in the directory
            '"79051234567","905","tag, with comma","Asia/Tokyo"',  # 11: ok, quoted
            "   ",  # 12: blank, skipped
            "79061234567,12,,",  # 13: bad operator code
            f"79071234567,,{'x' * 65},",  # 14: tag too long
            ",,,",  # 15: no phone
            '79081234567,"unterminated,,',  # 16: broken quoting
            " 79091234567 , 909 , spaced , UTC ",  # 17: ok, cells trimmed
        ]
    )
    + "\r\n"
)

MIXED_ERRORS = [
    (5, "phone: must be 11 digits starting with 7"),
    (6, "timezone: must be an IANA time zone name"),
    (7, "phone 79001234567 is already on line 2"),
    (8, "expected 4 cells (phone,operator_code,tag,timezone), got 5"),
    (9, "expected 4 cells (phone,operator_code,tag,timezone), got 2"),
    (10, "phone 79551234567 already belongs to a client"),
    (13, "operator_code: must be 3 digits"),
    (14, "tag: String should have at most 64 characters"),
    (15, "phone: is empty"),
    (16, "not valid CSV"),
]


async def _create(client: httpx.AsyncClient, phone: str) -> None:
    assert (await client.post("/api/v1/clients", json={"phone": phone})).status_code == 201


async def _all_clients(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get("/api/v1/clients")).json()["items"]
    return items


def _assert_mixed_result(body: dict[str, Any]) -> None:
    assert body["imported"] == 4
    assert body["failed"] == len(MIXED_ERRORS)
    assert body["errors_truncated"] is False
    assert [error["line"] for error in body["errors"]] == [line for line, _ in MIXED_ERRORS]
    for error, (_, expected) in zip(body["errors"], MIXED_ERRORS, strict=True):
        assert error["error"].startswith(expected), error


async def _assert_mixed_rows_stored(client: httpx.AsyncClient) -> None:
    stored = {
        item["phone"]: (item["operator_code"], item["tag"], item["timezone"])
        for item in await _all_clients(client)
    }
    assert stored == {
        "79551234567": ("955", None, "UTC"),
        "79001234567": ("900", "vip", "Europe/Moscow"),
        "79161234567": ("916", None, "UTC"),
        "79051234567": ("905", "tag, with comma", "Asia/Tokyo"),
        "79091234567": ("909", "spaced", "UTC"),
    }


async def test_raw_csv_keeps_valid_rows_and_reports_the_rest_by_line(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, "79551234567")
    response = await client.post(
        IMPORT, content=MIXED_CSV.encode(), headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    _assert_mixed_result(response.json())
    await _assert_mixed_rows_stored(client)


async def test_multipart_file_imports_the_same_way(client: httpx.AsyncClient) -> None:
    await _create(client, "79551234567")
    response = await client.post(
        IMPORT, files={"file": ("clients.csv", MIXED_CSV.encode(), "text/csv")}
    )
    assert response.status_code == 200, response.text
    _assert_mixed_result(response.json())
    await _assert_mixed_rows_stored(client)


async def test_imported_rows_take_the_configured_default_timezone(
    client: httpx.AsyncClient, app: Any, settings: Any
) -> None:
    app.state.settings = settings.model_copy(update={"default_timezone": "Asia/Yekaterinburg"})
    csv_body = f"{HEADER}\n79001234567,,,\n"
    response = await client.post(IMPORT, content=csv_body, headers={"Content-Type": "text/csv"})
    assert response.json()["imported"] == 1
    assert (await _all_clients(client))[0]["timezone"] == "Asia/Yekaterinburg"


async def test_multipart_without_a_file_field_is_422(client: httpx.AsyncClient) -> None:
    csv_body = f"{HEADER}\n79001234567,,,\n"
    response = await client.post(IMPORT, files={"upload": ("clients.csv", csv_body, "text/csv")})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "file"]
    assert await _all_clients(client) == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/octet-stream", None]
)
async def test_other_content_types_are_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(IMPORT, content=f"{HEADER}\n79001234567,,,\n", headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert "text/csv" in response.json()["detail"]
    assert await _all_clients(client) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "the file is empty"),
        ("79001234567,,,\n79161234567,,,\n", "the first line must be the header"),
        ("phone,tag\n79001234567,vip\n", "the first line must be the header"),
        ("phone;operator_code;tag;timezone\n79001234567;;;\n", "the first line must be"),
    ],
)
async def test_missing_or_wrong_header_is_422_and_imports_nothing(
    client: httpx.AsyncClient, body: str, message: str
) -> None:
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert message in detail
    assert HEADER in detail
    assert await _all_clients(client) == []


async def test_header_case_and_spaces_do_not_matter(client: httpx.AsyncClient) -> None:
    body = "Phone, Operator_Code, Tag, Timezone\n79001234567,,,\n"
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    assert response.json()["imported"] == 1


async def test_header_only_imports_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post(IMPORT, content=HEADER, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200
    assert response.json() == {"imported": 0, "failed": 0, "errors": [], "errors_truncated": False}


async def test_non_utf8_is_422_naming_the_line_and_imports_nothing(
    client: httpx.AsyncClient,
) -> None:
    body = f"{HEADER}\n79001234567,,ok,\n79161234567,,caf\xe9,\n".encode("latin-1")
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith("line 3 is not UTF-8")
    assert problem["errors"][0]["line"] == 3
    assert await _all_clients(client) == []


async def test_a_bad_byte_after_several_batches_imports_nothing(
    client: httpx.AsyncClient,
) -> None:
    # Batches are stored while the next is read: the ones already written and the one in
    # flight when the bad line is met all go with the transaction.
    rows = [f"7900{number:07d},,," for number in range(csv_import.BATCH_ROWS * 2 + 10)]
    body = "\n".join([HEADER, *rows]).encode() + b"\n79161234567,,caf\xe9,\n"
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"line {len(rows) + 2} is not UTF-8")
    assert await _all_clients(client) == []


async def test_a_line_without_end_is_422(client: httpx.AsyncClient) -> None:
    body = HEADER + "\n" + "7" * (text_lines.MAX_LINE_BYTES + 10)
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("line 2 is longer than")


async def test_error_list_is_capped_but_every_failure_is_counted(
    client: httpx.AsyncClient,
) -> None:
    bad_rows = csv_import.MAX_REPORTED_ERRORS + 500
    body = HEADER + "\n" + "bad,,,\n" * bad_rows + "79001234567,,,\n"
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    result = response.json()
    assert result["imported"] == 1
    assert result["failed"] == bad_rows
    assert result["errors_truncated"] is True
    assert len(result["errors"]) == csv_import.MAX_REPORTED_ERRORS
    assert [error["line"] for error in result["errors"][:3]] == [2, 3, 4]


async def test_duplicates_across_batches_are_caught(client: httpx.AsyncClient) -> None:
    rows = [f"7900{number:07d},,," for number in range(csv_import.BATCH_ROWS + 5)]
    body = "\n".join([HEADER, *rows, rows[0]])
    response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
    result = response.json()
    assert result["imported"] == len(rows)
    assert result["errors"] == [
        {
            "line": len(rows) + 2,
            "error": "phone 79000000000 already belongs to a client "
            "(in the directory or on an earlier line of this file)",
        }
    ]


async def test_bad_lines_anywhere_in_a_long_file_are_reported_by_their_own_number(
    client: httpx.AsyncClient,
) -> None:
    # Lines are checked a batch at a time; the numbers must run on across batches, chunks and
    # line ends, up to a last line without one.
    size = csv_import.BATCH_ROWS
    rows = [f"7900{number:07d},,t,UTC" for number in range(2 * size + 10)]
    bad = {size - 1: "bad,,,", size: ",,,", 2 * size + 9: "79001234567,12,,"}
    for index, line in bad.items():
        rows[index] = line
    rows[size + 1] = '"79009999999","900","a, b",""'  # quoted, in the second batch
    rows[size + 2] = ""  # blank, skipped
    body = ("\r\n".join([HEADER, *rows])).encode()  # CRLF, and no line end at the end
    chunks = [body[start : start + 777] for start in range(0, len(body), 777)]

    async def chunked() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    response = await client.post(IMPORT, content=chunked(), headers={"Content-Type": "text/csv"})
    result = response.json()
    assert [(error["line"], error["error"].split(":")[0]) for error in result["errors"]] == [
        (size + 1, "phone"),
        (size + 2, "phone"),
        (2 * size + 11, "operator_code"),
    ]
    assert result["imported"] == len(rows) - len(bad) - 1
    tagged = (await client.get("/api/v1/clients", params={"tag": "a, b"})).json()["items"]
    assert [item["phone"] for item in tagged] == ["79009999999"]


async def test_a_large_streamed_body_is_inserted_in_batches(
    client: httpx.AsyncClient, clean_db: AsyncEngine, session: AsyncSession
) -> None:
    rows = 20_000

    async def body() -> AsyncIterator[bytes]:
        yield (HEADER + "\n").encode()
        for start in range(0, rows, 500):
            # Chunks cut mid-line, as a network does.
            chunk = "".join(f"7{n:010d},,t{n % 7},\n" for n in range(start, start + 500))
            yield chunk[:100].encode()
            yield chunk[100:].encode()

    inserts = 0

    def count_inserts(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal inserts
        # PostgreSQL's INSERT sits in a WITH (only the taken phones come back).
        inserts += "INSERT INTO clients " in statement

    event.listen(clean_db.sync_engine, "before_cursor_execute", count_inserts)
    # How fast is the csv-import benchmark's question (a timed test fails slow machines).
    try:
        response = await client.post(IMPORT, content=body(), headers={"Content-Type": "text/csv"})
    finally:
        event.remove(clean_db.sync_engine, "before_cursor_execute", count_inserts)

    assert response.status_code == 200
    assert response.json() == {
        "imported": rows,
        "failed": 0,
        "errors": [],
        "errors_truncated": False,
    }
    assert inserts == rows // csv_import.BATCH_ROWS, "one statement per batch"
    assert await session.scalar(select(func.count()).select_from(Client)) == rows
    await session.commit()  # ends the read, which on SQLite holds the write lock
    tags = (await client.get("/api/v1/tags")).json()
    assert tags == {"tags": [f"t{n}" for n in range(7)], "operator_codes": ["000"]}


async def test_the_service_takes_plain_lines_for_the_cli(
    session: AsyncSession, clock: FakeClock
) -> None:
    def lines() -> Iterator[str]:
        yield HEADER + "\n"
        yield "79001234567,,vip,\n"
        yield "bad,,,\n"

    result = await csv_import.import_clients(
        session,
        [list(lines())],
        default_timezone="Europe/Moscow",
        hasher=await hasher_for(session, ""),
        now=clock.now(),
    )
    await session.commit()
    assert (result.imported, result.failed) == (1, 1)
    assert result.errors[0].line == 3
    stored = await session.scalar(select(Client))
    assert stored is not None
    assert (stored.phone, stored.timezone, stored.created_at) == (
        "79001234567",
        "Europe/Moscow",
        clock.now(),
    )


async def _collect(chunks: list[bytes]) -> list[str]:
    return [line async for line in text_lines.read_lines(chunks)]


async def test_read_lines_joins_characters_and_line_ends_split_across_chunks() -> None:
    text = "phone,日本語\r\n€uro,ж\r\nlast"
    raw = text.encode()
    for cut in range(1, len(raw)):
        assert await _collect([raw[:cut], raw[cut:]]) == ["phone,日本語\r", "€uro,ж\r", "last"]
    assert await _collect([b"a\n", b"", b"b\n"]) == ["a", "b"]


async def test_read_line_batches_names_the_line_and_byte_of_a_bad_byte_in_a_chunk() -> None:
    chunks = [b"one\ntwo\nthr", b"ee\nfo\xffur\nfive\n"]
    with pytest.raises(InvalidInput, match=r"line 4 is not UTF-8 \(byte 3\)"):
        [lines async for lines in text_lines.read_line_batches(chunks)]
    with pytest.raises(InvalidInput, match=r"line 3 is not UTF-8 \(byte 1\)"):
        [lines async for lines in text_lines.read_line_batches([b"a\nb\n\xe9t\xe9"])]


async def test_read_line_batches_gives_each_chunks_complete_lines() -> None:
    batches = [lines async for lines in text_lines.read_line_batches([b"a\nb", b"c\nd\n", b"e"])]
    assert batches == [["a"], ["bc", "d"], ["e"]]


async def test_read_lines_names_the_line_of_a_bad_byte() -> None:
    with pytest.raises(InvalidInput, match="line 2 is not UTF-8"):
        await _collect([b"ok\nbad \xff here\n"])


async def _facets_counted_and_full(session: AsyncSession) -> tuple[Counter[tuple[str, str]], ...]:
    """Clients per (facet, value): from the counters' rows, and from a full count of clients."""
    counted = await session.execute(
        select(ClientFacetCount.facet, ClientFacetCount.value, func.sum(ClientFacetCount.clients))
        .group_by(ClientFacetCount.facet, ClientFacetCount.value)
        .having(func.sum(ClientFacetCount.clients) != 0)
    )
    clients = (await session.execute(select(Client.tag, Client.operator_code))).all()
    full = Counter(("tag", tag) for tag, _ in clients if tag is not None)
    full.update(("operator_code", code) for _, code in clients)
    await session.commit()  # ends the read, which on SQLite holds the write lock
    return Counter({(facet, value): int(count) for facet, value, count in counted}), full


async def test_facet_counts_stay_exact_through_imports_of_new_repeated_and_rejected_lines(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_import, "BATCH_ROWS", 4)  # several batches in a small file
    before = await client.post("/api/v1/clients", json={"phone": "79161234567"})
    assert before.status_code == 201  # a key counted before: operator code 916
    first = "\n".join(
        [
            HEADER,
            "79001234567,,vip,",  # new tag, new operator code
            "79161234567,,vip,",  # already in the directory: rejected
            "79161234568,,,",  # no tag: counted under its operator code only
            "79001234567,,gold,",  # repeats line 2 in the same batch: rejected
            "79001234569,,vip,",
            "not a phone,,vip,",  # rejected
            "79001234570,903,gold,",  # an explicit operator code
            "79001234571,,vip,",
        ]
    )
    second = "\n".join(
        [HEADER, "79001234571,,vip,", "79001234572,,gold,", "79001234572,,gold,", "79261234567,,,"]
    )
    results = []
    for body in (first, second):
        response = await client.post(IMPORT, content=body, headers={"Content-Type": "text/csv"})
        assert response.status_code == 200, response.text
        results.append((response.json()["imported"], response.json()["failed"]))
    assert results == [(5, 3), (2, 2)]
    await _create(client, "79001234580")  # counted by the trigger, back after the imports
    patched = await client.patch(f"/api/v1/clients/{before.json()['id']}", json={"tag": "vip"})
    assert patched.status_code == 200

    counted, full = await _facets_counted_and_full(session)
    assert counted == full
    assert counted[("tag", "vip")] == 4
    assert counted[("operator_code", "900")] == 5
