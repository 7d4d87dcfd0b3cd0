"""The portal's login at the province's identity provider: authorization code with PKCE (S256)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from inventory.i18n import Wording
from service.identity import OidcSettings, OidcVerifier, TokenRejected, grants_from_claims

# What the portal asks the provider for: who the person is, their name and their yiyun grants.
SCOPES = "openid profile yiyun"
CALLBACK_PATH = "/auth/callback"


class LoginFailed(Exception):
    """The provider's answer proves nothing: `reason` is for the log, never for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PortalClient:
    """The portal as a client of the identity provider (YIYUN_OIDC_PORTAL_*)."""

    client_id: str
    client_secret: str
    # The portal's own address as browsers reach it, when a proxy hides it from the request.
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PortalClient | None:
        client_id = environ.get("YIYUN_OIDC_PORTAL_CLIENT_ID", "").strip()
        if not client_id:
            return None
        secret = environ.get("YIYUN_OIDC_PORTAL_CLIENT_SECRET", "")
        if not secret:
            raise Wording(
                "identity_setting_missing",
                name="YIYUN_OIDC_PORTAL_CLIENT_SECRET",
                beside="YIYUN_OIDC_PORTAL_CLIENT_ID",
            )
        public = environ.get("YIYUN_PORTAL_URL", "").strip().rstrip("/") or None
        return cls(client_id=client_id, client_secret=secret, public_url=public)


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class PortalLogin:
    """Discovery, the authorize URL, the code exchange and the ID token's checks."""

    def __init__(self, oidc: OidcSettings, client: PortalClient, timeout: float = 10.0) -> None:
        self.oidc = oidc
        self.client = client
        self.timeout = timeout
        # An ID token's audience is the portal's client id, not the API's audience.
        self.id_tokens = OidcVerifier(replace(oidc, audience=client.client_id))
        self._discovery: dict[str, Any] | None = None

    def _endpoints(self) -> dict[str, Any]:
        if self._discovery is None:
            url = f"{self.oidc.issuer.rstrip('/')}/.well-known/openid-configuration"
            document = self._json(urllib.request.Request(url))
            if document.get("issuer") != self.oidc.issuer:
                raise LoginFailed("discovery names another issuer")
            self._discovery = document
        return self._discovery

    def _json(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise LoginFailed(f"{request.full_url}: HTTP {error.code}") from None
        except (OSError, ValueError) as error:
            raise LoginFailed(f"{request.full_url}: {error}") from None
        if not isinstance(body, dict):
            raise LoginFailed(f"{request.full_url}: not a JSON object")
        return body

    def authorize_url(self, *, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        endpoint = self._endpoints().get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise LoginFailed("discovery has no authorization_endpoint")
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client.client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPES,
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}?{query}"

    def finish(self, *, code: str, redirect_uri: str, verifier: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once the code is exchanged and the token checks out."""
        endpoint = self._endpoints().get("token_endpoint")
        if not isinstance(endpoint, str):
            raise LoginFailed("discovery has no token_endpoint")
        form = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        ).encode()
        basic = base64.b64encode(
            f"{urllib.parse.quote(self.client.client_id)}:"
            f"{urllib.parse.quote(self.client.client_secret)}".encode()
        ).decode()
        request = urllib.request.Request(
            endpoint,
            data=form,
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        tokens = self._json(request)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise LoginFailed("the token answer has no id_token")
        try:
            claims = self.id_tokens.verify(id_token)
        except TokenRejected as rejected:
            raise LoginFailed(f"id_token rejected: {rejected.reason}") from None
        if claims.get("nonce") != nonce:
            raise LoginFailed("id_token nonce does not match this login")
        return claims

    def grants(self, claims: Mapping[str, Any]) -> list[str]:
        return [f"{role}:{scope}" for role, scope in grants_from_claims(claims, self.oidc)]
