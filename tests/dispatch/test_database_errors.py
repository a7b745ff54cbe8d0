"""The engine's tuning reaches its worker: after a database error it tries again that soon."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from sms_sender.dispatch import repository
from sms_sender.providers.fake import FakeProvider
from tests.arrange import Arrange
from tests.dispatch.conftest import EngineFactory, eventually

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_the_worker_tries_again_after_the_engines_retry_after_error(
    arrange: Arrange, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = repository.claim
    claims_at: list[float] = []

    async def unavailable_once(*args: Any, **kwargs: Any) -> Any:
        claims_at.append(time.monotonic())
        if len(claims_at) == 1:
            raise OperationalError("claim", {}, ConnectionError("the database went away"))
        return await claim(*args, **kwargs)

    monkeypatch.setattr(repository, "claim", unavailable_once)
    await arrange.many_clients(3)
    async with make_engine(FakeProvider()).running():
        mailing_id = await arrange.mailing()

        async def finished() -> bool:
            return await arrange.mailing_status(mailing_id) == "finished"

        await eventually(finished, what="the mailing sent after one failed claim")
    # The tests' engine waits 0.1 s after a database error; the worker's own default is 2 s.
    assert claims_at[1] - claims_at[0] < 1.5
    assert await arrange.statuses(mailing_id) == {"sent": 3}
