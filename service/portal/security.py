"""Headers every portal answer carries: a strict CSP, no framing, no sniffing, no caching."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.context import API

# Scripts, styles, fonts and images from this origin only; no inline script or style, no eval.
# ECharts styles its tooltips through the CSSOM, which CSP allows; form-action 'self' keeps a
# forged form from posting anywhere (the login redirect to the provider is a link, not a form).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class PortalHeadersMiddleware:
    """Adds the headers to every answer outside the API (pages, static files, redirects)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend(_HEADERS)
                if not static:
                    # A page is one person's view of the ledger: no cache may keep it.
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, sending)
