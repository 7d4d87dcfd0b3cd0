"""Logging in and out of the portal: the identity provider, the loopback demo login, language."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from inventory.access import ROLES, AccessError, Grant
from inventory.i18n import LANGS
from inventory.sessions import (
    SESSION_LIFETIME,
    begin_login,
    claim_pending_login,
    derived,
    end_session,
    start_session,
)
from service.context import is_loopback, service
from service.portal.oidc_login import CALLBACK_PATH, LoginFailed, PortalLogin
from service.portal.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    WritingViewer,
    portal_lang,
    render,
    safe_next,
    same_origin,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# A form token for the login forms, before any session exists (double-submit cookie).
LOGIN_CSRF_COOKIE = "yiyun_login_csrf"
DEMO_SCOPES = ("province", "city:南京市", "department:JS-EDU")


def _login(request: Request) -> PortalLogin | None:
    return getattr(request.app.state, "portal_login", None)


def _demo_allowed(request: Request) -> bool:
    client = request.client.host if request.client else ""
    return service(request).demo_login and is_loopback(client)


def _set_session_cookie(request: Request, response: Response, sid: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _redirect_uri(request: Request, login: PortalLogin) -> str:
    base = login.client.public_url or str(request.base_url).rstrip("/")
    return f"{base}{CALLBACK_PATH}"


def login_page(
    request: Request, *, error: str | None = None, status: int = 200, next_path: str = "/"
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        viewer=None,
        status=status,
        error=error,
        next_path=safe_next(next_path),
        login_csrf=token,
        oidc=_login(request) is not None,
        demo=_demo_allowed(request),
        roles=ROLES,
        demo_scopes=DEMO_SCOPES,
        bye=request.query_params.get("bye") == "1",
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login(request: Request, next: str = "/") -> Response:
    return login_page(request, next_path=next)


@router.get("/login/start")
def login_start(request: Request, next: str = "/") -> Response:
    """Off to the identity provider, with a pending session whose id the PKCE verifier and the
    nonce are derived from (so neither is stored anywhere)."""
    login = _login(request)
    if login is None:
        return login_page(request, error="portal_login_no_provider", status=503)
    now = datetime.now(tz=UTC)
    with service(request).session() as session:
        sid, state = begin_login(session=session, next_path=safe_next(next), now=now)
    try:
        url = login.authorize_url(
            redirect_uri=_redirect_uri(request, login),
            state=state,
            verifier=derived(sid, "pkce"),
            nonce=derived(sid, "nonce"),
        )
    except LoginFailed as failed:
        log.warning("login could not start: %s", failed.reason)
        return login_page(request, error="portal_login_provider_down", status=503)
    response = RedirectResponse(url, status_code=303)
    _set_session_cookie(request, response, sid, max_age=600)
    return response


@router.get(CALLBACK_PATH)
def login_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    login = _login(request)
    sid = request.cookies.get(SESSION_COOKIE, "")
    if login is None or not sid:
        return login_page(request, error="portal_login_expired", status=400)
    now = datetime.now(tz=UTC)
    with service(request).session() as session:
        pending = claim_pending_login(session=session, sid=sid, state=state, now=now)
    if pending is None:
        return login_page(request, error="portal_login_expired", status=400)
    if error or not code:
        # The person cancelled at the provider, or it refused: say so, keep nothing.
        log.info("login refused by the provider: %s", error[:100])
        return login_page(request, error="portal_login_refused", status=401)
    try:
        claims = login.finish(
            code=code,
            redirect_uri=_redirect_uri(request, login),
            verifier=derived(sid, "pkce"),
            nonce=derived(sid, "nonce"),
        )
    except LoginFailed as failed:
        log.warning("login failed: %s", failed.reason)
        return login_page(request, error="portal_login_refused", status=401)
    principal = str(claims.get(login.oidc.principal_claim) or "")
    name = claims.get(login.oidc.name_claim)
    with service(request).session() as session:
        new_sid = start_session(
            session=session,
            principal=principal,
            kind="oidc",
            name=str(name) if name else None,
            claim_grants=login.grants(claims),
            now=now,
        )
    response = RedirectResponse(safe_next(pending.next_path), status_code=303)
    _set_session_cookie(request, response, new_sid, int(SESSION_LIFETIME.total_seconds()))
    return response


def _login_form_ok(request: Request, token: str) -> bool:
    kept = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return (
        bool(kept) and hmac.compare_digest(kept.encode(), token.encode()) and same_origin(request)
    )


@router.post("/login/demo")
def login_demo(
    request: Request,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    role: Annotated[str, Form(max_length=40)] = "viewer",
    scope: Annotated[str, Form(max_length=200)] = "province",
    principal: Annotated[str, Form(max_length=100)] = "demo",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """The loopback-only demo login of `serve --demo-login`: any role and scope, no provider."""
    if not _demo_allowed(request):
        return login_page(request, error="portal_demo_off", status=403)
    if not _login_form_ok(request, csrf_token):
        return login_page(request, error="portal_csrf_refused", status=403, next_path=next)
    try:
        grant = Grant.parse(role, scope)
    except AccessError as refused:
        return login_page(
            request, error=refused.render(portal_lang(request)), status=422, next_path=next
        )
    name = principal.strip()
    if not name or not name.isprintable():
        return login_page(request, error="portal_demo_bad_name", status=422, next_path=next)
    with service(request).session() as session:
        sid = start_session(
            session=session,
            principal=name,
            kind="demo",
            name=name,
            claim_grants=[f"{grant.role}:{grant.scope}"],
            now=datetime.now(tz=UTC),
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    _set_session_cookie(request, response, sid, int(SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/logout")
def logout(request: Request, viewer: WritingViewer) -> Response:
    sid = request.cookies.get(SESSION_COOKIE, "")
    with service(request).session() as session:
        end_session(session=session, sid=sid)
    response = RedirectResponse("/login?bye=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str = "/") -> Response:
    """The language switch: remembered for a year in a cookie (a preference, not a secret)."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if lang in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/", httponly=True
        )
    return response
