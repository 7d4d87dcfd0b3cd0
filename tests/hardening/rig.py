"""A small two-node estate for fault tests: an AWS-compatible node and a Kubernetes node, each
behind a fault proxy, the node file that points at them, and the truth each simulator holds."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, col, select

from inventory.collectors import aws as aws_collector
from inventory.collectors import kubernetes as k8s_collector
from inventory.models import Resource, ScanRun, ScopeResult
from inventory.sim import aws as sim_aws
from inventory.sim import k8s as sim_k8s
from inventory.sim.faults import FaultProxy, ProxiedRequest, _ProxyHandler

AWS_NODE, K8S_NODE = "js-core", "edu-dc"
AWS_SOURCE, K8S_SOURCE = "aws", "kubernetes"
REGIONS = ("us-east-1", "eu-west-1")
NAMESPACES = ("edu-a", "edu-b")
SYSTEM_TAG = "yiyun.io/system"
MAX_ATTEMPTS = 3  # botocore: the first try and two retries
# Page sizes that make every listing of the rig span several pages.
AWS_PAGE_SIZE, K8S_PAGE_SIZE = 3, 2
# Long enough for a loaded CI machine, short enough that timeout faults cost little.
READ_TIMEOUT = 1.0
# The simulator's kinds under the ledger's names.
K8S_KINDS = {
    "namespace": "namespace",
    "deployment": "deployment",
    "statefulset": "statefulset",
    "daemonset": "daemonset",
    "cronjob": "cronjob",
    "persistentvolumeclaim": "pvc",
    "service": "service",
    "resourcequota": "resource_quota",
}

Key = tuple[str, str, str]  # (node, kind, native_id)
ScopeKey = tuple[str, str, str]  # (node, kind, scope)


class RestartableProxy(FaultProxy):
    """A FaultProxy that can go down (connection refused) and come back on the same port, as
    a node does when its API gateway restarts."""

    port: int = 0

    def start(self) -> str:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.block_on_close = False
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def running(self) -> bool:
        return self._server is not None

    def down(self) -> None:
        self.stop()
        self._server = None

    def up(self) -> None:
        self.start()


# --- request predicates -----------------------------------------------------------------


def in_region(region: str) -> Callable[[ProxiedRequest], bool]:
    """Matches SigV4-signed calls for one region (the credential scope names it)."""
    return lambda request: f"/{region}/" in request.headers.get("authorization", "")


def every(*predicates: Callable[[ProxiedRequest], bool]) -> Callable[[ProxiedRequest], bool]:
    return lambda request: all(predicate(request) for predicate in predicates)


def k8s_continued(request: ProxiedRequest) -> bool:
    """A Kubernetes list request for a page after the first."""
    return "continue" in request.query


def k8s_status(code: int, reason: str, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


# --- the estate ---------------------------------------------------------------------------


@dataclass
class Rig:
    """The running estate; `scan()` runs `yiyun scan` with the node file, in this process."""

    moto_url: str
    aws_proxy: RestartableProxy
    sim: sim_k8s.KubernetesSimulator
    k8s_proxy: RestartableProxy
    directory: Path
    db_url: str
    cli: Callable[..., tuple[int, str, str]]
    buckets: list[str] = field(default_factory=list)
    serial: int = 0
    # Kubernetes retry waits, recorded instead of slept (install_knobs).
    waits: list[float] = field(default_factory=list)

    @property
    def node_file(self) -> Path:
        return self.directory / "nodes.yaml"

    def write_node_file(self) -> None:
        kubeconfig = sim_k8s.write_kubeconfig(
            self.directory / "kubeconfig", server=self.k8s_proxy.url, context="edu-k8s"
        )
        nodes = [
            {
                "id": AWS_NODE,
                "name": "江苏省政务云省级核心节点",
                "level": "province_core",
                "one_cloud": True,
                "city": "省级",
                "mlps_level": 3,
                "sources": [
                    {
                        # Written ids: the proxies' random ports would otherwise be in them.
                        "id": AWS_SOURCE,
                        "kind": "aws",
                        "endpoint_url": self.aws_proxy.url,
                        "regions": list(REGIONS),
                        "max_attempts": MAX_ATTEMPTS,
                    }
                ],
            },
            {
                "id": K8S_NODE,
                "name": "省教育厅部门云",
                "level": "department_cloud",
                "one_cloud": False,
                "owner_department": "JS-EDU",
                "sources": [
                    {
                        "id": K8S_SOURCE,
                        "kind": "kubernetes",
                        "kubeconfig": str(kubeconfig),
                        "context": "edu-k8s",
                        "namespaces": list(NAMESPACES),
                    }
                ],
            },
        ]
        self.node_file.write_text(
            yaml.safe_dump({"nodes": nodes}, allow_unicode=True), encoding="utf-8"
        )

    # --- what the simulators hold

    def seed(self) -> None:
        for region in REGIONS:
            # One reservation each: moto pages DescribeInstances by reservation.
            sim_aws.seed_instances(
                self.moto_url, region, count=5, per_reservation=1, tags={SYSTEM_TAG: "JS-A"}
            )
            sim_aws.seed_volumes(self.moto_url, region, count=2, tags={SYSTEM_TAG: "JS-A"})
            sim_aws.seed_db_instances(self.moto_url, region, [f"db-{region}-{n}" for n in range(2)])
        self.buckets = [f"b-{uuid.uuid4().hex[:10]}-{n}" for n in range(3)]
        sim_aws.seed_buckets(self.moto_url, REGIONS[0], self.buckets, tags={SYSTEM_TAG: "JS-A"})
        for namespace in NAMESPACES:
            self.sim.add("namespace", sim_k8s.make_namespace(namespace, system="JS-EDU-1"))
            for n in range(5):
                self.sim.add("deployment", sim_k8s.make_deployment(namespace, f"web-{n}"))
            for kind, make in (
                ("statefulset", sim_k8s.make_statefulset),
                ("cronjob", sim_k8s.make_cronjob),
                ("pvc", sim_k8s.make_pvc),
                ("daemonset", sim_k8s.make_daemonset),
                ("quota", sim_k8s.make_resource_quota),
            ):
                for n in range(4):
                    self.sim.add(kind, make(namespace, f"{kind}-{n}"))
            for n in range(4):
                self.sim.add(
                    "service", sim_k8s.make_service(namespace, f"svc-{n}", type="NodePort")
                )

    def churn(self) -> None:
        """Delete a resource in every scope (terminate one VM) and add a few, so that a complete
        listing must change the ledger and a failed one must not."""
        self.serial += 1
        for region in REGIONS:
            ec2 = sim_aws.sim_client("ec2", self.moto_url, region)
            instances = [
                i["InstanceId"]
                for r in ec2.describe_instances()["Reservations"]
                for i in r["Instances"]
                if i["State"]["Name"] not in aws_collector.VM_TERMINAL_STATES
            ]
            # Terminated, not gone: moto keeps listing it, as a terminal row.
            sim_aws.terminate_instances(self.moto_url, region, sorted(instances)[:1])
            # Root volumes of instances cannot be deleted; the free ones can.
            volumes = sorted(
                v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if not v["Attachments"]
            )
            sim_aws.delete_volumes(self.moto_url, region, volumes[:1])
            rds = sim_aws.sim_client("rds", self.moto_url, region)
            databases = sorted(
                d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
            )
            sim_aws.delete_db_instances(self.moto_url, region, databases[:1])
        gone, self.buckets = self.buckets[:1], self.buckets[1:]
        sim_aws.delete_buckets(self.moto_url, REGIONS[0], gone)
        for namespace in NAMESPACES:
            for kind in ("deployment", "statefulset", "cronjob", "pvc", "daemonset", "quota"):
                present = sorted(
                    o["metadata"]["name"]
                    for o in self.sim.objects(kind)
                    if o["metadata"]["namespace"] == namespace
                )
                self.sim.delete(kind, namespace, present[0])
            self.sim.add("deployment", sim_k8s.make_deployment(namespace, f"new-{self.serial}"))
            self.sim.add("pvc", sim_k8s.make_pvc(namespace, f"new-{self.serial}"))
            present = sorted(
                o["metadata"]["name"]
                for o in self.sim.objects("service")
                if o["metadata"]["namespace"] == namespace
            )
            self.sim.delete("service", namespace, present[0])

    def truth_by_scope(self) -> dict[ScopeKey, set[str]]:
        """The ids of every live resource the simulators hold, by the scope that lists it: what
        a complete listing of that scope must leave live in the ledger."""
        return {
            **aws_truth(self.moto_url, REGIONS, node=AWS_NODE),
            **k8s_truth(self.sim, NAMESPACES, node=K8S_NODE),
        }

    def truth(self) -> set[Key]:
        """(node, kind, id) of every live resource the simulators hold."""
        return flatten(self.truth_by_scope())

    # --- scanning and reading the ledger

    def scan(self, *options: str) -> tuple[int, str, str]:
        """`yiyun --db … --config nodes.yaml scan OPTIONS`: (exit code, stdout, stderr)."""
        return self.cli("--db", self.db_url, "--config", str(self.node_file), "scan", *options)

    def engine(self) -> sa.Engine:
        from inventory.db import get_engine

        return get_engine(self.db_url)

    def live(self) -> set[Key]:
        return live_keys(self.engine())

    def live_by_scope(self) -> dict[ScopeKey, set[str]]:
        found: dict[ScopeKey, set[str]] = {}
        with Session(self.engine()) as session:
            rows = session.exec(
                select(Resource.node_id, Resource.kind, Resource.scope, Resource.native_id).where(
                    col(Resource.deleted_at).is_(None)
                )
            )
            for node, kind, scope, native_id in rows:
                found.setdefault((node, kind, scope), set()).add(native_id)
        return found

    def terminal_ids(self) -> set[str]:
        """Ids of tombstoned rows whose last listed state was terminal (e.g. terminated)."""
        terminal = (
            aws_collector.VM_TERMINAL_STATES
            | aws_collector.VOLUME_TERMINAL_STATES
            | aws_collector.DB_TERMINAL_STATES
        )
        with Session(self.engine()) as session:
            rows = session.exec(
                select(Resource.native_id).where(
                    col(Resource.deleted_at).is_not(None), col(Resource.state).in_(terminal)
                )
            )
            return set(rows)

    def last_run(self) -> tuple[ScanRun, list[ScopeResult]]:
        with Session(self.engine()) as session:
            run = session.exec(select(ScanRun).order_by(col(ScanRun.id).desc())).first()
            assert run is not None
            results = list(session.exec(select(ScopeResult).where(ScopeResult.run_id == run.id)))
            return run, results


def aws_truth(moto_url: str, regions: tuple[str, ...], *, node: str) -> dict[ScopeKey, set[str]]:
    """What complete listings of an AWS-compatible node must find, by scope (region or "*")."""
    found: dict[ScopeKey, set[str]] = {}

    def add(kind: str, scope: str, native_id: str) -> None:
        found.setdefault((node, kind, scope), set()).add(native_id)

    for region in regions:
        ec2 = sim_aws.sim_client("ec2", moto_url, region)
        for reservation in ec2.describe_instances()["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] not in aws_collector.VM_TERMINAL_STATES:
                    add("vm", region, instance["InstanceId"])
        for volume in ec2.describe_volumes()["Volumes"]:
            if volume["State"] not in aws_collector.VOLUME_TERMINAL_STATES:
                add("volume", region, volume["VolumeId"])
        rds = sim_aws.sim_client("rds", moto_url, region)
        for database in rds.describe_db_instances()["DBInstances"]:
            if database["DBInstanceStatus"] not in aws_collector.DB_TERMINAL_STATES:
                add("db_instance", region, database["DBInstanceArn"])
    s3 = sim_aws.sim_client("s3", moto_url, regions[0])
    for bucket in s3.list_buckets()["Buckets"]:
        add("bucket", "*", bucket["Name"])
    return found


def k8s_truth(
    sim: sim_k8s.KubernetesSimulator, namespaces: tuple[str, ...] | None, *, node: str
) -> dict[ScopeKey, set[str]]:
    """What complete listings of a cluster must find, by scope: "*" for a cluster-wide source,
    else the namespace (which also lists the namespace object itself)."""
    found: dict[ScopeKey, set[str]] = {}

    def add(kind: str, scope: str, native_id: str) -> None:
        found.setdefault((node, kind, scope), set()).add(native_id)

    if namespaces is None:
        add("cluster", "*", sim.cluster_uid)
        for obj in sim.objects("node"):
            add("k8s_node", "*", obj["metadata"]["uid"])
    for sim_kind, kind in K8S_KINDS.items():
        for obj in sim.objects(sim_kind):
            metadata = obj["metadata"]
            where = metadata["name"] if sim_kind == "namespace" else metadata.get("namespace")
            exposed = obj.get("spec", {}).get("type") in ("NodePort", "LoadBalancer")
            if sim_kind == "service" and not exposed:
                continue
            if namespaces is None:
                add(kind, "*", metadata["uid"])
            elif where in namespaces:
                add(kind, where, metadata["uid"])
    return found


def flatten(by_scope: dict[ScopeKey, set[str]]) -> set[Key]:
    return {
        (node, kind, native_id) for (node, kind, _), ids in by_scope.items() for native_id in ids
    }


def live_keys(engine: sa.Engine) -> set[Key]:
    """(node, kind, id) of every live row of the ledger."""
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.node_id, Resource.kind, Resource.native_id).where(
                col(Resource.deleted_at).is_(None)
            )
        )
        return set(rows)


def install_knobs(monkeypatch: pytest.MonkeyPatch, waits: list[float]) -> None:
    """Small pages and short timeouts for every source, and Kubernetes waits recorded in `waits`
    instead of slept: the scan still runs through the real collectors, only faster."""
    parse_source = aws_collector.parse_source

    def small_aws(source: Any) -> aws_collector.AwsSourceConfig:
        return replace(
            parse_source(source),
            page_size=AWS_PAGE_SIZE,
            read_timeout=READ_TIMEOUT,
            connect_timeout=READ_TIMEOUT,
        )

    from_source = k8s_collector.ListPolicy.from_source.__func__  # type: ignore[attr-defined]

    def small_k8s(cls: type, source: Any) -> k8s_collector.ListPolicy:
        return replace(
            from_source(cls, source),
            page_size=K8S_PAGE_SIZE,
            read_timeout=READ_TIMEOUT,
            connect_timeout=READ_TIMEOUT,
            sleep=waits.append,
        )

    monkeypatch.setattr(aws_collector, "parse_source", small_aws)
    monkeypatch.setattr(k8s_collector.ListPolicy, "from_source", classmethod(small_k8s))


@contextmanager
def running_rig(
    moto_url: str,
    db_url: str,
    cli: Callable[..., tuple[int, str, str]],
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Rig]:
    """The seeded estate behind its proxies, the node file written and the ledger upgraded;
    everything stops when the block ends."""
    with (
        RestartableProxy(moto_url) as aws_proxy,
        sim_k8s.KubernetesSimulator() as sim,
        RestartableProxy(sim.url) as k8s_proxy,
    ):
        rig = Rig(moto_url, aws_proxy, sim, k8s_proxy, directory, db_url, cli)
        install_knobs(monkeypatch, rig.waits)
        rig.write_node_file()
        rig.seed()
        assert cli("--db", db_url, "db", "upgrade")[0] == 0
        yield rig
