"""Writing scan results into the ledger: set-based upserts, history events and the stale sweep."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.collectors.base import ResourceRow
from inventory.models import Resource, ResourceEvent

# Columns whose change makes an `updated` event (with a before/after diff).
TRACKED = (
    "name",
    "namespace",
    "region",
    "state",
    "replicas",
    "vcpu",
    "memory_gib",
    "storage_gib",
    "tags",
    "system_code",
    "created_at_source",
    "scope",
)
RESOURCE = Resource.__table__  # type: ignore[attr-defined]
EVENT = ResourceEvent.__table__  # type: ignore[attr-defined]


@dataclass
class WriteCounts:
    """What one batch or sweep changed; rows that did not change are counted, never written."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reappeared: int = 0
    deleted: int = 0

    def add(self, other: WriteCounts) -> None:
        for name in ("created", "updated", "unchanged", "reappeared", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def written(self) -> int:
        return self.created + self.updated + self.reappeared + self.deleted


def _values(row: ResourceRow) -> dict[str, Any]:
    return {
        "scope": row.scope,
        "name": row.name,
        "namespace": row.namespace,
        "region": row.region,
        "state": row.state,
        "replicas": row.replicas,
        "vcpu": row.vcpu,
        "memory_gib": row.memory_gib,
        "storage_gib": row.storage_gib,
        "tags": row.tags,
        "raw": row.raw,
        "system_code": row.system_code,
        "created_at_source": row.created_at_source,
        "content_hash": row.content_hash(),
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _diff(old: sa.Row[Any], new: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for name in TRACKED:
        before, after = getattr(old, name), new[name]
        if before != after:
            changes[name] = {"from": _jsonable(before), "to": _jsonable(after)}
    return changes


def upsert_resources(
    *,
    session: Session,
    node_id: str,
    source: str,
    kind: str,
    rows: Sequence[ResourceRow],
    run_id: int,
    now: datetime,
) -> WriteCounts:
    """Insert new rows, update changed ones, revive tombstoned ones, tombstone terminal ones.

    One query reads the batch's existing rows; inserts, updates and events are each one
    executemany. The caller commits.
    """
    counts = WriteCounts()
    if not rows:
        return counts
    latest: dict[str, ResourceRow] = {row.native_id: row for row in rows}  # last one wins
    existing = {
        r.native_id: r
        for r in session.execute(
            sa.select(
                RESOURCE.c.id,
                RESOURCE.c.native_id,
                RESOURCE.c.content_hash,
                RESOURCE.c.deleted_at,
                *[RESOURCE.c[name] for name in TRACKED],
            ).where(
                RESOURCE.c.node_id == node_id,
                RESOURCE.c.source == source,
                RESOURCE.c.kind == kind,
                RESOURCE.c.native_id.in_(list(latest)),
            )
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for native_id, row in latest.items():
        values = _values(row)
        old = existing.get(native_id)
        if old is None:
            if row.terminal:
                continue  # never seen alive: nothing to record
            inserts.append(
                {
                    **values,
                    "node_id": node_id,
                    "source": source,
                    "kind": kind,
                    "native_id": native_id,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "last_seen_run_id": run_id,
                    "deleted_at": None,
                }
            )
            continue
        if row.terminal:
            if old.deleted_at is None:
                updates.append(
                    {
                        "id": old.id,
                        **values,
                        "last_seen_at": now,
                        "last_seen_run_id": run_id,
                        "deleted_at": now,
                    }
                )
                events.append(
                    {
                        "resource_id": old.id,
                        "run_id": run_id,
                        "at": now,
                        "type": "deleted",
                        "diff": {"state": values["state"]},
                    }
                )
                counts.deleted += 1
            else:
                counts.unchanged += 1
            continue
        if old.deleted_at is not None:
            updates.append(
                {
                    "id": old.id,
                    **values,
                    "last_seen_at": now,
                    "last_seen_run_id": run_id,
                    "deleted_at": None,
                }
            )
            events.append(
                {
                    "resource_id": old.id,
                    "run_id": run_id,
                    "at": now,
                    "type": "reappeared",
                    "diff": _diff(old, values) or None,
                }
            )
            counts.reappeared += 1
        elif old.content_hash != values["content_hash"]:
            updates.append(
                {
                    "id": old.id,
                    **values,
                    "last_seen_at": now,
                    "last_seen_run_id": run_id,
                    "deleted_at": None,
                }
            )
            events.append(
                {
                    "resource_id": old.id,
                    "run_id": run_id,
                    "at": now,
                    "type": "updated",
                    "diff": _diff(old, values),
                }
            )
            counts.updated += 1
        else:
            counts.unchanged += 1
    if inserts:
        created = (
            session.execute(
                sa.insert(RESOURCE).returning(RESOURCE.c.id, sort_by_parameter_order=True), inserts
            )
            .scalars()
            .all()
        )
        events.extend(
            {"resource_id": rid, "run_id": run_id, "at": now, "type": "created", "diff": None}
            for rid in created
        )
        counts.created += len(created)
    if updates:
        session.execute(sa.update(Resource), updates)
    if events:
        session.execute(sa.insert(EVENT), events)
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
) -> int:
    """Tombstone the live rows of a scope that a complete listing did not return.

    Only call this for a scope whose listing finished `ok` in this run: a failed or partial
    listing proves nothing about what is gone.
    """
    seen_ids = set(seen)
    live = session.execute(
        sa.select(RESOURCE.c.id, RESOURCE.c.native_id).where(
            RESOURCE.c.node_id == node_id,
            RESOURCE.c.source == source,
            RESOURCE.c.kind == kind,
            RESOURCE.c.scope == scope,
            RESOURCE.c.deleted_at.is_(None),
        )
    )
    gone = [rid for rid, native_id in live if native_id not in seen_ids]
    if not gone:
        return 0
    for start in range(0, len(gone), 1000):
        chunk = gone[start : start + 1000]
        session.execute(sa.update(RESOURCE).where(RESOURCE.c.id.in_(chunk)).values(deleted_at=now))
        session.execute(
            sa.insert(EVENT),
            [
                {"resource_id": rid, "run_id": run_id, "at": now, "type": "deleted", "diff": None}
                for rid in chunk
            ],
        )
    return len(gone)


def purge_tombstones(*, session: Session, older_than: datetime) -> int:
    """Remove rows tombstoned before `older_than` (history events are kept)."""
    result = session.execute(
        sa.delete(RESOURCE).where(
            RESOURCE.c.deleted_at.is_not(None), RESOURCE.c.deleted_at < older_than
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_resources(*, session: Session, node_id: str) -> list[Resource]:
    query = select(Resource).where(Resource.node_id == node_id, col(Resource.deleted_at).is_(None))
    return list(session.exec(query))
