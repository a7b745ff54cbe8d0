"""These tests read back, through the API, what the same token did: it may read the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.auth import service as auth_service
from tests.conftest import FakeClock


@pytest.fixture
async def token(sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock) -> str:
    async with sessionmaker() as session:
        created = await auth_service.create_token(session, "tests", clock.now(), reads_audit=True)
        await session.commit()
    return created
