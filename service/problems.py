"""Errors as problem+json (RFC 9457): one mapping from domain errors to statuses, in zh or en."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from inventory.access import AccessDenied, AccessError
from inventory.i18n import Wording, has_text, text
from migrate.messages import Refusal
from service.context import Unauthenticated, reader_lang
from service.portal.web import portal_lang

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# Refusals that mean "there is no such thing (for you)": classified systems and those
# outside the actor's scope read the same as unknown ones.
NOT_FOUND_KEYS = frozenset(
    {
        "mig_unknown_system",
        "mig_unknown_plan",
        "plan_unknown",
        "plan_not_found",
        "api_not_found",
        "token_unknown",
        "access_no_such_grant",
        "mig_override_unknown_system",
    }
)
# The ledger changed under the request: another write won the race.
CONFLICT_KEYS = frozenset({"mig_changed_meanwhile", "api_changed_meanwhile"})


class Problem(BaseModel):
    """The body of every error answer (RFC 9457), as `problem()` builds it."""

    # A problem may carry more members: `reason` (401), `errors` (422), `current` (409)…
    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    request_id: str | None


def _documented(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM: {"schema": schema}}}


# What any /api/v1 operation may answer besides its own success, for the OpenAPI document
# (service/app.py registers the Problem schema these refer to).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("The request's body cannot be read (not UTF-8, not JSON, broken multipart)."),
    401: _documented("No bearer token, or one that proves nothing."),
    403: _documented("The caller's grants do not allow this action here."),
    404: _documented("Nothing by that name that the caller may see."),
    409: _documented("The ledger's state refuses the request, or changed meanwhile."),
    422: _documented("The request is not well formed, or a value in it is refused."),
}


class NotFound(Wording):
    """Nothing by that name that the actor may see (HTTP 404, CLI exit 2)."""


def status_of(error: Wording) -> int:
    if isinstance(error, AccessDenied):
        return 403
    if isinstance(error, NotFound) or error.key in NOT_FOUND_KEYS or error.key.endswith("_unknown"):
        return 404
    if error.key in CONFLICT_KEYS:
        return 409
    if isinstance(error, AccessError):
        return 422
    # A refusal of the rules: the request conflicts with the ledger's state as it stands.
    if isinstance(error, Refusal):
        return 409
    # Anything else worded is a mistake in what was sent (a bad file, a bad value).
    return 422


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    **extra: Any,
) -> JSONResponse:
    lang = reader_lang(request)
    body = {
        "type": f"urn:yiyun:problem:{code}",
        "title": worded(f"api_status_{status}", lang, status),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }
    headers = {"Content-Language": lang}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="yiyun"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def worded(key: str, lang: str, status: int) -> str:
    """The catalog's words for `key`, or the HTTP phrase of `status` where it has none."""
    return text(key, lang) if has_text(key, lang) else HTTPStatus(status).phrase


# A portal page's error answer: (request, status, code, detail) → an HTML page.
PageErrors = Callable[[Request, int, str, str], Response]


def install_problem_handlers(
    app: FastAPI,
    *,
    is_page: Callable[[Request], bool] = lambda _request: False,
    page_error: PageErrors | None = None,
) -> None:
    """problem+json for the API; for a portal page (`is_page`), the same code and words as a
    page. A page that cannot show the system a reader may not see answers 403, as the portal
    promises, and an unknown one answers the same (a refusal never confirms a system exists)."""

    def problem_or_page(
        request: Request, status: int, code: str, detail: str, **extra: Any
    ) -> Response:
        if page_error is not None and is_page(request):
            return page_error(request, status, code, detail)
        return problem(request, status, code, detail, **extra)

    def page_lang(request: Request) -> str:
        # A page answers in the language its switch chose; the API by Accept-Language.
        return portal_lang(request) if is_page(request) else reader_lang(request)

    @app.exception_handler(Wording)
    async def wording(request: Request, error: Wording) -> Response:
        extra = dict(getattr(error, "problem_fields", {}) or {})
        status = status_of(error)
        if status == 404 and is_page(request):
            # The API's "nothing by that name that you may see" is a refusal on a page; its
            # words name CLI commands to check a code with, which a page reader has none of.
            return problem_or_page(
                request, 403, "portal_not_yours", text("portal_not_yours", page_lang(request))
            )
        return problem_or_page(
            request, status, error.key, error.render(page_lang(request)), **extra
        )

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, error: Unauthenticated) -> Response:
        lang = reader_lang(request)
        return problem(
            request,
            401,
            "api_unauthenticated",
            text("api_unauthenticated", lang),
            reason=error.reason,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        lang = page_lang(request)
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "type": e.get("type", "")}
            for e in error.errors()
        ]
        return problem_or_page(
            request, 422, "api_invalid_request", text("api_invalid_request", lang), errors=errors
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        lang = page_lang(request)
        key = f"api_http_{error.status_code}"
        detail = worded(key, lang, error.status_code)
        return problem_or_page(request, error.status_code, key, detail)

    @app.exception_handler(Exception)
    async def crash(request: Request, error: Exception) -> Response:
        # Never the traceback or the library's words to the caller: they can carry a URL or SQL.
        log.exception("request %s failed", getattr(request.state, "request_id", "?"))
        lang = page_lang(request)
        return problem_or_page(request, 500, "api_internal", text("api_internal", lang))
