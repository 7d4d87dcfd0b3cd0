"""The freeze rule (不再新建或外租) and unattributed resources, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import app
from inventory.collectors.base import DENIED, ResourceRow, Scope, ScopeFailed, ScopeStats
from inventory.models import Node, Resource, ScanRun, ScopeResult
from inventory.scan import Scanner
from inventory.settings import Settings
from inventory.violations import (
    freeze_clause,
    freeze_violations,
    unattributed_counts,
    violation_counts,
)

runner = CliRunner()
FIRST_SCAN = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


def resource(
    native_id: str,
    node: str = "edu-dc",
    *,
    created: datetime | None = None,
    first_seen: datetime = FIRST_SCAN,
    system: str | None = "S1",
    kind: str = "vm",
    deleted: bool = False,
) -> Resource:
    return Resource(
        node_id=node,
        source="aws",
        kind=kind,
        native_id=native_id,
        name=native_id,
        system_code=system,
        created_at_source=created,
        content_hash="x",
        first_seen_at=first_seen,
        last_seen_at=first_seen,
        deleted_at=first_seen if deleted else None,
    )


def seed(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.add(
            Node(
                id="edu-dc",
                name="省教育厅部门云",
                level="department_cloud",
                one_cloud=False,
                frozen_since=date(2022, 4, 4),
            )
        )
        session.add(
            Node(
                id="core",
                name="省级核心节点",
                level="province_core",
                one_cloud=True,
                frozen_since=date(2022, 4, 4),
            )
        )
        session.add(Node(id="old-room", name="自建机房", level="server_room", one_cloud=False))
        run = ScanRun(started_at=FIRST_SCAN, finished_at=FIRST_SCAN, status="ok")
        session.add(run)
        session.flush()
        session.add(
            ScopeResult(
                run_id=run.id,
                node_id="edu-dc",
                source="aws",
                kind="vm",
                scope="edu-1",
                status="ok",
                started_at=FIRST_SCAN,
                finished_at=FIRST_SCAN,
            )
        )
        session.add_all(
            [
                resource("before-freeze", created=datetime(2021, 6, 1, tzinfo=UTC)),
                resource("on-freeze-day", created=datetime(2022, 4, 4, 3, 0, tzinfo=UTC)),
                # 17:00 UTC on the freeze day is already the 5th in Asia/Shanghai.
                resource("after-midnight-beijing", created=datetime(2022, 4, 4, 17, 0, tzinfo=UTC)),
                resource("launched-2024", created=datetime(2024, 3, 1, tzinfo=UTC)),
                resource("gone-2024", created=datetime(2024, 3, 1, tzinfo=UTC), deleted=True),
                resource("no-time-baseline"),
                resource("no-time-new", first_seen=datetime(2026, 2, 1, tzinfo=UTC)),
                resource("core-new", node="core", created=datetime(2025, 1, 1, tzinfo=UTC)),
                resource("room-new", node="old-room", created=datetime(2025, 1, 1, tzinfo=UTC)),
                resource("orphan-vm", node="core", system=None),
                resource("orphan-ns", node="core", system=None, kind="namespace"),
                resource(
                    "orphan-deploy",
                    node="edu-dc",
                    system=None,
                    kind="deployment",
                    created=datetime(2021, 1, 1, tzinfo=UTC),
                ),
            ]
        )
        session.commit()


def test_freeze_rule_uses_source_time_then_first_complete_scan(
    engine: sa.Engine, settings: Settings
) -> None:
    seed(engine)

    with Session(engine) as session:
        found = {(v.native_id, v.basis) for v in freeze_violations(session=session, tz=settings.tz)}

    assert found == {
        ("after-midnight-beijing", "source creation time"),
        ("launched-2024", "source creation time"),
        ("no-time-new", "first seen after the first complete scan"),
    }


def test_unattributed_counts_skip_kinds_that_prove_nothing(
    engine: sa.Engine, settings: Settings
) -> None:
    seed(engine)

    with Session(engine) as session:
        orphans = unattributed_counts(session=session)
        totals = violation_counts(session=session, tz=settings.tz)

    assert dict(orphans) == {("core", "vm"): 1, ("edu-dc", "deployment"): 1}
    assert dict(totals) == {
        ("freeze", "edu-dc"): 3,
        ("unattributed", "core"): 1,
        ("unattributed", "edu-dc"): 1,
    }


def test_report_violations_command(engine: sa.Engine, settings: Settings) -> None:
    seed(engine)

    result = runner.invoke(app, ["report", "violations", "--format", "json"])
    details = runner.invoke(app, ["report", "violations", "--format", "json", "--details"])

    assert result.exit_code == 1  # a freeze violation is a problem found
    rows = json.loads(result.stdout)
    assert {(r["rule"], r["node"], r["native_id"] or r["kind"], r["count"]) for r in rows} == {
        ("freeze", "edu-dc", "after-midnight-beijing", 1),
        ("freeze", "edu-dc", "launched-2024", 1),
        ("freeze", "edu-dc", "no-time-new", 1),
        ("unattributed", "core", "vm", 1),
        ("unattributed", "edu-dc", "deployment", 1),
    }
    assert {r["native_id"] for r in json.loads(details.stdout) if r["rule"] == "unattributed"} == {
        "orphan-vm",
        "orphan-deploy",
    }


def test_no_violations_exits_zero(engine: sa.Engine, settings: Settings) -> None:
    result = runner.invoke(app, ["report", "violations", "--format", "json"])

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


# --- the fallback, through real scans: what the first complete scan saw is never new ---------


def frozen_node() -> Node:
    return Node(
        id="edu-dc",
        name="省教育厅部门云",
        level="department_cloud",
        one_cloud=False,
        frozen_since=date(2022, 4, 4),
        sources=[{"name": "aws", "kind": "aws"}],
    )


def scan_frozen(
    engine: sa.Engine, vms: list[str], volumes: list[str], *, volumes_denied: bool = False
) -> int:
    """One real scan of edu-dc: its vm scope, then its volume scope (one at a time, so the
    volume rows are written after the vm scope has finished). No row carries a source
    creation time, so the freeze rule can only go by first sight."""

    def listing(kind: str, ids: list[str], denied: bool) -> Scope:
        def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
            stats.pages += 1
            yield [
                ResourceRow(kind=kind, native_id=i, scope="edu-1", system_code="S1") for i in ids
            ]
            if denied:
                raise ScopeFailed(DENIED, "AccessDenied", "denied")

        return Scope(node_id="edu-dc", source="aws", kind=kind, scope="edu-1", pages=pages)

    scopes = [listing("vm", vms, False), listing("volume", volumes, volumes_denied)]
    summary = Scanner(engine, concurrency=1, planner=lambda _node: (scopes, [])).run(
        [frozen_node()]
    )
    return summary.run_id


def frozen_by_first_sight(engine: sa.Engine, tz: ZoneInfo) -> set[str]:
    with Session(engine) as session:
        return {v.native_id for v in freeze_violations(session=session, tz=tz)}


def test_nothing_the_first_complete_scan_saw_is_a_freeze_violation(
    engine: sa.Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        session.add(frozen_node())
        session.commit()
    # Run 1 is partial: the volume listing returned a page, then was denied.
    scan_frozen(engine, ["i-old"], ["vol-early"], volumes_denied=True)
    after_partial = frozen_by_first_sight(engine, settings.tz)
    # Run 2 is the first complete scan; vol-b is first seen in it, after its vm scope finished.
    scan_frozen(engine, ["i-old"], ["vol-early", "vol-b"])
    after_first_complete = frozen_by_first_sight(engine, settings.tz)
    # Run 3 sees a machine nobody saw before: new since yiyun could see the whole node.
    scan_frozen(engine, ["i-old", "i-new"], ["vol-early", "vol-b"])
    after_later = frozen_by_first_sight(engine, settings.tz)

    assert after_partial == set()  # no complete scan yet: nothing is judged by first sight
    assert after_first_complete == set()
    assert after_later == {"i-new"}
    with Session(engine) as session:
        (violation,) = freeze_violations(session=session, tz=settings.tz)
        counts = violation_counts(session=session, tz=settings.tz)
        # The old baseline, the end of the node's first `ok` listing of any scope, was run 1's
        # vm listing: it made everything first seen after it "new".
        first_ok = session.exec(
            select(sa.func.min(ScopeResult.finished_at)).where(ScopeResult.status == "ok")
        ).one()
        old_rule = set(
            session.exec(
                select(Resource.native_id).where(
                    freeze_clause(frozen_node(), first_ok, settings.tz),
                    col(Resource.deleted_at).is_(None),
                )
            )
        )
    assert violation.basis == "first seen after the first complete scan"
    assert counts[("freeze", "edu-dc")] == 1
    assert old_rule == {"vol-early", "vol-b", "i-new"}


def test_a_retired_frozen_node_reports_no_violation(engine: sa.Engine, settings: Settings) -> None:
    seed(engine)
    with Session(engine) as session:
        node = session.get(Node, "edu-dc")
        assert node is not None
        node.retired_at = datetime(2026, 3, 1, tzinfo=UTC)
        session.add(node)
        session.commit()

        assert freeze_violations(session=session, tz=settings.tz) == []
