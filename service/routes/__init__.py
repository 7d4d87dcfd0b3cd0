"""The API's routers, one module per part of the ledger; each route is parse, call, render."""

from __future__ import annotations

from fastapi import APIRouter

from service.routes import (
    access,
    adoption,
    assessments,
    audit,
    dependencies,
    migration,
    nodes,
    plans,
    register,
    reports,
    scans,
    snapshots,
    systems,
    violations,
)

ROUTERS: list[APIRouter] = [
    access.router,
    adoption.router,
    assessments.router,
    audit.router,
    dependencies.router,
    migration.router,
    nodes.router,
    plans.router,
    register.router,
    reports.router,
    scans.router,
    snapshots.router,
    systems.router,
    violations.router,
]
