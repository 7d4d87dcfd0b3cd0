"""The portal's pages, one module per part: dashboard, workspace, platform, admin."""

from __future__ import annotations

from fastapi import APIRouter

from service.portal.pages import admin, dashboard, platform, workspace

PAGE_ROUTERS: list[APIRouter] = [dashboard.router, workspace.router, platform.router, admin.router]
