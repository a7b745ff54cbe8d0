"""Every Prometheus metric of the service, declared once (documented in docs/metrics.md).

``sms-sender serve`` runs its engine in a child process, which keeps its metrics in files
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR`` set by the API for it
alone); :func:`exposition` adds them to the API's own, so serve's /metrics shows both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Metric
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

HTTP_REQUESTS = Counter(
    "sms_sender_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "sms_sender_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MESSAGES = Counter(
    "sms_sender_messages_total",
    "Messages that reached a status after a send attempt, by provider and status.",
    ["provider", "status"],
)
SEND_LATENCY = Histogram(
    "sms_sender_send_duration_seconds",
    "Time a provider took to answer one send, by provider.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter(
    "sms_sender_retries_total",
    "Sends that failed transiently and were scheduled again, by provider.",
    ["provider"],
)
MAILINGS_PAUSED = Counter(
    "sms_sender_mailings_paused_total",
    "Mailings the engine paused because the provider's account cannot pay, by provider.",
    ["provider"],
)
# "mostrecent": in serve's engine process, the value it set last (no pid label).
QUEUE_DEPTH = Gauge(
    "sms_sender_queue_depth",
    "Reports that are due now and waiting for a worker.",
    multiprocess_mode="mostrecent",
)
RUNNING_MAILINGS = Gauge(
    "sms_sender_running_mailings",
    "Mailings in the running status.",
    multiprocess_mode="mostrecent",
)
SCHEDULER_LAG = Histogram(
    "sms_sender_scheduler_lag_seconds",
    "How late the scheduler started or ended a mailing after its start_at / end_at.",
    ["event"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ALERTS = Counter(
    "sms_sender_alerts_total",
    "Alerts raised about a mailing, by kind (each once, whichever worker raised it).",
    ["kind"],
)
NOTIFICATIONS_SENT = Counter(
    "sms_sender_notifications_sent_total",
    "Daily reports and alerts handed to the mail server or the webhook, by kind and channel.",
    ["kind", "channel"],
)
NOTIFICATION_FAILURES = Counter(
    "sms_sender_notification_failures_total",
    "Attempts to send a daily report or an alert that failed (will be retried), by channel.",
    ["channel"],
)


def exposition(engine_metrics_dir: Path | None = None) -> bytes:
    """This process's metrics in the text format, plus those its engine process keeps in files.

    Both processes declare every metric; each sample is the sum of the two (the API's engine
    counters and gauges stay 0, the engine's HTTP ones too), ``_created`` the earlier.
    """
    if engine_metrics_dir is None:
        return _generate_latest(REGISTRY)
    engine = CollectorRegistry()
    MultiProcessCollector(engine, path=str(engine_metrics_dir))  # type: ignore[no-untyped-call]
    merged = CollectorRegistry()
    merged.register(_Sum([REGISTRY, engine]))
    return _generate_latest(merged)


class _Sum(Collector):
    """The families of several registries, each sample summed over them."""

    def __init__(self, sources: Iterable[CollectorRegistry]) -> None:
        self._sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in self._sources:
            for family in source.collect():
                if family.name not in families:
                    families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                    values[family.name] = {}
                samples = values[family.name]
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    if key not in samples:
                        samples[key] = sample.value
                    elif sample.name.endswith("_created"):
                        samples[key] = min(samples[key], sample.value)
                    else:
                        samples[key] += sample.value
        for name, family in families.items():
            for (sample_name, labels), value in values[name].items():
                family.add_sample(sample_name, dict(labels), value)
            yield family
