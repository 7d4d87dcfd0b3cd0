"""The append-only audit log: every write, with the principal that made it as proved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, func, select

from inventory.access import Actor
from inventory.confidentiality import REDACTED, Disclosure
from inventory.models import AuditEntry


class AuditAppendOnly(RuntimeError):
    """Something tried to change or remove an audit entry."""


def jsonable(value: Any) -> Any:
    """Before/after values as JSON keeps them: dates as ISO text, sets as sorted lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record(
    *,
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction: it lands with the write or not at all."""
    entry = AuditEntry(
        at=now or datetime.now(tz=UTC),
        principal=actor.principal,
        principal_kind=actor.kind,
        by=actor.by if actor.kind == "local" else None,
        request_id=actor.request_id,
        action=action,
        target=target,
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditRecord:
    """One entry as a reader sees it, apart from the stored row (which nothing may change):
    a classified system's code, name and namespace redacted in its target and values, and
    the values of an entry about a classified system withheld (None)."""

    id: int
    at: datetime
    principal: str
    principal_kind: str
    by: str | None
    request_id: str | None
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _disclosed(value: Any, *, session: Session, disclosure: Disclosure) -> Any:
    if isinstance(value, str):
        return disclosure.text(session, value)
    if isinstance(value, Mapping):
        return {k: _disclosed(v, session=session, disclosure=disclosure) for k, v in value.items()}
    if isinstance(value, list):
        return [_disclosed(v, session=session, disclosure=disclosure) for v in value]
    return value


def audit_entries(
    *,
    session: Session,
    actor: Actor,
    offset: int = 0,
    limit: int = 50,
    principal: str | None = None,
    action: str | None = None,
    target: str | None = None,
    disclosure: Disclosure | None = None,
) -> tuple[list[AuditRecord], int]:
    """A page of the log, newest first, and how many entries match (admins only).

    A system advanced before the register made it classified stays in the log under its
    code, with notes that name it: those are redacted unless the disclosure includes them,
    which only the local operator's --include-classified does (the API never serves them)."""
    actor.require("audit")
    disclosure = disclosure or Disclosure()
    if disclosure.include_classified and actor.kind != "local":
        disclosure = Disclosure()
    if target is not None and not disclosure.answers_about(session, target):
        # Asked by a classified code: the answer of a target never written, not a count.
        return [], 0
    query = select(AuditEntry)
    counted = select(func.count()).select_from(AuditEntry)
    for column, wanted in (
        (AuditEntry.principal, principal),
        (AuditEntry.action, action),
        (AuditEntry.target, target),
    ):
        if wanted is not None:
            query = query.where(col(column) == wanted)
            counted = counted.where(col(column) == wanted)
    total = session.exec(counted).one()
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit))
    return [_as_read(row, session=session, disclosure=disclosure) for row in rows], int(total)


def _as_read(row: AuditEntry, *, session: Session, disclosure: Disclosure) -> AuditRecord:
    # An entry about a classified system keeps who, what and when; its values describe the
    # system (its evidence, its notes) in words no redaction can be sure to catch: withheld.
    about_classified = not disclosure.shows_system(session, row.target)

    def shown(value: Any) -> Any:
        return (
            None if about_classified else _disclosed(value, session=session, disclosure=disclosure)
        )

    return AuditRecord(
        id=row.id or 0,
        at=row.at,
        principal=row.principal,
        principal_kind=row.principal_kind,
        by=_disclosed(row.by, session=session, disclosure=disclosure),
        request_id=row.request_id,
        action=row.action,
        target=REDACTED if about_classified else shown(row.target),
        before=shown(row.before),
        after=shown(row.after),
    )


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(_mapper: Any, _connection: Any, target: AuditEntry) -> None:
    raise AuditAppendOnly(f"audit entry {target.id} is append-only: it cannot be changed")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(_mapper: Any, _connection: Any, target: AuditEntry) -> None:
    raise AuditAppendOnly(f"audit entry {target.id} is append-only: it cannot be deleted")


@event.listens_for(OrmSession, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements skip the mapper events; the database triggers catch the rest.
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) == AuditEntry.__tablename__:
        raise AuditAppendOnly("audit entries are append-only: no UPDATE or DELETE")
