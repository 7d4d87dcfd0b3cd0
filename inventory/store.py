"""Writing scan results into the ledger: set-based upserts, history events and the stale sweep."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.collectors.base import ResourceRow
from inventory.db import json_dumps
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


# The columns a listed row sets, in one order for the ORM's dicts and the bulk value lists.
ROW_COLUMNS = (
    "scope",
    "name",
    "namespace",
    "region",
    "state",
    "replicas",
    "vcpu",
    "memory_gib",
    "storage_gib",
    "tags",
    "raw",
    "system_code",
    "created_at_source",
    "content_hash",
)


def _row_list(row: ResourceRow, content_hash: str) -> list[Any]:
    """A listed row's values in ROW_COLUMNS order."""
    return [
        row.scope,
        row.name,
        row.namespace,
        row.region,
        row.state,
        row.replicas,
        row.vcpu,
        row.memory_gib,
        row.storage_gib,
        row.tags,
        row.raw,
        row.system_code,
        row.created_at_source,
        content_hash,
    ]


def row_values(row: ResourceRow, content_hash: str | None = None) -> dict[str, Any]:
    return dict(zip(ROW_COLUMNS, _row_list(row, content_hash or row.content_hash()), strict=True))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def tracked_diff(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    """Before/after of each tracked column that differs (`old`: a row or a Resource)."""
    changes = {}
    for name in TRACKED:
        before, after = getattr(old, name), new[name]
        if before != after:
            changes[name] = {"from": _jsonable(before), "to": _jsonable(after)}
    return changes


# A row needing work: (id or None when new, tombstoned). Plain tuples: one per listed row on a
# first ingest, so no per-row object construction beyond the database driver's own.
Pending = tuple[int | None, Any]

# A probe hash no content hash equals: terminal rows are always looked up (a live row must be
# tombstoned, a tombstoned one left alone) whatever their content.
_ALWAYS = ""

# One JSON object {native_id: hash} carries the batch on both databases: a single text
# parameter, encoded in C, where a pair of arrays costs a Python-side array dump. The driver's
# own cursor runs it: up to a batch of rows come back on a first ingest.
_NEEDING_WORK = (
    "SELECT b.key, r.id, r.deleted_at IS NOT NULL FROM {each} AS b "
    "LEFT JOIN resource r ON r.node_id = {mark} AND r.source = {mark} "
    "AND r.kind = {mark} AND r.native_id = b.key "
    "WHERE r.id IS NULL OR r.deleted_at IS NOT NULL OR r.content_hash <> b.value"
)
_NEEDING_WORK_SQL = {
    "postgresql": _NEEDING_WORK.format(each="json_each_text(CAST(%s AS json))", mark="%s"),
    "sqlite": _NEEDING_WORK.format(each="json_each(?)", mark="?"),
}


def _needing_work(
    session: Session, node_id: str, source: str, kind: str, probes: dict[str, str]
) -> dict[str, Pending]:
    """The batch's rows that are new, changed, tombstoned or terminal, compared in the database.

    Only rows needing work come back, so an unchanged batch costs one round trip and no rows.
    """
    connection = session.connection()
    cursor: Any = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            _NEEDING_WORK_SQL[connection.dialect.name],
            (json_dumps(probes), node_id, source, kind),
        )
        return {native_id: (rid, gone) for native_id, rid, gone in cursor.fetchall()}
    finally:
        cursor.close()


# native_id → (id, content hash, tombstoned) of the rows a scope held when its scan began
Known = dict[str, tuple[int, str, bool]]
# A scope with more rows than this is compared batch by batch in the database instead: the
# prefetch would hold ~150 bytes per row for the scope's whole listing.
KNOWN_LIMIT = 200_000


def scope_state(
    *, session: Session, node_id: str, source: str, kind: str, scope: str
) -> Known | None:
    """What the ledger holds for a scope, read once before its listing (None: too large, or
    SQLite).

    A rescan then recognises its unchanged rows without a database round trip per batch;
    only rows the scope did not hold (new ones, or rows moving in from another scope) are
    looked up in the database. On SQLite the per-batch comparison runs in-process and is the
    faster of the two (measured with bench/ingest.py: ~10 % slower rescans with the
    prefetch there, ~10 % faster on PostgreSQL), so SQLite always compares batch by batch.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    # Plain columns and a plain flag: no per-row type conversion on the way out.
    rows = (
        session.connection()
        .exec_driver_sql(
            "SELECT native_id, id, content_hash, deleted_at IS NOT NULL FROM resource "
            "WHERE node_id = %s AND source = %s AND kind = %s AND scope = %s "
            f"LIMIT {KNOWN_LIMIT + 1}",
            (node_id, source, kind, scope),
        )
        .all()
    )
    if len(rows) > KNOWN_LIMIT:
        return None
    return {
        native_id: (rid, content_hash, bool(gone)) for native_id, rid, content_hash, gone in rows
    }


def upsert_resources(
    *,
    session: Session,
    node_id: str,
    source: str,
    kind: str,
    rows: Sequence[ResourceRow],
    run_id: int,
    now: datetime,
    known: Known | None = None,
) -> WriteCounts:
    """Insert new rows, update changed ones, revive tombstoned ones, tombstone terminal ones.

    Rows of the scope's `known` state (scope_state) are compared in memory, and taken out of
    it as they are (a row listed twice is then looked up again, as it may have been written
    since). The database compares the rest with the ledger and returns only the rows needing
    work. New rows are bulk-loaded (COPY on PostgreSQL, executemany on SQLite) with their
    `created` events, changed rows are read in full for their diff. Unchanged rows are never
    written. The caller commits.
    """
    counts = WriteCounts()
    if not rows:
        return counts
    latest: dict[str, ResourceRow] = {row.native_id: row for row in rows}  # last one wins
    hashes: dict[str, str] = {}
    probes: dict[str, str] = {}  # rows the database must compare
    pending: dict[str, Pending] = {}
    held = None
    for native_id, row in latest.items():  # one pass: this loop runs for every listed row
        hashes[native_id] = content_hash = row.content_hash()
        probe = _ALWAYS if row.terminal else content_hash
        if known is not None:
            held = known.pop(native_id, None)
        if held is None:
            probes[native_id] = probe
        elif held[1] != probe or held[2]:
            pending[native_id] = (held[0], held[2])
    if probes:
        pending.update(_needing_work(session, node_id, source, kind, probes))
    counts.unchanged = len(latest) - len(pending)
    new: list[ResourceRow] = []
    changed: dict[int, tuple[str, ResourceRow]] = {}  # id -> (event type, row)
    for native_id, (rid, tombstoned) in pending.items():
        row = latest[native_id]
        if rid is None:
            if not row.terminal:  # never seen alive: nothing to record
                new.append(row)
        elif row.terminal:
            if not tombstoned:
                changed[rid] = ("deleted", row)
            else:
                counts.unchanged += 1
        elif tombstoned:
            changed[rid] = ("reappeared", row)
        else:
            changed[rid] = ("updated", row)
    if new:
        key = (node_id, source, kind)
        if session.get_bind().dialect.name == "postgresql":
            counts.created += _copy_new(session, key, new, hashes, run_id=run_id, now=now)
        else:
            counts.created += _insert_new(session, key, new, hashes, run_id=run_id, now=now)
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
        values = row_values(row)
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
            diff = tracked_diff(before[resource_id], values) or None
            counts.reappeared += 1
        else:
            diff = tracked_diff(before[resource_id], values)
            counts.updated += 1
        events.append(
            {"resource_id": resource_id, "run_id": run_id, "at": now, "type": event, "diff": diff}
        )
    session.execute(sa.update(Resource), updates)
    session.execute(sa.insert(EVENT), events)


# The columns a new row is bulk-loaded with, in order; the id comes first where we assign it.
_NEW_COLUMNS = (
    "node_id",
    "source",
    "kind",
    "native_id",
    *ROW_COLUMNS,
    "first_seen_at",
    "last_seen_at",
    "last_seen_run_id",
)
_TAGS, _RAW, _CREATED_AT_SOURCE = (
    _NEW_COLUMNS.index(c) for c in ("tags", "raw", "created_at_source")
)
_NOW_COLUMNS = {_NEW_COLUMNS.index("first_seen_at"), _NEW_COLUMNS.index("last_seen_at")}


def _naive_utc(value: datetime | None) -> datetime | None:
    # UTCDateTime stores naive UTC; COPY bypasses the type, so convert here.
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _json(value: Any) -> str | None:
    return None if value is None else json_dumps(value)


def _new_records(
    key: tuple[str, str, str],
    rows: list[ResourceRow],
    hashes: dict[str, str],
    *,
    stamp: Any,
    run_id: int,
    convert: list[tuple[int, Any]],
) -> Iterator[list[Any]]:
    """New rows as value lists in `_NEW_COLUMNS` order, `convert` applied per column."""
    for row in rows:
        values = [
            *key,
            row.native_id,
            *_row_list(row, hashes[row.native_id]),
            stamp,
            stamp,
            run_id,
        ]
        for i, process in convert:
            values[i] = process(values[i])
        yield values


def _copy_new(
    session: Session,
    key: tuple[str, str, str],
    rows: list[ResourceRow],
    hashes: dict[str, str],
    *,
    run_id: int,
    now: datetime,
) -> int:
    """PostgreSQL: take ids from the table's sequence, then COPY the rows and their `created`
    events straight into the ledger, inside the caller's transaction (a crash leaves
    neither)."""
    dbapi: Any = session.connection().connection.dbapi_connection  # psycopg 3
    stamp = _naive_utc(now)
    convert = [(_TAGS, _json), (_RAW, _json), (_CREATED_AT_SOURCE, _naive_utc)]
    with dbapi.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('resource', 'id')) FROM generate_series(1, %s)",
            (len(rows),),
        )
        ids = [r[0] for r in cursor.fetchall()]
        columns = ", ".join(("id", *_NEW_COLUMNS))
        records = _new_records(key, rows, hashes, stamp=stamp, run_id=run_id, convert=convert)
        with cursor.copy(f"COPY resource ({columns}) FROM STDIN") as copy:
            for resource_id, values in zip(ids, records, strict=True):
                copy.write_row((resource_id, *values))
        with cursor.copy("COPY resourceevent (resource_id, run_id, at, type) FROM STDIN") as copy:
            for resource_id in ids:
                copy.write_row((resource_id, run_id, stamp, "created"))
    return len(ids)


def _processor(type_: Any, dialect: sa.Dialect) -> Any:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _insert_new(
    session: Session,
    key: tuple[str, str, str],
    rows: list[ResourceRow],
    hashes: dict[str, str],
    *,
    run_id: int,
    now: datetime,
) -> int:
    """SQLite: one executemany of plain value lists for the rows, their new ids read back,
    and one executemany for their `created` events, inside the caller's transaction."""
    connection = session.connection()
    dialect = connection.dialect
    # Each column's own SQLAlchemy bind conversion (JSON, UTCDateTime), so the raw
    # executemany stores exactly what the ORM would.
    # (The dialect's own implementation: the generic DateTime would leave the datetime to
    # sqlite3's adapter, which writes a different text.)
    processors = [_processor(RESOURCE.c[name].type, dialect) for name in _NEW_COLUMNS]
    convert = [(i, p) for i, p in enumerate(processors) if p is not None and i not in _NOW_COLUMNS]
    stamp = _processor(EVENT.c.at.type, dialect)(now)
    records = list(_new_records(key, rows, hashes, stamp=stamp, run_id=run_id, convert=convert))
    cursor: Any = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        (before,) = cursor.execute("SELECT coalesce(max(id), 0) FROM resource").fetchone()
        marks = ", ".join("?" * len(_NEW_COLUMNS))
        cursor.executemany(
            f"INSERT INTO resource ({', '.join(_NEW_COLUMNS)}) VALUES ({marks})", records
        )
        # The insert holds SQLite's write lock, so the rows of this key above `before` are
        # ours (another writer's earlier commit is another node's: scans lock their nodes).
        wanted = {row.native_id for row in rows}
        ids = [
            resource_id
            for resource_id, native_id in cursor.execute(
                "SELECT id, native_id FROM resource "
                "WHERE id > ? AND node_id = ? AND source = ? AND kind = ?",
                (before, *key),
            )
            if native_id in wanted
        ]
        cursor.executemany(
            "INSERT INTO resourceevent (resource_id, run_id, at, type) VALUES (?, ?, ?, ?)",
            [(resource_id, run_id, stamp, "created") for resource_id in ids],
        )
    finally:
        cursor.close()
    return len(ids)


@dataclass(frozen=True)
class SweepGuard:
    """When a complete listing may tombstone what it lacks (DESIGN.md, Trust in a listing).

    A listing that lacks at least `ratio` of a scope's live rows, and at least `minimum` of
    them, is more likely a source that answered wrongly (a proxy's empty list, a filter
    applied by mistake) than a mass deletion: its sweep is held until the next complete
    listing lacks the same rows, or an operator confirms (`confirmed`, by `by`).
    """

    ratio: float = 0.5
    minimum: int = 10
    confirmed: bool = False
    by: str | None = None

    def trips(self, *, live: int, gone: int) -> bool:
        return gone >= self.minimum and gone >= self.ratio * live


# How a sweep went when it was not routine (ScopeResult.sweep).
HELD, AGREED, CONFIRMED, RETIRED = "held", "agreed", "confirmed", "retired"


@dataclass
class Sweep:
    """What a sweep did: rows tombstoned, rows a held sweep kept, and its verdict."""

    deleted: int = 0
    held: int = 0
    verdict: str | None = None  # None: routine; else HELD / AGREED / CONFIRMED / RETIRED


def held_last_time(*, session: Session, key: tuple[str, str, str, str]) -> set[str]:
    """Native ids the scope's previous complete listing held back (empty unless that listing
    was held): the rows a listing must lack again for the sweep to go ahead."""
    node_id, source, kind, scope = key
    last = session.execute(
        sa.text(
            "SELECT run_id, status FROM scoperesult WHERE node_id = :node AND source = :source "
            "AND kind = :kind AND scope = :scope AND status IN ('ok', 'held') "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"node": node_id, "source": source, "kind": kind, "scope": scope},
    ).first()
    if last is None or last.status != HELD:
        return set()
    rows = session.execute(
        sa.select(RESOURCE.c.native_id)
        .join(EVENT, EVENT.c.resource_id == RESOURCE.c.id)
        .where(
            EVENT.c.run_id == last.run_id,
            EVENT.c.type == HELD,
            RESOURCE.c.node_id == node_id,
            RESOURCE.c.source == source,
            RESOURCE.c.kind == kind,
            RESOURCE.c.scope == scope,
        )
    )
    return {native_id for (native_id,) in rows}


def sweep_verdict(
    *,
    session: Session,
    guard: SweepGuard | None,
    key: tuple[str, str, str, str],
    live: int,
    gone: set[str],
    reason: str | None,
) -> str | None:
    """The guard's word on tombstoning `gone` out of `live` rows (shared by both write paths)."""
    if reason is not None:
        return RETIRED if reason == "scope_retired" else None
    if guard is None or not guard.trips(live=live, gone=len(gone)):
        return None
    if guard.confirmed:
        return CONFIRMED
    held = held_last_time(session=session, key=key)
    return AGREED if held and gone <= held else HELD


def event_diff(verdict: str | None, guard: SweepGuard | None, reason: str | None) -> Any:
    """The diff of a sweep's `deleted` (or `held`) events: why, when it was not routine."""
    if reason is not None:
        return {"reason": reason}
    if verdict == HELD:
        return {"reason": "sweep_guard"}
    if verdict in (AGREED, CONFIRMED):
        by = guard.by if guard is not None and verdict == CONFIRMED else None
        return {"reason": verdict, **({"by": by} if by else {})}
    return None


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
    guard: SweepGuard | None = None,
    reason: str | None = None,
) -> Sweep:
    """Tombstone the live rows of a scope that a complete listing did not return.

    Only call this for a scope whose listing finished `ok` in this run: a failed or partial
    listing proves nothing about what is gone. `live_seen` is how many of the listed rows are
    live in this scope now (every non-terminal one, once upserted): when the scope holds no
    more live rows than that, nothing is gone and one COUNT replaces reading every id. The
    `guard` may hold the sweep (the rows get `held` events and stay live); `reason` marks a
    retirement (every live row of a scope the node file no longer plans), which is not
    guarded.
    """
    where = (
        RESOURCE.c.node_id == node_id,
        RESOURCE.c.source == source,
        RESOURCE.c.kind == kind,
        RESOURCE.c.scope == scope,
        RESOURCE.c.deleted_at.is_(None),
    )
    live_count: int | None = None
    if live_seen is not None:
        live_count = session.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if live_count <= live_seen:
            return Sweep()
    seen_ids = set(seen)
    live = session.execute(sa.select(RESOURCE.c.id, RESOURCE.c.native_id).where(*where)).all()
    gone = {rid: native_id for rid, native_id in live if native_id not in seen_ids}
    if not gone:
        return Sweep()
    verdict = sweep_verdict(
        session=session,
        guard=guard,
        key=(node_id, source, kind, scope),
        live=len(live) if live_count is None else live_count,
        gone=set(gone.values()),
        reason=reason,
    )
    diff = event_diff(verdict, guard, reason)
    if verdict == HELD:
        _events(session, list(gone), run_id=run_id, now=now, type_=HELD, diff=diff)
        return Sweep(held=len(gone), verdict=HELD)
    swept = 0
    ids = list(gone)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
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
        _events(session, tombstoned, run_id=run_id, now=now, type_="deleted", diff=diff)
        swept += len(tombstoned)
    return Sweep(deleted=swept, verdict=verdict)


def _events(
    session: Session, ids: Sequence[int], *, run_id: int, now: datetime, type_: str, diff: Any
) -> None:
    if ids:
        session.execute(
            sa.insert(EVENT),
            [
                {"resource_id": rid, "run_id": run_id, "at": now, "type": type_, "diff": diff}
                for rid in ids
            ],
        )


def ledger_scopes(*, session: Session, node_id: str) -> set[tuple[str, str, str]]:
    """(source, kind, scope) of every scope the node has rows in, live or tombstoned.

    The distinct scopes come from ix_resource_scope alone (live or not); only those few are
    then checked for a live row, so the common case reads no table rows at all.
    """
    every = session.execute(
        sa.select(RESOURCE.c.source, RESOURCE.c.kind, RESOURCE.c.scope)
        .where(RESOURCE.c.node_id == node_id)
        .distinct()
    ).all()
    return {(source, kind, scope) for source, kind, scope in every}


def has_live_rows(
    *, session: Session, node_id: str, key: tuple[str, str, str] | None = None
) -> bool:
    """Whether the node holds a live row: in the scope `key` (source, kind, scope), or any."""
    where = [RESOURCE.c.node_id == node_id, RESOURCE.c.deleted_at.is_(None)]
    if key is not None:
        source, kind, scope = key
        where += [RESOURCE.c.source == source, RESOURCE.c.kind == kind, RESOURCE.c.scope == scope]
    return session.execute(sa.select(RESOURCE.c.id).where(*where).limit(1)).first() is not None


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
