"""SMS gateways behind one small protocol; ``build_provider`` picks the configured one."""

from sms_sender.providers._client import GatewaySessions, create_session
from sms_sender.providers.base import (
    NO_TEXT_LIMITS,
    DeliveryStatus,
    DeliveryTracking,
    Outcome,
    OutgoingMessage,
    Provider,
    SendResult,
    TextLimits,
    TrackingThrottled,
)
from sms_sender.providers.console import ConsoleProvider
from sms_sender.providers.fake import FakeProvider
from sms_sender.providers.http import HttpProvider
from sms_sender.providers.registry import (
    PROVIDERS,
    ProviderConfigurationError,
    ProviderFactory,
    build_provider,
    delivery_tracker,
    gateway_sessions,
    text_limits,
)
from sms_sender.providers.smsaero import SmsAeroProvider

__all__ = [
    "NO_TEXT_LIMITS",
    "PROVIDERS",
    "ConsoleProvider",
    "DeliveryStatus",
    "DeliveryTracking",
    "FakeProvider",
    "GatewaySessions",
    "HttpProvider",
    "Outcome",
    "OutgoingMessage",
    "Provider",
    "ProviderConfigurationError",
    "ProviderFactory",
    "SendResult",
    "SmsAeroProvider",
    "TextLimits",
    "TrackingThrottled",
    "build_provider",
    "create_session",
    "delivery_tracker",
    "gateway_sessions",
    "text_limits",
]
