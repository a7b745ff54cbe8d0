"""Delivery throughput: the engine's ceiling, the http provider, gateway latency, scale-out.

Every figure runs worker processes (``sms-sender worker``; for the ceiling the same engine with
an instant provider) over a mailing whose reports are already materialised, with the rate limit
set far above what is measured (the default of 100 msg/s would otherwise be the figure).
"""

from __future__ import annotations

from datetime import timedelta

from benchmarks.databases import fresh_database, seed_clients, start_mailing_now
from benchmarks.delivery import Delivery, Plan, deliver
from benchmarks.statements import run_statements
from benchmarks.suite import Context, Figure, Row, Target

UNLIMITED_RATE = "1000000"
DEFAULT_CONCURRENCY = 50  # SMS_SENDER_CONCURRENCY's default
LATENCY_MS = 50.0
LATENCY_CONCURRENCY = DEFAULT_CONCURRENCY
# Enough sends in flight that the gateway answering at once is never what waits.
HTTP_CONCURRENCY = 100
SCALE_OUT_LATENCY_MS = 50.0
SCALE_OUT_CONCURRENCY = 20
# Generous: a stalled engine fails the figure instead of hanging the suite.
SLOWEST_EXPECTED_RATE = 50


def engine_settings(concurrency: int, batch_size: int = 500) -> dict[str, str]:
    return {
        "rate_limit": UNLIMITED_RATE,
        "concurrency": str(concurrency),
        "batch_size": str(batch_size),
    }


# Sends in flight and claim size large enough that the database round trips, not the
# hand-over of small groups, are what limits the engine.
CEILING_SETTINGS = engine_settings(concurrency=1000, batch_size=1000)


async def _deliver(context: Context, plan: Plan) -> Delivery:
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        return await deliver(
            db, plan, context.workdir, within=60 + plan.reports / SLOWEST_EXPECTED_RATE
        )


def _details(plan: Plan, delivery: Delivery) -> dict[str, object]:
    return {
        "settings": plan.settings,
        "workers": plan.workers,
        "gateway_latency_ms": plan.gateway_latency_ms,
        "whole_run_seconds": round(delivery.seconds, 2),
        "by_status": delivery.by_status,
        "worker_peak_rss_mb": delivery.worker_peak_rss_mb,
        "cpu_seconds": delivery.cpu_seconds,
        "wall_seconds": delivery.wall_seconds,
        "gateway_calls": delivery.gateway_calls,
    }


def _correctness(figure: str, plan: Plan, delivery: Delivery) -> list[Row]:
    """Every report sent; through a gateway, every message received exactly once."""
    sizes = {"reports": plan.reports}
    rows = [
        Row(
            figure,
            "reports sent",
            delivery.sent,
            "",
            Target("==", plan.reports, ""),
            sizes,
            correctness=True,
        ),
    ]
    if delivery.gateway_duplicates is not None:
        rows.append(
            Row(
                figure,
                "duplicate sends",
                delivery.gateway_duplicates,
                "",
                Target("==", 0, ""),
                sizes,
                correctness=True,
            )
        )
    return rows


def _throughput(figure: str, plan: Plan, delivery: Delivery, target: Target) -> list[Row]:
    sizes = {"reports": plan.reports, "workers": plan.workers}
    row = Row(
        figure,
        "",
        delivery.messages_per_second,
        "msg/s",
        target,
        sizes,
        details=_details(plan, delivery),
    )
    return [row, *_correctness(figure, plan, delivery)]


async def measure_ceiling(context: Context) -> list[Row]:
    plan = Plan(
        reports=context.sizes.ceiling_reports,
        instant=True,
        settings=CEILING_SETTINGS,
    )
    delivery = await _deliver(context, plan)
    rows = _throughput("ceiling", plan, delivery, Target(">=", 20_000, "msg/s"))
    return [*rows, *await _statements_only(context, plan, delivery)]


async def _statements_only(context: Context, plan: Plan, delivery: Delivery) -> list[Row]:
    """The same mailing's claim, hand-over and settle statements with nothing else to do."""
    async with fresh_database(context.database, context.workdir, context.postgres_admin_url) as db:
        await seed_clients(db, plan.reports)
        await start_mailing_now(db, lasting=timedelta(hours=6))
        floor = await run_statements(
            db, batch_size=int(plan.settings["batch_size"]), rate=float(UNLIMITED_RATE)
        )
    sizes = {"reports": plan.reports}
    share = delivery.messages_per_second / floor.messages_per_second
    return [
        Row(
            "ceiling",
            "statements only",
            floor.messages_per_second,
            "msg/s",
            None,
            sizes,
            details={
                "reports": floor.reports,
                "batches": floor.batches,
                "seconds": round(floor.seconds, 2),
            },
        ),
        Row("ceiling", "engine / statements only", share, "x", None, sizes),
    ]


async def measure_http(context: Context) -> list[Row]:
    plan = Plan(
        reports=context.sizes.http_reports,
        gateway_latency_ms=0.0,
        settings=engine_settings(HTTP_CONCURRENCY),
    )
    delivery = await _deliver(context, plan)
    return _throughput("http", plan, delivery, Target(">=", 3_000, "msg/s"))


async def measure_latency(context: Context) -> list[Row]:
    plan = Plan(
        reports=context.sizes.latency_reports,
        gateway_latency_ms=LATENCY_MS,
        settings=engine_settings(LATENCY_CONCURRENCY),
    )
    delivery = await _deliver(context, plan)
    ideal = LATENCY_CONCURRENCY / (LATENCY_MS / 1000)
    rows = _throughput("latency", plan, delivery, Target(">=", 0.8 * ideal, "msg/s"))
    rows[0].details["concurrency_over_latency"] = ideal
    rows[0].details["share_of_ideal"] = round(delivery.messages_per_second / ideal, 3)
    return rows


async def measure_scale_out(context: Context) -> list[Row]:
    """Two worker processes against one, where the gateway's latency is the bottleneck."""
    deliveries = {}
    for workers in (1, 2):
        plan = Plan(
            reports=context.sizes.scale_out_reports,
            workers=workers,
            gateway_latency_ms=SCALE_OUT_LATENCY_MS,
            settings=engine_settings(SCALE_OUT_CONCURRENCY),
        )
        deliveries[workers] = (plan, await _deliver(context, plan))
    (one_plan, one), (two_plan, two) = deliveries[1], deliveries[2]
    speed_up = two.messages_per_second / one.messages_per_second
    sizes = {"reports": one_plan.reports}
    row = Row(
        "scale-out",
        "2 workers / 1",
        speed_up,
        "x",
        Target(">=", 1.6, "x"),
        sizes,
        details={
            "one_worker_msg_per_s": round(one.messages_per_second),
            "two_workers_msg_per_s": round(two.messages_per_second),
            "one_worker": _details(one_plan, one),
            "two_workers": _details(two_plan, two),
        },
    )
    return [
        row,
        *_correctness("scale-out 1", one_plan, one),
        *_correctness("scale-out 2", two_plan, two),
    ]


CEILING = Figure(
    "ceiling", "engine ceiling: claim + record, provider answers at once", measure_ceiling
)
HTTP = Figure("http", "http provider to the loopback gateway, one worker", measure_http)
LATENCY = Figure(
    "latency", f"http provider, gateway answering after {LATENCY_MS:g} ms", measure_latency
)
SCALE_OUT = Figure(
    "scale-out",
    "2 worker processes vs 1, gateway-bound",
    measure_scale_out,
    databases=("postgresql",),
)
