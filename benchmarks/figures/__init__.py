"""Every figure of the suite, in the order of the issue's table."""

from __future__ import annotations

from benchmarks.figures import (
    api_cpu,
    clients_api,
    console,
    engine,
    fanout,
    memory,
    recovery,
    schedule,
    soak,
    stats,
)
from benchmarks.suite import Figure

FIGURES: tuple[Figure, ...] = (
    engine.CEILING,
    engine.HTTP,
    engine.LATENCY,
    engine.SCALE_OUT,
    fanout.FIGURE,
    schedule.START_LAG,
    schedule.CUTOFF,
    recovery.FIGURE,
    memory.FIGURE,
    clients_api.CSV_IMPORT,
    clients_api.API,
    api_cpu.FIGURE,
    stats.FIGURE,
    console.FIGURE,
    soak.FIGURE,
)

__all__ = ["FIGURES"]
