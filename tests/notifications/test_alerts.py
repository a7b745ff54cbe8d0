"""Alerts: by e-mail and webhook, at most one of a kind per mailing per hour, logged and counted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.db import Notifier
from sms_sender.dispatch import DeliveryEngine, EngineTuning
from sms_sender.providers.fake import FakeProvider, no_funds
from tests.arrange import Arrange
from tests.conftest import FakeClock
from tests.notifications.conftest import (
    Inbox,
    JsonLogs,
    LoopFactory,
    Webhook,
    html_part,
    mail_settings,
    mailing_status,
    text_part,
)

pytestmark = pytest.mark.usefixtures("clean_db")


def alert_settings(database_url: str, inbox: Inbox, **fields: object) -> object:
    return mail_settings(
        database_url, inbox.port, report_to=[], alert_to=["duty@example.com"], **fields
    )


def raised(kind: str) -> float:
    return REGISTRY.get_sample_value("sms_sender_alerts_total", {"kind": kind}) or 0.0


async def test_a_finished_mailing_is_announced_once_with_its_numbers(
    arrange: Arrange,
    inbox: Inbox,
    webhook: Webhook,
    make_loop: LoopFactory,
    database_url: str,
    clock: FakeClock,
    json_logs: JsonLogs,
) -> None:
    now = clock.now()
    mailing = await arrange.stored_mailing(
        status="finished",
        started_at=now - timedelta(hours=3),
        finished_at=now - timedelta(minutes=5),
        reports={"delivered": 7, "failed": 2, "expired": 1},
    )
    old = await arrange.stored_mailing(
        status="finished",
        started_at=now - timedelta(days=3),
        finished_at=now - timedelta(days=2),
        reports={"delivered": 1},
    )
    loop = make_loop(alert_settings(database_url, inbox, alert_webhook_url=webhook.url))
    before = raised("mailing_finished")

    assert await loop.tick() == 2  # the e-mail and the webhook
    clock.advance(hours=2)
    assert await loop.tick() == 0  # a mailing finishes once

    [message] = inbox.messages
    assert message["Subject"] == f"sms-sender alert: mailing {mailing} finished"
    assert inbox.recipients == [["duty@example.com"]]
    text = text_part(message)
    assert f"Mailing {mailing} (finished): 10 messages" in text
    assert "by status: delivered 7, expired 1, failed 2" in text
    assert f"https://sms.example.com/admin/mailings/{mailing}" in text
    assert "<tr><td>delivered</td><td>7</td></tr>" in html_part(message)
    [body] = webhook.bodies
    assert body["kind"] == "mailing_finished"
    assert body["mailing_id"] == mailing
    assert body["url"] == f"https://sms.example.com/admin/mailings/{mailing}"
    assert body["figures"]["by_status"] == {"delivered": 7, "expired": 1, "failed": 2}
    assert raised("mailing_finished") == before + 1
    [line] = json_logs.events("alert:")
    assert (line["mailing_id"], line["alert"]) == (mailing, "mailing_finished")
    assert all(f"mailing {old} " not in subject for subject in inbox.subjects())


async def test_unknown_outcomes_are_announced_at_most_once_an_hour(
    arrange: Arrange, inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    now = clock.now()
    mailing = await arrange.stored_mailing(
        status="running",
        started_at=now - timedelta(hours=1),
        reports={"unknown": 3, "sent": 5},
        updated_at=now,
    )
    loop = make_loop(alert_settings(database_url, inbox))

    assert await loop.tick() == 1
    clock.advance(minutes=30)
    await arrange.stored_reports(mailing, {"unknown": 2}, updated_at=clock.now())
    assert await loop.tick() == 0  # new unknowns, but the last alert is half an hour old
    clock.advance(minutes=31)
    assert await loop.tick() == 1
    clock.advance(hours=2)
    assert await loop.tick() == 0  # nothing new became unknown

    assert inbox.subjects() == [
        f"sms-sender alert: mailing {mailing}: 3 messages with an unknown outcome",
        f"sms-sender alert: mailing {mailing}: 2 messages with an unknown outcome",
    ]
    assert '2 message(s) became "unknown" in the last hour; 5 in all.' in text_part(
        inbox.messages[1]
    )


async def test_a_failure_share_over_the_threshold_is_announced(
    arrange: Arrange, inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    now = clock.now()
    failing = await arrange.stored_mailing(
        status="running",
        started_at=now - timedelta(hours=1),
        reports={"failed": 8, "undelivered": 4, "delivered": 18, "pending": 100},
        errors={"failed": "invalid number"},
    )
    # 10 % failed: under the threshold. Too few outcomes to judge: no alert either.
    await arrange.stored_mailing(
        status="running",
        started_at=now - timedelta(hours=1),
        reports={"failed": 3, "delivered": 27},
    )
    await arrange.stored_mailing(
        status="running", started_at=now - timedelta(hours=1), reports={"failed": 5, "sent": 1}
    )
    loop = make_loop(alert_settings(database_url, inbox, alert_failure_share=0.25))

    assert await loop.tick() == 1
    assert await loop.tick() == 0

    [message] = inbox.messages
    assert (
        message["Subject"] == f"sms-sender alert: mailing {failing}: 40.0% of its messages failed"
    )
    assert "Failed share 40.0% of 30 messages with an outcome (the alert threshold is 25.0%)" in (
        text_part(message)
    )


async def test_a_mailing_paused_by_the_engine_is_announced_hourly_while_it_stays_paused(
    arrange: Arrange, inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    now = clock.now()
    mailing = await arrange.stored_mailing(
        status="paused",
        started_at=now - timedelta(hours=1),
        reports={"sent": 4, "pending": 6},
        paused_reason="provider: insufficient funds",
    )
    await arrange.stored_mailing(
        status="paused", started_at=now, reports={"pending": 1}
    )  # by a person
    loop = make_loop(alert_settings(database_url, inbox))

    assert await loop.tick() == 1
    clock.advance(minutes=59)
    assert await loop.tick() == 0
    clock.advance(minutes=2)
    assert await loop.tick() == 1

    assert (
        inbox.subjects()
        == [f"sms-sender alert: mailing {mailing} was paused and needs a person"] * 2
    )
    assert "Reason: provider: insufficient funds" in text_part(inbox.messages[0])


async def test_a_webhook_that_fails_is_retried_without_resending_the_e_mail(
    arrange: Arrange,
    inbox: Inbox,
    webhook: Webhook,
    make_loop: LoopFactory,
    database_url: str,
    clock: FakeClock,
) -> None:
    now = clock.now()
    await arrange.stored_mailing(
        status="finished", started_at=now - timedelta(hours=1), finished_at=now, reports={"sent": 1}
    )
    loop = make_loop(alert_settings(database_url, inbox, alert_webhook_url=webhook.url))
    webhook.status = 503

    assert await loop.tick() == 1  # the e-mail
    webhook.status = 200
    clock.advance(minutes=1)
    assert await loop.tick() == 1  # the webhook, on its second attempt

    assert len(inbox.messages) == 1
    assert len(webhook.bodies) == 2


async def test_the_engine_pausing_a_mailing_for_funds_reaches_the_duty_inbox(
    inbox: Inbox,
    database_url: str,
    arrange: Arrange,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    clock: FakeClock,
) -> None:
    """End to end: the provider wants money, the engine pauses, its notifications loop tells."""
    settings = alert_settings(database_url, inbox, rate_limit=1_000_000.0)
    engine = DeliveryEngine(
        settings=settings,
        sessionmaker=sessionmaker,
        notifier=notifier,
        clock=clock,
        provider=FakeProvider(default=no_funds("402 Insufficient funds")),
        tuning=EngineTuning(retry_after_error=0.1),
    )
    await arrange.many_clients(3, operator_code="900")
    mailing_id = await arrange.mailing(text="hello", lasts=timedelta(hours=6))

    async with asyncio.timeout(20), engine.running():
        while await mailing_status(sessionmaker, mailing_id) != "paused":  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # rows fire no events
        clock.advance(seconds=30)  # the notifications loop's next look
        await inbox.arrived.wait()

    [message] = inbox.messages
    assert message["Subject"] == (
        f"sms-sender alert: mailing {mailing_id} was paused and needs a person"
    )
    assert "Reason: 402 Insufficient funds" in text_part(message)


async def test_the_failure_share_is_looked_at_every_five_minutes_not_at_every_poll(
    arrange: Arrange, inbox: Inbox, make_loop: LoopFactory, database_url: str, clock: FakeClock
) -> None:
    loop = make_loop(alert_settings(database_url, inbox))
    assert await loop.tick() == 0  # looked: nothing fails
    now = clock.now()
    failing = await arrange.stored_mailing(
        status="running", started_at=now, reports={"failed": 30}, errors={"failed": "refused"}
    )

    clock.advance(minutes=4, seconds=59)
    assert await loop.tick() == 0  # counting every running mailing at each poll costs too much
    clock.advance(seconds=1)
    assert await loop.tick() == 1

    assert inbox.subjects() == [
        f"sms-sender alert: mailing {failing}: 100.0% of its messages failed"
    ]
