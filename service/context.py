"""What every route is handed: the ledger, the reader's language and the proved actor."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlmodel import Session

from inventory.access import Actor
from inventory.db import session_scope
from inventory.grants import authenticate_token, grants_of, looks_like_token
from inventory.i18n import DEFAULT_LANG
from inventory.settings import Settings
from service.identity import OidcSettings, OidcVerifier, TokenRejected, grants_from_claims
from service.portal.oidc_login import PortalClient

# Where the API lives; the version is in the path.
API = "/api/v1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Unauthenticated(Exception):
    """No credentials, or credentials that prove nothing (HTTP 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Service:
    """One per process: the engine, the settings and the identity provider's verifier."""

    engine: sa.Engine
    settings: Settings
    oidc: OidcSettings | None = None
    verifier: OidcVerifier | None = None
    demo_login: bool = False
    # The portal as a client of the identity provider (None: the portal offers no OIDC login).
    portal: PortalClient | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any error."""
        with session_scope(self.engine) as session:
            yield session


def service(request: Request) -> Service:
    return request.app.state.service


def request_id(request: Request) -> str:
    return request.state.request_id


def new_request_id(given: str | None) -> str:
    # The caller's id is kept for tracing when it is plain; anything else is replaced.
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def is_loopback(host: str) -> bool:
    """This machine only: 127.0.0.0/8, ::1 or localhost (the demo login's whole audience)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def reader_lang(request: Request) -> str:
    """zh or en from Accept-Language (highest q wins; zh when nothing says otherwise)."""
    header = request.headers.get("accept-language", "")
    best, best_q = DEFAULT_LANG, 0.0
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang and q > best_q:
            best, best_q = lang, q
    return best


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if not header:
        raise Unauthenticated("missing")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("malformed")
    return credentials.strip()


def current_actor(request: Request) -> Actor:
    """The actor the request's bearer token proves: a yiyun API token or an OIDC token."""
    ledger = service(request)
    token = _bearer(request)
    now = datetime.now(tz=UTC)
    if looks_like_token(token):
        # Looked up on every request, never cached: a revoked token or grant stops working
        # at once, whichever process revoked it.
        with ledger.session() as session:
            actor = authenticate_token(session=session, token=token, now=now)
        if actor is None:
            raise Unauthenticated("token")
        return actor.with_request(request_id(request))
    if ledger.verifier is None or ledger.oidc is None:
        raise Unauthenticated("no_identity_provider")
    try:
        claims = ledger.verifier.verify(token)
    except TokenRejected as rejected:
        raise Unauthenticated(rejected.reason) from None
    principal = str(claims.get(ledger.oidc.principal_claim) or "")
    if not principal:
        raise Unauthenticated("no_principal")
    from inventory.access import parse_grants

    mapped, _bad = parse_grants(grants_from_claims(claims, ledger.oidc))
    with ledger.session() as session:
        held = grants_of(session=session, principal=principal)
    name = claims.get(ledger.oidc.name_claim)
    return Actor(
        principal=principal,
        kind="oidc",
        grants=tuple(sorted(set(mapped) | set(held))),
        by=principal,
        request_id=request_id(request),
        name=str(name) if name else None,
    )


def needs(permission: str) -> dict[str, Any]:
    """The route's right, for the OpenAPI document (x-yiyun-permission) and the access tests;
    the use case itself enforces it (inventory/access.py), never the route."""
    return {"x-yiyun-permission": permission}


Ledger = Annotated[Service, Depends(service)]
Lang = Annotated[str, Depends(reader_lang)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
