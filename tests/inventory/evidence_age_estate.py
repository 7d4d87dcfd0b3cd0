"""A small estate driven through real scans (the orchestrator, fixed pages), whose listings the
tests then age by moving their timestamps back: evidence-v2 and retired nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, update

from inventory.collectors.base import DENIED, ResourceRow, Scope, ScopeFailed, ScopeStats
from inventory.models import Department, Node, ScanRun, ScopeResult, System
from inventory.scan import Scanner, ScanSummary

# node → (source, kind, scope, native ids → system) of each listing unit
SCOPES: dict[str, list[tuple[str, str, str, dict[str, str]]]] = {
    "core": [
        ("aws", "vm", "cn-js-1", {"i-s1": "S1", "i-s3": "S3"}),
        ("aws", "vm", "cn-js-2", {"i-s2": "S2"}),
    ],
    "edu-dc": [("aws", "vm", "edu-1", {"i-s4": "S4", "i-s3-old": "S3"})],
}
SYSTEMS = {"S1": "JS-EDU", "S2": "JS-EDU", "S3": "JS-EDU", "S4": "JS-EDU"}


def seed_nodes_and_register(session: Session) -> None:
    aws = [{"name": "aws", "kind": "aws"}]
    session.add(
        Node(id="core", name="省级核心节点", level="province_core", one_cloud=True,
             city="省级", sources=aws)
    )  # fmt: skip
    session.add(
        Node(id="edu-dc", name="省教育厅部门云", level="department_cloud", one_cloud=False,
             owner_department="JS-EDU", sources=aws)
    )  # fmt: skip
    session.add(Department(code="JS-EDU", name="江苏省教育厅", city="省级"))
    for code, department in SYSTEMS.items():
        session.add(
            System(code=code, name=f"系统{code}", department_code=department, city="省级",
                   mlps_level=2)
        )  # fmt: skip
    session.commit()


def pages_of(
    rows: list[ResourceRow], fail: ScopeFailed | None = None
) -> Callable[[ScopeStats], Iterator[list[ResourceRow]]]:
    def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        stats.pages += 1
        stats.api_calls += 1
        yield rows
        if fail is not None:
            raise fail

    return pages


def vm(native_id: str, system: str | None, scope: str) -> ResourceRow:
    return ResourceRow(
        kind="vm", native_id=native_id, scope=scope, name=native_id, state="running",
        system_code=system, tags={"yiyun.io/system": system} if system else {},
    )  # fmt: skip


def scan(engine: sa.Engine, node_id: str, *, failing: set[str] = frozenset()) -> ScanSummary:
    """One real scan of a node; scopes named in `failing` return their page, then are denied."""
    scopes = [
        Scope(
            node_id=node_id,
            source=source,
            kind=kind,
            scope=scope,
            pages=pages_of(
                [vm(native_id, system, scope) for native_id, system in rows.items()],
                ScopeFailed(DENIED, "AccessDenied", "denied") if scope in failing else None,
            ),
        )
        for source, kind, scope, rows in SCOPES[node_id]
    ]
    with Session(engine) as session:
        node = session.get(Node, node_id)
        assert node is not None
        session.expunge(node)
    return Scanner(engine, concurrency=1, planner=lambda _node: (scopes, [])).run([node])


def age_run(engine: sa.Engine, run_id: int, by: timedelta) -> None:
    """Move a run and its scope results back in time, as if it had happened `by` earlier."""
    with Session(engine) as session:
        run = session.get(ScanRun, run_id)
        assert run is not None and run.finished_at is not None
        run.started_at -= by
        run.finished_at -= by
        session.add(run)
        for result in session.exec(
            sa.select(ScopeResult).where(col(ScopeResult.run_id) == run_id)  # type: ignore[call-overload]
        ).scalars():
            result.started_at -= by
            result.finished_at -= by
            session.add(result)
        session.commit()


def retire(engine: sa.Engine, node_id: str) -> None:
    """What `yiyun nodes retire` records on the node (its rows are left as they are here)."""
    with Session(engine) as session:
        session.exec(
            update(Node)
            .where(col(Node.id) == node_id)
            .values(retired_at=datetime.now(tz=UTC), retired_by="tester", retired_reason="test")
        )  # type: ignore[call-overload]
        session.commit()
