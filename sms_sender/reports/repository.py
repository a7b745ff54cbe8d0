"""All SQL over reports (its pages in ``_pages``). Set-based: no statement here loops over
messages in Python.

Reports have no foreign keys (they made the fan-out twice as slow), so two things they did are
done here, and neither may race with a mailing's fan-out (its INSERT … SELECT over clients):

* A client's delete detaches the client's reports (client_id NULL, unsent ones cancelled). On
  PostgreSQL, under READ COMMITTED, a fan-out that read the client just before the delete
  committed would otherwise add a report pointing at the deleted client, after the delete had
  detached the others: a report the engine would send. An advisory lock orders the two: a
  fan-out holds it shared from just before its INSERT to its commit, a client's delete holds it
  exclusively from before it reads anything. Whichever comes second takes its snapshot after
  the first committed, so it sees the client gone (no report) or the new reports (detached).
  On SQLite one transaction writes at a time, so the two never overlap.
* A mailing's delete deletes its reports. That needs no lock: reports are only made by the
  transaction that moves the mailing out of ``scheduled`` (or resumes one paused before its
  start), with the mailing's row locked, and only a mailing that is not running or paused may
  be deleted, on its locked row too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from sms_sender import dialects
from sms_sender.reports._pages import page as page  # pages live there; callers ask here
from sms_sender.reports.lifecycle import CLIENT_DELETED, Closing
from sms_sender.reports.models import (
    UNSENT_REPORT_STATUSES,
    MailingReportCount,
    Report,
    ReportStatus,
)

# The advisory lock between fan-outs and client deletes (see above). Any constant will do that
# nothing else takes; the migrations' lock is 7_735_001.
_FAN_OUT_LOCK_ID = 7_735_002
# The counters' SQLite trigger that counts each report made (see counted_at_the_end).
_COUNTING_TRIGGER = "reports_counted_insert"
# A mailing's reports in one status: the sum of its counter rows (kept by triggers).
_COUNTED = func.sum(MailingReportCount.reports)
# The table, for statements the engine runs on plain connections too (close_unsent).
reports_table: Table = Report.__table__  # type: ignore[assignment]


async def close_unsent(
    executor: AsyncSession | AsyncConnection,
    closing: Closing,
    *,
    now: datetime,
    mailing_ids: Sequence[int] = (),
    client_ids: Sequence[int] = (),
) -> int:
    """Close the reports of these mailings or clients not yet handed to a provider; how many.

    The one statement for a cancel (the mailing's), an end_at (the mailing's), an opt-out (the
    clients'). Reports in ``sending`` are left to the worker holding them: it records what the
    provider answered, since the message may already be on its way. On PostgreSQL the closed
    rows stay locked until commit, and a worker's hand-over leaves a row it finds locked
    (dispatch.repository, ``_held``): it never marks one of them ``sending``, and never waits
    for one either, so this statement may lock its rows in any order without a deadlock.
    """
    # Only the scopes given: an empty IN is a subquery the planner cannot see through.
    scopes = [
        column.in_(list(ids))
        for column, ids in (
            (reports_table.c.mailing_id, mailing_ids),
            (reports_table.c.client_id, client_ids),
        )
        if ids
    ]
    if not scopes:
        return 0
    result = await executor.execute(
        update(reports_table)
        .where(or_(*scopes), reports_table.c.status.in_(UNSENT_REPORT_STATUSES))
        .values(
            status=closing.status,
            error=closing.reason,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count_sending_of_clients(session: AsyncSession, client_ids: Sequence[int]) -> int:
    """How many of the clients' reports a worker has handed over and not yet settled."""
    if not client_ids:
        return 0
    count = await session.scalar(
        select(func.count()).where(
            Report.client_id.in_(list(client_ids)), Report.status == ReportStatus.SENDING
        )
    )
    return int(count or 0)


async def count_skipped_by_reason(session: AsyncSession, mailing_id: int) -> dict[str, int]:
    """The mailing's skipped reports by reason (their ``error``), from the counters."""
    rows = await session.execute(_SKIPPED_BY_REASON, {"mailing_id": mailing_id})
    return {reason: int(count) for reason, count in rows}


_SKIPPED_BY_REASON = (
    select(MailingReportCount.reason, _COUNTED)
    .where(
        MailingReportCount.mailing_id == bindparam("mailing_id"),
        MailingReportCount.status == ReportStatus.SKIPPED,
    )
    .group_by(MailingReportCount.reason)
    .having(_COUNTED > 0)
)


async def wait_for_fan_outs(session: AsyncSession) -> None:
    """Wait for fan-outs in progress to commit; keep new ones waiting until this one ends.

    For a client's delete, before it reads the client (see the module docstring).
    """
    await _lock_fan_outs(session, exclusive=True)


async def hold_fan_out_lock(session: AsyncSession) -> None:
    """Taken by a fan-out (sms_sender.mailings.fan_out) just before its INSERT, to its commit."""
    await _lock_fan_outs(session, exclusive=False)


@asynccontextmanager
async def counted_at_the_end(session: AsyncSession) -> AsyncIterator[None]:
    """Count the reports made inside the block once, at its end, instead of one by one.

    For a fan-out. On SQLite the counters' row trigger (migration ``20261201_load_0001``) does
    two statements per report made, a third of the CPU of a 1M-report fan-out; inside this
    block it is dropped (``dialects.row_trigger_dropped`` says why that is safe) and the
    reports made are counted by one GROUP BY (status, and error for the reason a skipped
    report counts under: migration ``20261202_skipcounts_0001``). New rows take ids above the
    largest one (no AUTOINCREMENT: rowid = max + 1), which is how the count finds exactly the
    rows made inside.
    On PostgreSQL the statement trigger counts a whole INSERT at once from its transition
    table, at about what a count of our own would cost (measured), so it stays.
    """
    async with dialects.row_trigger_dropped(session, _COUNTING_TRIGGER) as dropped:
        if not dropped:
            yield
            return
        last_id = await session.scalar(select(func.coalesce(func.max(Report.id), 0)))
        yield
        made = await session.execute(
            select(Report.mailing_id, Report.status, Report.error, func.count())
            .where(Report.id > last_id)
            .group_by(Report.mailing_id, Report.status, Report.error)
        )
        # Added to the key's row as the trigger would, never beside it: SQLite's triggers add to
        # every row of a key, so a second row (a reused mailing id whose old rows are still 0,
        # not yet folded) would be counted twice from then on. One key per status made (and
        # per reason skipped): a handful of statements, whatever the fan-out's size.
        for (mailing_id, status, reason), count in _by_counter_key(made.all()).items():
            key = (
                (MailingReportCount.mailing_id == mailing_id)
                & (MailingReportCount.status == status)
                & (MailingReportCount.reason == reason)
            )
            added = await session.execute(
                update(MailingReportCount)
                .where(key)
                .values(reports=MailingReportCount.reports + count)
            )
            if not added.rowcount:  # type: ignore[attr-defined]
                await session.execute(
                    insert(MailingReportCount).values(
                        mailing_id=mailing_id, status=status, reason=reason, reports=count
                    )
                )


def _by_counter_key(
    counts: Iterable[tuple[int, str, str | None, int]],
) -> Counter[tuple[int, str, str]]:
    """(mailing, status, error) counts by the counters' key: the error is the reason of a
    skipped report only, '' if it has none (as the triggers count, migration skipcounts_0001)."""
    keyed: Counter[tuple[int, str, str]] = Counter()
    for mailing_id, status, error, count in counts:
        reason = (error or "") if status == ReportStatus.SKIPPED else ""
        keyed[mailing_id, status, reason] += count
    return keyed


async def _lock_fan_outs(session: AsyncSession, *, exclusive: bool) -> None:
    await dialects.advisory_lock(session, _FAN_OUT_LOCK_ID, shared=not exclusive)


async def detach_client(session: AsyncSession, client_id: int, now: datetime) -> int:
    """Clear client_id on a leaving client's reports, cancelling those not yet handed over.

    Call :func:`wait_for_fan_outs` first in the same transaction. Returns how many were changed.
    """
    unsent = Report.status.in_(UNSENT_REPORT_STATUSES)
    result = await session.execute(
        update(Report)
        .where(Report.client_id == client_id)
        .values(
            client_id=None,
            status=case((unsent, ReportStatus.CANCELLED.value), else_=Report.status),
            error=case((unsent, CLIENT_DELETED), else_=Report.error),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_of_mailing(session: AsyncSession, mailing_id: int) -> int:
    """Delete a mailing's reports, as its own delete must (see the module docstring)."""
    result = await session.execute(
        delete(Report)
        .where(Report.mailing_id == mailing_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def get(session: AsyncSession, report_id: int) -> Report | None:
    return await session.get(Report, report_id)


async def count_by_status(
    session: AsyncSession, mailing_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """Reports per status of each given mailing, from the counters; absent = no reports."""
    if not mailing_ids:
        return {}
    rows = await session.execute(_COUNTS_OF_MAILINGS, {"mailing_ids": list(mailing_ids)})
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for mailing_id, status, count in rows:
        counts[mailing_id][status] = int(count)
    return counts


# Built once: building a statement costs more than running it (the stats and mailings routes).
_COUNTS_OF_MAILINGS = (
    select(MailingReportCount.mailing_id, MailingReportCount.status, _COUNTED)
    .where(MailingReportCount.mailing_id.in_(bindparam("mailing_ids", expanding=True)))
    .group_by(MailingReportCount.mailing_id, MailingReportCount.status)
    .having(_COUNTED > 0)
)


async def sent_by_status(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Reports handed to a provider at or after ``since``, by status now (ix_reports_sent_at)."""
    # Grouped by an expression, not the bare column: SQLite would otherwise walk the whole
    # (status, id) index for its order instead of the range of sent_at.
    status = func.coalesce(Report.status, "")
    rows = await session.execute(
        select(status, func.count()).where(Report.sent_at >= since).group_by(status)
    )
    return {str(status): int(count) for status, count in rows}


async def sent_per_minute(session: AsyncSession, since: datetime) -> list[tuple[int, str, int]]:
    """(minutes after ``since``, status, count) of the reports sent since then."""
    # Whole minutes from ``since`` to sent_at: sent_at >= since, so dividing rounds down.
    minute = (dialects.epoch_seconds(session, Report.sent_at) - int(since.timestamp())) // 60
    rows = await session.execute(
        select(minute, Report.status, func.count())
        .where(Report.sent_at >= since)
        .group_by(minute, Report.status)
    )
    return [(int(bucket), status, count) for bucket, status, count in rows]


async def make_waiting_due(session: AsyncSession, mailing_id: int, now: datetime) -> int:
    """Let first attempts put off to a later time (the old send window) be reconsidered now.

    Called when a mailing's send window changes, so a widened window takes effect at once;
    retries (attempts > 0) keep their backoff.
    """
    result = await session.execute(
        update(Report)
        .where(
            Report.mailing_id == mailing_id,
            Report.status == ReportStatus.PENDING,
            Report.attempts == 0,
            Report.next_attempt_at > now,
        )
        .values(next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def requeue_unknown(
    session: AsyncSession, mailing_id: int, reason: str, now: datetime
) -> int:
    """Make the mailing's ``unknown`` reports ``pending`` and due now; how many there were."""
    result = await session.execute(
        update(Report)
        .where(Report.mailing_id == mailing_id, Report.status == ReportStatus.UNKNOWN)
        .values(
            status=ReportStatus.PENDING,
            next_attempt_at=now,
            error=reason,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
