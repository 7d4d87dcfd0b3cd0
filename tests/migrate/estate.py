"""A small hand-checked estate for the migration tests: one rule or strategy per system."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

from sqlmodel import Session

from inventory.models import Department, Node, Resource, System

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
_serial = count(1)

NODES = [
    # id, level, one_cloud, mlps, dedicated level-4 pool, capacity (vcpu, memory, storage)
    ("core", "province_core", True, 3, False, (100.0, 400.0, 10_000.0)),
    ("core4", "province_core", True, 4, True, (1000.0, 4000.0, 100_000.0)),
    ("nj", "city_backbone", True, 2, False, (None, None, None)),
    ("edu-dc", "department_cloud", False, None, False, (None, None, None)),
    ("room", "server_room", False, None, False, (None, None, None)),
]

# code → extra System fields; resources are seeded separately below.
SYSTEMS: dict[str, dict[str, Any]] = {
    "A01": {"environment": "dev", "criticality": "low"},
    "A02": {"mlps_level": 3, "environment": "production"},
    "A03": {"mlps_level": 4, "crypto_assessed_on": date(2026, 1, 5)},
    "A04": {"mlps_level": 5},
    "A05": {"classified": True},
    "A06": {"data_level": "core"},
    "A07": {"data_level": "important"},
    "A08": {"lifecycle": "retiring"},
    "A09": {"exempt": True},
    "A10": {},
    "A11": {"lifecycle": "retired"},
    "A12": {"environment": "test"},
    "A13": {"environment": "test"},
    "A14": {"declared_node": "room"},
}

# (system, node, kind, extra Resource fields)
RESOURCES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("A01", "edu-dc", "vm", {"vcpu": 2, "memory_gib": 4}),
    ("A01", "edu-dc", "volume", {"storage_gib": 100}),
    ("A02", "edu-dc", "vm", {"vcpu": 8, "memory_gib": 32}),
    ("A02", "edu-dc", "db_instance", {"vcpu": 4, "memory_gib": 16, "storage_gib": 500}),
    ("A03", "edu-dc", "vm", {"vcpu": 4, "memory_gib": 8}),
    ("A04", "edu-dc", "vm", {"vcpu": 4, "memory_gib": 8}),
    ("A05", "edu-dc", "vm", {"vcpu": 4, "memory_gib": 8}),
    ("A06", "edu-dc", "vm", {"vcpu": 2, "memory_gib": 4}),
    ("A07", "edu-dc", "vm", {"vcpu": 2, "memory_gib": 4}),
    ("A08", "edu-dc", "vm", {"vcpu": 1, "memory_gib": 2}),
    ("A09", "edu-dc", "bucket", {"storage_gib": 50}),
    ("A10", "core", "vm", {"vcpu": 10, "memory_gib": 20, "storage_gib": 200}),
    ("A11", "edu-dc", "vm", {"vcpu": 1, "memory_gib": 1}),
    ("A12", "edu-dc", "deployment", {"namespace": "shared", "replicas": 2, "vcpu": 1}),
    ("A13", "edu-dc", "deployment", {"namespace": "shared", "replicas": 1, "vcpu": 1}),
    ("A13", "edu-dc", "pvc", {"namespace": "shared", "storage_gib": 20}),
    # Not a claim on capacity: a cluster node reports capacity, a quota is a ceiling.
    ("A12", "edu-dc", "k8s_node", {"vcpu": 64, "memory_gib": 256}),
    ("A12", "edu-dc", "resource_quota", {"namespace": "shared", "vcpu": 32}),
]


def add_resource(
    session: Session, system: str | None, node: str, kind: str, **fields: Any
) -> Resource:
    serial = next(_serial)
    row = Resource(
        node_id=node,
        source="aws" if kind not in ("deployment", "pvc", "k8s_node", "resource_quota") else "k8s",
        kind=kind,
        native_id=f"r-{serial}",
        name=fields.pop("name", f"{system}-{kind}-{serial}"),
        system_code=system,
        tags={"yiyun.io/system": system} if system else {},
        raw={},
        content_hash="x",
        first_seen_at=NOW,
        last_seen_at=NOW,
        **fields,
    )
    session.add(row)
    return row


def seed_migration_estate(session: Session, today: date) -> None:
    """Nodes, two departments, the systems above and their live resources."""
    for node_id, level, one_cloud, mlps, pool, (vcpu, memory, storage) in NODES:
        session.add(
            Node(
                id=node_id,
                name=node_id,
                level=level,
                one_cloud=one_cloud,
                mlps_level=mlps,
                dedicated_level4_pool=pool,
                capacity_vcpu=vcpu,
                capacity_memory_gib=memory,
                capacity_storage_gib=storage,
                sources=[],
            )
        )
    session.add(Department(code="JS-EDU", name="省教育厅", city="省级"))
    session.add(Department(code="JS-HEA", name="省卫健委", city="省级"))
    for code, extra in SYSTEMS.items():
        fields = dict(extra)
        exempt = fields.pop("exempt", False)
        system = System(
            code=code,
            name=f"系统{code}",
            department_code="JS-HEA" if code in ("A12", "A13") else "JS-EDU",
            city="省级",
            mlps_level=fields.pop("mlps_level", 2),
            **fields,
        )
        if exempt:
            system.exemption_reason = "专用硬件"
            system.exemption_doc = "苏政办〔2026〕1号"
            system.exemption_valid_until = today + timedelta(days=30)
        session.add(system)
    for system_code, node, kind, fields in RESOURCES:
        add_resource(session, system_code, node, kind, **dict(fields))
    session.commit()
