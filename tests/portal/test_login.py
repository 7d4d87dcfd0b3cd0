"""The portal's door: demo login, sessions, CSRF, logout, the language switch and its headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from inventory.access import Actor
from inventory.grants import grant_access, revoke_access
from inventory.models import LoginSession
from inventory.sessions import SESSION_IDLE, session_actor
from service.portal.security import CONTENT_SECURITY_POLICY
from service.portal.web import SESSION_COOKIE
from tests.portal.conftest import Portal, csrf_in

LOOPBACK = ("127.0.0.1", 50000)


def loopback_client(app: object) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False, client=LOOPBACK)  # type: ignore[arg-type]


def demo_login(client: TestClient, **form: str) -> object:
    page = client.get("/login")
    token = csrf_in(page.text)
    assert token, page.text
    fields = {"csrf_token": token, "role": "viewer", "scope": "province", "principal": "王芳"}
    return client.post("/login/demo", data={**fields, **form})


def test_anonymous_pages_go_to_the_login_with_the_way_back(fresh_app: TestClient) -> None:
    answer = fresh_app.get("/?offset=50")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/?offset=50"
    htmx = fresh_app.get("/", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/login"


def test_the_login_page_is_chinese_with_a_strict_policy_and_no_inline_script(
    fresh_app: TestClient,
) -> None:
    answer = fresh_app.get("/login")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    page = answer.text
    assert "登录一云" in page
    # Every script is a file of this origin; no element carries a style attribute.
    assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)", page) == []
    assert " style=" not in page
    # Without an identity provider configured the page says so rather than offering a dead link.
    assert "未配置统一身份认证" not in page or "/login/start" not in page


def test_demo_login_is_loopback_only(fresh_app: TestClient) -> None:
    # The TestClient's default peer address is not loopback: the form is not offered and a
    # forged post is refused.
    page = fresh_app.get("/login")
    assert "/login/demo" not in page.text
    # Even with a good form token (the cookie's own value), the post is refused.
    token = page.cookies["yiyun_login_csrf"]
    answer = fresh_app.post(
        "/login/demo", data={"csrf_token": token, "role": "admin", "scope": "province"}
    )
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.cookies


def test_demo_login_starts_a_session_whose_cookie_is_httponly_and_lax(
    fresh_app: TestClient, engine: sa.Engine
) -> None:
    client = loopback_client(fresh_app.app)
    answer = demo_login(client, next="/dashboard")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    sid = answer.cookies[SESSION_COOKIE]
    with Session(engine) as session:
        rows = session.exec(select(LoginSession)).all()
    # Only the id's SHA-256 is kept: the cookie's value is nowhere in the table.
    assert len(rows) == 1 and rows[0].principal == "王芳"
    assert sid not in repr(rows[0].model_dump())
    assert rows[0].claim_grants == ["viewer:province"]


def test_demo_login_refuses_a_bad_scope_and_a_missing_form_token(fresh_app: TestClient) -> None:
    client = loopback_client(fresh_app.app)
    bad = demo_login(client, scope="city:火星")
    assert bad.status_code == 422
    assert SESSION_COOKIE not in bad.cookies
    client.cookies.clear()
    forged = client.post("/login/demo", data={"role": "admin", "scope": "province"})
    assert forged.status_code == 403
    assert "表单已过期" in forged.text


def test_a_post_from_another_site_or_without_the_token_changes_nothing(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    no_token = user.client.post("/logout")
    assert no_token.status_code == 403
    other_site = user.client.post(
        "/logout", data={"csrf_token": user.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403
    # Still logged in.
    assert user.get("/").status_code == 303
    assert user.get("/").headers["location"] != "/login"


def test_logout_ends_the_session_for_every_copy_of_the_cookie(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    sid = user.client.cookies[SESSION_COOKIE]
    answer = user.post("/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?bye=1"
    copy = portal.anonymous()
    copy.cookies.set(SESSION_COOKIE, sid)
    assert copy.get("/").headers["location"].startswith("/login")
    assert "您已退出登录" in copy.get("/login?bye=1").text


def test_an_idle_or_expired_session_proves_nothing(portal: Portal, engine: sa.Engine) -> None:
    user = portal.login("viewer", "province")
    sid = user.client.cookies[SESSION_COOKIE]
    later = datetime.now(tz=UTC) + SESSION_IDLE + timedelta(minutes=1)
    with Session(engine) as session:
        assert session_actor(session=session, sid=sid, now=later) is None
        session.commit()
    assert user.get("/").headers["location"].startswith("/login")


def test_a_grant_revoked_in_the_ledger_stops_at_once(portal: Portal, engine: sa.Engine) -> None:
    user = portal.login("viewer", "department:JS-EDU", principal="李雷")
    now = datetime.now(tz=UTC)
    admin = Actor.local("tests")
    with Session(engine) as session:
        grant_access(
            session=session, actor=admin, principal="李雷", role="viewer", scope="province", now=now
        )
        session.commit()
    sid = user.client.cookies[SESSION_COOKIE]
    with Session(engine) as session:
        logged = session_actor(session=session, sid=sid, now=now)
        assert logged is not None and logged.actor.province_wide
        revoke_access(
            session=session, actor=admin, principal="李雷", role="viewer", scope="province", now=now
        )
        session.commit()
    with Session(engine) as session:
        logged = session_actor(session=session, sid=sid, now=now)
        assert logged is not None and not logged.actor.province_wide


def test_the_language_switch_is_remembered(fresh_app: TestClient) -> None:
    answer = fresh_app.get("/lang/en?next=/login")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert answer.cookies["yiyun_lang"] == "en"
    page = fresh_app.get("/login")
    assert "Log in to yiyun" in page.text and page.headers["content-language"] == "en"
    fresh_app.get("/lang/zh")
    assert "登录一云" in fresh_app.get("/login").text


def test_the_way_back_after_login_stays_on_this_site(fresh_app: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        answer = fresh_app.get(f"/lang/en?next={target}")
        assert answer.headers["location"] == "/", target


def test_an_unknown_page_is_a_page_and_the_api_keeps_problem_json(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    page = user.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text
    api = portal.anonymous().get("/api/v1/no/such")
    assert api.headers["content-type"] == "application/problem+json"
