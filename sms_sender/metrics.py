"""Every Prometheus metric of the service, declared once (documented in docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
QUEUE_DEPTH = Gauge(
    "sms_sender_queue_depth",
    "Reports that are due now and waiting for a worker.",
)
RUNNING_MAILINGS = Gauge(
    "sms_sender_running_mailings",
    "Mailings in the running status.",
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
