"""The scan orchestrator's promises, with scopes that list fixed pages (no collector involved)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.collectors.base import (
    DENIED,
    OK,
    PARTIAL,
    ResourceRow,
    Scope,
    ScopeFailed,
    ScopeStats,
)
from inventory.locks import NodeBusy, node_lock
from inventory.models import Node, Resource, ResourceEvent, ScanRun, ScopeResult
from inventory.scan import Scanner, ScopeOutcome

NODE = Node(
    id="edu-dc",
    name="省教育厅部门云",
    level="department_cloud",
    one_cloud=False,
    sources=[{"name": "aws", "kind": "aws"}],
)


def vm(
    native_id: str, state: str = "running", system: str | None = "S1", **kw: object
) -> ResourceRow:
    return ResourceRow(
        kind="vm",
        native_id=native_id,
        scope="edu-1",
        name=native_id,
        state=state,
        system_code=system,
        tags={"yiyun.io/system": system} if system else {},
        terminal=state in {"terminated", "shutting-down"},
        **kw,
    )  # type: ignore[arg-type]


def listing(*pages: list[ResourceRow], fail_after: Exception | None = None):
    def pages_of(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        for page in pages:
            stats.pages += 1
            stats.api_calls += 1
            yield page
        if fail_after is not None:
            raise fail_after

    return pages_of


def scan_with(engine: sa.Engine, *scopes_pages, batch_size: int = 1000):
    scopes = [
        Scope(node_id="edu-dc", source="aws", kind="vm", scope="edu-1", pages=p)
        for p in scopes_pages
    ]
    scanner = Scanner(engine, batch_size=batch_size, planner=lambda node: (scopes, []))
    return scanner.run([NODE])


def live_ids(engine: sa.Engine) -> set[str]:
    with Session(engine) as session:
        return set(
            session.exec(select(Resource.native_id).where(col(Resource.deleted_at).is_(None)))
        )


def events(engine: sa.Engine, run_id: int) -> set[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.native_id, ResourceEvent.type)
            .join(Resource, Resource.id == ResourceEvent.resource_id)
            .where(ResourceEvent.run_id == run_id)
        )
        return set(rows)


def test_two_runs_tombstone_what_a_complete_listing_no_longer_returns(engine: sa.Engine) -> None:
    first = scan_with(engine, listing([vm("i-1"), vm("i-2")], [vm("i-3")]))
    second = scan_with(engine, listing([vm("i-1"), vm("i-2")]))

    assert first.ok and second.ok
    assert live_ids(engine) == {"i-1", "i-2"}
    assert events(engine, first.run_id) == {
        ("i-1", "created"),
        ("i-2", "created"),
        ("i-3", "created"),
    }
    assert events(engine, second.run_id) == {("i-3", "deleted")}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ScopeFailed(DENIED, "AccessDenied", "not allowed"), DENIED, "AccessDenied"),
        (ConnectionResetError("peer reset"), PARTIAL, "ConnectionResetError"),
    ],
)
def test_failed_scope_keeps_every_row(
    engine: sa.Engine, error: Exception, status: str, code: str
) -> None:
    scan_with(engine, listing([vm("i-1"), vm("i-2"), vm("i-3")]))

    failed = scan_with(engine, listing([vm("i-1"), vm("i-4")], fail_after=error))

    assert not failed.ok
    # Nothing is swept; what the listing did return before failing is recorded.
    assert live_ids(engine) == {"i-1", "i-2", "i-3", "i-4"}
    with Session(engine) as session:
        result = session.exec(select(ScopeResult).where(ScopeResult.run_id == failed.run_id)).one()
        run = session.get(ScanRun, failed.run_id)
    assert (result.status, result.error_code, result.items, result.pages) == (status, code, 2, 1)
    assert run is not None and (run.status, run.scopes_failed) == ("failed", 1)


def test_failure_before_any_page_is_an_error_and_keeps_rows(engine: sa.Engine) -> None:
    scan_with(engine, listing([vm("i-1")]))

    failed = scan_with(engine, listing(fail_after=TimeoutError("read timed out")))

    assert [o.status for o in failed.outcomes] == ["error"]
    assert live_ids(engine) == {"i-1"}


def test_revival_update_and_unchanged_rescan(engine: sa.Engine) -> None:
    scan_with(engine, listing([vm("i-1"), vm("i-2")]))
    scan_with(engine, listing([vm("i-1")]))  # i-2 gone

    back = scan_with(engine, listing([vm("i-1", state="stopped"), vm("i-2")]))
    same = scan_with(engine, listing([vm("i-1", state="stopped"), vm("i-2")]))

    assert events(engine, back.run_id) == {("i-1", "updated"), ("i-2", "reappeared")}
    assert events(engine, same.run_id) == set()
    assert same.outcomes[0].counts.written == 0
    assert same.outcomes[0].counts.unchanged == 2
    with Session(engine) as session:
        diff = session.exec(
            select(ResourceEvent.diff).where(
                ResourceEvent.run_id == back.run_id, ResourceEvent.type == "updated"
            )
        ).one()
    assert diff == {"state": {"from": "running", "to": "stopped"}}
    assert live_ids(engine) == {"i-1", "i-2"}


def test_terminal_state_tombstones_and_is_never_inserted(engine: sa.Engine) -> None:
    scan_with(engine, listing([vm("i-1"), vm("i-2")]))

    run = scan_with(
        engine,
        listing([vm("i-1", state="terminated"), vm("i-2"), vm("i-9", state="shutting-down")]),
    )

    assert live_ids(engine) == {"i-2"}
    assert events(engine, run.run_id) == {("i-1", "deleted")}
    with Session(engine) as session:
        assert session.exec(select(Resource).where(Resource.native_id == "i-9")).first() is None


def test_batches_across_pages_give_the_same_rows(engine: sa.Engine) -> None:
    pages = [[vm(f"i-{p}-{i}") for i in range(3)] for p in range(5)]

    run = scan_with(engine, listing(*pages), batch_size=4)

    assert live_ids(engine) == {f"i-{p}-{i}" for p in range(5) for i in range(3)}
    assert run.outcomes[0].counts.created == 15
    with Session(engine) as session:
        result = session.exec(select(ScopeResult)).one()
    assert (result.status, result.items, result.pages) == (OK, 15, 5)


def test_rows_are_owned_by_the_scope_that_listed_them(engine: sa.Engine) -> None:
    stray = vm("i-1")
    stray.scope = "other-region"

    scan_with(engine, listing([stray]))

    with Session(engine) as session:
        assert session.exec(select(Resource.scope)).one() == "edu-1"


def test_planning_failure_costs_only_its_source(engine: sa.Engine) -> None:
    node = Node(
        id="broken",
        name="x",
        level="server_room",
        one_cloud=False,
        sources=[{"name": "vmware", "kind": "vmwrae"}],
    )

    summary = Scanner(engine).run([node])

    [outcome] = summary.outcomes
    assert (outcome.status, outcome.error_code) == ("error", "UnknownCollector")
    assert "'vmwrae'" in (outcome.error_message or "")
    assert "known: aws, kubernetes" in (outcome.error_message or "")


def test_busy_node_is_skipped_and_reported(engine: sa.Engine) -> None:
    with node_lock(engine, "edu-dc"):
        with pytest.raises(NodeBusy), node_lock(engine, "edu-dc"):
            pass
        summary = scan_with(engine, listing([vm("i-1")]))

    assert summary.busy_nodes == ["edu-dc"] and not summary.ok
    assert live_ids(engine) == set()
    assert scan_with(engine, listing([vm("i-1")])).ok


def test_outcomes_reach_the_progress_callback(engine: sa.Engine) -> None:
    seen: list[ScopeOutcome] = []
    scopes = [
        Scope(node_id="edu-dc", source="aws", kind="vm", scope="edu-1", pages=listing([vm("i-1")]))
    ]

    Scanner(engine, on_scope_done=seen.append, planner=lambda n: (scopes, [])).run([NODE])

    assert [(o.kind, o.status, o.items) for o in seen] == [("vm", OK, 1)]


def test_concurrent_scopes_each_commit_their_own_writes(engine: sa.Engine) -> None:
    # Eight regions listed four at a time: every write must land in its own transaction.
    scopes = [
        Scope(
            node_id="edu-dc",
            source="aws",
            kind="vm",
            scope=f"r{n}",
            pages=listing(*[[vm(f"i-{n}-{p}-{i}") for i in range(3)] for p in range(4)]),
        )
        for n in range(8)
    ]

    summary = Scanner(engine, concurrency=4, batch_size=5, planner=lambda node: (scopes, [])).run(
        [NODE]
    )

    assert summary.ok
    assert len(live_ids(engine)) == 8 * 4 * 3


def test_a_row_that_moves_scope_stays_live_and_the_old_scope_sweeps_the_rest(
    engine: sa.Engine,
) -> None:
    def scope(region: str, *rows: ResourceRow) -> Scope:
        return Scope(
            node_id="edu-dc", source="aws", kind="vm", scope=region, pages=listing(list(rows))
        )

    Scanner(engine, planner=lambda n: ([scope("r1", vm("i-1"), vm("i-2")), scope("r2")], [])).run(
        [NODE]
    )
    Scanner(engine, planner=lambda n: ([scope("r1"), scope("r2", vm("i-1"))], [])).run([NODE])

    with Session(engine) as session:
        rows = set(
            session.exec(select(Resource.native_id, Resource.scope, Resource.deleted_at.is_(None)))
        )  # type: ignore[union-attr]
    assert rows == {("i-1", "r2", True), ("i-2", "r1", False)}


def _planner_statistics(engine: sa.Engine) -> tuple[bool, bool]:
    """(the planner has row counts for `resource`, the table was vacuumed).

    Whether VACUUM could mark pages all-visible (pg_class.relallvisible) depends on every
    other transaction open in the cluster — a parallel test's — so the vacuum itself is what
    is asked for: PostgreSQL counts it in pg_stat_user_tables as it finishes."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            tuples = connection.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('resource')")
            ).scalar_one()
            vacuums = connection.execute(
                sa.text(
                    "SELECT vacuum_count FROM pg_stat_user_tables "
                    "WHERE relid = to_regclass('resource')"
                )
            ).scalar_one()
            return tuples > 0, vacuums > 0
        counted = (
            connection.execute(
                sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
            and connection.execute(
                sa.text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'resource'")
            ).scalar_one()
        )
        return bool(counted), bool(counted)  # SQLite has no visibility map


@pytest.mark.parametrize("rows", [3, 30])
def test_a_scan_that_wrote_many_rows_refreshes_planner_statistics(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    import inventory.scan as scan_module

    monkeypatch.setattr(scan_module, "ANALYZE_AFTER_ROWS", 20)
    before = _planner_statistics(engine)
    summary = scan_with(engine, listing([vm(f"i-{n:03d}") for n in range(rows)]))

    assert summary.ok
    many = rows >= 20
    assert _planner_statistics(engine) == ((True, True) if many else before)
