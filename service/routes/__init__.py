"""The API's routers, one module per part of the ledger; each route is parse, call, render."""

from __future__ import annotations

from fastapi import APIRouter

from service.routes import migration

ROUTERS: list[APIRouter] = [migration.router]
