"""The notifications loop: a task of the delivery engine that claims, raises and sends.

Each tick (every 30 s, and at start-up) it

1. claims the daily report of every day that is due and unclaimed (the last complete day once
   ``SMS_SENDER_REPORT_TIME`` has passed in ``SMS_SENDER_REPORT_TIMEZONE``, and days missed
   while no process ran, up to a week back);
2. raises the alerts the database's state calls for (``service.alerts_due``), one row per
   channel, so at most one alert of a kind about a mailing in an hour;
3. sends what is due, one notification at a time, each under a lease.

It runs as its own task, so a mail server that is down or slow holds up only this loop: never
the sending of messages nor the API. A failed attempt is logged with its reason, counted, and
tried again later with exponential backoff (the time is stored in the row, nobody sleeps on it).

Once per day, across workers and restarts: the day's row is claimed by one INSERT, and sent by
whoever holds its lease. A process that dies (or is stopped) after the mail server took the
message and before the row was marked sent leaves the lease to run out; the message is then
sent again, so a crash at that one moment costs one duplicate, never a missing report.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sms_sender import __version__, metrics
from sms_sender.clock import Clock
from sms_sender.config import Settings
from sms_sender.dialects import begin_write, read_only
from sms_sender.notifications import render, repository, service
from sms_sender.notifications.mail import Mailer, MailError
from sms_sender.notifications.models import (
    Channel,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from sms_sender.notifications.schemas import Alert, DailyReport
from sms_sender.notifications.webhook import WebhookError, post_alert

_log = structlog.get_logger(__name__)

SEND_BATCH = 20  # notifications looked at per tick; the rest wait for the next one


@dataclass(frozen=True)
class NotificationTuning:
    poll: timedelta = timedelta(seconds=30)
    # Longer than any one attempt can take (SMS_SENDER_SMTP_TIMEOUT is at most 300 s).
    lease: timedelta = timedelta(minutes=10)
    # After a failed attempt: 30 s, 1 min, 2 min … then hourly; given up after the 20th.
    retry_base: timedelta = timedelta(seconds=30)
    retry_cap: timedelta = timedelta(hours=1)
    max_attempts: int = 20

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        delay: timedelta = self.retry_base * 2 ** min(max(attempts - 1, 0), 20)
        return now + min(self.retry_cap, delay)


class NotificationLoop:
    """Daily reports and alerts; ``run(stop)`` beside the engine's other loops."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: AsyncEngine,
        clock: Clock,
        owner: str,
        tuning: NotificationTuning | None = None,
    ) -> None:
        self._settings = settings
        self._database = database
        self._reader = read_only(database)
        self._clock = clock
        self._owner = owner
        self._tuning = tuning or NotificationTuning()
        self._failure_share_due_at = datetime.min.replace(tzinfo=UTC)
        self._mailer = (
            Mailer(settings.smtp_server, settings.report_from, settings.smtp_timeout)
            if settings.smtp_url.get_secret_value()
            else None
        )

    async def run(self, stop: asyncio.Event) -> None:
        # Only the stop event wakes it early (the clock sleeps on an event); it polls otherwise.
        wake = asyncio.Event()
        stop_watch = asyncio.create_task(_set_when(stop, wake))
        try:
            while not stop.is_set():
                try:
                    await self.tick(stop)
                except Exception:
                    # The database gone, or a bug here: either way the engine's other loops,
                    # which send the messages, must go on. Loud in the log; tried next poll.
                    _log.exception("notifications loop failed; it tries again at its next poll")
                await self._clock.sleep_until(self._clock.now() + self._tuning.poll, wake)
        finally:
            stop_watch.cancel()

    async def tick(self, stop: asyncio.Event | None = None) -> int:
        """Claim what is due, raise alerts, send; how many notifications went out."""
        await self._claim(self._clock.now())
        return await self._send_due(stop or asyncio.Event())

    async def _claim(self, now: datetime) -> None:
        # Counting a big mailing's reports takes a moment: it is read beside the writers (on
        # SQLite a write transaction would hold every other writer of the process meanwhile),
        # and only the claims are written.
        days: list[date] = []
        alerts: list[Alert] = []
        async with self._reader.connect() as connection:
            if self._settings.report_to:
                days = await self._days_due(connection, now)
            if self._settings.alert_to or self._settings.alert_webhook_url:
                failure_share = now >= self._failure_share_due_at
                alerts = await service.alerts_due(
                    connection, self._settings, now, failure_share=failure_share
                )
                if failure_share:
                    self._failure_share_due_at = now + service.FAILURE_SHARE_EVERY
        if not days and not alerts:
            return
        rows = [
            _row(NotificationKind.DAILY_REPORT, Channel.EMAIL, day.isoformat(), now, day=day)
            for day in days
        ]
        rows += [
            _row(
                alert.kind,
                channel,
                alert.claim,
                now,
                mailing_id=alert.mailing_id,
                payload=alert.payload,
            )
            for alert in alerts
            for channel in self._alert_channels
        ]
        async with begin_write(self._database) as connection:
            claimed = await repository.add_claims(connection, rows)
        # What another worker claimed first is its to announce.
        if any(kind == NotificationKind.DAILY_REPORT for kind, _, _ in claimed):
            _log.info("daily report claimed", days=[day.isoformat() for day in days])
        raised = {(kind, mailing_id) for kind, _, mailing_id in claimed}
        for alert in alerts:
            if (alert.kind, alert.mailing_id) in raised:
                metrics.ALERTS.labels(alert.kind.value).inc()
                _log.warning(
                    "alert: " + render.alert_title(alert),
                    alert=alert.kind.value,
                    mailing_id=alert.mailing_id,
                )

    async def _days_due(self, connection: AsyncConnection, now: datetime) -> list[date]:
        settings = self._settings
        latest = service.latest_reported_day(now, settings.report_at, settings.report_zone)
        return service.days_due(latest, await repository.last_report_day(connection))

    @property
    def _alert_channels(self) -> list[Channel]:
        channels = [Channel.EMAIL] if self._settings.alert_to else []
        return channels + ([Channel.WEBHOOK] if self._settings.alert_webhook_url else [])

    async def _send_due(self, stop: asyncio.Event) -> int:
        async with self._reader.connect() as connection:
            due = await repository.due_ids(connection, self._clock.now(), SEND_BATCH)
        sent = 0
        for notification_id in due:
            if stop.is_set():
                break
            now = self._clock.now()
            async with begin_write(self._database) as connection:
                notification = await repository.lease(
                    connection, notification_id, self._owner, now, now + self._tuning.lease
                )
            if notification is not None:  # else another worker took it first
                sent += await self._attempt(notification, stop)
        return sent

    async def _attempt(self, notification: Notification, stop: asyncio.Event) -> int:
        """Send one leased notification and record how it went; 1 if it went out."""
        context = _describe(notification)
        attempt = asyncio.create_task(self._deliver(notification))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not attempt.done():  # shutting down: hand it back now rather than at lease expiry
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            await self._settle(
                notification,
                NotificationStatus.PENDING,
                next_attempt_at=self._clock.now(),
                error="stopped while sending",
            )
            return 0
        try:
            attempt.result()
        except (MailError, WebhookError) as error:
            await self._failed(notification, str(error), context)
            return 0
        except Exception as error:
            # A bug in making this notification: loud in the log, retried like a failure, and
            # kept away from the engine's other loops (a report must never stop the sending).
            _log.exception("notification could not be made", **context)
            await self._failed(notification, f"bug: {error!r}", context)
            return 0
        await self._settle(notification, NotificationStatus.SENT)
        metrics.NOTIFICATIONS_SENT.labels(notification.kind, notification.channel).inc()
        _log.info("notification sent", attempt=notification.attempts, **context)
        return 1

    async def _failed(
        self, notification: Notification, reason: str, context: dict[str, Any]
    ) -> None:
        metrics.NOTIFICATION_FAILURES.labels(notification.channel).inc()
        now = self._clock.now()
        retry_at = self._tuning.next_attempt_at(notification.attempts, now)
        if retry_at is None:
            _log.error("notification not sent; giving up", error=reason, **context)
            await self._settle(notification, NotificationStatus.FAILED, error=reason)
            return
        _log.warning(
            "notification not sent; will try again",
            error=reason,
            attempt=notification.attempts,
            retry_at=retry_at.isoformat(),
            **context,
        )
        await self._settle(
            notification, NotificationStatus.PENDING, next_attempt_at=retry_at, error=reason
        )

    async def _settle(
        self,
        notification: Notification,
        status: NotificationStatus,
        *,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        async with begin_write(self._database) as connection:
            kept = await repository.settle(
                connection,
                notification.id,
                self._owner,
                self._clock.now(),
                status=status,
                next_attempt_at=next_attempt_at,
                error=error,
            )
        if not kept:
            _log.warning("notification lease was taken over meanwhile", **_describe(notification))

    async def _deliver(self, notification: Notification) -> None:
        """One attempt over the notification's channel; MailError or WebhookError if it failed."""
        public_url = self._settings.public_url
        if notification.day is not None:  # the daily report
            letter = render.daily_report(await self.daily_report(notification.day), public_url)
            await self._mail(letter, self._settings.report_to)
            return
        alert = Alert(
            NotificationKind(notification.kind),
            notification.mailing_id or 0,
            notification.claim,
            notification.payload,
        )
        if notification.channel == Channel.WEBHOOK:
            if not self._settings.alert_webhook_url:
                raise WebhookError("SMS_SENDER_ALERT_WEBHOOK_URL is no longer set")
            body = render.alert_json(alert, public_url)
            # A client per alert: alerts are rare, and nothing is left open between them.
            headers = {"User-Agent": f"sms-sender/{__version__}"}
            timeout = self._settings.smtp_timeout
            async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
                await post_alert(client, self._settings.alert_webhook_url, body)
            return
        await self._mail(render.alert(alert, public_url), self._settings.alert_to)

    async def daily_report(self, day: date) -> DailyReport:
        """The report of ``day`` as it stands now."""
        async with self._reader.connect() as connection:
            return await service.build_daily_report(
                connection, day, self._settings.report_zone, self._clock.now()
            )

    async def _mail(self, letter: render.Letter, recipients: list[str]) -> None:
        if self._mailer is None or not recipients:
            raise MailError("no recipient or no SMS_SENDER_SMTP_URL: nowhere to send this")
        await self._mailer.send(letter, recipients, self._clock.now())


async def _set_when(stop: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    wake.set()


def _row(
    kind: NotificationKind,
    channel: Channel,
    claim: str,
    now: datetime,
    *,
    day: date | None = None,
    mailing_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "channel": channel.value,
        "claim": claim,
        "day": day,
        "mailing_id": mailing_id,
        "payload": payload or {},
        "status": NotificationStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _describe(notification: Notification) -> dict[str, Any]:
    """The log fields that say which notification this is."""
    context: dict[str, Any] = {"notification": notification.kind, "channel": notification.channel}
    if notification.mailing_id is not None:
        context["mailing_id"] = notification.mailing_id
    if notification.day is not None:
        context["day"] = notification.day.isoformat()
    return context
