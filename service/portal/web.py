"""What every portal page is handed: the logged-in viewer, the language, CSRF and the renderer."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from inventory.access import Actor
from inventory.i18n import LANGS, has_text, text
from inventory.sessions import derived, session_actor
from service.context import reader_lang, request_id, service

HERE = Path(__file__).parent
SESSION_COOKIE = "yiyun_session"
LANG_COOKIE = "yiyun_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The province's clock: a page says 14:05 where a person in Nanjing would.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")


class LoginRequired(Exception):
    """No live session: the browser goes to the login page, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Exception):
    """A write without this session's CSRF token, or from another site (HTTP 403)."""


def portal_lang(request: Request) -> str:
    """The language the reader chose with the switch (a cookie), else their browser's."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGS else reader_lang(request)


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: the proved actor, their language and this session's CSRF token."""

    actor: Actor
    lang: str
    csrf: str
    expires_at: datetime

    def may(self, action: str, *, department: str | None = None, city: str | None = None) -> bool:
        return self.actor.may(action, department=department, city=city)

    def t(self, key: str, **values: object) -> str:
        return text(key, self.lang, **values)


@dataclass(frozen=True)
class Listed:
    """One page of a list, as the pager macro reads it (`_macros.html`)."""

    items: list[Any]
    total: int
    offset: int
    limit: int


def safe_next(path: str | None) -> str:
    """Where to go after login: a path on this site only (never //evil.example or a URL)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


def current_viewer(request: Request) -> Viewer:
    sid = request.cookies.get(SESSION_COOKIE, "")
    now = datetime.now(tz=UTC)
    logged = None
    if sid:
        with service(request).session() as session:
            logged = session_actor(session=session, sid=sid, now=now)
    if logged is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequired(safe_next(request.url.path + query))
    return Viewer(
        actor=logged.actor.with_request(request_id(request)),
        lang=portal_lang(request),
        csrf=derived(sid, "csrf"),
        expires_at=logged.expires_at,
    )


def same_origin(request: Request) -> bool:
    """A browser names the page a form came from; another site's page is refused even with a
    token (defence in depth beside SameSite=Lax and the token)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Old browsers send none on same-origin POSTs; the token still has to match.
        return origin is None
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own


async def writing_viewer(request: Request) -> Viewer:
    """The viewer of a write (POST): the session's CSRF token must come with it, in the form
    field or in the header htmx sends."""
    viewer = current_viewer(request)
    given = request.headers.get(CSRF_HEADER, "")
    if not given:
        form = await request.form()  # Starlette keeps it: the route's Form() fields still work
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else ""
    if not same_origin(request) or not hmac.compare_digest(given.encode(), viewer.csrf.encode()):
        raise CsrfRefused()
    return viewer


ReadingViewer = Annotated[Viewer, Depends(current_viewer)]
WritingViewer = Annotated[Viewer, Depends(writing_viewer)]


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TIME).strftime(fmt)


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


_BACKTICKED = re.compile(r"`([^`]+)`")


def prose(words: str) -> Markup:
    """The catalog's words for a page: escaped, with `code` spans as <code> (the CLI shows the
    backticks; a page shows the command set apart instead)."""
    escaped = str(escape(words))
    return Markup(_BACKTICKED.sub(r"<code>\1</code>", escaped))


def nav_items(viewer: Viewer) -> list[tuple[str, str]]:
    """(path, catalog key) of the sections this viewer may open."""
    actor = viewer.actor
    items = [("/dashboard", "portal_nav_dashboard")]
    if any(g.scope.kind == "department" for g in actor.grants) or actor.may("read"):
        items.append(("/workspace", "portal_nav_workspace"))
    if actor.province_wide:
        items.append(("/platform", "portal_nav_platform"))
    if actor.may("register") or actor.may("access"):
        items.append(("/admin", "portal_nav_admin"))
    return items


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.filters["percent"] = percent
    env.filters["prose"] = prose
    return env


ENV = _environment()


def query_with(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters changed (paging and sorting links)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None or value == "":
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else request.url.path


def is_htmx(request: Request) -> bool:
    """An htmx request: it wants the fragment the page names, not the whole page."""
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None,
    lang: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or, for an htmx request, the fragment the template names) in the reader's words."""
    shown_lang = viewer.lang if viewer else (lang or portal_lang(request))

    def t(key: str, **values: object) -> str:
        return text(key, shown_lang, **values)

    page = ENV.get_template(template).render(
        request=request,
        viewer=viewer,
        lang=shown_lang,
        t=t,
        has_text=lambda key: has_text(key, shown_lang),
        nav=nav_items(viewer) if viewer else [],
        path=request.url.path,
        query_with=lambda **changes: query_with(request, **changes),
        csrf_field=CSRF_FIELD,
        htmx=is_htmx(request),
        **context,
    )
    answer_headers = {"Content-Language": shown_lang, **(headers or {})}
    return HTMLResponse(page, status_code=status, headers=answer_headers)
