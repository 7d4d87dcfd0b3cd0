"""Who is calling: OIDC bearer tokens verified against the province's identity provider."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from inventory.i18n import Wording

log = logging.getLogger(__name__)

RejectionReason = Literal[
    "malformed",
    "algorithm",
    "unknown_key",
    "signature",
    "expired",
    "not_yet_valid",
    "audience",
    "issuer",
    "missing_claim",
    "provider_unreachable",
    "provider_misconfigured",
]

# Asymmetric only: a symmetric (HS*) token would be checked with a secret the provider does
# not share with us, and "none" is no signature at all.
ACCEPTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256"})
EC_ALGORITHMS = {"P-256": frozenset({"ES256"}), "P-384": frozenset({"ES384"})}

ROLES = frozenset({"viewer", "department_it", "planner", "admin"})
SCOPE_KINDS_WITH_NAME = ("city", "department")


@dataclass(frozen=True)
class OidcSettings:
    """Which identity provider yiyun trusts, for which audience, and which claims say what."""

    issuer: str
    audience: str
    principal_claim: str = "sub"
    grants_claim: str | None = "yiyun_roles"
    name_claim: str = "preferred_username"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OidcSettings | None:
        """The settings from YIYUN_OIDC_*; None when no issuer is set (OIDC is off)."""
        issuer = environ.get("YIYUN_OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        audience = environ.get("YIYUN_OIDC_AUDIENCE", "").strip()
        if not audience:
            # Without an audience any token the provider issues to any application would do.
            raise Wording(
                "identity_setting_missing", name="YIYUN_OIDC_AUDIENCE", beside="YIYUN_OIDC_ISSUER"
            )
        grants_claim = environ.get("YIYUN_OIDC_GRANTS_CLAIM", cls.grants_claim)
        return cls(
            # Kept as written: the token's iss must equal it character for character.
            issuer=issuer,
            audience=audience,
            principal_claim=environ.get("YIYUN_OIDC_PRINCIPAL_CLAIM", "").strip() or "sub",
            # Set but empty: grants come from yiyun's own table only, never from the token.
            grants_claim=(grants_claim or "").strip() or None,
            name_claim=environ.get("YIYUN_OIDC_NAME_CLAIM", "").strip() or "preferred_username",
        )


class TokenRejected(Exception):
    """A bearer token yiyun does not accept; `reason` is a stable code, `detail` is for logs."""

    def __init__(self, reason: RejectionReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: RejectionReason = reason
        self.detail = detail


@dataclass(frozen=True)
class SigningKey:
    """One verification key of the provider and the algorithms it may verify."""

    kid: str
    public_key: RSAPublicKey | EllipticCurvePublicKey
    algorithms: frozenset[str]


@dataclass(frozen=True)
class KeySet:
    """The provider's keys as fetched at `fetched_at` (monotonic seconds)."""

    keys: Mapping[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None


def signing_key(jwk: Mapping[str, Any]) -> SigningKey | None:
    """The JWK as a verification key; None for keys that can never verify a yiyun token."""
    kid = jwk.get("kid")
    if not isinstance(kid, str) or jwk.get("use", "sig") != "sig":
        return None
    kty = jwk.get("kty")
    loaded: RSAPrivateKey | RSAPublicKey | EllipticCurvePrivateKey | EllipticCurvePublicKey
    if kty == "RSA":
        possible = RSA_ALGORITHMS
        loaded = RSAAlgorithm.from_jwk(dict(jwk))
    elif kty == "EC":
        possible = EC_ALGORITHMS.get(jwk.get("crv", ""), frozenset())
        loaded = ECAlgorithm.from_jwk(dict(jwk))
    else:
        # Never a symmetric ("oct") key: a shared secret in a published key set is a leak.
        return None
    # The key's own alg, when it names one, narrows what a token header may ask for.
    declared = jwk.get("alg")
    algorithms = possible & {declared} if declared else possible
    if not algorithms:
        return None
    # A provider that leaks its private parts still only gets its public half used.
    public_key = (
        loaded.public_key()
        if isinstance(loaded, RSAPrivateKey | EllipticCurvePrivateKey)
        else loaded
    )
    return SigningKey(kid=kid, public_key=public_key, algorithms=frozenset(algorithms))


class OidcVerifier:
    """Verifies bearer tokens with the provider's published keys; safe to share across threads.

    Discovery is fetched once. The key set is fetched on first use, again when it is older than
    `jwks_max_age_seconds`, and again when a token names an unknown kid (the provider rotated
    its keys), the latter at most once per `min_refresh_seconds` so that tokens with made-up
    kids cannot make yiyun hammer the provider.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        min_refresh_seconds: float = 10.0,
        jwks_max_age_seconds: float = 300.0,
        leeway_seconds: int = 30,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.settings = settings
        self.min_refresh_seconds = min_refresh_seconds
        self.jwks_max_age_seconds = jwks_max_age_seconds
        self.leeway_seconds = leeway_seconds
        self.timeout_seconds = timeout_seconds
        self._jwks_uri: str | None = None
        # Replaced whole, never mutated: readers take it without the lock.
        self._key_set = KeySet()
        self._last_attempt: float | None = None
        self._last_attempt_failed = False
        self._refresh_lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once signature, issuer, audience and times all check out."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise TokenRejected("malformed", str(error)) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ACCEPTED_ALGORITHMS:
            raise TokenRejected("algorithm", f"alg {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("unknown_key", "the token names no key (kid)")
        key = self._key(kid)
        if alg not in key.algorithms:
            raise TokenRejected("algorithm", f"key {kid} does not verify {alg}")
        claims = self._decode(token, key)
        issued_at = claims.get("iat")
        # PyJWT has checked iat in the future in some releases and not in others.
        if isinstance(issued_at, int | float) and issued_at > time.time() + self.leeway_seconds:
            raise TokenRejected("not_yet_valid", "issued in the future (iat)")
        return claims

    def _decode(self, token: str, key: SigningKey) -> dict[str, Any]:
        required = ["exp", "iss", "aud", self.settings.principal_claim]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.public_key,
                algorithms=sorted(key.algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.leeway_seconds,
                options={"require": required, "verify_iat": False},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRejected("expired", str(error)) from None
        except jwt.ImmatureSignatureError as error:
            raise TokenRejected("not_yet_valid", str(error)) from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRejected("missing_claim", str(error)) from None
        except jwt.InvalidAudienceError as error:
            raise TokenRejected("audience", str(error)) from None
        except jwt.InvalidIssuerError as error:
            raise TokenRejected("issuer", str(error)) from None
        except jwt.InvalidSignatureError as error:
            raise TokenRejected("signature", str(error)) from None
        except jwt.InvalidAlgorithmError as error:
            raise TokenRejected("algorithm", str(error)) from None
        except jwt.InvalidTokenError as error:
            raise TokenRejected("malformed", str(error)) from None
        return claims

    def _key(self, kid: str) -> SigningKey:
        key_set = self._key_set
        if self._is_fresh(key_set) and kid in key_set.keys:
            return key_set.keys[kid]
        with self._refresh_lock:
            # Another thread may have refreshed while this one waited for the lock.
            key_set = self._key_set
            now = time.monotonic()
            recent_attempt = (
                self._last_attempt is not None
                and now - self._last_attempt < self.min_refresh_seconds
            )
            if not self._is_fresh(key_set):
                if recent_attempt and self._last_attempt_failed:
                    # Fail fast instead of making every request wait out another timeout.
                    raise TokenRejected("provider_unreachable", "the last key fetch just failed")
                key_set = self._refresh()
            elif kid not in key_set.keys and not recent_attempt:
                key_set = self._refresh()
        if kid not in key_set.keys:
            raise TokenRejected("unknown_key", f"the provider publishes no key {kid}")
        return key_set.keys[kid]

    def _is_fresh(self, key_set: KeySet) -> bool:
        return (
            key_set.fetched_at is not None
            and time.monotonic() - key_set.fetched_at < self.jwks_max_age_seconds
        )

    def _refresh(self) -> KeySet:
        """Fetch the key set (discovering where it is first); the caller holds the lock."""
        self._last_attempt = time.monotonic()
        self._last_attempt_failed = True
        if self._jwks_uri is None:
            self._jwks_uri = self._discover_jwks_uri()
        published = self._fetch_json(self._jwks_uri)
        entries = published.get("keys")
        if not isinstance(entries, list):
            raise TokenRejected("provider_misconfigured", f"{self._jwks_uri} has no keys list")
        keys: dict[str, SigningKey] = {}
        for entry in entries:
            try:
                key = signing_key(entry) if isinstance(entry, dict) else None
            except (jwt.InvalidKeyError, ValueError, KeyError) as error:
                log.warning("skipping an unusable key in %s: %s", self._jwks_uri, error)
                continue
            if key is not None:
                keys[key.kid] = key
        self._key_set = KeySet(keys=keys, fetched_at=time.monotonic())
        self._last_attempt_failed = False
        return self._key_set

    def _discover_jwks_uri(self) -> str:
        # OpenID Connect Discovery 1.0 §4: a trailing / of the issuer is dropped before the path.
        discovery_url = f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration"
        discovery = self._fetch_json(discovery_url)
        # §4.3: the document must name exactly the issuer it was asked for.
        if discovery.get("issuer") != self.settings.issuer:
            raise TokenRejected(
                "provider_misconfigured",
                f"{discovery_url} names issuer {discovery.get('issuer')!r}",
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise TokenRejected("provider_misconfigured", f"{discovery_url} has no jwks_uri")
        return jwks_uri

    def _fetch_json(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise TokenRejected("provider_unreachable", f"{url}: HTTP {error.code}") from None
        except (OSError, ValueError) as error:
            # URLError, refused connections and timeouts are OSErrors; bad JSON a ValueError.
            raise TokenRejected("provider_unreachable", f"{url}: {error}") from None
        if not isinstance(body, dict):
            raise TokenRejected("provider_misconfigured", f"{url} is not a JSON object")
        return body


def grants_from_claims(claims: Mapping[str, Any], settings: OidcSettings) -> list[tuple[str, str]]:
    """The (role, scope) grants a token carries, e.g. "planner:city:南京市" → ("planner",
    "city:南京市"); entries that are not a known role on a well-formed scope are logged and
    left out, so one bad entry never costs the caller the good ones."""
    if settings.grants_claim is None:
        return []
    entries = claims.get(settings.grants_claim)
    if entries is None:
        return []
    # Some providers flatten a one-element list to a plain string.
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list):
        log.warning("claim %s is not a list of grants; ignored", settings.grants_claim)
        return []
    grants: list[tuple[str, str]] = []
    for entry in entries:
        grant = parse_grant(entry)
        if grant is None:
            log.warning("ignoring malformed grant %r in claim %s", entry, settings.grants_claim)
        elif grant not in grants:
            grants.append(grant)
    return grants


def parse_grant(entry: object) -> tuple[str, str] | None:
    """("role", "scope") from "role:scope", or None when it is not a grant yiyun knows."""
    if not isinstance(entry, str):
        return None
    role, colon, scope = entry.strip().partition(":")
    if not colon or role not in ROLES:
        return None
    if scope == "province":
        return role, scope
    kind, _, name = scope.partition(":")
    if kind in SCOPE_KINDS_WITH_NAME and name and name.strip() == name and ":" not in name:
        return role, scope
    return None
