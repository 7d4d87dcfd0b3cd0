"""Bearer tokens checked against a real oidc-provider: its real tokens, and forgeries of them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from service.identity import (
    OidcSettings,
    OidcVerifier,
    TokenRejected,
    grants_from_claims,
)
from tests.service import oidc_peer
from tests.service.oidc_peer import AUDIENCE, OidcProvider, new_rsa_key

# The peer's fixtures, made visible to pytest in this module.
oidc_keys = oidc_peer.oidc_keys
oidc_provider = oidc_peer.oidc_provider

CLIENT = "js-edu-it"


def settings_for(provider: OidcProvider) -> OidcSettings:
    return OidcSettings(issuer=provider.issuer, audience=AUDIENCE)


def unverified_claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def reason_for(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(token)
    return rejected.value.reason


def resigned(provider: OidcProvider, **changes: Any) -> str:
    """A real token's claims with `changes` (None drops a claim), signed by the provider's key."""
    claims = {**unverified_claims(provider.token(CLIENT)), **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    key = provider.keys.signing
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    # Made by hand: PyJWT refuses to use a public key as an HMAC secret, the attacker does not.
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def published_jwk(provider: OidcProvider, kid: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{provider.issuer}/jwks", timeout=10) as response:
        jwks = json.loads(response.read())
    return next(jwk for jwk in jwks["keys"] if jwk["kid"] == kid)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_real_token_verifies_and_its_grants_parse(
    oidc_provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(oidc_provider)
    claims = OidcVerifier(settings).verify(oidc_provider.token(CLIENT))
    with caplog.at_level(logging.WARNING, logger="service.identity"):
        grants = grants_from_claims(claims, settings)

    assert (claims["iss"], claims["aud"], claims["sub"], claims["client_id"]) == (
        oidc_provider.issuer,
        AUDIENCE,
        CLIENT,
        CLIENT,
    )
    assert claims["preferred_username"] == "张敏"
    assert claims["iat"] <= claims["nbf"] < claims["exp"]
    assert grants == [
        ("department_it", "department:JS-EDU"),
        ("viewer", "city:南京市"),
        ("planner", "city:南京市"),
    ]
    # The two entries yiyun does not know are named in the log, not silently dropped.
    assert "superuser:province" in caplog.text
    assert "'viewer'" in caplog.text


def test_alg_none_is_rejected(oidc_provider: OidcProvider) -> None:
    claims = unverified_claims(oidc_provider.token(CLIENT))
    unsigned = jwt.encode(
        claims, "", algorithm="none", headers={"kid": oidc_provider.keys.signing.kid}
    )
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), unsigned) == "algorithm"


def test_an_alg_that_is_not_a_name_is_rejected(oidc_provider: OidcProvider) -> None:
    claims = unverified_claims(oidc_provider.token(CLIENT))
    header = {"alg": ["RS256"], "kid": oidc_provider.keys.signing.kid}
    token = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.e30"
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), token) == "algorithm"


@pytest.mark.parametrize("secret_form", ["pem", "jwk-json"])
def test_hs256_keyed_with_the_providers_public_key_is_rejected(
    oidc_provider: OidcProvider, secret_form: str
) -> None:
    # The key-confusion attack: a verifier that lets the header pick the algorithm would take
    # the public key's bytes as the HMAC secret, and anyone can compute that signature.
    key = oidc_provider.keys.signing
    secret = (
        key.public_pem()
        if secret_form == "pem"
        else json.dumps(published_jwk(oidc_provider, key.kid)).encode()
    )
    claims = unverified_claims(oidc_provider.token(CLIENT))
    forged = hs256_token(claims, secret, key.kid)
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), forged) == "algorithm"


def test_another_key_under_the_providers_kid_is_rejected(oidc_provider: OidcProvider) -> None:
    claims = unverified_claims(oidc_provider.token(CLIENT))
    kid = oidc_provider.keys.signing.kid
    forged = jwt.encode(claims, new_rsa_key(), algorithm="RS256", headers={"kid": kid})
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), forged) == "signature"


def test_the_keys_own_alg_decides_not_the_header(oidc_provider: OidcProvider) -> None:
    # Signed with the provider's real key, but RS384: its JWK says RS256.
    key = oidc_provider.keys.signing
    claims = unverified_claims(oidc_provider.token(CLIENT))
    other_alg = jwt.encode(claims, key.private_key, algorithm="RS384", headers={"kid": key.kid})
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), other_alg) == "algorithm"


def test_a_kid_the_provider_never_published_is_rejected(oidc_provider: OidcProvider) -> None:
    claims = unverified_claims(oidc_provider.token(CLIENT))
    forged = jwt.encode(claims, new_rsa_key(), algorithm="RS256", headers={"kid": "nobody"})
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), forged) == "unknown_key"


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_garbage_is_malformed(oidc_provider: OidcProvider, garbage: str) -> None:
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), garbage) == "malformed"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -120, "iat": -600, "nbf": -600}, "expired"),
        ({"nbf": 600}, "not_yet_valid"),
        ({"iat": 600, "nbf": None}, "not_yet_valid"),
        ({"exp": None}, "missing_claim"),
        ({"sub": None}, "missing_claim"),
    ],
    ids=["expired", "nbf-future", "iat-future", "no-exp", "no-sub"],
)
def test_times_and_required_claims(
    oidc_provider: OidcProvider, changes: dict[str, int | None], reason: str
) -> None:
    now = int(time.time())
    offsets = {name: None if delta is None else now + delta for name, delta in changes.items()}
    token = resigned(oidc_provider, **offsets)
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), token) == reason


@pytest.mark.parametrize(
    "changes",
    [{"iat": 10, "nbf": 10}, {"iat": -600, "nbf": -600, "exp": -10}],
    ids=["issued-10s-ahead", "expired-10s-ago"],
)
def test_clock_skew_within_the_leeway_is_accepted(
    oidc_provider: OidcProvider, changes: dict[str, int]
) -> None:
    now = int(time.time())
    skewed = {name: now + delta for name, delta in changes.items()}
    claims = OidcVerifier(settings_for(oidc_provider)).verify(resigned(oidc_provider, **skewed))
    assert {name: claims[name] for name in skewed} == skewed


def test_a_token_for_another_audience_is_rejected(oidc_provider: OidcProvider) -> None:
    # A real token the provider issued for another application, not a forgery.
    token = oidc_provider.token(CLIENT, audience="https://other-app.example.gov.cn/")
    assert unverified_claims(token)["aud"] == "https://other-app.example.gov.cn/"
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), token) == "audience"


def test_a_token_from_another_issuer_is_rejected(oidc_provider: OidcProvider) -> None:
    token = resigned(oidc_provider, iss="http://idp.elsewhere.example")
    assert reason_for(OidcVerifier(settings_for(oidc_provider)), token) == "issuer"


def test_rotation_keeping_the_old_key(oidc_provider: OidcProvider) -> None:
    verifier = OidcVerifier(settings_for(oidc_provider), min_refresh_seconds=0)
    old_token = oidc_provider.token(CLIENT)
    verifier.verify(old_token)  # the key set before the rotation is now cached

    fresh = oidc_provider.rotate(keep_old=True)
    new_token = oidc_provider.token(CLIENT)

    assert jwt.get_unverified_header(new_token)["kid"] == fresh.kid
    assert verifier.verify(new_token)["sub"] == CLIENT  # refetched on the unknown kid
    assert verifier.verify(old_token)["sub"] == CLIENT
    # The restart went through SIGTERM, and the provider left cleanly each time.
    assert oidc_provider.exit_codes
    assert set(oidc_provider.exit_codes) == {0}


def test_rotation_dropping_the_old_key(oidc_provider: OidcProvider) -> None:
    verifier = OidcVerifier(settings_for(oidc_provider), min_refresh_seconds=0)
    always_refetching = OidcVerifier(settings_for(oidc_provider), jwks_max_age_seconds=0)
    old_token = oidc_provider.token(CLIENT)
    verifier.verify(old_token)
    always_refetching.verify(old_token)

    oidc_provider.rotate(keep_old=False)

    # Until something makes it refetch, a verifier trusts the key set it has.
    assert verifier.verify(old_token)["sub"] == CLIENT
    assert verifier.verify(oidc_provider.token(CLIENT))["sub"] == CLIENT
    assert reason_for(verifier, old_token) == "unknown_key"
    # A key set past its max age is refetched even without a new kid to prompt it.
    assert reason_for(always_refetching, old_token) == "unknown_key"


def test_unknown_kids_do_not_refetch_within_min_refresh(oidc_provider: OidcProvider) -> None:
    verifier = OidcVerifier(settings_for(oidc_provider), min_refresh_seconds=3600)
    old_token = oidc_provider.token(CLIENT)
    verifier.verify(old_token)

    oidc_provider.rotate(keep_old=True)

    assert reason_for(verifier, oidc_provider.token(CLIENT)) == "unknown_key"
    assert verifier.verify(old_token)["sub"] == CLIENT


def test_threads_verifying_across_a_rotation_all_succeed(oidc_provider: OidcProvider) -> None:
    verifier = OidcVerifier(settings_for(oidc_provider), min_refresh_seconds=0)
    old_token = oidc_provider.token(CLIENT)
    verifier.verify(old_token)
    oidc_provider.rotate(keep_old=True)
    tokens = [old_token, oidc_provider.token(CLIENT), oidc_provider.token("province-viewer")] * 16

    with ThreadPoolExecutor(max_workers=16) as pool:
        subjects = list(pool.map(lambda token: verifier.verify(token)["sub"], tokens))

    assert subjects == [CLIENT, CLIENT, "province-viewer"] * 16


def test_an_unreachable_provider_is_a_rejection_not_a_crash(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.token(CLIENT)
    issuer = f"http://127.0.0.1:{closed_port()}"
    verifier = OidcVerifier(OidcSettings(issuer=issuer, audience=AUDIENCE), timeout_seconds=2)

    assert reason_for(verifier, token) == "provider_unreachable"
    assert reason_for(verifier, token) == "provider_unreachable"  # fails fast the second time


def test_a_provider_naming_another_issuer_is_not_trusted(oidc_provider: OidcProvider) -> None:
    # Same provider, reached under a name it does not call itself: discovery must not be used.
    as_localhost = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    verifier = OidcVerifier(OidcSettings(issuer=as_localhost, audience=AUDIENCE))
    assert reason_for(verifier, oidc_provider.token(CLIENT)) == "provider_misconfigured"


SETTINGS = OidcSettings(issuer="http://idp.example", audience=AUDIENCE)


@pytest.mark.parametrize(
    ("claims", "grants"),
    [
        ({}, []),
        ({"yiyun_roles": []}, []),
        ({"yiyun_roles": "admin:province"}, [("admin", "province")]),
        (
            {"yiyun_roles": ["department_it:department:JS-EDU", "planner:city:南京市"]},
            [("department_it", "department:JS-EDU"), ("planner", "city:南京市")],
        ),
        ({"yiyun_roles": ["viewer:province", "viewer:province"]}, [("viewer", "province")]),
        (
            {
                "yiyun_roles": [
                    "viewer:county:江宁区",
                    "viewer:city:",
                    "viewer:department",
                    "root:province",
                    "viewer",
                    42,
                    None,
                    "viewer:city:南京市",
                ]
            },
            [("viewer", "city:南京市")],
        ),
        ({"yiyun_roles": {"viewer": "province"}}, []),
    ],
    ids=["absent", "empty", "one-string", "two", "duplicate", "malformed-ignored", "not-list"],
)
def test_grants_from_claims(claims: dict[str, Any], grants: list[tuple[str, str]]) -> None:
    assert grants_from_claims(claims, SETTINGS) == grants


def test_no_grants_claim_means_no_grants_from_the_token() -> None:
    settings = OidcSettings(issuer="http://idp.example", audience=AUDIENCE, grants_claim=None)
    assert grants_from_claims({"yiyun_roles": ["admin:province"]}, settings) == []


def test_settings_from_env() -> None:
    assert OidcSettings.from_env({}) is None
    assert OidcSettings.from_env(
        {"YIYUN_OIDC_ISSUER": "https://idp.js.gov.cn/", "YIYUN_OIDC_AUDIENCE": "yiyun"}
    ) == OidcSettings(issuer="https://idp.js.gov.cn/", audience="yiyun")
    custom = {
        "YIYUN_OIDC_ISSUER": "https://idp.js.gov.cn",
        "YIYUN_OIDC_AUDIENCE": "yiyun",
        "YIYUN_OIDC_PRINCIPAL_CLAIM": "oid",
        "YIYUN_OIDC_GRANTS_CLAIM": "",
        "YIYUN_OIDC_NAME_CLAIM": "name",
    }
    assert OidcSettings.from_env(custom) == OidcSettings(
        issuer="https://idp.js.gov.cn",
        audience="yiyun",
        principal_claim="oid",
        grants_claim=None,
        name_claim="name",
    )
    with pytest.raises(ValueError, match="YIYUN_OIDC_AUDIENCE"):
        OidcSettings.from_env({"YIYUN_OIDC_ISSUER": "https://idp.js.gov.cn"})
