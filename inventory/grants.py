"""Access grants and API tokens kept in the ledger: `yiyun access …` and `yiyun tokens …`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from inventory.access import AccessError, Actor, Grant
from inventory.audit import record
from inventory.models import AccessGrant, ApiToken

TOKEN_PREFIX = "yiyun"
_TOKEN = re.compile(r"^yiyun_([0-9a-f]{12})_([A-Za-z0-9_-]{32,})$")
_DURATION = re.compile(r"^(\d{1,5})([dh])$")
MAX_TOKEN_DAYS = 366


def _principal(name: str) -> str:
    name = name.strip()
    # Printable only: a tab or line break would forge lines in the audit log, and PostgreSQL
    # cannot store a NUL at all.
    if not name or len(name) > 200 or not name.isprintable():
        raise AccessError("access_bad_principal", principal=name)
    return name


def grant_access(
    *, session: Session, actor: Actor, principal: str, role: str, scope: str, now: datetime
) -> AccessGrant:
    """Give `principal` a role over a scope; granting what is already held is refused."""
    actor.require("access")
    grant = Grant.parse(role, scope)
    principal = _principal(principal)
    held = session.exec(
        select(AccessGrant).where(
            col(AccessGrant.principal) == principal,
            col(AccessGrant.role) == grant.role,
            col(AccessGrant.scope) == str(grant.scope),
        )
    ).first()
    if held is not None:
        raise AccessError("access_already_granted", principal=principal, grant=str(grant))
    row = AccessGrant(
        principal=principal,
        role=grant.role,
        scope=str(grant.scope),
        granted_by=actor.signature,
        granted_at=now,
    )
    session.add(row)
    session.flush()
    after = {"principal": principal, "role": grant.role, "scope": str(grant.scope)}
    record(
        session=session, actor=actor, action="access.grant", target=principal, after=after, now=now
    )
    return row


def revoke_access(
    *, session: Session, actor: Actor, principal: str, role: str, scope: str, now: datetime
) -> None:
    actor.require("access")
    grant = Grant.parse(role, scope)
    row = session.exec(
        select(AccessGrant).where(
            col(AccessGrant.principal) == principal.strip(),
            col(AccessGrant.role) == grant.role,
            col(AccessGrant.scope) == str(grant.scope),
        )
    ).first()
    if row is None:
        raise AccessError("access_no_such_grant", principal=principal, grant=str(grant))
    before = {"principal": row.principal, "role": row.role, "scope": row.scope}
    session.delete(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="access.revoke",
        target=row.principal,
        before=before,
        now=now,
    )


def list_access(
    *,
    session: Session,
    actor: Actor,
    principal: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[AccessGrant], int]:
    """The ledger's grants by principal, role and scope (unique together, so the order is
    stable across pages), and how many there are; `limit` None for all of them."""
    actor.require("access")
    query = select(AccessGrant)
    counted = select(func.count()).select_from(AccessGrant)
    if principal is not None:
        query = query.where(col(AccessGrant.principal) == principal.strip())
        counted = counted.where(col(AccessGrant.principal) == principal.strip())
    order = (col(AccessGrant.principal), col(AccessGrant.role), col(AccessGrant.scope))
    rows = session.exec(query.order_by(*order).offset(offset).limit(limit))
    return list(rows), int(session.exec(counted).one())


def grants_of(*, session: Session, principal: str) -> tuple[Grant, ...]:
    """The ledger's grants for a principal (the service adds them to a verified identity)."""
    rows = session.exec(select(AccessGrant).where(col(AccessGrant.principal) == principal))
    return tuple(sorted({Grant.parse(r.role, r.scope) for r in rows}))


def parse_lifetime(text: str) -> timedelta:
    """`90d` or `12h`: how long a token lives (at most a year: tokens are meant to rotate)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise AccessError("token_bad_expiry", expires=text)
    amount, unit = int(match.group(1)), match.group(2)
    lifetime = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if lifetime <= timedelta(0) or lifetime > timedelta(days=MAX_TOKEN_DAYS):
        raise AccessError("token_bad_expiry", expires=text)
    return lifetime


def _digest(secret: str) -> str:
    # The secret is 32 random bytes: a plain SHA-256 is enough (nothing to brute-force).
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    row: ApiToken
    token: str  # shown once, never stored


def create_token(
    *,
    session: Session,
    actor: Actor,
    principal: str,
    role: str,
    scope: str,
    lifetime: timedelta,
    now: datetime,
) -> IssuedToken:
    actor.require("access")
    grant = Grant.parse(role, scope)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiToken(
        token_id=token_id,
        secret_sha256=_digest(secret),
        principal=_principal(principal),
        role=grant.role,
        scope=str(grant.scope),
        created_by=actor.signature,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    after = {
        "token_id": token_id,
        "principal": row.principal,
        "role": row.role,
        "scope": row.scope,
        "expires_at": row.expires_at,
    }
    record(
        session=session, actor=actor, action="token.create", target=token_id, after=after, now=now
    )
    return IssuedToken(row=row, token=f"{TOKEN_PREFIX}_{token_id}_{secret}")


def list_tokens(
    *, session: Session, actor: Actor, offset: int = 0, limit: int | None = None
) -> tuple[list[ApiToken], int]:
    """Tokens in the order they were made, and how many there are; the rows hold the secret's
    digest, which no caller shows (the CLI and the API name the columns they show)."""
    actor.require("access")
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.id)).offset(offset).limit(limit))
    total = session.exec(select(func.count()).select_from(ApiToken)).one()
    return list(rows), int(total)


def token_status(row: ApiToken, now: datetime) -> str:
    """active, expired or revoked: whether the token opens the API at `now`."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def revoke_token(*, session: Session, actor: Actor, token_id: str, now: datetime) -> ApiToken:
    """Revoke by id; the whole token is taken too (a leaked one is what gets pasted), and its
    secret is never echoed back in a refusal."""
    actor.require("access")
    token_id = token_id.strip()
    whole = _TOKEN.match(token_id)
    if whole is not None:
        token_id = whole.group(1)
    row = session.exec(select(ApiToken).where(col(ApiToken.token_id) == token_id)).first()
    if row is None:
        raise AccessError("token_unknown", token_id=token_id)
    if row.revoked_at is not None:
        raise AccessError("token_already_revoked", token_id=token_id)
    row.revoked_at = now
    row.revoked_by = actor.signature
    session.add(row)
    session.flush()
    record(
        session=session,
        actor=actor,
        action="token.revoke",
        target=row.token_id,
        before={"revoked_at": None},
        after={"revoked_at": now},
        now=now,
    )
    return row


def looks_like_token(text: str) -> bool:
    return text.startswith(f"{TOKEN_PREFIX}_")


def authenticate_token(*, session: Session, token: str, now: datetime) -> Actor | None:
    """The actor an API token stands for, or None (unknown, wrong secret, expired, revoked)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    row = session.exec(select(ApiToken).where(col(ApiToken.token_id) == token_id)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return Actor(
        principal=row.principal,
        kind="token",
        grants=(Grant.parse(row.role, row.scope),),
        by=row.principal,
        token_id=row.token_id,
        expires_at=row.expires_at,
    )
