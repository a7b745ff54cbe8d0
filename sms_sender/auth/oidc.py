"""OpenID Connect sign-in for the console: authorization code with PKCE, through Authlib.

``begin`` makes a state, a nonce and a PKCE verifier and the provider's authorization URL (its
endpoints come from ``{issuer}/.well-known/openid-configuration``, read once and kept). The
three values travel in a short-lived signed cookie, so any API process can finish the sign-in.
``finish`` checks the state the provider sent back, trades the code (with the verifier and the
client secret) for tokens, verifies the id_token (signature against the provider's published
keys, issuer, audience, expiry, nonce) and reads the user's e-mail and groups from the userinfo
endpoint. Any failure is a ``LoginRefused`` with a sentence for the sign-in page.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.errors import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from sms_sender.auth.oidc_access import Identity, LoginRefused
from sms_sender.auth.oidc_config import OidcConfig

CALLBACK_PATH = "/admin/auth/callback"
# Asymmetric algorithms only: an HMAC-signed id_token would be checked with the client secret.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_SKEW_SECONDS = 120
HTTP_TIMEOUT_SECONDS = 10.0

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must see again: kept in the signed cookie between the two requests."""

    state: str
    nonce: str
    code_verifier: str
    next_url: str

    def to_dict(self) -> dict[str, str]:
        return {"s": self.state, "n": self.nonce, "v": self.code_verifier, "u": self.next_url}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> PendingLogin:
        return cls(
            state=values["s"], nonce=values["n"], code_verifier=values["v"], next_url=values["u"]
        )


class OidcClient:
    """One provider: its discovery document and keys, kept after the first sign-in."""

    def __init__(self, config: OidcConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @property
    def provider_name(self) -> str:
        return self.config.provider_name

    def redirect_uri(self, request_base_url: str) -> str:
        """Where the provider sends the browser back: under PUBLIC_URL when it is set."""
        base = self.config.public_url or request_base_url.rstrip("/")
        return base + CALLBACK_PATH

    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL and what the callback will need to check."""
        async with self._http() as http:
            metadata = await self._discovery(http)
        pending = PendingLogin(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            next_url=next_url,
        )
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.config.scopes),
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(
        self, callback_url: str, pending: PendingLogin, redirect_uri: str, now: datetime
    ) -> Identity:
        """The identity the provider vouches for, after every check of the callback and tokens."""
        async with self._http() as http:
            metadata = await self._discovery(http)
            code = self._code_from(callback_url, pending, metadata["issuer"])
            tokens = await self._exchange(http, metadata, code, pending, redirect_uri)
            claims = await self._verified_id_token(http, metadata, tokens, pending, now)
            userinfo = await self._userinfo(http, metadata, tokens["access_token"], claims["sub"])
        merged = {**claims, **userinfo}
        groups = merged.get(self.config.access.groups_claim) or []
        return Identity(
            subject=str(claims["sub"]),
            email=str(merged.get("email") or ""),
            # A provider that does not say is taken at its word that it checks addresses.
            email_verified=merged.get("email_verified", True) is not False,
            groups=tuple(map(str, groups)) if isinstance(groups, list) else (str(groups),),
        )

    def _code_from(self, callback_url: str, pending: PendingLogin, issuer: str) -> str:
        query = httpx.URL(callback_url).params
        # The state first: nothing else in an answer we did not ask for is worth reading.
        if not hmac.compare_digest(query.get("state", "").encode(), pending.state.encode()):
            _log.warning("oidc callback with a state that is not this browser's")
            raise LoginRefused(START_AGAIN)
        if "iss" in query and query["iss"] != issuer:  # RFC 9207: an answer from another provider
            _log.warning("oidc callback from another issuer", issuer=query["iss"])
            raise LoginRefused(START_AGAIN)
        if "error" in query:
            raise LoginRefused(
                "%(provider)s did not sign you in: %(reason)s.",
                provider=self.provider_name,
                reason=query.get("error_description") or query["error"],
            )
        try:
            code: str = parse_authorization_code_response(callback_url, state=pending.state)["code"]
        except (MismatchingStateException, MissingCodeException):
            raise LoginRefused(START_AGAIN) from None
        return code

    async def _exchange(
        self,
        http: httpx.AsyncClient,
        metadata: dict[str, Any],
        code: str,
        pending: PendingLogin,
        redirect_uri: str,
    ) -> dict[str, Any]:
        secret = self.config.client_secret
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.code_verifier,
            # A public client (no secret) names itself in the body instead of authenticating.
            client_id=None if secret else self.config.client_id,
        )
        auth = (
            httpx.BasicAuth(self.config.client_id, secret) if secret else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = await http.post(
                metadata["token_endpoint"],
                content=body,
                auth=auth,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            tokens = response.json()
        except (httpx.HTTPError, ValueError) as failure:
            raise self._unreachable(metadata["token_endpoint"], failure) from None
        if response.status_code != 200 or not {"id_token", "access_token"} <= set(tokens):
            error = tokens.get("error_description") or tokens.get("error") or "no id_token"
            _log.warning("oidc token exchange refused", status=response.status_code, error=error)
            raise LoginRefused(
                "%(provider)s did not accept the sign-in (%(reason)s). Please start again; if it "
                "keeps happening, an administrator should check SMS_SENDER_OIDC_CLIENT_ID and "
                "SMS_SENDER_OIDC_CLIENT_SECRET.",
                provider=self.provider_name,
                reason=str(error),
            )
        return dict(tokens)

    async def _verified_id_token(
        self,
        http: httpx.AsyncClient,
        metadata: dict[str, Any],
        tokens: dict[str, Any],
        pending: PendingLogin,
        now: datetime,
    ) -> dict[str, Any]:
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[alg for alg in offered if alg in SIGNING_ALGORITHMS])
        try:
            try:
                token = jwt.decode(tokens["id_token"], await self._key_set(http), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys since we read them
                keys = await self._key_set(http, refresh=True)
                token = jwt.decode(tokens["id_token"], keys, registry=registry)
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": self.config.client_id},
                },
                {
                    "nonce": pending.nonce,
                    "client_id": self.config.client_id,
                    "access_token": tokens["access_token"],
                },
            )
            claims.validate(now=int(now.timestamp()), leeway=CLOCK_SKEW_SECONDS)
        except (JoseError, ValueError) as invalid:
            _log.warning("oidc id_token refused", error=repr(invalid))
            raise LoginRefused(
                "The answer from %(provider)s could not be verified (%(reason)s). Please start "
                "again; if it keeps happening, an administrator should check "
                "SMS_SENDER_OIDC_ISSUER and SMS_SENDER_OIDC_CLIENT_ID.",
                provider=self.provider_name,
                reason=str(invalid),
            ) from None
        return dict(claims)

    async def _userinfo(
        self, http: httpx.AsyncClient, metadata: dict[str, Any], access_token: str, subject: str
    ) -> dict[str, Any]:
        endpoint = metadata.get("userinfo_endpoint")
        if not endpoint:
            return {}
        info = await self._get_json(
            http, endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if info.get("sub") != subject:  # OIDC Core 5.3.2: else it may be someone else's
            _log.warning("oidc userinfo about another subject")
            raise LoginRefused(START_AGAIN)
        return info

    async def _discovery(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.config.issuer}/.well-known/openid-configuration"
            metadata = await self._get_json(http, url)
            if str(metadata.get("issuer", "")).rstrip("/") != self.config.issuer:
                _log.error("oidc discovery names another issuer", issuer=metadata.get("issuer"))
                raise LoginRefused(
                    "%(provider)s calls itself %(issuer)s, not SMS_SENDER_OIDC_ISSUER; an "
                    "administrator should correct the setting.",
                    provider=self.provider_name,
                    issuer=str(metadata.get("issuer")),
                )
            self._metadata = metadata
        return self._metadata

    async def _key_set(self, http: httpx.AsyncClient, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self._discovery(http)
            self._keys = KeySet.import_key_set(await self._get_json(http, metadata["jwks_uri"]))  # type: ignore[arg-type]
        return self._keys

    async def _get_json(self, http: httpx.AsyncClient, url: str, **options: Any) -> dict[str, Any]:
        try:
            response = await http.get(url, **options)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as failure:
            raise self._unreachable(url, failure) from None
        if not isinstance(document, dict):
            raise self._unreachable(url, ValueError("not a JSON object"))
        return document

    def _http(self) -> httpx.AsyncClient:
        # A client per sign-in: they are rare, and nothing is left open between them.
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, transport=self._transport)

    def _unreachable(self, url: str, failure: Exception) -> LoginRefused:
        _log.warning("oidc provider unusable", url=url, error=repr(failure))
        return LoginRefused(
            "%(provider)s could not be reached to sign you in. Try again in a minute.",
            provider=self.provider_name,
        )


START_AGAIN = (
    "The sign-in took too long or was started in another window, so it could not be trusted. "
    "Please start again."
)
