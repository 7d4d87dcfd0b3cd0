"""The portal's login at the real identity provider: code + PKCE, the session, refusals."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from inventory.models import LoginSession
from inventory.settings import Settings
from service.app import create_app
from service.context import Service
from service.identity import OidcSettings
from service.portal.oidc_login import PortalClient, PortalLogin
from service.portal.web import SESSION_COOKIE
from tests.service import oidc_peer
from tests.service.oidc_peer import (
    ACCOUNTS,
    AUDIENCE,
    PORTAL_CLIENT_ID,
    PORTAL_CLIENT_SECRET,
    OidcProvider,
)

oidc_keys = oidc_peer.oidc_keys
oidc_provider = oidc_peer.oidc_provider
# Where the browser would be sent back to: the provider accepts any port on 127.0.0.1.
PUBLIC_URL = "http://127.0.0.1:48213"
CALLBACK = f"{PUBLIC_URL}/auth/callback"


@pytest.fixture
def portal_app(
    engine: sa.Engine, settings: Settings, oidc_provider: OidcProvider
) -> Iterator[TestClient]:
    oidc = OidcSettings(issuer=oidc_provider.issuer, audience=AUDIENCE)
    client = PortalClient(PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET, public_url=PUBLIC_URL)
    app = create_app(Service(engine=engine, settings=settings, oidc=oidc, portal=client))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as test_client:
        yield test_client


def at_provider(portal: TestClient, username: str, password: str, next_path: str = "/") -> str:
    """Start at the portal, log in at the provider's own form; the callback URL it sends back."""
    start = portal.get(f"/login/start?next={urllib.parse.quote(next_path)}")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"] == [CALLBACK]
    with httpx.Client(follow_redirects=False) as visitor:
        answer = visitor.get(authorize)
        while answer.is_redirect:
            answer = visitor.get(urllib.parse.urljoin(str(answer.url), answer.headers["location"]))
        form = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
        assert form, answer.text
        posted = visitor.post(
            urllib.parse.urljoin(str(answer.url), form.group(1)),
            data={"username": username, "password": password},
        )
        answer = posted
        for _ in range(10):
            assert answer.is_redirect, answer.text
            location = urllib.parse.urljoin(str(answer.url), answer.headers["location"])
            if location.startswith(CALLBACK):
                return location
            answer = visitor.get(location)
    raise AssertionError("the provider never sent the browser back")


def back_at_portal(portal: TestClient, callback: str) -> httpx.Response:
    parts = urllib.parse.urlsplit(callback)
    return portal.get(f"{parts.path}?{parts.query}")


def test_a_person_logs_in_at_the_provider_and_acts_with_the_grants_it_asserts(
    portal_app: TestClient, engine: sa.Engine
) -> None:
    account = ACCOUNTS["zhangmin"]
    pending_sid = None
    callback = at_provider(portal_app, account.sub, account.password, "/workspace")
    pending_sid = portal_app.cookies.get(SESSION_COOKIE)
    answer = back_at_portal(portal_app, callback)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/workspace"
    sid = answer.cookies[SESSION_COOKIE]
    # A fresh id after login: the pending one (which an attacker could have planted) is gone.
    assert sid != pending_sid
    with Session(engine) as session:
        rows = session.exec(select(LoginSession)).all()
    assert [(r.principal, r.name, r.kind) for r in rows] == [(account.sub, "张敏", "oidc")]
    assert rows[0].claim_grants == ["department_it:department:JS-EDU"]
    # The page knows who this is.
    page = portal_app.get("/lang/zh")  # any page through the session: the start page redirects
    assert page.status_code == 303
    assert portal_app.get("/").headers["location"] == "/workspace"


def test_a_replayed_callback_starts_nothing(portal_app: TestClient) -> None:
    account = ACCOUNTS["liuyang"]
    callback = at_provider(portal_app, account.sub, account.password)
    pending = portal_app.cookies.get(SESSION_COOKIE)
    assert back_at_portal(portal_app, callback).status_code == 303
    # The same answer again, with the pending cookie an attacker might hold.
    portal_app.cookies.set(SESSION_COOKIE, pending or "")
    again = back_at_portal(portal_app, callback)
    assert again.status_code == 400
    assert "登录已超时或已使用" in again.text


def test_a_callback_for_someone_elses_login_is_refused(portal_app: TestClient) -> None:
    account = ACCOUNTS["liuyang"]
    callback = at_provider(portal_app, account.sub, account.password)
    # A victim's browser holds its own pending login; the attacker's callback does not match.
    portal_app.cookies.clear()
    portal_app.get("/login/start")
    answer = back_at_portal(portal_app, callback)
    assert answer.status_code == 400
    assert SESSION_COOKIE not in answer.cookies


def test_a_tampered_code_or_a_cancelled_login_gives_a_plain_refusal(
    portal_app: TestClient,
) -> None:
    account = ACCOUNTS["liuyang"]
    callback = at_provider(portal_app, account.sub, account.password)
    forged = callback.replace("code=", "code=x")
    answer = back_at_portal(portal_app, forged)
    assert answer.status_code == 401
    assert "统一身份认证未确认您的身份" in answer.text
    portal_app.get("/login/start")
    state = portal_app.get("/login/start").headers["location"].split("state=")[1].split("&")[0]
    cancelled = portal_app.get(f"/auth/callback?error=access_denied&state={state}")
    assert cancelled.status_code == 401


def test_an_unreachable_provider_is_said_plainly(engine: sa.Engine, settings: Settings) -> None:
    oidc = OidcSettings(issuer="http://127.0.0.1:9", audience=AUDIENCE)
    app = create_app(Service(engine=engine, settings=settings, oidc=oidc))
    app.state.portal_login = PortalLogin(
        oidc, PortalClient(PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET), timeout=2
    )
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        answer = client.get("/login/start")
    assert answer.status_code == 503
    assert "统一身份认证暂时无法访问" in answer.text
