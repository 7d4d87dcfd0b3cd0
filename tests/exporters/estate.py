"""The hand-checked KPI estate plus scans, capacity, zones and a freeze violation, for metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from inventory.models import Node, Resource, ScanRun, ScopeResult, System
from tests.inventory.kpi_estate import NOW, seed_kpi_estate

GIB = 1024**3
RUN1_END = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
RUN2_END = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
RUN3_START = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)  # still running: never "latest"

ZONES = {"S01": "extranet", "S02": "extranet", "S03": "internet", "S04": "private_network"}

# (run, end, node, source, kind, scope, status)
SCOPES = [
    (1, RUN1_END, "core", "aws", "vm", "cn-js-1", "ok"),
    (1, RUN1_END, "core", "aws", "volume", "cn-js-1", "ok"),
    (1, RUN1_END, "nj", "kubernetes", "deployment", "default", "ok"),
    (1, RUN1_END, "nj", "kubernetes", "deployment", "apps", "ok"),
    (1, RUN1_END, "nj", "kubernetes", "k8s_node", "*", "ok"),
    (2, RUN2_END, "core", "aws", "vm", "cn-js-1", "ok"),
    (2, RUN2_END, "core", "aws", "volume", "cn-js-1", "throttled"),
    (2, RUN2_END, "core", "aws", "bucket", "*", "denied"),
    (3, None, "core", "aws", "vm", "cn-js-1", "error"),
]


def resource(node: str, kind: str, native_id: str, **fields: object) -> Resource:
    return Resource(
        node_id=node,
        source="kubernetes" if kind in ("k8s_node", "deployment", "pvc") else "aws",
        kind=kind,
        native_id=native_id,
        content_hash="x",
        first_seen_at=NOW,
        last_seen_at=NOW,
        raw={},
        **fields,
    )


def seed_metrics_estate(session: Session, *, today: date) -> None:
    """kpi_estate (4/15 = 0.2667 on `today`) and what the other metrics need, without moving
    the KPI."""
    seed_kpi_estate(session, today)
    session.exec(
        update(Node)
        .where(col(Node.id) == "core")
        .values(capacity_vcpu=20000, capacity_memory_gib=80000, capacity_storage_gib=2000000)
    )
    session.exec(update(Node).where(col(Node.id) == "nj").values(capacity_vcpu=512))
    session.exec(update(Node).where(col(Node.id) == "edu-dc").values(frozen_since=date(2022, 4, 4)))
    for code, zone in ZONES.items():
        session.exec(update(System).where(col(System.code) == code).values(network_zone=zone))
    session.add_all(
        [
            # Sized rows on systems whose status they do not change.
            resource("core", "vm", "i-big", system_code="S01", vcpu=8, memory_gib=32),
            resource("core", "volume", "vol-1", system_code="S01", storage_gib=500),
            resource("core", "bucket", "b-1", system_code="S01", storage_gib=1.5),
            # A Kubernetes-only node: its workloads' requests count, its machines' capacity not.
            resource("nj", "k8s_node", "kn-1", vcpu=64, memory_gib=256),
            resource("nj", "deployment", "d-1", system_code="S02", replicas=3, vcpu=1.5,
                     memory_gib=3),
            resource("nj", "pvc", "pvc-1", system_code="S02", storage_gib=20),
            # Launched on the frozen department cloud after its freeze date, for an off_cloud
            # system: a freeze violation.
            resource("edu-dc", "vm", "i-new", system_code="S04", vcpu=2, memory_gib=4,
                     created_at_source=datetime(2024, 3, 1, tzinfo=UTC)),
            # Nobody claims it: an unattributed violation on core.
            resource("core", "vm", "i-orphan", vcpu=1, memory_gib=1),
        ]
    )  # fmt: skip
    session.flush()
    for run_id, end in ((1, RUN1_END), (2, RUN2_END), (3, None)):
        session.add(ScanRun(id=run_id, started_at=end or RUN3_START, finished_at=end, status="ok"))
    session.flush()
    for run_id, end, node, source, kind, scope, status in SCOPES:
        session.add(
            ScopeResult(
                run_id=run_id,
                node_id=node,
                source=source,
                kind=kind,
                scope=scope,
                status=status,
                started_at=end or RUN3_START,
                finished_at=end or RUN3_START,
            )
        )
    session.commit()
    _advance_sequences(session)


def _advance_sequences(session: Session) -> None:
    """ScanRun ids were given explicitly; PostgreSQL's sequence must learn of them."""
    if session.get_bind().dialect.name == "postgresql":
        top = session.exec(select(sa.func.max(ScanRun.id))).one()
        session.exec(sa.text(f"SELECT setval(pg_get_serial_sequence('scanrun', 'id'), {top})"))
        session.commit()
