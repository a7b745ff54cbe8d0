"""A real ``sms-sender worker`` process, killed with SIGKILL mid-mailing and started again.

The gateway is another process that records every message it accepts before answering, so its
record survives the worker's death: it is the ground truth of what phones received.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sms_sender.clock import SystemClock
from sms_sender.reports.models import ReportStatus
from tests.dispatch.conftest import Arrange, eventually
from tests.fakes.gateway import GatewayProcess

pytestmark = pytest.mark.usefixtures("clean_db")

CLIENTS = 600
CONCURRENCY = 10
SMS_SENDER = Path(sys.executable).with_name("sms-sender")


@contextmanager
def worker_process(database_url: str, gateway: GatewayProcess, log: Path) -> Iterator[int]:
    """``sms-sender worker`` against the gateway; yields its pid, SIGTERMs it at the end."""
    environment = os.environ | {
        "SMS_SENDER_DATABASE_URL": database_url,
        "SMS_SENDER_PROVIDER": "http",
        "SMS_SENDER_HTTP_URL": gateway.url,
        "SMS_SENDER_HTTP_TOKEN": gateway.token or "",
        "SMS_SENDER_CONCURRENCY": str(CONCURRENCY),
        "SMS_SENDER_BATCH_SIZE": "100",
        "SMS_SENDER_RATE_LIMIT": "100000",
        "SMS_SENDER_LEASE_SECONDS": "2",  # a dead worker's leases run out quickly
        "SMS_SENDER_LOG_LEVEL": "WARNING",
    }
    with log.open("a") as output:
        process = subprocess.Popen(
            [str(SMS_SENDER), "worker", "--metrics-port", "0"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


async def test_a_worker_killed_mid_mailing_loses_nothing_and_repeats_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    arrange = Arrange(sessionmaker, SystemClock())  # type: ignore[arg-type]
    await arrange.many_clients(CLIENTS)
    mailing_id = await arrange.mailing(lasts=timedelta(hours=1))
    log = tmp_path / "worker.log"

    with GatewayProcess(tmp_path / "accepted.txt", latency_ms=20) as gateway:

        async def some_accepted() -> bool:
            return len(gateway.accepted_ids()) >= CLIENTS // 4

        with worker_process(database_url, gateway, log) as pid:
            await eventually(some_accepted, within=30, what="the first messages")
            os.kill(pid, signal.SIGKILL)  # mid-mailing, with sends in flight

        at_kill = {report.id: report.status for report in await arrange.reports(mailing_id)}
        in_flight_at_kill = {i for i, status in at_kill.items() if status == ReportStatus.SENDING}
        assert ReportStatus.PENDING in at_kill.values(), "killed too late to test anything"

        async def all_settled() -> bool:
            statuses = await arrange.statuses(mailing_id)
            return statuses["pending"] + statuses["sending"] == 0

        with worker_process(database_url, gateway, log):
            await eventually(all_settled, within=40, what="every report settled after restart")

        accepted = Counter(gateway.accepted_ids())

    assert [report_id for report_id, count in accepted.items() if count > 1] == [], "a repeat"
    reports = {report.id: report.status for report in await arrange.reports(mailing_id)}
    assert len(reports) == CLIENTS
    # Handed over when the worker died: the gateway may or may not have them, so they are
    # unknown, never sent again. Everything else is sent, exactly once.
    unknown = {i for i, status in reports.items() if status == ReportStatus.UNKNOWN}
    assert unknown == in_flight_at_kill
    sent = {i for i, status in reports.items() if status == ReportStatus.SENT}
    assert sent == set(reports) - in_flight_at_kill
    assert sent <= set(accepted), "a report marked sent that the gateway never took"
    assert set(accepted) <= sent | unknown
    assert await arrange.mailing_status(mailing_id) == "finished", log.read_text()[-3000:]
