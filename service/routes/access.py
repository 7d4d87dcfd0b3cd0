"""Who may do what: access grants and API tokens (inventory/grants.py), province admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from inventory.grants import (
    create_token,
    grant_access,
    list_access,
    list_tokens,
    parse_lifetime,
    revoke_access,
    revoke_token,
    token_status,
)
from inventory.models import ApiToken
from service.context import CurrentActor, Ledger, needs
from service.pages import Page, PageParams, page_params

router = APIRouter(tags=["access"])
Paged = Annotated[PageParams, Depends(page_params)]
# No control characters: PostgreSQL cannot store or compare text holding NUL.
PLAIN = r"^[^\x00-\x1f\x7f]*$"


class GrantRequest(BaseModel):
    principal: str = Field(
        max_length=200, pattern=PLAIN, description="The identity provider's subject or a name."
    )
    role: str = Field(max_length=40, description="viewer, department_it, planner or admin.")
    scope: str = Field(
        max_length=200, pattern=PLAIN, description="province, city:<city> or department:<code>."
    )


class GrantPublic(BaseModel):
    principal: str
    role: str
    scope: str
    granted_by: str
    granted_at: datetime


class TokenRequest(BaseModel):
    principal: str = Field(max_length=200, pattern=PLAIN, description="Who the token acts as.")
    role: str = Field(max_length=40, description="viewer, department_it, planner or admin.")
    scope: str = Field(
        max_length=200, pattern=PLAIN, description="province, city:<city> or department:<code>."
    )
    expires: str = Field(
        default="90d", max_length=10, description="Days or hours: 90d, 12h (at most 366d)."
    )


class TokenPublic(BaseModel):
    """A token as listed: never its secret, nor the secret's digest."""

    token_id: str
    principal: str
    role: str
    scope: str
    status: Literal["active", "expired", "revoked"]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class IssuedTokenPublic(TokenPublic):
    token: str = Field(description="Shown this once: only its hash is kept.")


def _token(row: ApiToken, now: datetime) -> dict[str, Any]:
    # The status is worked out at `now`; every other field is the row's own.
    fields = TokenPublic.model_fields.keys() - {"status"}
    return {name: getattr(row, name) for name in fields} | {"status": token_status(row, now)}


@router.get(
    "/access",
    summary="The grants held in the ledger, by principal, role and scope.",
    response_model=Page[GrantPublic],
    openapi_extra=needs("access"),
)
def grants(
    ledger: Ledger,
    actor: CurrentActor,
    page: Paged,
    principal: Annotated[str | None, Query(max_length=200, pattern=PLAIN)] = None,
) -> Any:
    with ledger.session() as session:
        rows, total = list_access(
            session=session,
            actor=actor,
            principal=principal,
            offset=page.offset,
            limit=page.limit,
        )
        items = [GrantPublic.model_validate(row, from_attributes=True) for row in rows]
    return Page[GrantPublic](items=items, total=total, offset=page.offset, limit=page.limit)


@router.post(
    "/access",
    summary="Give a principal a role over a scope.",
    response_model=GrantPublic,
    status_code=201,
    openapi_extra=needs("access"),
)
def grant(body: GrantRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        row = grant_access(
            session=session,
            actor=actor,
            principal=body.principal,
            role=body.role,
            scope=body.scope,
            now=datetime.now(tz=UTC),
        )
        return GrantPublic.model_validate(row, from_attributes=True)


@router.delete(
    "/access",
    summary="Take a grant away.",
    status_code=204,
    response_class=Response,
    openapi_extra=needs("access"),
)
def revoke(
    ledger: Ledger,
    actor: CurrentActor,
    principal: Annotated[str, Query(max_length=200, pattern=PLAIN)],
    role: Annotated[str, Query(max_length=40, pattern=PLAIN)],
    scope: Annotated[str, Query(max_length=200, pattern=PLAIN)],
) -> Response:
    with ledger.session() as session:
        revoke_access(
            session=session,
            actor=actor,
            principal=principal,
            role=role,
            scope=scope,
            now=datetime.now(tz=UTC),
        )
    return Response(status_code=204)


@router.get(
    "/tokens",
    summary="API tokens and whether each still opens the API (never a secret).",
    response_model=Page[TokenPublic],
    openapi_extra=needs("access"),
)
def tokens(ledger: Ledger, actor: CurrentActor, page: Paged) -> Any:
    now = datetime.now(tz=UTC)
    with ledger.session() as session:
        rows, total = list_tokens(
            session=session, actor=actor, offset=page.offset, limit=page.limit
        )
        items = [TokenPublic.model_validate(_token(row, now)) for row in rows]
    return Page[TokenPublic](items=items, total=total, offset=page.offset, limit=page.limit)


@router.post(
    "/tokens",
    summary="Make an API token: the answer holds it this once.",
    response_model=IssuedTokenPublic,
    status_code=201,
    openapi_extra=needs("access"),
)
def issue_token(body: TokenRequest, ledger: Ledger, actor: CurrentActor) -> Any:
    now = datetime.now(tz=UTC)
    with ledger.session() as session:
        issued = create_token(
            session=session,
            actor=actor,
            principal=body.principal,
            role=body.role,
            scope=body.scope,
            lifetime=parse_lifetime(body.expires),
            now=now,
        )
        return IssuedTokenPublic.model_validate(_token(issued.row, now) | {"token": issued.token})


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke a token: the API refuses it from then on.",
    status_code=204,
    response_class=Response,
    openapi_extra=needs("access"),
)
def withdraw_token(
    token_id: Annotated[str, Path(max_length=200, pattern=PLAIN)],
    ledger: Ledger,
    actor: CurrentActor,
) -> Response:
    with ledger.session() as session:
        revoke_token(session=session, actor=actor, token_id=token_id, now=datetime.now(tz=UTC))
    return Response(status_code=204)
