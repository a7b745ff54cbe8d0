"""One result the database cannot store never stalls a worker (issue 10, section 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sms_sender.dispatch import sending
from sms_sender.providers.fake import FakeProvider, accept
from sms_sender.reports.models import ReportStatus
from tests.arrange import Arrange, phones
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")

LONG_ID = "x" * 300  # the column holds 128


async def _run_until_finished(
    arrange: Arrange, make_engine: EngineFactory, provider: FakeProvider, **overrides: Any
) -> int:
    await arrange.many_clients(30)
    async with make_engine(provider, **({"batch_size": 10} | overrides)).running():
        mailing_id = await arrange.mailing()

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="every report final")
    return mailing_id


async def test_a_message_id_longer_than_its_column_is_cut_and_the_rest_goes_on(
    arrange: Arrange, make_engine: EngineFactory
) -> None:
    provider = FakeProvider()
    long_phone = phones(30)[7]
    provider.on_phone(long_phone, accept(message_id=LONG_ID))

    mailing_id = await _run_until_finished(arrange, make_engine, provider)

    reports = {report.phone: report for report in await arrange.reports(mailing_id)}
    assert reports[long_phone].status == ReportStatus.SENT
    assert reports[long_phone].provider_message_id == LONG_ID[:128]
    assert await arrange.statuses(mailing_id) == {"sent": 30}
    assert provider.duplicates() == []


@pytest.fixture
async def refuse_long_ids(clean_db: AsyncEngine, dialect: str) -> AsyncIterator[None]:
    """SQLite stores any length in a VARCHAR: a trigger refuses what PostgreSQL would."""
    if dialect != "sqlite":
        yield
        return
    # Fresh connections: with two tests in a row, a pooled one still held the first's trigger.
    await clean_db.dispose()
    async with clean_db.begin() as connection:
        await connection.execute(
            text(
                "CREATE TRIGGER refuse_long_ids BEFORE UPDATE ON reports "
                "WHEN length(NEW.provider_message_id) > 128 BEGIN "
                "SELECT RAISE(ABORT, 'value too long for type character varying(128)'); END"
            )
        )
    try:
        yield
    finally:
        async with clean_db.begin() as connection:
            await connection.execute(text("DROP TRIGGER refuse_long_ids"))


@pytest.mark.usefixtures("refuse_long_ids")
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="written alone"),
        # Groups of 10 at the rate, one after another: answers ride with the next hand-over,
        # whose transaction the refused row fails; they are then written alone.
        pytest.param({"batch_size": 500, "rate_limit": 100.0}, id="with a hand-over"),
    ],
)
async def test_an_accepted_message_the_database_refuses_is_unknown_alone(
    arrange: Arrange,
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
) -> None:
    # As if a string from outside had escaped its cut: the database refuses the whole batch.
    monkeypatch.setattr(sending, "fit", lambda text, size: text)
    provider = FakeProvider()
    long_phone = phones(30)[7]
    provider.on_phone(long_phone, accept(message_id=LONG_ID))

    mailing_id = await _run_until_finished(arrange, make_engine, provider, **overrides)

    reports = {report.phone: report for report in await arrange.reports(mailing_id)}
    refused = reports[long_phone]
    # The gateway accepted it: it may well be delivered, so it is not a failure.
    assert refused.status == ReportStatus.UNKNOWN
    assert refused.error == (
        "outcome unknown (the provider's answer could not be recorded: "
        "value too long for type character varying(128)); not sent again to avoid a duplicate"
    )
    assert await arrange.statuses(mailing_id) == {"sent": 29, "unknown": 1}
    assert len(provider.calls) == 30  # nothing sent twice while the batch was split
