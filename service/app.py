"""The FastAPI application: /api/v1 routes, health, metrics, problem+json and request ids."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventory.db import current_revision, head_revision
from service.context import API, Service, new_request_id
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.problems import PROBLEM_RESPONSES, Problem, install_problem_handlers


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-ID when plain) for the audit log, and
    marks API answers uncacheable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = new_request_id(given)
        scope.setdefault("state", {})["request_id"] = rid

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", rid.encode()))
                if scope["path"].startswith(API):
                    # Ledger answers are per principal: no shared cache may keep them.
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, sending)


def document_problems(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI document, where every operation's error answers
    (PROBLEM_RESPONSES, served as application/problem+json) refer to it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it as app.openapi_schema
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(ledger: Service) -> FastAPI:
    from service.routes import ROUTERS

    app = FastAPI(
        title="yiyun 一云",
        version="1",
        summary="Inventory and migration ledger of the provincial unified government cloud.",
        openapi_url=f"{API}/openapi.json",
        # No Swagger page: it loads its script from a CDN, and the extranet has no internet.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = ledger
    metrics = ServiceMetrics()
    from service.portal.app import error_page, install_portal, is_page

    install_problem_handlers(app, is_page=is_page, page_error=error_page)

    @app.get("/healthz", tags=["health"], summary="The process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The ledger is reachable and its schema is at head.",
        responses={503: {"description": "Not ready."}},
    )
    def readyz() -> Response:
        try:
            current = current_revision(ledger.engine)
        except Exception:
            return JSONResponse({"status": "unreachable"}, status_code=503)
        needed = head_revision()
        if current != needed:
            body: dict[str, Any] = {"status": "schema", "current": current, "needed": needed}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "schema": current})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    for router in ROUTERS:
        app.include_router(router, prefix=API, responses=PROBLEM_RESPONSES)
    if ledger.demo_login:
        from service.routes import demo

        app.include_router(demo.router, prefix=API, responses=PROBLEM_RESPONSES)
    document_problems(app)
    install_portal(app, ledger.oidc, ledger.portal)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
