"""Every figure of the suite, in the order of the issue's table."""

from __future__ import annotations

from benchmarks.figures import clients_api, fanout
from benchmarks.suite import Figure

FIGURES: tuple[Figure, ...] = (
    fanout.FIGURE,
    clients_api.CSV_IMPORT,
    clients_api.API,
)

__all__ = ["FIGURES"]
