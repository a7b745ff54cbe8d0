from __future__ import annotations

import pytest

from sms_sender.providers.fake import FakeProvider
from tests.dispatch.conftest import Arrange, EngineFactory

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_drain_sends_everything(arrange: Arrange, make_engine: EngineFactory) -> None:
    await arrange.many_clients(20)
    mailing_id = await arrange.mailing()
    provider = FakeProvider()
    engine = make_engine(provider)
    await engine.worker.drain()
    assert await arrange.statuses(mailing_id) == {"sent": 20}
    assert provider.duplicates() == []
