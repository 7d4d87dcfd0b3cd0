"""The bulk write path leaves exactly the ledger the plain per-row ORM path leaves.

The same scripted estate (creations, changes, duplicates across batches, terminal rows,
disappearances, reappearances, a row moving scope, a listing that breaks half way) is scanned
generation by generation into two nodes of one database: one through `inventory.store`, one
through `inventory.store_simple`. Rows, tombstones, events and counts must be identical.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from inventory import scan as scan_module
from inventory import store_simple
from inventory.collectors.base import PARTIAL, ResourceRow, Scope, ScopeFailed, ScopeStats
from inventory.models import Node, Resource, ResourceEvent, ScanRun, ScopeResult
from inventory.scan import Scanner

BULK, PLAIN = "bulk-dc", "plain-dc"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def vm(native_id: str, state: str = "running", **kw: Any) -> ResourceRow:
    return ResourceRow(
        kind="vm",
        native_id=native_id,
        scope="?",  # the orchestrator sets the listing scope
        name=native_id,
        state=state,
        vcpu=2.0,
        memory_gib=4.0,
        system_code=kw.pop("system_code", "S-" + native_id[-1]),
        terminal=state == "terminated",
        **kw,
    )


def deployment(native_id: str, replicas: int) -> ResourceRow:
    return ResourceRow(
        kind="deployment",
        native_id=native_id,
        scope="?",
        namespace="ns1",
        name=native_id,
        replicas=replicas,
        tags={"yiyun.io/system": "S-K"},
        raw={"spec": {"replicas": replicas}, "名称": "部署"},
    )


def estate(generation: int) -> list[tuple[str, str, list[list[ResourceRow]], bool]]:
    """(kind, scope, pages, breaks after the first page) per scope, for one generation."""
    born = T0 - timedelta(days=30)
    r1 = [vm(f"v{i:02d}", created_at_source=born + timedelta(days=i)) for i in range(1, 13)]
    r2 = [vm(f"v{i}") for i in range(20, 26)]
    kube = [deployment(f"d{i}", replicas=i % 3) for i in range(1, 6)]
    if generation == 0:
        # v05 listed twice, in different batches: the later listing wins.
        r1 += [vm("v05", state="stopped"), vm("v99", state="terminated")]
    if generation >= 1:
        r1 = [row for row in r1 if row.native_id not in {"v04", "v07"}]  # v04 gone
        r1[0] = vm("v01", state="stopped", created_at_source=r1[0].created_at_source)
        r1[1].tags = {"yiyun.io/system": "S-2", "owner": "教育厅"}
        r1[4] = vm("v06", state="terminated")  # terminal: tombstoned with a `deleted` event
        r1 += [vm("v13"), vm("v99", state="terminated")]  # v99 never seen alive
        # v25 is the only row r2 loses (one gone, one arrived: the counts alone look equal);
        # v07 moved from r1 to r2: same row, new scope.
        r2 = [row for row in r2 if row.native_id != "v25"] + [vm("v07")]
        kube[1] = deployment("d2", replicas=3)
    if generation >= 2:
        r1 += [vm("v04"), vm("v06")]  # both come back
        r1[0] = vm("v01", state="terminated")
        kube = []  # a complete, empty listing: every deployment is gone
    if generation == 2:
        r2 = [row for row in r2 if row.native_id != "v21"]
        # v03 listed twice in one listing: changed first, then as it was. The second listing
        # must be compared with what the first one wrote, not with the scan's starting state.
        original = r1[2]
        r1[2] = vm("v03", state="stopped", created_at_source=original.created_at_source)
        r1.append(original)
    if generation >= 3:
        r2 = [row for row in r2 if row.native_id not in {"v21", "v22"}]
    # r3 arrives with a dozen rows in generation 4; from generation 5 its listing lacks all
    # but one: the guard holds that sweep, and lets it go ahead when generation 6 agrees.
    r3 = [vm(f"v{i}") for i in range(30, 42)]
    if generation >= 5:
        r3 = r3[:1]
    pages = lambda rows: [rows[i : i + 4] for i in range(0, len(rows), 4)]  # noqa: E731
    # Generation 2's r2 listing breaks after its first page: nothing of r2 may be swept.
    scopes = [
        ("vm", "r1", pages(r1), False),
        ("vm", "r2", pages(r2), generation == 2),
        ("deployment", "ns1", pages(kube), False),
        ("vm", "r3", pages(r3), False),
    ]
    # Generation 6 no longer plans r2 (its region left the node file): it is retired.
    return [
        scope
        for scope in scopes
        if not (scope[1] == "r3" and generation < 4) and not (scope[1] == "r2" and generation >= 6)
    ]


def plan_for(generation: int) -> Any:
    def planner(node: Node) -> tuple[list[Scope], list[Any]]:
        scopes = []
        for kind, scope, pages, breaks in estate(generation):

            def listing(
                stats: ScopeStats, pages: list[list[ResourceRow]] = pages, breaks: bool = breaks
            ) -> Iterator[list[ResourceRow]]:
                for number, page in enumerate(pages):
                    if breaks and number == 1:
                        raise ScopeFailed(PARTIAL, "Timeout", "listing broke off")
                    stats.pages += 1
                    yield [ResourceRow(**{**vars(row)}) for row in page]  # fresh objects

            scopes.append(
                Scope(node_id=node.id, source="aws", kind=kind, scope=scope, pages=listing)
            )
        return scopes, []

    return planner


def ledger(engine: sa.Engine, node_id: str) -> tuple[dict[tuple[str, ...], Any], Counter[Any]]:
    """A node's rows by natural key and its events, with run ids as generation numbers."""
    with Session(engine) as session:
        runs = {
            run.id: number
            for number, run in enumerate(
                r for r in session.exec(select(ScanRun).order_by(ScanRun.id)) if node_id in r.nodes
            )
        }
        rows = {}
        for resource in session.exec(select(Resource).where(Resource.node_id == node_id)):
            values = resource.model_dump(exclude={"id", "node_id"})
            values["last_seen_run_id"] = runs[resource.last_seen_run_id]
            rows[(resource.source, resource.kind, resource.native_id)] = values
        events: Counter[Any] = Counter()
        for event, resource in session.exec(
            select(ResourceEvent, Resource)
            .join(Resource, ResourceEvent.resource_id == Resource.id)  # type: ignore[arg-type]
            .where(Resource.node_id == node_id)
        ):
            events[
                (runs[event.run_id], resource.native_id, event.type, event.at, repr(event.diff))
            ] += 1
        return rows, events


def stored_text(engine: sa.Engine, node_id: str) -> list[tuple[Any, ...]]:
    """Every column as the database stores it, as text: timestamps and JSON written by the
    bulk path must be byte-identical to the ORM's, or SQL comparisons would drift."""
    columns = [
        c.name
        for c in Resource.__table__.columns
        if c.name not in {"id", "node_id", "last_seen_run_id"}
    ]  # type: ignore[attr-defined]
    select_list = ", ".join(f"CAST({name} AS TEXT)" for name in columns)
    with engine.connect() as connection:
        return sorted(
            tuple(row)
            for row in connection.execute(
                sa.text(f"SELECT {select_list} FROM resource WHERE node_id = :node"),
                {"node": node_id},
            )
        )


def scope_results(engine: sa.Engine, node_id: str) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        return sorted(
            (r.kind, r.scope, r.status, r.items, r.deleted, r.held, r.sweep, r.finished_at)
            for r in session.exec(select(ScopeResult).where(ScopeResult.node_id == node_id))
        )


def test_bulk_and_plain_paths_leave_the_same_ledger(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        for node_id in (BULK, PLAIN):
            session.add(Node(id=node_id, name=node_id, level="department_cloud", one_cloud=False))
        session.commit()
        nodes = {n.id: n for n in session.exec(select(Node))}
    for generation in range(7):
        # Both paths see the same clock, so every timestamp must match too.
        now = T0 + timedelta(hours=generation)
        monkeypatch.setattr(scan_module, "utcnow", lambda now=now: now)
        counts = {}
        for node_id, paths in (
            (BULK, {}),
            (PLAIN, {"upsert": store_simple.upsert_resources, "sweep": store_simple.sweep_scope}),
        ):
            summary = Scanner(
                engine,
                # One scope at a time: with scopes in parallel, whether r1's sweep sees v07
                # before r2 re-lists it is a race, and the two runs could differ by timing.
                concurrency=1,
                batch_size=3,
                planner=plan_for(generation),
                **paths,
            ).run([nodes[node_id]])
            counts[node_id] = sorted(
                (o.kind, o.scope, o.status, o.held, o.sweep, vars(o.counts))
                for o in summary.outcomes
            )
        assert counts[BULK] == counts[PLAIN], generation
        assert ledger(engine, BULK) == ledger(engine, PLAIN), generation
    assert scope_results(engine, BULK) == scope_results(engine, PLAIN)
    bulk_text, plain_text = stored_text(engine, BULK), stored_text(engine, PLAIN)
    assert bulk_text == plain_text
    assert any("." in str(value) for row in bulk_text for value in row[:-1] if value)

    # The script exercised what it claims to: every event type, both kinds of tombstone.
    rows, events = ledger(engine, BULK)
    by_type = Counter(type_ for (_, _, type_, _, _) in events.elements())
    assert set(by_type) == {"created", "updated", "deleted", "reappeared", "held"}
    assert rows[("aws", "vm", "v07")]["scope"] == "r2"
    # v05 listed twice in generation 0, in different batches: created, then the later won.
    assert sorted(t for (g, nid, t, _, _) in events if (g, nid) == (0, "v05")) == [
        "created",
        "updated",
    ]
    assert ("aws", "vm", "v99") not in rows  # terminal and never seen alive
    assert rows[("aws", "vm", "v04")]["deleted_at"] is None  # came back
    assert rows[("aws", "vm", "v03")]["state"] == "running"
    assert sorted(t for (g, nid, t, _, _) in events if (g, nid) == (2, "v03")) == [
        "updated",
        "updated",
    ]
    assert rows[("aws", "vm", "v25")]["deleted_at"] == T0 + timedelta(hours=1)
    assert rows[("aws", "vm", "v01")]["deleted_at"] == T0 + timedelta(hours=2)
    # The broken listing of generation 2 swept nothing; the complete one of generation 3 did.
    assert rows[("aws", "vm", "v21")]["deleted_at"] == T0 + timedelta(hours=3)
    assert all(rows[("aws", "deployment", f"d{i}")]["deleted_at"] for i in range(1, 6))
    # The guard: generation 5 held r3's eleven missing rows, generation 6 agreed and swept.
    guarded = [f"v{i}" for i in range(31, 42)]
    assert all(rows[("aws", "vm", v)]["deleted_at"] == T0 + timedelta(hours=6) for v in guarded)
    assert rows[("aws", "vm", "v30")]["deleted_at"] is None
    held = {nid for (g, nid, t, _, _) in events if t == "held"}
    assert held == set(guarded)
    assert {d for (g, nid, t, _, d) in events if nid in guarded and t == "deleted"} == {
        repr({"reason": "agreed"})
    }
    # Retirement: every row r2 still had live is tombstoned in generation 6, with its reason.
    retired = {nid for (g, nid, t, _, d) in events if d == repr({"reason": "scope_retired"})}
    assert retired and all(rows[("aws", "vm", v)]["scope"] == "r2" for v in retired)
    assert all(rows[("aws", "vm", v)]["deleted_at"] == T0 + timedelta(hours=6) for v in retired)
    statuses = {(kind, scope, status) for kind, scope, status, *_ in scope_results(engine, BULK)}
    assert {("vm", "r3", "held"), ("vm", "r2", "retired")} <= statuses
