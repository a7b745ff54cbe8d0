"""The delivery engine: starts mailings on time and sends their messages at most once.

``DeliveryEngine`` is the face; ``scheduler``, ``worker`` (with ``handover`` and ``sending``),
``retry``, ``ratelimit``, ``window`` (send windows), ``tracking`` (delivery status) and ``wakeups``
(stop and LISTEN/NOTIFY) are its parts, and ``repository`` holds all of their SQL.
"""

from sms_sender.dispatch.engine import DeliveryEngine, EngineTuning
from sms_sender.dispatch.retry import RetryPolicy
from sms_sender.dispatch.worker import WorkerTuning

__all__ = ["DeliveryEngine", "EngineTuning", "RetryPolicy", "WorkerTuning"]
