"""Resource ids are never reused, so a purged row's history can never attach to a new row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.collectors.base import ResourceRow, Scope, ScopeStats
from inventory.db import make_engine, upgrade
from inventory.models import Node, Resource, ResourceEvent
from inventory.scan import Scanner
from inventory.store import purge_tombstones

NODE = Node(id="edu-dc", name="省教育厅部门云", level="department_cloud", one_cloud=False)


def scan(engine: sa.Engine, *ids: str) -> None:
    def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        stats.pages += 1
        yield [ResourceRow(kind="vm", native_id=i, scope="r1", state="running") for i in ids]

    scope = Scope(node_id=NODE.id, source="aws", kind="vm", scope="r1", pages=pages)
    Scanner(engine, concurrency=1, planner=lambda _: ([scope], [])).run([NODE])


def ids(engine: sa.Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {r.native_id: r.id for r in session.exec(select(Resource)) if r.id is not None}


def test_a_purged_rows_id_is_never_given_to_a_new_row(engine: sa.Engine) -> None:
    scan(engine, "i-1", "i-2")
    scan(engine, "i-1")  # i-2 is gone: tombstoned, with its history
    purged = ids(engine)["i-2"]
    with Session(engine) as session:
        removed = purge_tombstones(session=session, older_than=datetime.now(tz=UTC) + timedelta(1))
        session.commit()
    assert removed == 1 and "i-2" not in ids(engine)

    scan(engine, "i-1", "i-3")

    assert ids(engine)["i-3"] > purged
    with Session(engine) as session:
        # The purged row's events still point at its id, and at nothing else.
        history = session.exec(
            select(ResourceEvent.type).where(ResourceEvent.resource_id == purged)
        ).all()
        assert sorted(history) == ["created", "deleted"]
        assert session.exec(select(Resource).where(col(Resource.id) == purged)).first() is None


def test_migration_0004_keeps_every_row_id_and_index_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0003")
    now = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        for rid in (3, 7, 9):
            connection.execute(
                sa.text(
                    "INSERT INTO resource (id, node_id, source, kind, native_id, scope, "
                    "content_hash, first_seen_at, last_seen_at) "
                    "VALUES (:id, 'edu-dc', 'aws', 'vm', :nid, 'r1', 'h', :now, :now)"
                ),
                {"id": rid, "nid": f"i-{rid}", "now": now},
            )
        connection.execute(
            sa.text(
                "INSERT INTO resourceevent (resource_id, at, type) VALUES (9, :now, 'created')"
            ),
            {"now": now},
        )
        # The highest id was purged before the upgrade, its history kept: plain SQLite would
        # hand id 9 out again, and that history would describe the new row.
        connection.execute(sa.text("DELETE FROM resource WHERE id = 9"))

    upgrade(engine)

    with engine.connect() as connection:
        table = connection.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'resource'")
        ).scalar_one()
        indexes = dict(
            connection.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'resource' "
                        "AND type = 'index' AND sql IS NOT NULL")
            ).all()
        )  # fmt: skip
        rows = connection.execute(sa.text("SELECT id, native_id FROM resource ORDER BY id")).all()
    assert "AUTOINCREMENT" in table
    assert "WHERE deleted_at IS NULL" in indexes["ix_resource_live_evidence"]
    assert "ix_resource_scope" in indexes
    assert [tuple(r) for r in rows] == [(3, "i-3"), (7, "i-7")]
    # Rows keep their ids; new ids continue above every id any history names.
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO resource (node_id, source, kind, native_id, scope, content_hash, "
                "first_seen_at, last_seen_at) VALUES ('edu-dc', 'aws', 'vm', 'i-new', 'r1', 'h', "
                ":now, :now)"
            ),
            {"now": now},
        )
        new_id = connection.execute(
            sa.text("SELECT id FROM resource WHERE native_id = 'i-new'")
        ).scalar_one()
    assert new_id > 9
    engine.dispose()
