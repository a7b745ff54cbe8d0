"""The delivery engine: starts mailings on time and sends their messages at most once.

``DeliveryEngine`` (``engine``) is the face: it runs the ``scheduler`` (starts mailings through
sms_sender.mailings.service, finishes them with ``repository.finish_mailings``), the ``worker``
(one loop: claim and hand-over in ``handover``, the calls in ``sending``, the record in
``results``, lease upkeep in ``leases``; the values passed between them in ``types``), the
``heartbeat`` (takes over a dead worker's leases), ``tracking`` (delivery status) and, when
someone is to hear of it, the notifications loop. ``retry``, ``ratelimit``, ``window`` (send
windows) and ``wakeups`` (stop and LISTEN/NOTIFY) are their parts; a report's statuses and
transitions are sms_sender.reports.lifecycle. ``repository`` holds the engine's SQL, except
closing unsent reports, one statement shared with the API (``reports.repository.close_unsent``).
Nothing here
imports the web layer (an import-linter contract, docs/architecture.md).
"""

from sms_sender.dispatch.engine import DeliveryEngine, EngineTuning
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.worker import WorkerTuning

__all__ = ["DeliveryEngine", "EngineTuning", "RetryPolicy", "WorkerTuning"]
