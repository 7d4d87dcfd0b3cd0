"""The identity-provider peer's interactive login: authorization code + PKCE over plain HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests.service import oidc_peer
from tests.service.oidc_peer import (
    ACCOUNTS,
    PORTAL_CLIENT_ID,
    PORTAL_CLIENT_SECRET,
    PORTAL_SCOPES,
    OidcProvider,
)

oidc_keys = oidc_peer.oidc_keys
oidc_provider = oidc_peer.oidc_provider

# Nothing listens there: the flow stops at the redirect, as a browser's would before connecting.
# Two ports, because the portal's port is only known once `yiyun serve` has bound it.
CALLBACK = "http://127.0.0.1:48213/auth/callback"
OTHER_PORT_CALLBACK = "http://127.0.0.1:51877/auth/callback"
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Authorization:
    """One authorization request as the portal would make it, secrets kept for the exchange."""

    url: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str


def authorization(
    provider: OidcProvider, *, redirect_uri: str = CALLBACK, **overrides: str
) -> Authorization:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "client_id": PORTAL_CLIENT_ID,
        "response_type": "code",
        "scope": PORTAL_SCOPES,
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **overrides,
    }
    params = {key: value for key, value in params.items() if value}
    url = f"{provider.authorization_endpoint}?{urllib.parse.urlencode(params)}"
    return Authorization(url, state, nonce, verifier, redirect_uri)


def follow(visitor: httpx.Client, response: httpx.Response, stop_at: str) -> httpx.Response:
    """Follow redirects until one points at `stop_at` (returned unfollowed) or a page answers."""
    for _ in range(MAX_REDIRECTS):
        if not response.is_redirect:
            return response
        location = urllib.parse.urljoin(str(response.url), response.headers["location"])
        if location.startswith(stop_at):
            return response
        response = visitor.get(location)
    pytest.fail(f"more than {MAX_REDIRECTS} redirects, last at {response.url}")


def form_action(page: httpx.Response) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text
    return urllib.parse.urljoin(str(page.url), match.group(1))


def open_login_page(visitor: httpx.Client, asked: Authorization) -> httpx.Response:
    page = follow(visitor, visitor.get(asked.url), asked.redirect_uri)
    assert page.status_code == 200, page.text
    return page


def log_in(visitor: httpx.Client, asked: Authorization, username: str, password: str) -> str:
    """The callback URL the provider sends the visitor to after a right password."""
    page = open_login_page(visitor, asked)
    posted = visitor.post(form_action(page), data={"username": username, "password": password})
    redirect = follow(visitor, posted, asked.redirect_uri)
    assert redirect.is_redirect, redirect.text
    return str(redirect.headers["location"])


def callback_params(location: str, asked: Authorization) -> dict[str, str]:
    parts = urllib.parse.urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == asked.redirect_uri
    return dict(urllib.parse.parse_qsl(parts.query))


def exchange(
    provider: OidcProvider, asked: Authorization, code: str, verifier: str
) -> httpx.Response:
    return httpx.post(
        provider.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": asked.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET),
    )


def verified_id_token(provider: OidcProvider, token: str, nonce: str) -> dict[str, Any]:
    signing_key = jwt.PyJWKClient(provider.jwks_uri).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience=PORTAL_CLIENT_ID,
        issuer=provider.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
    )
    assert claims["nonce"] == nonce
    return claims


@pytest.fixture
def visitor() -> Iterator[httpx.Client]:
    """A cookie jar that does not follow redirects by itself, one per test (no shared session)."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def test_login_page_is_a_plain_labelled_form(
    oidc_provider: OidcProvider, visitor: httpx.Client
) -> None:
    page = open_login_page(visitor, authorization(oidc_provider))

    assert page.headers["content-type"].startswith("text/html")
    assert '<label for="username">用户名</label>' in page.text
    assert '<label for="password">密码</label>' in page.text
    assert 'id="password" name="password" type="password"' in page.text
    assert '<button type="submit">登录</button>' in page.text
    assert "<script" not in page.text


@pytest.mark.parametrize("sub", sorted(ACCOUNTS))
def test_code_flow_gives_an_id_token_with_the_users_claims(
    oidc_provider: OidcProvider, visitor: httpx.Client, sub: str
) -> None:
    account = ACCOUNTS[sub]
    asked = authorization(oidc_provider)

    callback = callback_params(log_in(visitor, asked, sub, account.password), asked)
    issued = exchange(oidc_provider, asked, callback["code"], asked.verifier)

    assert callback["state"] == asked.state
    assert callback["iss"] == oidc_provider.issuer
    assert issued.status_code == 200, issued.text
    claims = verified_id_token(oidc_provider, issued.json()["id_token"], asked.nonce)
    assert claims["sub"] == sub
    assert claims["preferred_username"] == account.preferred_username
    assert claims["yiyun_roles"] == [*account.yiyun_roles]


def test_any_loopback_port_is_a_registered_redirect(
    oidc_provider: OidcProvider, visitor: httpx.Client
) -> None:
    asked = authorization(oidc_provider, redirect_uri=OTHER_PORT_CALLBACK)
    account = ACCOUNTS["chenjing"]

    callback = callback_params(log_in(visitor, asked, account.sub, account.password), asked)

    assert exchange(oidc_provider, asked, callback["code"], asked.verifier).status_code == 200


def test_another_callback_path_is_refused(
    oidc_provider: OidcProvider, visitor: httpx.Client
) -> None:
    asked = authorization(oidc_provider, redirect_uri="http://127.0.0.1:48213/elsewhere")

    answer = visitor.get(asked.url)

    # An unregistered redirect is never followed: the provider answers itself.
    assert answer.status_code == 400
    assert "redirect_uri did not match" in answer.text


@pytest.mark.parametrize(
    ("username", "password"),
    [("zhangmin", "not-the-password"), ("zhangmin", ""), ("nobody", "zhangmin-pw-7q")],
)
def test_wrong_password_shows_the_form_again(
    oidc_provider: OidcProvider, visitor: httpx.Client, username: str, password: str
) -> None:
    asked = authorization(oidc_provider)
    page = open_login_page(visitor, asked)

    refused = visitor.post(form_action(page), data={"username": username, "password": password})

    assert refused.status_code == 401
    assert "用户名或密码错误" in refused.text
    assert '<label for="password">密码</label>' in refused.text
    # The same interaction goes on: the right password still logs in afterwards.
    account = ACCOUNTS["zhangmin"]
    posted = visitor.post(
        form_action(refused), data={"username": account.sub, "password": account.password}
    )
    assert follow(visitor, posted, asked.redirect_uri).headers["location"].startswith(CALLBACK)


def test_pkce_is_required(oidc_provider: OidcProvider, visitor: httpx.Client) -> None:
    asked = authorization(oidc_provider, code_challenge="", code_challenge_method="")

    answer = visitor.get(asked.url)

    callback = callback_params(answer.headers["location"], asked)
    assert callback["error"] == "invalid_request"
    assert "PKCE" in callback["error_description"]


def test_a_wrong_code_verifier_is_refused(
    oidc_provider: OidcProvider, visitor: httpx.Client
) -> None:
    asked = authorization(oidc_provider)
    account = ACCOUNTS["zhangmin"]
    callback = callback_params(log_in(visitor, asked, account.sub, account.password), asked)

    refused = exchange(oidc_provider, asked, callback["code"], secrets.token_urlsafe(48))

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_a_code_is_exchanged_once(oidc_provider: OidcProvider, visitor: httpx.Client) -> None:
    asked = authorization(oidc_provider)
    account = ACCOUNTS["wangfang"]
    callback = callback_params(log_in(visitor, asked, account.sub, account.password), asked)
    assert exchange(oidc_provider, asked, callback["code"], asked.verifier).status_code == 200

    again = exchange(oidc_provider, asked, callback["code"], asked.verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_logout_returns_to_the_portal(oidc_provider: OidcProvider, visitor: httpx.Client) -> None:
    asked = authorization(oidc_provider)
    account = ACCOUNTS["liuyang"]
    callback = callback_params(log_in(visitor, asked, account.sub, account.password), asked)
    id_token = exchange(oidc_provider, asked, callback["code"], asked.verifier).json()["id_token"]
    after_logout = "http://127.0.0.1:48213/"

    query = urllib.parse.urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": after_logout, "state": "bye"}
    )
    confirm = visitor.get(f"{oidc_provider.end_session_endpoint}?{query}")
    assert confirm.status_code == 200, confirm.text
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
    assert xsrf, confirm.text
    done = visitor.post(
        urllib.parse.urljoin(str(confirm.url), "/session/end/confirm"),
        data={"xsrf": xsrf.group(1), "logout": "yes"},
    )

    assert done.status_code == 303
    assert done.headers["location"] == f"{after_logout}?state=bye"
    # The provider's session is gone: the next authorization asks for the password again.
    assert '<label for="password">' in open_login_page(visitor, authorization(oidc_provider)).text


def test_an_access_token_for_the_api_carries_the_users_roles(
    oidc_provider: OidcProvider, visitor: httpx.Client
) -> None:
    asked = authorization(oidc_provider, resource=oidc_peer.AUDIENCE)
    account = ACCOUNTS["chenjing"]
    callback = callback_params(log_in(visitor, asked, account.sub, account.password), asked)

    issued = httpx.post(
        oidc_provider.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": asked.redirect_uri,
            "code_verifier": asked.verifier,
            "resource": oidc_peer.AUDIENCE,
        },
        auth=(PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET),
    )

    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    key = jwt.PyJWKClient(oidc_provider.jwks_uri).get_signing_key_from_jwt(token).key
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience=oidc_peer.AUDIENCE, issuer=oidc_provider.issuer
    )
    assert (claims["sub"], claims["client_id"]) == (account.sub, PORTAL_CLIENT_ID)
    assert claims["yiyun_roles"] == [*account.yiyun_roles]
