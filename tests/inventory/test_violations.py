"""The freeze rule (不再新建或外租) and unattributed resources, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from inventory.models import Node, Resource, ScanRun, ScopeResult
from inventory.settings import Settings
from inventory.violations import freeze_violations, unattributed_counts, violation_counts

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
