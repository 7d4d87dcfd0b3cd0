"""Scans at the same time: one node is never scanned twice at once, different nodes scan in
parallel safely, and a KPI read during a scan sees committed state only."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select

from exporters.snapshot import build_snapshot
from inventory.adoption import NO_EVIDENCE, OFF_CLOUD, ON_CLOUD, PARTIAL, PolicySwitches
from inventory.collectors.base import DENIED, ResourceRow, Scope, ScopeFailed, ScopeStats
from inventory.models import Department, Node, ResourceEvent, ScanRun, ScopeResult, System
from inventory.reports import compute
from inventory.scan import Scanner, _Writer
from inventory.settings import Settings
from inventory.sim import k8s as sim_k8s
from tests.hardening.conftest import YIYUN, Cli, isolated_env
from tests.hardening.rig import flatten, k8s_truth, live_keys
from tests.hardening.test_crash import assert_consistent

# --- one node, two scans -------------------------------------------------------------------


def held_scope(node_id: str, entered: threading.Event, release: threading.Event) -> Scope:
    """A listing that hands out one page, then waits (inside the node's lock) until released."""

    def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        stats.pages += 1
        yield [ResourceRow(kind="vm", native_id="i-held", scope="r1", state="running")]
        entered.set()
        if not release.wait(60):
            raise ScopeFailed("error", "TestTimeout", "never released")

    return Scope(node_id=node_id, source="aws", kind="vm", scope="r1", pages=pages)


def department_node(node_id: str = "edu-dc", **columns: object) -> Node:
    return Node(
        id=node_id,
        name="省教育厅部门云",
        level="department_cloud",
        one_cloud=False,
        sources=[{"kind": "aws", "endpoint_url": "http://127.0.0.1:9", "regions": ["r1"]}],
        **columns,
    )


def test_a_second_scan_of_a_busy_node_skips_it_with_a_clear_message(
    engine: sa.Engine, db_url: str, cli: Cli
) -> None:
    with Session(engine) as session:
        session.add(department_node())
        session.commit()
    entered, release = threading.Event(), threading.Event()
    scope = held_scope("edu-dc", entered, release)
    first = Scanner(engine, planner=lambda node: ([scope], []))
    outcome: list[object] = []
    holder = threading.Thread(target=lambda: outcome.append(first.run([department_node()])))
    holder.start()
    try:
        assert entered.wait(30)
        with Session(engine) as session:
            events_before = session.exec(select(sa.func.count()).select_from(ResourceEvent)).one()

        code, _, err = cli("--db", db_url, "scan", "--node", "edu-dc")

        assert code == 1
        assert "node edu-dc is being scanned by another process; skipped" in err
        with Session(engine) as session:
            second = session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()
            assert second is not None
            assert second.status == "failed" and second.scopes_total == 0
            # The second scan wrote nothing while the first held the node: no results, no rows.
            assert not session.exec(
                select(ScopeResult).where(ScopeResult.run_id == second.id)
            ).all()
            events = session.exec(select(sa.func.count()).select_from(ResourceEvent)).one()
            assert events == events_before
    finally:
        release.set()
        holder.join(60)
    (summary,) = outcome
    assert summary.ok  # type: ignore[attr-defined]


def test_a_scan_of_several_nodes_skips_only_the_busy_one(engine: sa.Engine) -> None:
    entered, release = threading.Event(), threading.Event()
    held = held_scope("edu-dc", entered, release)
    holder = threading.Thread(
        target=Scanner(engine, planner=lambda node: ([held], [])).run, args=([department_node()],)
    )
    holder.start()
    try:
        assert entered.wait(30)

        def listing(node: Node) -> tuple[list[Scope], list[object]]:
            rows = [ResourceRow(kind="vm", native_id=f"{node.id}-vm", scope="r1")]
            return [
                Scope(
                    node_id=node.id,
                    source="aws",
                    kind="vm",
                    scope="r1",
                    pages=lambda stats: iter([rows]),
                )
            ], []

        summary = Scanner(engine, planner=listing).run(
            [department_node("edu-dc"), department_node("hlth-dc")]
        )
    finally:
        release.set()
        holder.join(60)

    assert summary.busy_nodes == ["edu-dc"]
    assert [(o.node_id, o.status) for o in summary.outcomes] == [("hlth-dc", "ok")]
    assert not summary.ok


# --- different nodes, in parallel: two real `yiyun scan` processes -----------------------------


@pytest.fixture
def two_clusters(tmp_path: Path) -> Iterator[tuple[dict[str, sim_k8s.KubernetesSimulator], Path]]:
    clusters = {"nj-k8s": sim_k8s.KubernetesSimulator(), "sz-k8s": sim_k8s.KubernetesSimulator()}
    nodes = []
    for n, (node_id, sim) in enumerate(clusters.items()):
        sim.start()
        sim_k8s.populate_scale_estate(sim, deployments=1200 + n * 100, namespaces=30)
        kubeconfig = sim.write_kubeconfig(tmp_path / f"{node_id}.kubeconfig", context=node_id)
        nodes.append(
            {"id": node_id, "name": f"{node_id} 市级骨干节点", "level": "city_backbone",
             "one_cloud": True, "city": "南京市" if n == 0 else "苏州市",
             "sources": [{"kind": "kubernetes", "kubeconfig": str(kubeconfig),
                          "context": node_id}]}
        )  # fmt: skip
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump({"nodes": nodes}, allow_unicode=True), encoding="utf-8")
    try:
        yield clusters, path
    finally:
        for sim in clusters.values():
            sim.stop()


# The brief's promise is for PostgreSQL; SQLite serialises its writers anyway.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_scans_of_different_nodes_run_in_parallel_safely(
    engine: sa.Engine,
    db_url: str,
    cli: Cli,
    two_clusters: tuple[dict[str, sim_k8s.KubernetesSimulator], Path],
    tmp_path: Path,
) -> None:
    clusters, node_file = two_clusters
    assert cli("--db", db_url, "--config", str(node_file), "scan")[0] == 0
    # Each cluster changes, so both scans insert, update and sweep at the same time.
    for n, sim in enumerate(clusters.values()):
        for obj in sim.objects("deployment")[n::7]:
            sim.delete("deployment", obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in sim.objects("deployment")[::11]:
            spec = dict(obj["spec"], replicas=obj["spec"]["replicas"] + 1)
            sim.update(
                "deployment", obj["metadata"]["namespace"], obj["metadata"]["name"], spec=spec
            )
        sim.add_many(
            "deployment", (sim_k8s.make_deployment("ns-0000", f"new-{i}") for i in range(300))
        )

    processes = [
        subprocess.Popen(
            [*YIYUN, "--db", db_url, "scan", "--node", node_id],
            env=isolated_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for node_id in clusters
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()

    assert_consistent(engine)
    truth = set()
    for node_id, sim in clusters.items():
        truth |= flatten(k8s_truth(sim, None, node=node_id))
    assert live_keys(engine) == truth
    with Session(engine) as session:
        runs = list(session.exec(select(ScanRun).order_by(col(ScanRun.id))))
        assert [sorted(run.nodes or []) for run in runs[1:]] in (
            [["nj-k8s"], ["sz-k8s"]],
            [["sz-k8s"], ["nj-k8s"]],
        )
        for run in runs:
            recorded = session.exec(
                select(ScopeResult.node_id).where(ScopeResult.run_id == run.id).distinct()
            )
            assert set(recorded) == set(run.nodes or []) and run.status == "ok"


# --- the KPI read during a scan --------------------------------------------------------------

CORE, DEPT = "js-core", "edu-dc"
# Systems and where their evidence is, before and after the scan.
STABLE = {"S-ON": ON_CLOUD, "S-OFF": OFF_CLOUD, "S-PART": PARTIAL, "S-KEPT": OFF_CLOUD}
MOVING = "S-MOVE"  # leaves the department cloud for the core node within the scan


def vm(native_id: str, system: str | None = None) -> ResourceRow:
    return ResourceRow(
        kind="vm", native_id=native_id, scope="r1", state="running", system_code=system,
        tags={"yiyun.io/system": system} if system else {},
    )  # fmt: skip


def estate(node_id: str, *, moved: bool, run: int) -> list[Scope]:
    """The scopes of a node in scan `run` (0: before the move, 1: with it); many small batches
    of unattributed filler that changes between runs, around the systems' evidence."""
    filler = [vm(f"{node_id}-f{n}") for n in range(run * 40, run * 40 + 200)]
    if node_id == CORE:
        evidence = [vm("core-on", "S-ON"), vm("core-part", "S-PART")]
        if moved:
            evidence.append(vm("core-move", MOVING))
    else:
        evidence = [vm("dept-off", "S-OFF"), vm("dept-part", "S-PART")]
        if not moved:
            evidence.append(vm("dept-move", MOVING))
    listed = [*filler[:100], *evidence, *filler[100:]]
    scopes = [
        Scope(node_id=node_id, source="aws", kind="vm", scope="r1",
              pages=lambda stats: iter([listed[i : i + 30] for i in range(0, len(listed), 30)]))
    ]  # fmt: skip
    if node_id == DEPT:
        kept = [vm("dept-db", "S-KEPT")]

        def denied_later(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
            if run:  # the second scan is refused: the database's evidence must stay
                raise ScopeFailed(DENIED, "AccessDenied", "not authorized")
            yield kept

        scopes.append(
            Scope(node_id=node_id, source="aws", kind="db_instance", scope="r1", pages=denied_later)
        )
    return scopes


def ledger_nodes() -> list[Node]:
    return [
        Node(id=CORE, name="省级核心节点", level="province_core", one_cloud=True),
        Node(id=DEPT, name="省教育厅部门云", level="department_cloud", one_cloud=False),
    ]


@contextmanager
def observing_commits(
    monkeypatch: pytest.MonkeyPatch, read: Callable[[], object]
) -> Iterator[list[tuple[str, object]]]:
    """Reads the KPI at every write of the scan: once just before its commit (through another
    connection) and once just after."""
    reads: list[tuple[str, object]] = []
    original = _Writer.transaction

    @contextmanager
    def observed(self: _Writer, session: Session | None = None) -> Iterator[Session]:
        with original(self, session) as session:
            yield session
            session.flush()
            reads.append(("uncommitted", read()))
        reads.append(("committed", read()))

    monkeypatch.setattr(_Writer, "transaction", observed)
    yield reads


@pytest.mark.parametrize("order", [(CORE, DEPT), (DEPT, CORE)], ids=["new-first", "old-first"])
def test_kpi_read_during_a_scan_sees_only_committed_writes(
    engine: sa.Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, order: tuple[str, str]
) -> None:
    with Session(engine) as session:
        session.add(Department(code="JS-EDU", name="江苏省教育厅", city="省级"))
        for code in [*STABLE, MOVING]:
            session.add(
                System(code=code, name=code, department_code="JS-EDU", city="省级", mlps_level=2)
            )
        for node in ledger_nodes():
            session.add(node)
        session.commit()
    now = datetime.now(tz=UTC)

    def scan(run: int) -> None:
        nodes = {n.id: n for n in ledger_nodes()}
        Scanner(
            engine,
            concurrency=1,  # one write at a time, in plan order: every commit is observed
            batch_size=40,
            planner=lambda node: (estate(node.id, moved=bool(run), run=run), []),
        ).run([nodes[node_id] for node_id in order])

    def read() -> dict[str, str]:
        with Session(engine) as session:
            result = compute(
                session=session, settings=settings, switches=PolicySwitches(), by=None, now=now
            )
            snapshot = build_snapshot(session=session, settings=settings, now=now)
        # The exporter's series agree with the report at every moment.
        exported = Counter()
        for (_, _, status), count in snapshot.systems.items():
            exported[status] += int(count)
        assert +exported == Counter(result.statuses.values())
        return result.statuses

    scan(0)
    start = read()
    assert start == {**STABLE, MOVING: OFF_CLOUD}
    with observing_commits(monkeypatch, read) as reads:
        scan(1)

    assert len(reads) > 10  # many batches, sweeps and results, each observed
    committed = start
    seen = [start]
    for moment, statuses in reads:
        if moment == "uncommitted":
            # What a transaction wrote is invisible until it commits, sweeps included.
            assert statuses == committed
        else:
            committed = statuses
            seen.append(statuses)
    for code, status in STABLE.items():
        assert {statuses[code] for statuses in seen} == {status}, code
    path = [status for status, _ in _runs([statuses[MOVING] for statuses in seen])]
    # Between the commits of the two nodes' scopes the move shows half done, by scan order.
    middle = PARTIAL if order[0] == CORE else NO_EVIDENCE
    assert path == [OFF_CLOUD, middle, ON_CLOUD]


def _runs(values: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal values collapsed: [a, a, b] → [(a, 2), (b, 1)]."""
    collapsed: list[tuple[str, int]] = []
    for value in values:
        if collapsed and collapsed[-1][0] == value:
            collapsed[-1] = (value, collapsed[-1][1] + 1)
        else:
            collapsed.append((value, 1))
    return collapsed
