"""Who may sign in through OpenID Connect, and with which role.

A person is admitted when their verified e-mail is in ``SMS_SENDER_OIDC_ALLOWED_EMAILS`` or its
domain in ``SMS_SENDER_OIDC_ALLOWED_DOMAINS`` (either list empty: no limit from it). An admitted
person gets the highest role any of their groups maps to (``SMS_SENDER_OIDC_GROUP_ROLES``, the
groups read from the ``SMS_SENDER_OIDC_GROUPS_CLAIM`` claim), else
``SMS_SENDER_OIDC_DEFAULT_ROLE``; when that is ``deny``, nobody without a mapped group gets in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sms_sender.auth.models import Role
from sms_sender.config import Settings

DENY = "deny"


class OidcConfigurationError(ValueError):
    """The OIDC settings cannot work; raised once, at start-up, naming the variable."""


class LoginRefused(Exception):
    """A sign-in that cannot go on; the message says why, in words for the person signing in.

    ``text`` is English with ``%(name)s`` slots filled from ``values``, so the console can show
    it translated (``say``).
    """

    def __init__(self, text: str, **values: str) -> None:
        super().__init__(text % values if values else text)
        self.text = text
        self.values = values

    def say(self, translate: Callable[[str], str]) -> str:
        translated = translate(self.text)
        return translated % self.values if self.values else translated


@dataclass(frozen=True)
class Identity:
    """What the provider says about the person signing in."""

    subject: str
    email: str
    email_verified: bool
    groups: tuple[str, ...]


@dataclass(frozen=True)
class AccessPolicy:
    allowed_emails: frozenset[str]
    allowed_domains: frozenset[str]
    groups_claim: str
    group_roles: Mapping[str, Role]
    default_role: Role | None  # None: deny

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        policy = cls(
            allowed_emails=_lowered(settings.oidc_allowed_emails),
            allowed_domains=frozenset(
                domain.lstrip("@") for domain in _lowered(settings.oidc_allowed_domains)
            ),
            groups_claim=settings.oidc_groups_claim.strip(),
            group_roles=_group_roles(settings.oidc_group_roles),
            default_role=_default_role(settings.oidc_default_role),
        )
        if not policy.groups_claim:
            raise OidcConfigurationError(
                "SMS_SENDER_OIDC_GROUPS_CLAIM must name the claim that lists a user's groups, "
                "e.g. groups"
            )
        if policy.default_role is not None and not (
            policy.allowed_emails or policy.allowed_domains or policy.group_roles
        ):
            raise OidcConfigurationError(
                f"SMS_SENDER_OIDC_DEFAULT_ROLE={policy.default_role} with no "
                "SMS_SENDER_OIDC_ALLOWED_EMAILS, _ALLOWED_DOMAINS or _GROUP_ROLES would let every "
                "account of the provider in; name who may sign in, or set it to deny"
            )
        return policy

    def role_for(self, identity: Identity, provider: str) -> Role:
        """The role ``identity`` signs in with, or LoginRefused saying why not."""
        email = identity.email.lower()
        if not email:
            raise LoginRefused(
                "%(provider)s did not tell us your e-mail address, so we cannot tell whether you "
                "may sign in. Ask an administrator to allow the email scope for this service.",
                provider=provider,
            )
        if not identity.email_verified:
            raise LoginRefused(
                "Your e-mail address %(email)s is not verified at %(provider)s. Verify it there, "
                "then sign in again.",
                email=email,
                provider=provider,
            )
        domain = email.rpartition("@")[2]
        if (self.allowed_emails or self.allowed_domains) and not (
            email in self.allowed_emails or domain in self.allowed_domains
        ):
            raise LoginRefused(
                "%(email)s may not sign in here: the address is not among those admitted. "
                "Ask an administrator if you need access.",
                email=email,
            )
        mapped = [self.group_roles[group] for group in identity.groups if group in self.group_roles]
        if mapped:
            return max(mapped, key=list(Role).index)
        if self.default_role is not None:
            return self.default_role
        raise LoginRefused(
            "%(email)s is in no group that gives access here (your groups: %(groups)s). "
            "Ask an administrator to add you to one.",
            email=email,
            groups=", ".join(identity.groups) or "-",
        )


def _lowered(items: str) -> frozenset[str]:
    return frozenset(item.strip().lower() for item in items.split(",") if item.strip())


def _group_roles(spec: str) -> dict[str, Role]:
    roles = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        group, _, role = item.rpartition("=")
        if not group.strip() or role.strip() not in set(Role):
            raise OidcConfigurationError(
                f"SMS_SENDER_OIDC_GROUP_ROLES: {item!r} is not group=role with a role of "
                f"{', '.join(Role)}; e.g. sms-admins=admin,marketing=operator"
            )
        roles[group.strip()] = Role(role.strip())
    return roles


def _default_role(value: str) -> Role | None:
    value = value.strip().lower()
    if value == DENY:
        return None
    if value not in set(Role):
        raise OidcConfigurationError(
            f"SMS_SENDER_OIDC_DEFAULT_ROLE={value!r} is not one of {', '.join(Role)} or {DENY}"
        )
    return Role(value)
