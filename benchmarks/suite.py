"""The vocabulary of the suite: sizes, targets, figures, measured rows, and the run itself.

A figure is an async function that gets a :class:`Context` (which database, which sizes, where
to put files) and returns rows. A row compares a measured value with the issue's target; missing
a speed target is information, never an error. Only a crash, or a row marked ``correctness``
whose target is missed (calls after end_at, duplicate sends), makes the run fail.
"""

from __future__ import annotations

import operator
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Sizes:
    """How much work each figure does; ``tiny`` is the CI smoke run, ``full`` the issue's."""

    name: str
    fanout_clients: int
    ceiling_reports: int
    http_reports: int
    latency_reports: int
    scale_out_reports: int
    start_lag_mailings: int
    cutoff_reports: int
    cutoff_seconds: float
    recovery_reports: int
    rss_reports: tuple[int, int]
    import_clients: int
    api_clients: int
    api_requests: int
    # The soak: clients (= reports of the running mailing), how long, API clients, msg/s.
    soak_clients: int
    soak_seconds: float
    soak_api_clients: int
    soak_rate: float


SIZES = {
    "tiny": Sizes(
        name="tiny",
        fanout_clients=5_000,
        ceiling_reports=2_000,
        http_reports=200,
        latency_reports=200,
        scale_out_reports=200,
        start_lag_mailings=5,
        cutoff_reports=400,
        cutoff_seconds=1.0,
        recovery_reports=600,
        rss_reports=(500, 2_500),
        import_clients=5_000,
        api_clients=5_000,
        api_requests=50,
        soak_clients=2_000,
        soak_seconds=8.0,
        soak_api_clients=3,
        soak_rate=200.0,
    ),
    # A few minutes: for comparing a change before and after, not for the published table.
    "medium": Sizes(
        name="medium",
        fanout_clients=200_000,
        ceiling_reports=50_000,
        http_reports=20_000,
        latency_reports=5_000,
        scale_out_reports=4_000,
        start_lag_mailings=20,
        cutoff_reports=10_000,
        cutoff_seconds=2.0,
        recovery_reports=5_000,
        rss_reports=(20_000, 100_000),
        import_clients=200_000,
        api_clients=200_000,
        api_requests=1_000,
        soak_clients=50_000,
        soak_seconds=60.0,
        soak_api_clients=6,
        soak_rate=400.0,
    ),
    "full": Sizes(
        name="full",
        fanout_clients=1_000_000,
        ceiling_reports=200_000,
        http_reports=50_000,
        latency_reports=10_000,
        scale_out_reports=8_000,
        start_lag_mailings=50,
        cutoff_reports=20_000,
        cutoff_seconds=3.0,
        recovery_reports=20_000,
        rss_reports=(100_000, 1_000_000),
        import_clients=1_000_000,
        api_clients=1_000_000,
        api_requests=2_000,
        soak_clients=100_000,
        soak_seconds=240.0,
        soak_api_clients=6,
        soak_rate=400.0,
    ),
}

_COMPARE = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}
_SHOWN_OP = {"<=": "≤", ">=": "≥", "==": "="}


@dataclass(frozen=True)
class Target:
    """The issue's goal for a row, e.g. ``Target(">=", 20_000, "msg/s")``."""

    op: str
    value: float
    unit: str

    def met_by(self, measured: float) -> bool:
        return bool(_COMPARE[self.op](measured, self.value))

    def __str__(self) -> str:
        return f"{_SHOWN_OP[self.op]} {number(self.value)} {self.unit}".rstrip()


@dataclass
class Row:
    """One measured value of a figure on one database."""

    figure: str
    label: str
    value: float
    unit: str
    target: Target | None
    sizes: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)
    # A correctness row failing its target means the product is wrong: the run fails.
    correctness: bool = False
    database: str = ""
    cpu_count: int = 0
    error: str | None = None

    @property
    def meets_target(self) -> bool | None:
        if self.error is not None:
            return False
        return None if self.target is None else self.target.met_by(self.value)

    @property
    def is_failure(self) -> bool:
        return self.error is not None or (self.correctness and self.meets_target is False)

    def as_json(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["target"] = None if self.target is None else str(self.target)
        fields["meets_target"] = self.meets_target
        return fields


@dataclass
class Context:
    """What a figure needs to set itself up: the database kind, sizes, a scratch folder."""

    database: str
    sizes: Sizes
    workdir: Path
    postgres_admin_url: str | None


Measure = Callable[[Context], Awaitable[list[Row]]]


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    measure: Measure
    databases: tuple[str, ...] = DATABASES


async def run_figure(figure: Figure, context: Context) -> list[Row]:
    """The figure's rows stamped with the database and core count; a crash becomes a row."""
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        rows = await figure.measure(context)
    except Exception as error:  # reported as a failed row, and the run fails
        rows = [
            Row(
                figure=figure.name,
                label="crashed",
                value=float("nan"),
                unit="",
                target=None,
                sizes={},
                error=f"{type(error).__name__}: {error}",
                details={"traceback": traceback.format_exc()},
            )
        ]
    for row in rows:
        row.database = context.database
        row.cpu_count = os.cpu_count() or 0
        row.details.setdefault("figure_seconds", round(time.monotonic() - started, 2))
        # Above the core count, something else competed for the CPU: read the row with care.
        row.details.setdefault(
            "load_average_1min", [round(load_before, 2), round(os.getloadavg()[0], 2)]
        )
    return rows


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile, e.g. ``percentile(latencies, 0.99)``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def number(value: float) -> str:
    """1234567.8 -> '1,234,568'; small values keep two significant decimals."""
    if value != value:  # NaN
        return "—"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table (also valid Markdown).

    ``load`` is the 1-minute load average around the figure: above the core count, other
    processes competed for the CPU while it was measured.
    """
    header = ("figure", "db", "measured", "target", "ok", "sizes", "load")
    lines = [header]
    for row in rows:
        measured = (
            f"CRASHED: {row.error.splitlines()[0][:40]}…"
            if row.error
            else f"{number(row.value)} {row.unit}".rstrip()
        )
        ok = {True: "yes", False: "NO", None: ""}[row.meets_target]
        sizes = ", ".join(f"{key}={number(value)}" for key, value in row.sizes.items())
        label = f"{row.figure} {row.label}".strip()
        load = max(row.details.get("load_average_1min", [0.0]))
        lines.append(
            (label, row.database, measured, str(row.target or ""), ok, sizes, f"{load:.1f}")
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render(lines[0]), separator, *(render(line) for line in lines[1:])])
