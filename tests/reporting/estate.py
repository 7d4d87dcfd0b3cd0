"""The KPI estate plus what the manager reports show: names, zones, scans, snapshots, waves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from inventory.adoption import DEFAULT_POLICY
from inventory.models import (
    AdoptionSnapshot,
    Department,
    Node,
    Resource,
    ScanRun,
    ScopeResult,
    System,
)
from migrate.models import Assessment, Plan, SystemMigration, Wave
from tests.inventory.kpi_estate import seed_kpi_estate

# The classified system's name and its resource's name: neither may appear in any report.
SECRET_NAME = "机要密码通信系统"
SECRET_RESOURCE = "jiyao-secret-vm"
# User data that must stay text: a formula for spreadsheets, markup for the browser.
FORMULA_NAME = '=HYPERLINK("http://evil.example","点我")'
MARKUP_NAME = "<b>学籍</b> & <script>alert(1)</script>"
DEPARTMENT_NAMES = {
    "NJ-D1": "南京市数据局",
    "NJ-D2": "南京市公安局",
    "JS-EDU": "江苏省教育厅",
    "SZ-D3": "苏州市卫生健康委员会",
    "JS-SEC": "江苏省机要局",
}
FREEZE = date(2022, 4, 4)
ZONES = {"S01": "extranet", "S04": "private_network", "S05": "private_network",
         "S08": "private_network", "S09": "private_network"}  # fmt: skip


def seed_report_estate(session: Session, today: date, now: datetime | None = None) -> None:
    now = now or datetime.now(tz=UTC)
    seed_kpi_estate(session, today)
    for department in session.exec(select(Department)):
        department.name = DEPARTMENT_NAMES[department.code]
        session.add(department)
    systems = {s.code: s for s in session.exec(select(System))}
    systems["S09"].name = SECRET_NAME
    systems["S05"].name = FORMULA_NAME
    systems["S06"].name = MARKUP_NAME
    for code, zone in ZONES.items():
        systems[code].network_zone = zone
    session.add_all(systems.values())

    edu = session.get(Node, "edu-dc")
    assert edu is not None
    edu.frozen_since = FREEZE
    session.add(edu)
    # S04's VM was created after the freeze: a violation that names it.
    for resource in session.exec(select(Resource).where(Resource.name == "S04-vm")):
        resource.created_at_source = datetime(2023, 5, 1, tzinfo=UTC)
        session.add(resource)

    def resource(native_id: str, name: str, system: str | None, created: datetime) -> Resource:
        return Resource(
            node_id="edu-dc", source="aws", kind="vm", native_id=native_id, name=name,
            state="running", system_code=system, raw={}, content_hash="x",
            first_seen_at=now, last_seen_at=now, created_at_source=created,
            tags={"yiyun.io/system": system} if system else {},
        )  # fmt: skip

    # A classified system's new VM on a frozen node: counted as a violation, never named.
    session.add(resource("i-secret", SECRET_RESOURCE, "S09", datetime(2024, 3, 1, tzinfo=UTC)))
    session.add(resource("i-orphan", "orphan-vm", None, datetime(2021, 1, 1, tzinfo=UTC)))

    # Scans: the core node listed completely two hours ago, nj three days ago (stale).
    for run_id, node, age in ((1, "nj", timedelta(days=3)), (2, "core", timedelta(hours=2))):
        session.add(ScanRun(id=run_id, started_at=now - age, finished_at=now - age, status="ok"))
        session.add(
            ScopeResult(run_id=run_id, node_id=node, source="aws", kind="vm", scope="r1",
                        status="ok", started_at=now - age, finished_at=now - age)
        )  # fmt: skip

    # Three months of snapshots under today's switches, one under other switches.
    for days, numerator in ((90, 1), (60, 2), (30, 3)):
        session.add(snapshot(now - timedelta(days=days), numerator, 15))
    session.add(
        snapshot(now - timedelta(days=45), 3, 13, switches={"exempt_in_denominator": False})
    )

    plan = Plan(name="edu-dc-2026", source_nodes=["edu-dc"], target_node="core",
                created_by="tester", created_at=now, status="approved")  # fmt: skip
    session.add(plan)
    session.flush()
    assert plan.id is not None
    session.add(Wave(plan_id=plan.id, number=1, start=date(2026, 9, 1), end=date(2026, 10, 31)))
    session.add(Wave(plan_id=plan.id, number=2, start=date(2026, 12, 1), end=date(2027, 1, 31)))
    for code, wave, state in (
        ("S04", 1, "migrating"),
        ("S08", 2, "planned"),
        ("S03", 1, "cutover"),
    ):
        session.add(
            SystemMigration(plan_id=plan.id, system_code=code, wave=wave, state=state,
                            move_group=code, readiness="ready", explanation="test", risk="low")
        )  # fmt: skip
    session.add(
        Assessment(
            system_code="S05", readiness="needs_work", assessed_at=now,
            rules=[
                {"id": "R1", "outcome": "pass", "reason": "platform level ok", "facts": {}},
                {"id": "R6", "outcome": "needs_work", "reason": "no 密评 record", "facts": {}},
            ],
        )
    )  # fmt: skip
    session.commit()


def snapshot(
    as_of: datetime,
    numerator: int,
    denominator: int,
    switches: dict[str, bool] | None = None,
    policy: str = DEFAULT_POLICY,
) -> AdoptionSnapshot:
    return AdoptionSnapshot(
        taken_at=as_of,
        as_of=as_of,
        policy=policy,
        switches=switches or {"exempt_in_denominator": True, "trust_declared": False},
        numerator=numerator,
        denominator=denominator,
        rate=round(numerator / denominator, 4),
        counts={},
        groups={},
        system_codes={},
        stale_nodes=[],
    )
