"""Mounting the portal on the service: its routers, static files, headers and error pages."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.context import API
from service.identity import OidcSettings
from service.portal.fonts import ensure_portal_font
from service.portal.oidc_login import PortalClient, PortalLogin
from service.portal.security import PortalHeadersMiddleware
from service.portal.web import (
    HERE,
    CsrfRefused,
    LoginRequired,
    ReadingViewer,
    Viewer,
    current_viewer,
    is_htmx,
    render,
)

log = logging.getLogger(__name__)


def is_page(request: Request) -> bool:
    """A request for a portal page (not the API, health or metrics): errors answer in HTML."""
    path = request.url.path
    return not (path.startswith(API) or path in {"/healthz", "/readyz", "/metrics"})


def error_page(request: Request, status: int, code: str, detail: str) -> Response:
    """The page for a refusal or a mistake: what happened, in the reader's words, and a way on;
    a logged-in reader keeps the menu, their name and the logout."""
    try:
        viewer: Viewer | None = current_viewer(request)
    except LoginRequired:
        viewer = None
    return render(
        request,
        "error.html",
        viewer=viewer,
        status=status,
        status_code=status,
        code=code,
        detail=detail,
        request_id=getattr(request.state, "request_id", ""),
    )


def install_portal(app: FastAPI, oidc: OidcSettings | None, client: PortalClient | None) -> None:
    from service.portal.pages import PAGE_ROUTERS

    app.state.portal_login = PortalLogin(oidc, client) if oidc and client else None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired) -> Response:
        target = f"/login?next={error.next_path}" if error.next_path != "/" else "/login"
        if is_htmx(request):
            # htmx swaps fragments: the whole page must go to the login instead.
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, error: CsrfRefused) -> Response:
        from inventory.i18n import text
        from service.portal.web import portal_lang

        lang = portal_lang(request)
        return error_page(request, 403, "portal_csrf_refused", text("portal_csrf_refused", lang))

    @app.get("/", include_in_schema=False)
    def home(viewer: ReadingViewer) -> Response:
        # Department staff start in their workspace; everyone else on the KPI.
        if not viewer.actor.province_wide and viewer.actor.readable_cities() == set():
            return RedirectResponse("/workspace", status_code=303)
        return RedirectResponse("/dashboard", status_code=303)

    from service.portal import login

    app.include_router(login.router)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.add_middleware(PortalHeadersMiddleware)
    ensure_portal_font()
