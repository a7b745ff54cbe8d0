"""Send windows: the local time of day in which a client may receive a mailing's message.

A window is two minute-of-day marks in the client's own time zone (its IANA name, snapshotted
on the report); ``end < start`` wraps midnight (22:00-06:00), ``end == start`` is the whole day.
All arithmetic goes through zoneinfo, day by day, so a window means the same local hours on
both sides of a daylight-saving change. On the night a clock jumps forward past the opening
(02:30 when 02:00-03:00 does not exist) the window opens at the jump itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """A mailing's send window as the engine checks it: two minute-of-day marks, local time.

    The API's shape of it, with "HH:MM" strings, is ``mailings.schemas.SendWindow``.
    """

    start_minute: int
    end_minute: int

    @classmethod
    def of(cls, start_minute: int | None, end_minute: int | None) -> DailyWindow | None:
        """The window of a mailing's two columns; None (send any time) when unset."""
        if start_minute is None or end_minute is None:
            return None
        return cls(start_minute, end_minute)

    def contains(self, local: datetime) -> bool:
        """Whether the wall-clock time ``local`` (in the client's zone) is inside the window."""
        minute = local.hour * 60 + local.minute
        start, end = self.start_minute, self.end_minute
        if start == end:
            return True
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end

    def next_opening(self, now: datetime, timezone: str) -> datetime | None:
        """None when ``now`` is inside the window; otherwise the UTC instant it next opens."""
        zone = zone_named(timezone)
        local = now.astimezone(zone)
        if self.contains(local):
            return None
        opening = self._opening_on(local.date(), zone)
        if opening <= now:
            opening = self._opening_on(local.date() + timedelta(days=1), zone)
        return opening

    def _opening_on(self, day: date, zone: ZoneInfo) -> datetime:
        start = time(self.start_minute // 60, self.start_minute % 60)
        before = datetime.combine(day, start, tzinfo=zone)  # fold=0: the earlier offset
        opening = before.astimezone(UTC)
        if opening.astimezone(zone).replace(tzinfo=None) == before.replace(tzinfo=None):
            return opening
        # The start lies in a gap skipped by a jump forward; the window opens at the jump.
        return _first_instant_at_or_after(before, zone)


def _first_instant_at_or_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local time in ``zone`` is at or after the wall time ``wall``."""
    target = wall.replace(tzinfo=None)
    low = wall.replace(fold=1).astimezone(UTC)  # read with the later offset: before the jump
    high = wall.replace(fold=0).astimezone(UTC)  # read with the earlier offset: after it
    while high - low > timedelta(milliseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= target:
            high = middle
        else:
            low = middle
    return high


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo:
    """The zone of that IANA name; an unknown name (never accepted by the API) counts as UTC."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        _log.warning("unknown time zone on a report; using UTC for its send window", zone=name)
        return ZoneInfo("UTC")


__all__ = ["DailyWindow", "zone_named"]
