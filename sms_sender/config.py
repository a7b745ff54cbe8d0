"""Settings from the environment (prefix ``SMS_SENDER_``); SMS Aero keeps its own names."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderName(StrEnum):
    CONSOLE = "console"
    HTTP = "http"
    SMSAERO = "smsaero"
    FAKE = "fake"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class LogMessages(StrEnum):
    """How log lines (and the console provider) show an SMS's phone and text."""

    MASKED = "masked"
    FULL = "full"
    OFF = "off"


class Settings(BaseSettings):
    """Every knob of the service; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="SMS_SENDER_", extra="ignore")

    database_url: str = "sqlite:///sms_sender.db"
    provider: ProviderName = ProviderName.CONSOLE
    http_url: str = "http://127.0.0.1:8080"
    http_token: SecretStr = SecretStr("")
    # Plain http:// to a gateway that is not on this machine sends its credentials in clear.
    allow_insecure_gateway: bool = False
    http_timeout: float = Field(default=10.0, gt=0)
    rate_limit: float = Field(default=100.0, gt=0, description="messages/second, all workers")
    concurrency: int = Field(default=50, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_backoff: float = Field(default=2.0, gt=0)
    default_timezone: str = "UTC"
    log_format: LogFormat = LogFormat.CONSOLE
    log_level: str = "INFO"
    log_messages: LogMessages = LogMessages.MASKED
    batch_size: int = Field(default=500, ge=1, le=10_000)
    lease_seconds: float = Field(default=60.0, gt=0)
    # Request bodies: JSON routes are small (64 KiB is generous); the CSV import has its own.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_import_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # How long the API trusts a token it found active without asking the database again, so
    # also the longest a revoked token keeps working; 0 checks the database on every request.
    token_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # The address people reach the service at, e.g. https://sms.example.com (links, cookies).
    public_url: str = ""
    # Signs console session cookies; every API process must share it. Empty: a random one per
    # process, so sessions end at restart.
    session_secret: SecretStr = SecretStr("")
    session_lifetime_minutes: int = Field(default=720, ge=1, le=60 * 24 * 30)
    smsaero_email: str = Field(default="", validation_alias=AliasChoices("SMSAERO_EMAIL"))
    smsaero_api_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("SMSAERO_API_KEY")
    )
    smsaero_sign: str = Field(default="SMS Aero", validation_alias=AliasChoices("SMSAERO_SIGN"))
    smsaero_url: str = Field(
        default="https://gate.smsaero.ru/v2", validation_alias=AliasChoices("SMSAERO_URL")
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, so a typo fails at start-up
        return value

    @cached_property
    def default_zone(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)
