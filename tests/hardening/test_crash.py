"""A scan killed at any point leaves a consistent ledger, and the next scan repairs everything."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select

from inventory.collectors.base import ResourceRow, Scope, ScopeStats
from inventory.evidence import last_ok_scans, stale_nodes
from inventory.models import Node, Resource, ScanRun, ScopeResult
from inventory.scan import Scanner
from inventory.sim import aws as sim_aws
from inventory.sim import k8s as sim_k8s
from tests.hardening.conftest import YIYUN, Cli, isolated_env
from tests.hardening.rig import aws_truth, flatten, k8s_truth, live_keys

KILLS_PER_DATABASE = 3
SEED = int(os.environ.get("YIYUN_CRASH_SEED", "20261126"))
TERMINAL_STATES = ("terminated", "shutting-down", "deleting", "deleted")


class SimulatedCrash(BaseException):
    """The process dying at this very point: nothing after it runs, no `except Exception`
    catches it, and the open transaction is rolled back as a dead connection's would be."""


# --- what must hold whenever a scan stops, however it stops -------------------------------

INVARIANTS = {
    # A batch's rows and their `created` events commit together.
    "resource without its created event": """
        SELECT r.id FROM resource r WHERE NOT EXISTS (
            SELECT 1 FROM resourceevent e WHERE e.resource_id = r.id AND e.type = 'created')""",
    "event pointing at a missing resource": """
        SELECT e.id FROM resourceevent e
        WHERE NOT EXISTS (SELECT 1 FROM resource r WHERE r.id = e.resource_id)""",
    # A sweep commits with the `ok` ScopeResult that licenses it, or not at all. Rows the
    # source itself reported as terminal are tombstoned by the upsert, whatever the scope did.
    "tombstone without an ok listing of its scope in that run": f"""
        SELECT e.id FROM resourceevent e JOIN resource r ON r.id = e.resource_id
        WHERE e.type = 'deleted'
          AND COALESCE(r.state, '') NOT IN {TERMINAL_STATES!r}
          AND NOT EXISTS (
            SELECT 1 FROM scoperesult s
            WHERE s.run_id = e.run_id AND s.status IN ('ok', 'retired') AND s.node_id = r.node_id
              AND s.source = r.source AND s.kind = r.kind AND s.scope = r.scope)""",
    # The row's state and its history agree: the latest event says whether it is live.
    "tombstone state disagreeing with the latest event": """
        SELECT r.id FROM resource r JOIN resourceevent e ON e.resource_id = r.id
        WHERE e.id = (SELECT MAX(e2.id) FROM resourceevent e2 WHERE e2.resource_id = r.id)
          AND ((e.type = 'deleted') <> (r.deleted_at IS NOT NULL))""",
}


def assert_consistent(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        broken = {
            name: connection.execute(sa.text(query)).scalars().all()
            for name, query in INVARIANTS.items()
        }
    assert {name: ids for name, ids in broken.items() if ids} == {}
    with Session(engine) as session:
        # Killed runs: still `running`, or closed as `abandoned` by a later scan or report.
        unfinished = set(
            session.exec(
                select(ScanRun.id).where(col(ScanRun.status).in_(("running", "abandoned")))
            )
        )
        complete = last_ok_scans(session=session)
        ends = {
            r.finished_at
            for r in session.exec(
                select(ScopeResult).where(col(ScopeResult.run_id).in_(unfinished))
            )
        }
    # A run that never finished is no node's complete scan, however many scopes it recorded.
    assert not set(complete.values()) & ends


# --- the crash, simulated at exact points in this process ----------------------------------

NODE_ID = "edu-dc"


def node() -> Node:
    return Node(
        id=NODE_ID,
        name="省教育厅部门云",
        level="department_cloud",
        one_cloud=False,
        sources=[{"name": "aws", "kind": "aws"}],
    )


def rows(*ids: str, scope: str = "edu-1") -> list[ResourceRow]:
    return [
        ResourceRow(kind="vm", native_id=i, scope=scope, state="running", system_code="S1")
        for i in ids
    ]


def scope(listed: list[ResourceRow], *, scope: str = "edu-1", then: BaseException | None = None):
    def pages(stats: ScopeStats) -> Iterator[list[ResourceRow]]:
        stats.pages += 1
        yield listed
        if then is not None:
            raise then

    return Scope(node_id=NODE_ID, source="aws", kind="vm", scope=scope, pages=pages)


def scan(engine: sa.Engine, *scopes: Scope) -> None:
    Scanner(engine, concurrency=1, planner=lambda _: (list(scopes), [])).run([node()])


@pytest.fixture
def crash_on_scope_result() -> Iterator[Callable[[], None]]:
    """Arms a crash at the moment a ScopeResult is written (call the returned function)."""
    armed = threading.Event()

    def die(*_: object) -> None:
        if armed.is_set():
            raise SimulatedCrash

    sa.event.listen(ScopeResult, "before_insert", die)
    yield armed.set
    sa.event.remove(ScopeResult, "before_insert", die)


def test_a_sweep_commits_with_its_ok_result_or_not_at_all(
    engine: sa.Engine, crash_on_scope_result: Callable[[], None]
) -> None:
    scan(engine, scope(rows("i-1", "i-2", "i-3")))
    crash_on_scope_result()

    with pytest.raises(SimulatedCrash):
        scan(engine, scope(rows("i-1")))

    assert_consistent(engine)
    with Session(engine) as session:
        live = session.exec(select(Resource.native_id).where(col(Resource.deleted_at).is_(None)))
        assert set(live) == {"i-1", "i-2", "i-3"}


def test_a_killed_run_is_no_complete_scan_of_its_nodes(engine: sa.Engine) -> None:
    now = datetime.now(tz=UTC)

    with pytest.raises(SimulatedCrash):
        scan(
            engine,
            scope(rows("i-1"), scope="edu-1"),
            scope(rows("i-2", scope="edu-2"), scope="edu-2", then=SimulatedCrash()),
        )

    assert_consistent(engine)
    with Session(engine) as session:
        session.add(node())
        session.commit()
        assert last_ok_scans(session=session) == {}
        assert stale_nodes(session=session, now=now, freshness=timedelta(hours=24)) == [NODE_ID]


# --- the crash for real: `yiyun scan` in a subprocess, SIGKILLed at seeded random points ----

K8S_NODE, AWS_NODE = "js-core", "edu-dc"
REGION = "us-east-1"


class CrashEstate:
    """A cluster big enough that its deployments take more than one batch, and a small
    AWS-compatible department cloud; `churn()` changes some of everything between scans."""

    def __init__(self, sim: sim_k8s.KubernetesSimulator, moto_url: str, rng: random.Random):
        self.sim, self.moto_url, self.rng = sim, moto_url, rng
        self.serial = 0

    def seed(self) -> None:
        sim_k8s.populate_scale_estate(self.sim, deployments=1500, namespaces=40, systems=30)
        self.sim.add_many(
            "pvc", (sim_k8s.make_pvc(f"ns-{i % 40:04d}", f"data-{i}") for i in range(300))
        )
        for i in range(3):
            self.sim.add("node", sim_k8s.make_node(f"worker-{i}"))
        sim_aws.seed_instances(self.moto_url, REGION, count=4, tags={"yiyun.io/system": "SYS-0001"})
        sim_aws.seed_volumes(self.moto_url, REGION, count=4)
        sim_aws.seed_buckets(self.moto_url, REGION, [self.bucket() for _ in range(4)])

    def bucket(self) -> str:
        self.serial += 1
        return f"crash-{os.getpid()}-{self.serial}"

    def churn(self) -> None:
        deployments = self.sim.objects("deployment")
        for obj in self.rng.sample(deployments, 120):
            self.sim.delete("deployment", obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in self.rng.sample(deployments, 120):
            if self.sim.get("deployment", obj["metadata"]["namespace"], obj["metadata"]["name"]):
                spec = dict(obj["spec"], replicas=obj["spec"]["replicas"] % 3 + 1)
                self.sim.update(
                    "deployment", obj["metadata"]["namespace"], obj["metadata"]["name"], spec=spec
                )
        self.serial += 1
        self.sim.add_many(
            "deployment",
            (
                sim_k8s.make_deployment(f"ns-{i % 40:04d}", f"new-{self.serial}-{i}")
                for i in range(150)
            ),
        )
        ec2 = sim_aws.sim_client("ec2", self.moto_url, REGION)
        free = sorted(
            v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if not v["Attachments"]
        )
        sim_aws.delete_volumes(self.moto_url, REGION, free[:1])
        sim_aws.seed_volumes(self.moto_url, REGION, count=1)
        s3 = sim_aws.sim_client("s3", self.moto_url, REGION)
        names = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
        sim_aws.delete_buckets(self.moto_url, REGION, names[:1])
        sim_aws.seed_buckets(self.moto_url, REGION, [self.bucket()])

    def truth(self) -> set[tuple[str, str, str]]:
        return flatten(
            {
                **k8s_truth(self.sim, None, node=K8S_NODE),
                **aws_truth(self.moto_url, (REGION,), node=AWS_NODE),
            }
        )

    def write_node_file(self, directory: Path) -> Path:
        kubeconfig = self.sim.write_kubeconfig(directory / "kubeconfig", context="core")
        nodes = [
            {"id": K8S_NODE, "name": "省级核心节点", "level": "province_core", "one_cloud": True,
             "city": "省级", "sources": [
                 {"kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "core"}]},
            {"id": AWS_NODE, "name": "省教育厅部门云", "level": "department_cloud",
             "one_cloud": False, "owner_department": "JS-EDU", "sources": [
                 {"kind": "aws", "endpoint_url": self.moto_url, "regions": [REGION]}]},
        ]  # fmt: skip
        path = directory / "nodes.yaml"
        path.write_text(yaml.safe_dump({"nodes": nodes}, allow_unicode=True), encoding="utf-8")
        return path


def latest_run(engine: sa.Engine) -> ScanRun | None:
    with Session(engine) as session:
        return session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()


def wait_for(check: Callable[[], object], *, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.01)


@pytest.fixture
def crash_estate(moto: str, tmp_path: Path) -> Iterator[tuple[CrashEstate, Path]]:
    with sim_k8s.KubernetesSimulator() as sim:
        estate = CrashEstate(sim, moto, random.Random(SEED))
        estate.seed()
        yield estate, estate.write_node_file(tmp_path)


def test_scans_killed_at_random_points_leave_a_consistent_ledger_and_the_next_scan_repairs_it(
    engine: sa.Engine,
    db_url: str,
    crash_estate: tuple[CrashEstate, Path],
    cli: Cli,
    tmp_path: Path,
) -> None:
    estate, node_file = crash_estate
    rng = random.Random(f"{SEED}-{engine.dialect.name}")
    command = [*YIYUN, "--db", db_url, "--config", str(node_file), "scan"]
    env = isolated_env(tmp_path)
    log = tmp_path / "scan.log"

    def run_killed_scan(kill_after: float) -> None:
        previous = latest_run(engine)
        with log.open("ab") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
            try:
                # Measure from the moment the run exists, not from interpreter start-up.
                wait_for(
                    lambda: (run := latest_run(engine)) and run.id != getattr(previous, "id", 0),
                    what="the scan run to start",
                )
                threading.Event().wait(kill_after)
                process.kill()
                process.wait(timeout=120)
            finally:
                process.kill()

    # The first and the repairing scan need no process of their own: only the killed ones do.
    assert cli("--db", db_url, "--config", str(node_file), "scan")[0] == 0
    first = latest_run(engine)
    assert first is not None and first.finished_at is not None
    duration = (first.finished_at - first.started_at).total_seconds()

    mid_run = 0
    for _ in range(KILLS_PER_DATABASE):
        estate.churn()
        run_killed_scan(rng.uniform(0, duration * 1.2))
        killed_run = latest_run(engine)
        mid_run += killed_run is not None and killed_run.finished_at is None
        assert_consistent(engine)

    estate.churn()
    code, _, err = cli("--db", db_url, "--config", str(node_file), "scan")
    assert code == 0, err
    assert_consistent(engine)
    assert live_keys(engine) == estate.truth()
    assert mid_run >= 1, "no scan was killed mid-run: the kill points missed every scan"
