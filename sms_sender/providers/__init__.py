"""SMS gateways behind one small protocol; ``build_provider`` picks the configured one."""

from sms_sender.providers.base import (
    DeliveryStatus,
    DeliveryTracking,
    Outcome,
    OutgoingMessage,
    Provider,
    SendResult,
)
from sms_sender.providers.console import ConsoleProvider
from sms_sender.providers.fake import FakeProvider
from sms_sender.providers.http import HttpProvider
from sms_sender.providers.registry import (
    PROVIDERS,
    ProviderConfigurationError,
    ProviderFactory,
    build_provider,
    close_provider,
    create_http_client,
    delivery_tracker,
)
from sms_sender.providers.smsaero import SmsAeroProvider

__all__ = [
    "PROVIDERS",
    "ConsoleProvider",
    "DeliveryStatus",
    "DeliveryTracking",
    "FakeProvider",
    "HttpProvider",
    "Outcome",
    "OutgoingMessage",
    "Provider",
    "ProviderConfigurationError",
    "ProviderFactory",
    "SendResult",
    "SmsAeroProvider",
    "build_provider",
    "close_provider",
    "create_http_client",
    "delivery_tracker",
]
