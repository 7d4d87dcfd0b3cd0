"""The demo login: a short-lived API token for anyone on this machine (`serve --demo-login`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from inventory.access import PROVINCE_ADMIN, Actor
from inventory.grants import create_token
from service.context import Ledger, is_loopback
from service.problems import NotFound

router = APIRouter(tags=["demo"])
DEMO_LIFETIME = timedelta(hours=8)


class DemoLogin(BaseModel):
    principal: str = Field(default="demo", max_length=100)
    role: str = Field(default="admin", max_length=40)
    scope: str = Field(default="province", max_length=200)


class DemoToken(BaseModel):
    token: str
    principal: str
    role: str
    scope: str
    expires_at: datetime


@router.post("/demo/login", response_model=DemoToken, status_code=201)
def demo_login(body: DemoLogin, request: Request, ledger: Ledger) -> Any:
    """A token with the role and scope asked for, valid 8 hours; loopback callers only."""
    client = request.client.host if request.client else ""
    if not ledger.demo_login or not is_loopback(client):
        raise NotFound("api_not_found")
    actor = Actor(principal=f"demo-login@{client}", kind="local", grants=(PROVINCE_ADMIN,))
    now = datetime.now(tz=UTC)
    with ledger.session() as session:
        issued = create_token(
            session=session,
            actor=actor.with_request(request.state.request_id),
            principal=body.principal,
            role=body.role,
            scope=body.scope,
            lifetime=DEMO_LIFETIME,
            now=now,
        )
        row = issued.row
        return DemoToken(
            token=issued.token,
            principal=row.principal,
            role=row.role,
            scope=row.scope,
            expires_at=row.expires_at or now + DEMO_LIFETIME,
        )
