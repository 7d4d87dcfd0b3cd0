"""Writing scan results into the ledger: set-based upserts, history events and the stale sweep."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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


def _values(row: ResourceRow, content_hash: str | None = None) -> dict[str, Any]:
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
        "content_hash": content_hash or row.content_hash(),
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


def _key_filter(
    node_id: str, source: str, kind: str, native_ids: list[str], dialect: str
) -> list[sa.ColumnElement[bool]]:
    # PostgreSQL takes the batch as one array parameter instead of hundreds of binds.
    ids = (
        RESOURCE.c.native_id == sa.func.any(sa.literal(native_ids, sa.ARRAY(sa.String)))
        if dialect == "postgresql"
        else RESOURCE.c.native_id.in_(native_ids)
    )
    return [
        RESOURCE.c.node_id == node_id,
        RESOURCE.c.source == source,
        RESOURCE.c.kind == kind,
        ids,
    ]


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

    A lean query reads the batch's existing (id, hash, tombstone); only rows that changed are
    read in full (for their diff) and written. Inserts, updates and events are each one bulk
    statement. The caller commits.
    """
    counts = WriteCounts()
    if not rows:
        return counts
    dialect = session.get_bind().dialect.name
    latest: dict[str, ResourceRow] = {row.native_id: row for row in rows}  # last one wins
    hashes = {native_id: row.content_hash() for native_id, row in latest.items()}
    existing = {
        r.native_id: r
        for r in session.execute(
            sa.select(
                RESOURCE.c.id,
                RESOURCE.c.native_id,
                RESOURCE.c.content_hash,
                RESOURCE.c.deleted_at,
            ).where(*_key_filter(node_id, source, kind, list(latest), dialect))
        )
    }
    inserts: list[dict[str, Any]] = []
    changed: dict[int, tuple[str, ResourceRow]] = {}  # id -> (event type, row)
    for native_id, row in latest.items():
        old = existing.get(native_id)
        if old is None:
            if not row.terminal:  # never seen alive: nothing to record
                inserts.append(
                    {
                        **_values(row, hashes[native_id]),
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
        elif row.terminal:
            if old.deleted_at is None:
                changed[old.id] = ("deleted", row)
            else:
                counts.unchanged += 1
        elif old.deleted_at is not None:
            changed[old.id] = ("reappeared", row)
        elif old.content_hash != hashes[native_id]:
            changed[old.id] = ("updated", row)
        else:
            counts.unchanged += 1
    if inserts:
        if dialect == "postgresql":
            created: Sequence[int] = _copy_insert(
                session=session, rows=inserts, run_id=run_id, now=now
            )
        else:
            created = (
                session.execute(
                    sa.insert(RESOURCE).returning(RESOURCE.c.id, sort_by_parameter_order=True),
                    inserts,
                )
                .scalars()
                .all()
            )
            if created:
                session.execute(
                    sa.insert(EVENT),
                    [
                        {
                            "resource_id": rid,
                            "run_id": run_id,
                            "at": now,
                            "type": "created",
                            "diff": None,
                        }
                        for rid in created
                    ],
                )
        counts.created += len(created)
    if changed:
        _apply_changes(session=session, changed=changed, counts=counts, run_id=run_id, now=now)
    return counts


def _apply_changes(
    *,
    session: Session,
    changed: dict[int, tuple[str, ResourceRow]],
    counts: WriteCounts,
    run_id: int,
    now: datetime,
) -> None:
    """Write changed rows and their events, with a before/after diff of tracked fields."""
    before = {
        r.id: r
        for r in session.execute(
            sa.select(RESOURCE.c.id, *[RESOURCE.c[name] for name in TRACKED]).where(
                RESOURCE.c.id.in_(list(changed))
            )
        )
    }
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for resource_id, (event, row) in changed.items():
        values = _values(row)
        updates.append(
            {
                "id": resource_id,
                **values,
                "last_seen_at": now,
                "last_seen_run_id": run_id,
                "deleted_at": now if event == "deleted" else None,
            }
        )
        if event == "deleted":
            diff: dict[str, Any] | None = {"state": values["state"]}
            counts.deleted += 1
        elif event == "reappeared":
            diff = _diff(before[resource_id], values) or None
            counts.reappeared += 1
        else:
            diff = _diff(before[resource_id], values)
            counts.updated += 1
        events.append(
            {"resource_id": resource_id, "run_id": run_id, "at": now, "type": event, "diff": diff}
        )
    session.execute(sa.update(Resource), updates)
    session.execute(sa.insert(EVENT), events)


# Columns a new row is COPYed with on PostgreSQL (everything but the serial id).
_COPY_COLUMNS = [c.name for c in RESOURCE.columns if c.name != "id"]
_JSON_COLUMNS = {"tags", "raw"}


def _copy_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime):
        # UTCDateTime stores naive UTC; COPY bypasses the type, so convert here.
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _copy_insert(
    *, session: Session, rows: list[dict[str, Any]], run_id: int, now: datetime
) -> list[int]:
    """PostgreSQL bulk path: COPY new rows into a temporary staging table, then one
    INSERT … SELECT that also writes their `created` events, all inside the caller's
    transaction (a crash leaves neither the rows nor the events)."""
    connection = session.connection()
    dbapi: Any = connection.connection.dbapi_connection  # psycopg 3: has cursor().copy()
    columns = ", ".join(_COPY_COLUMNS)
    # Column types only: no defaults or constraints, so the temporary table never depends
    # on the ledger's sequence (a schema drop would otherwise race the session's temp table).
    connection.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS yiyun_stage_resource ON COMMIT DELETE ROWS AS "
        f"SELECT {columns} FROM resource WITH NO DATA"
    )
    with dbapi.cursor() as cursor:
        with cursor.copy(f"COPY yiyun_stage_resource ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_copy_value(c, row.get(c)) for c in _COPY_COLUMNS])
        cursor.execute(
            f"WITH created AS (INSERT INTO resource ({columns}) "
            f"SELECT {columns} FROM yiyun_stage_resource RETURNING id), "
            "logged AS (INSERT INTO resourceevent (resource_id, run_id, at, type) "
            "SELECT id, %s, %s, 'created' FROM created) "
            "SELECT id FROM created",
            (run_id, now.astimezone(UTC).replace(tzinfo=None)),
        )
        created = [row[0] for row in cursor.fetchall()]
        cursor.execute("TRUNCATE yiyun_stage_resource")
    return created


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
    live_seen: int | None = None,
) -> int:
    """Tombstone the live rows of a scope that a complete listing did not return.

    Only call this for a scope whose listing finished `ok` in this run: a failed or partial
    listing proves nothing about what is gone. `live_seen` is how many of the listed rows are
    live in this scope now (every non-terminal one, once upserted): when the scope holds no
    more live rows than that, nothing is gone and one COUNT replaces reading every id.
    """
    where = (
        RESOURCE.c.node_id == node_id,
        RESOURCE.c.source == source,
        RESOURCE.c.kind == kind,
        RESOURCE.c.scope == scope,
        RESOURCE.c.deleted_at.is_(None),
    )
    if live_seen is not None:
        live_count = session.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if live_count <= live_seen:
            return 0
    seen_ids = set(seen)
    live = session.execute(sa.select(RESOURCE.c.id, RESOURCE.c.native_id).where(*where))
    gone = [rid for rid, native_id in live if native_id not in seen_ids]
    if not gone:
        return 0
    swept = 0
    for start in range(0, len(gone), 1000):
        chunk = gone[start : start + 1000]
        # The scope is checked again as the row is written: a scope of the same kind running
        # in parallel may have just listed the row under its own scope (it moved region or
        # namespace), and then it is not gone.
        tombstoned = (
            session.execute(
                sa.update(RESOURCE)
                .where(RESOURCE.c.id.in_(chunk), *where)
                .values(deleted_at=now)
                .returning(RESOURCE.c.id)
            )
            .scalars()
            .all()
        )
        if tombstoned:
            session.execute(
                sa.insert(EVENT),
                [
                    {
                        "resource_id": rid,
                        "run_id": run_id,
                        "at": now,
                        "type": "deleted",
                        "diff": None,
                    }
                    for rid in tombstoned
                ],
            )
        swept += len(tombstoned)
    return swept


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
