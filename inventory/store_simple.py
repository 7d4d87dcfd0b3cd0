"""The per-row ORM write path: obviously correct and slow; the bulk path is proved against it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from inventory.collectors.base import ResourceRow
from inventory.models import Resource, ResourceEvent
from inventory.store import (
    HELD,
    Sweep,
    SweepGuard,
    WriteCounts,
    event_diff,
    row_values,
    sweep_verdict,
    tracked_diff,
)


def _event(resource: Resource, run_id: int, now: datetime, type_: str, diff: Any) -> ResourceEvent:
    assert resource.id is not None
    return ResourceEvent(resource_id=resource.id, run_id=run_id, at=now, type=type_, diff=diff)


def upsert_resources(
    *,
    session: Session,
    node_id: str,
    source: str,
    kind: str,
    rows: Sequence[ResourceRow],
    run_id: int,
    now: datetime,
    known: Any = None,  # the bulk path's prefetch; the plain way reads every row itself
) -> WriteCounts:
    """One SELECT and one write per row, through the ORM: the same contract as
    `inventory.store.upsert_resources`, written the plain way."""
    counts = WriteCounts()
    latest = {row.native_id: row for row in rows}  # last one wins
    for native_id, row in latest.items():
        resource = session.exec(
            select(Resource).where(
                Resource.node_id == node_id,
                Resource.source == source,
                Resource.kind == kind,
                Resource.native_id == native_id,
            )
        ).first()
        values = row_values(row)
        diff: dict[str, Any] | None
        if resource is None:
            if row.terminal:  # never seen alive: nothing to record
                continue
            resource = Resource(
                node_id=node_id,
                source=source,
                kind=kind,
                native_id=native_id,
                **values,
                first_seen_at=now,
                last_seen_at=now,
                last_seen_run_id=run_id,
            )
            session.add(resource)
            session.flush()
            session.add(_event(resource, run_id, now, "created", None))
            counts.created += 1
            continue
        if row.terminal:
            if resource.deleted_at is not None:
                counts.unchanged += 1
                continue
            event, diff = "deleted", {"state": row.state}
            counts.deleted += 1
        elif resource.deleted_at is not None:
            event, diff = "reappeared", tracked_diff(resource, values) or None
            counts.reappeared += 1
        elif resource.content_hash != values["content_hash"]:
            event, diff = "updated", tracked_diff(resource, values)
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        for name, value in values.items():
            setattr(resource, name, value)
        resource.last_seen_at = now
        resource.last_seen_run_id = run_id
        resource.deleted_at = now if event == "deleted" else None
        session.add(resource)
        session.add(_event(resource, run_id, now, event, diff))
    session.flush()
    return counts


def sweep_scope(
    *,
    session: Session,
    node_id: str,
    source: str,
    kind: str,
    scope: str,
    seen: Iterable[str],
    run_id: int,
    now: datetime,
    live_seen: int | None = None,  # the bulk path's shortcut; the plain way reads every row
    guard: SweepGuard | None = None,
    reason: str | None = None,
) -> Sweep:
    """Tombstone, one by one, the live rows of a completely listed scope it did not return
    (or give each a `held` event when the guard holds the sweep)."""
    seen_ids = set(seen)
    live = session.exec(
        select(Resource).where(
            Resource.node_id == node_id,
            Resource.source == source,
            Resource.kind == kind,
            Resource.scope == scope,
            col(Resource.deleted_at).is_(None),
        )
    ).all()
    gone = [resource for resource in live if resource.native_id not in seen_ids]
    if not gone:
        return Sweep()
    verdict = sweep_verdict(
        session=session,
        guard=guard,
        key=(node_id, source, kind, scope),
        live=len(live),
        gone={resource.native_id for resource in gone},
        reason=reason,
    )
    diff = event_diff(verdict, guard, reason)
    for resource in gone:
        if verdict == HELD:
            session.add(_event(resource, run_id, now, HELD, diff))
            continue
        resource.deleted_at = now
        session.add(resource)
        session.add(_event(resource, run_id, now, "deleted", diff))
    session.flush()
    if verdict == HELD:
        return Sweep(held=len(gone), verdict=HELD)
    return Sweep(deleted=len(gone), verdict=verdict)
