"""Settings from the environment (prefix ``SMS_SENDER_``); SMS Aero keeps its own names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from email.utils import parseaddr
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Self
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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


@dataclass(frozen=True)
class SmtpServer:
    """Where ``SMS_SENDER_SMTP_URL`` points: smtps:// is TLS from the start, smtp:// STARTTLS."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: SecretStr | None


# A list in one variable, comma-separated: SMS_SENDER_REPORT_TO=ops@example.com,cto@example.com
AddressList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every knob of the service; see the configuration table in README.md."""

    # Input is never echoed in errors: SMS_SENDER_SMTP_URL carries a password.
    model_config = SettingsConfigDict(
        env_prefix="SMS_SENDER_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite:///sms_sender.db"
    provider: ProviderName = ProviderName.CONSOLE
    http_url: str = "http://127.0.0.1:8080"
    http_token: SecretStr = SecretStr("")
    # Plain http:// to a gateway that is not on this machine sends its credentials in clear.
    allow_insecure_gateway: bool = False
    # Seconds to get a gateway connection, and the longest wait for answer bytes once written.
    http_timeout: float = Field(default=10.0, gt=0)
    # The operator vouches that the HTTP gateway de-duplicates by the report id in the path:
    # a message whose outcome is unknown may then be sent again.
    http_idempotent: bool = False
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
    # /docs and /openapi.json need a bearer token or a console session (open by default).
    docs_require_token: bool = False
    # Seconds an import upload may go without sending a byte before it is dropped (408).
    upload_read_timeout: float = Field(default=30.0, gt=0)
    # How long the API trusts a token it found active without asking the database again, so
    # also the longest a revoked token keeps working; 0 checks the database on every request.
    token_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # The address people reach the service at, e.g. https://sms.example.com (links, cookies).
    public_url: str = ""
    # Signs console session cookies; every API process must share it. Empty: a random one per
    # process, so sessions end at restart.
    session_secret: SecretStr = SecretStr("")
    # Console sign-in with a name and password; off leaves only OpenID Connect.
    local_login: bool = True
    # OpenID Connect sign-in (sms_sender.auth.oidc checks these at start-up): on when ISSUER is set.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_scopes: str = "openid email profile"
    oidc_provider_name: str = "OpenID Connect"  # the sign-in button says "Sign in with …"
    oidc_allowed_emails: str = ""  # comma-separated; empty: any e-mail
    oidc_allowed_domains: str = ""  # comma-separated; empty: any domain
    oidc_groups_claim: str = "groups"
    oidc_group_roles: str = ""  # e.g. "sms-admins=admin,marketing=operator"
    oidc_default_role: str = "deny"  # for admitted users none of whose groups maps to a role
    session_lifetime_minutes: int = Field(default=720, ge=1, le=60 * 24 * 30)
    # The key of the suppression list's phone hashes; empty: a random key the migration
    # stored in the database (README "Consent and opt-out" says why to set one).
    suppression_key: SecretStr = SecretStr("")
    # POST /api/v1/inbound: the shared secret a gateway sends in inbound_secret_header;
    # empty turns the webhook off. Stop words are comma-separated.
    inbound_secret: SecretStr = SecretStr("")
    inbound_secret_header: str = Field(default="X-Inbound-Secret", min_length=1)
    stop_words: str = "STOP,СТОП,ОТПИСКА,ОТПИСАТЬСЯ"
    smsaero_email: str = Field(default="", validation_alias=AliasChoices("SMSAERO_EMAIL"))
    smsaero_api_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("SMSAERO_API_KEY")
    )
    smsaero_sign: str = Field(default="SMS Aero", validation_alias=AliasChoices("SMSAERO_SIGN"))
    # SMS Aero's gateways, tried in order when one cannot be reached (its official client's list).
    smsaero_url: str = Field(
        default="https://gate.smsaero.ru/v2,https://gate.smsaero.org/v2,https://gate.smsaero.net/v2",
        validation_alias=AliasChoices("SMSAERO_URL"),
    )

    # The daily report and alerts (sms_sender.notifications); off while no recipient is set.
    smtp_url: SecretStr = SecretStr("")
    smtp_timeout: float = Field(default=30.0, gt=0, le=300)
    report_to: AddressList = Field(default_factory=list)
    report_from: str = ""
    report_time: str = "08:00"
    report_timezone: str = "UTC"
    alert_to: AddressList = Field(default_factory=list)
    alert_webhook_url: str = ""
    alert_failure_share: float = Field(default=0.2, gt=0, le=1)

    @field_validator("default_timezone", "report_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)  # a typo fails at start-up, not at the first use
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Moscow") from None
        return value

    @field_validator("report_to", "alert_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [address.strip() for address in value.split(",") if address.strip()]
        return value

    @field_validator("report_to", "alert_to")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            _check_address(address)
        return addresses

    @field_validator("report_from")
    @classmethod
    def _sender_address(cls, address: str) -> str:
        if address:
            _check_address(address)
        return address

    @field_validator("report_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM, e.g. 08:00")
        return value

    @field_validator("alert_webhook_url", "public_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_address(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            parse_smtp_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _mail_needs_a_server(self) -> Self:
        for variable, recipients in (("REPORT_TO", self.report_to), ("ALERT_TO", self.alert_to)):
            if not recipients:
                continue
            if not self.smtp_url.get_secret_value():
                raise ValueError(
                    f"SMS_SENDER_{variable} is set but SMS_SENDER_SMTP_URL is not: "
                    "set it to the mail server, e.g. smtp://user:password@mail.example.com:587"
                )
            if not self.report_from:
                raise ValueError(
                    f"SMS_SENDER_{variable} is set but SMS_SENDER_REPORT_FROM is not: "
                    "set it to the sender's address, e.g. sms-sender@example.com"
                )
        return self

    @cached_property
    def smtp_server(self) -> SmtpServer:
        return parse_smtp_url(self.smtp_url.get_secret_value())

    @cached_property
    def report_at(self) -> time:
        """The time of day the daily report goes out, in ``report_zone``."""
        return time.fromisoformat(self.report_time)

    @cached_property
    def report_zone(self) -> ZoneInfo:
        return ZoneInfo(self.report_timezone)

    @cached_property
    def default_zone(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://user:password@host:587`` (STARTTLS) or ``smtps://…:465`` (TLS from the start)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// (STARTTLS) or smtps:// (TLS from the start)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("names no host, e.g. smtp://user:password@mail.example.com:587")
    implicit_tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 587),
        implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )


def _check_address(address: str) -> None:
    _, parsed = parseaddr(address)
    local, at, domain = parsed.rpartition("@")
    if not at or not local or "." not in domain or " " in parsed:
        raise ValueError(f"{address!r} is not an e-mail address such as ops@example.com")


def describe_errors(error: ValidationError) -> list[str]:
    """One sentence per bad setting, each naming its environment variable."""
    sentences = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            field = str(problem["loc"][0])
            variable = field if field.isupper() else f"SMS_SENDER_{field.upper()}"
            sentences.append(f"{variable} {message}")
        else:  # a rule across settings: its message names them
            sentences.append(message)
    return sentences
