"""Portal login sessions kept in the ledger: only a session id's SHA-256 is stored, never the id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from inventory.access import Actor, PrincipalKind, parse_grants
from inventory.grants import grants_of
from inventory.models import LoginSession

# How long a login lasts at most, how long it survives without a request, and how long the
# identity provider has to send a pending login back.
SESSION_LIFETIME = timedelta(hours=8)
SESSION_IDLE = timedelta(hours=1)
LOGIN_WINDOW = timedelta(minutes=10)
# last_seen_at is written at most this often: not one UPDATE per page view.
TOUCH_EVERY = timedelta(minutes=1)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def derived(sid: str, purpose: str) -> str:
    """A value bound to the session id and never stored: the CSRF token, the PKCE verifier and
    the OIDC nonce. Only the holder of the cookie (and the server it shows it to) can make it."""
    mac = hmac.new(sid.encode(), f"yiyun:{purpose}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _find(session: Session, sid: str) -> LoginSession | None:
    if not sid or len(sid) > 100:
        return None
    return session.exec(
        select(LoginSession).where(col(LoginSession.sid_sha256) == _digest(sid))
    ).first()


def begin_login(*, session: Session, next_path: str, now: datetime) -> tuple[str, str]:
    """A pending login: (session id for the cookie, OAuth state for the provider)."""
    # Expired rows go whenever someone logs in: no sweeper process needed.
    session.exec(delete(LoginSession).where(col(LoginSession.expires_at) <= now))
    sid, state = new_session_id(), secrets.token_urlsafe(24)
    session.add(
        LoginSession(
            sid_sha256=_digest(sid),
            kind="oidc",
            login_state=state,
            next_path=next_path,
            created_at=now,
            last_seen_at=now,
            expires_at=now + LOGIN_WINDOW,
        )
    )
    return sid, state


def claim_pending_login(
    *, session: Session, sid: str, state: str, now: datetime
) -> LoginSession | None:
    """The pending login the provider's answer belongs to, used up: the same answer (a
    replayed callback) finds nothing the second time."""
    row = _find(session, sid)
    if (
        row is None
        or row.principal is not None
        or row.login_state is None
        or not hmac.compare_digest(row.login_state, state)
        or row.expires_at <= now
    ):
        return None
    session.delete(row)
    session.flush()
    return row


def start_session(
    *,
    session: Session,
    principal: str,
    kind: PrincipalKind,
    name: str | None,
    claim_grants: list[str],
    now: datetime,
) -> str:
    """A logged-in session with a fresh id (never the pending one: no session fixation)."""
    sid = new_session_id()
    session.add(
        LoginSession(
            sid_sha256=_digest(sid),
            principal=principal,
            kind=kind,
            name=name,
            claim_grants=claim_grants,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return sid


@dataclass(frozen=True)
class LoggedIn:
    """Who a session cookie proves, and when the login ends."""

    actor: Actor
    expires_at: datetime


def session_actor(*, session: Session, sid: str, now: datetime) -> LoggedIn | None:
    """The actor of a live session, or None (unknown, pending, expired or idle too long)."""
    row = _find(session, sid)
    if row is None or row.principal is None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > SESSION_IDLE:
        session.delete(row)
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    pairs = [tuple(g.split(":", 1)) for g in row.claim_grants or [] if ":" in g]
    claimed, _bad = parse_grants((role, scope) for role, scope in pairs)
    # The ledger's grants are read on every request: revoking one ends its use at once.
    held = grants_of(session=session, principal=row.principal)
    kind: PrincipalKind = "demo" if row.kind == "demo" else "oidc"
    actor = Actor(
        principal=row.principal,
        kind=kind,
        grants=tuple(sorted(set(claimed) | set(held))),
        by=row.principal,
        name=row.name,
        expires_at=row.expires_at,
    )
    return LoggedIn(actor=actor, expires_at=row.expires_at)


def end_session(*, session: Session, sid: str) -> bool:
    """Log out: the row goes, so the cookie proves nothing even if someone kept a copy."""
    row = _find(session, sid)
    if row is None:
        return False
    session.delete(row)
    return True
