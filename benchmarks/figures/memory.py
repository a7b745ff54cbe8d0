"""Worker peak memory during a large mailing, at two sizes: it must stay flat as N grows.

The worker claims a batch at a time, so its resident set should not depend on how many
reports the mailing has. Each size runs the engine with the instant provider (the fastest way
through many reports; the HTTP client's memory is the same at any N) to the end or for
``RUN_SECONDS``, whichever comes first, so a million-report mailing takes a bounded time: a
worker that loaded the whole mailing would show it from the first claim. The figure is the
worker's high-water mark, VmHWM in /proc/<pid>/status, read just before stopping it.
"""

from __future__ import annotations

from benchmarks.databases import fresh_database
from benchmarks.delivery import Plan, deliver
from benchmarks.figures.engine import CEILING_SETTINGS
from benchmarks.suite import Context, Figure, Row, Target

ALLOWED_GROWTH_MB = 10.0
RUN_SECONDS = 45.0


async def measure_memory(context: Context) -> list[Row]:
    small, large = context.sizes.rss_reports
    peaks: dict[int, float] = {}
    rates: dict[int, float] = {}
    processed: dict[int, int] = {}
    for reports in (small, large):
        plan = Plan(reports=reports, instant=True, settings=CEILING_SETTINGS)
        async with fresh_database(
            context.database, context.workdir, context.postgres_admin_url
        ) as db:
            delivery = await deliver(db, plan, context.workdir, within=RUN_SECONDS, partial=True)
        if delivery.sent == 0:
            raise RuntimeError(f"nothing sent in {RUN_SECONDS:g}s: {delivery.by_status}")
        peaks[reports] = delivery.worker_peak_rss_mb[0]
        rates[reports] = round(delivery.messages_per_second)
        processed[reports] = delivery.sent
    sizes = {"small_reports": small, "large_reports": large}
    details = {
        "peak_rss_mb": peaks,
        "reports_sent": processed,
        "msg_per_s": rates,
        "run_seconds_at_most": RUN_SECONDS,
        "settings": CEILING_SETTINGS,
    }
    return [
        Row(
            "worker-rss",
            f"at {large:,} reports",
            peaks[large],
            "MB",
            Target("<=", 100, "MB"),  # issue 17 (issue 4: 150 MB)
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
