"""Send windows in the client's own time zone: inside, outside, wrapping midnight, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sms_sender.dispatch.window import DailyWindow

NINE_TO_SIX = DailyWindow(9 * 60, 18 * 60)
NIGHT = DailyWindow(22 * 60, 6 * 60)  # wraps midnight


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("window", "now", "zone", "opens_at"),
    [
        # 12:00 UTC is 15:00 in Moscow: inside.
        (NINE_TO_SIX, utc(2030, 1, 15, 12), "Europe/Moscow", None),
        # 07:00 in New York: opens at 09:00 local, 14:00 UTC the same day.
        (NINE_TO_SIX, utc(2030, 1, 15, 12), "America/New_York", utc(2030, 1, 15, 14)),
        # 22:00 in Vladivostok: closed; opens 09:00 local tomorrow, 23:00 UTC today.
        (NINE_TO_SIX, utc(2030, 1, 15, 12), "Asia/Vladivostok", utc(2030, 1, 15, 23)),
        # The end is exclusive: 18:00 local is outside.
        (NINE_TO_SIX, utc(2030, 1, 15, 18), "UTC", utc(2030, 1, 16, 9)),
        (NINE_TO_SIX, utc(2030, 1, 15, 9), "UTC", None),
        # Wrapping midnight: inside late in the evening and early in the morning.
        (NIGHT, utc(2030, 1, 15, 12), "Asia/Vladivostok", None),
        (NIGHT, utc(2030, 1, 15, 2), "UTC", None),
        (NIGHT, utc(2030, 1, 15, 12), "Europe/Moscow", utc(2030, 1, 15, 19)),
        (NIGHT, utc(2030, 1, 15, 6), "UTC", utc(2030, 1, 15, 22)),
    ],
)
def test_next_opening(
    window: DailyWindow, now: datetime, zone: str, opens_at: datetime | None
) -> None:
    assert window.next_opening(now, zone) == opens_at


def test_the_same_local_hours_on_both_sides_of_a_dst_change() -> None:
    # Berlin is UTC+1 in winter and UTC+2 in summer: 09:00 local moves by an hour in UTC.
    assert NINE_TO_SIX.next_opening(utc(2030, 3, 30, 6), "Europe/Berlin") == utc(2030, 3, 30, 8)
    assert NINE_TO_SIX.next_opening(utc(2030, 3, 31, 6), "Europe/Berlin") == utc(2030, 3, 31, 7)


def test_a_window_opening_inside_the_skipped_hour_opens_at_the_jump() -> None:
    # 2030-03-31 in Berlin: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never happens.
    window = DailyWindow(2 * 60 + 30, 6 * 60)
    assert window.next_opening(utc(2030, 3, 31, 0, 10), "Europe/Berlin") == utc(2030, 3, 31, 1)


def test_an_ambiguous_opening_takes_its_first_occurrence() -> None:
    # 2030-10-27 in Berlin: 02:30 happens twice; the window opens at the first (00:30 UTC).
    window = DailyWindow(2 * 60 + 30, 6 * 60)
    assert window.next_opening(utc(2030, 10, 26, 23), "Europe/Berlin") == utc(2030, 10, 27, 0, 30)


def test_no_window_columns_means_no_window() -> None:
    assert DailyWindow.of(None, None) is None
    assert DailyWindow.of(540, 1080) == NINE_TO_SIX
