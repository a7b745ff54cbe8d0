"""Worker peak memory during a large mailing, at two sizes: it must stay flat as N grows.

The worker claims a batch at a time, so its resident set should not depend on how many
reports the mailing has. Each size runs the engine with the instant provider to the end (the
fastest way through a million reports; memory of the HTTP client is the same at any N) and
reads the worker's high-water mark, VmHWM in /proc/<pid>/status, just before stopping it.
"""

from __future__ import annotations

from benchmarks.databases import fresh_database
from benchmarks.delivery import Plan, deliver
from benchmarks.figures.engine import SLOWEST_EXPECTED_RATE, engine_settings
from benchmarks.suite import Context, Figure, Row, Target

ALLOWED_GROWTH_MB = 10.0


async def measure_memory(context: Context) -> list[Row]:
    small, large = context.sizes.rss_reports
    peaks: dict[int, float] = {}
    rates: dict[int, float] = {}
    for reports in (small, large):
        plan = Plan(reports=reports, instant=True, settings=engine_settings(concurrency=50))
        async with fresh_database(
            context.database, context.workdir, context.postgres_admin_url
        ) as db:
            delivery = await deliver(
                db, plan, context.workdir, within=60 + reports / SLOWEST_EXPECTED_RATE
            )
        if delivery.sent != reports:
            raise RuntimeError(f"{delivery.sent} of {reports} reports sent: {delivery.by_status}")
        peaks[reports] = delivery.worker_peak_rss_mb[0]
        rates[reports] = round(delivery.messages_per_second)
    sizes = {"small_reports": small, "large_reports": large}
    details = {"peak_rss_mb": peaks, "msg_per_s": rates, "settings": plan.settings}
    return [
        Row(
            "worker-rss",
            f"at {large:,} reports",
            peaks[large],
            "MB",
            Target("<=", 150, "MB"),
            sizes,
            details=details,
        ),
        Row(
            "worker-rss",
            f"growth {small:,} → {large:,}",
            peaks[large] - peaks[small],
            "MB",
            Target("<=", ALLOWED_GROWTH_MB, "MB"),
            sizes,
        ),
    ]


FIGURE = Figure(
    "worker-rss", "worker peak RSS during a large mailing, small vs large N", measure_memory
)
