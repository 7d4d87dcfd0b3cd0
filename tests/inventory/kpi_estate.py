"""A small hand-checked estate that exercises every KPI status and both policy switches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from inventory.models import Department, Node, Resource, System

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

# code, city, department, evidence [(node, kind, replicas, state, deleted)], extra System fields
SYSTEMS: list[
    tuple[str, str, str, list[tuple[str, str, int | None, str | None, bool]], dict[str, Any]]
] = [
    ("S01", "南京市", "NJ-D1", [("core", "vm", None, "running", False)], {}),
    ("S02", "南京市", "NJ-D1", [("nj", "deployment", 2, None, False)], {}),
    (
        "S03",
        "南京市",
        "NJ-D2",
        [
            ("core", "vm", None, "running", False),
            ("edu-dc", "db_instance", None, "available", False),
        ],
        {},
    ),
    ("S04", "省级", "JS-EDU", [("edu-dc", "vm", None, "stopped", False)], {}),
    ("S05", "省级", "JS-EDU", [], {}),
    ("S06", "省级", "JS-EDU", [], {"declared_node": "core"}),
    ("S07", "苏州市", "SZ-D3", [("edu-dc", "bucket", None, None, False)], {"exempt": +1}),
    ("S08", "苏州市", "SZ-D3", [("edu-dc", "volume", None, "in-use", False)], {"exempt": -1}),
    ("S09", "省级", "JS-SEC", [("core", "vm", None, "running", False)], {"classified": True}),
    (
        "S10",
        "苏州市",
        "SZ-D3",
        [("edu-dc", "vm", None, "running", False)],
        {"lifecycle": "retired"},
    ),
    ("S11", "南京市", "NJ-D1", [("core", "namespace", None, "Active", False)], {}),
    ("S12", "南京市", "NJ-D1", [("core", "deployment", 0, None, False)], {}),
    ("S13", "苏州市", "SZ-D3", [("core", "cronjob", None, "suspended", False)], {}),
    ("S14", "苏州市", "SZ-D3", [("core", "cronjob", None, "active", False)], {}),
    ("S15", "南京市", "NJ-D1", [("core", "vm", None, "running", True)], {}),
    ("S16", "南京市", "NJ-D1", [("core", "vm", None, "running", False)], {"exempt": 0}),
    (
        "S17",
        "苏州市",
        "SZ-D3",
        [("core", "vm", None, "running", False), ("edu-dc", "vm", None, "running", False)],
        {"exempt": 0},
    ),
]

# Worked by hand from DESIGN.md's rules (see test_report_adoption.py for the arithmetic).
EXPECTED_COUNTS = {
    "on_cloud": 4,
    "exempt": 2,
    "partial": 1,
    "off_cloud": 2,
    "no_evidence": 6,
    "classified_excluded": 1,
    "retired_excluded": 1,
}


def seed_kpi_estate(session: Session, today: date) -> None:
    """Write nodes, departments, systems and resource rows straight into the ledger."""
    session.add(
        Node(
            id="core",
            name="省级核心节点",
            level="province_core",
            one_cloud=True,
            city="省级",
            sources=[{"name": "aws", "kind": "aws"}],
        )
    )
    session.add(
        Node(
            id="nj",
            name="南京市骨干节点",
            level="city_backbone",
            one_cloud=True,
            city="南京市",
            sources=[{"name": "kubernetes", "kind": "kubernetes"}],
        )
    )
    session.add(
        Node(
            id="edu-dc",
            name="省教育厅部门云",
            level="department_cloud",
            one_cloud=False,
            owner_department="JS-EDU",
            sources=[],
        )
    )
    departments = {(d, c) for _, c, d, _, _ in SYSTEMS}
    for code, city in sorted(departments):
        session.add(
            Department(
                code=code,
                name=f"部门{code}",
                city=city,
                level="province" if city == "省级" else "city",
            )
        )
    serial = 0
    for code, city, department, evidence, extra in SYSTEMS:
        fields = dict(extra)
        offset = fields.pop("exempt", None)
        system = System(
            code=code,
            name=f"系统{code}",
            department_code=department,
            city=city,
            mlps_level=2,
            **fields,
        )
        if offset is not None:
            system.exemption_reason = "硬件专用"
            system.exemption_doc = "苏政办〔2025〕1号"
            system.exemption_valid_until = today + timedelta(days=offset)
        session.add(system)
        for node, kind, replicas, state, deleted in evidence:
            serial += 1
            session.add(
                Resource(
                    node_id=node,
                    source="aws",
                    kind=kind,
                    native_id=f"r-{serial}",
                    name=f"{code}-{kind}",
                    state=state,
                    replicas=replicas,
                    system_code=code,
                    tags={"yiyun.io/system": code},
                    raw={},
                    content_hash="x",
                    first_seen_at=NOW,
                    last_seen_at=NOW,
                    deleted_at=NOW if deleted else None,
                )
            )
    session.commit()
