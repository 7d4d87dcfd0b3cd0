"""Time the HTML and Excel reports of a province-sized ledger against `adoption_report` alone.

    .venv/bin/python bench/reports.py [--systems 10000] [--db URL] [--repeat 3]

Seeds the ledger with set-based inserts (executemany of whole tables), then measures, in the
same process and run: the baseline (the province KPI as `report adoption --format json`
computes it), gathering the report's content, rendering the HTML (charts included) and
writing the workbook. The target is an HTML or Excel report in under 10 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inventory.adoption import DEFAULT_POLICY  # noqa: E402
from inventory.db import make_engine, mask_url, upgrade  # noqa: E402
from inventory.models import (  # noqa: E402
    AdoptionSnapshot,
    Department,
    Node,
    Resource,
    ScanRun,
    ScopeResult,
    System,
)
from inventory.settings import Settings  # noqa: E402
from migrate.models import Plan, SystemMigration, Wave  # noqa: E402

CITIES = ["南京市", "无锡市", "徐州市", "常州市", "苏州市", "南通市", "连云港市",
          "淮安市", "盐城市", "扬州市", "镇江市", "泰州市", "宿迁市"]  # fmt: skip
NOW = datetime.now(tz=UTC).replace(microsecond=0)
FREEZE = date(2022, 4, 4)
TARGET_SECONDS = 10.0
# Evidence placements: (share, where); the rest has no evidence at all.
PLACEMENTS = ((0.62, "on"), (0.14, "off"), (0.05, "both"))
STATES = ("surveyed", "assessed", "planned", "provisioning", "migrating", "testing", "cutover")


def node_rows() -> list[dict[str, object]]:
    """The "1+13" unified cloud plus six frozen department clouds and a server room."""
    aws = [{"name": "aws", "kind": "aws"}]
    rows: list[dict[str, object]] = [
        dict(id="js-core", name="省级核心节点", level="province_core", one_cloud=True,
             city="省级", sources=aws, frozen_since=None)
    ]  # fmt: skip
    rows += [
        dict(id=f"city-{i:02d}", name=f"{city}骨干节点", level="city_backbone", one_cloud=True,
             city=city, sources=aws, frozen_since=None)
        for i, city in enumerate(CITIES)
    ]  # fmt: skip
    rows += [
        dict(id=f"dept-dc-{i}", name=f"部门云{i}", level="department_cloud", one_cloud=False,
             city="省级", sources=aws, frozen_since=FREEZE)
        for i in range(6)
    ]  # fmt: skip
    rows.append(dict(id="room-0", name="自建机房", level="server_room", one_cloud=False,
                     city=CITIES[0], sources=aws, frozen_since=None))  # fmt: skip
    return rows


def seed(url: str, systems: int, departments: int) -> None:
    rng = random.Random(44)
    engine = make_engine(url)
    upgrade(engine)
    nodes = node_rows()
    on_nodes = [str(n["id"]) for n in nodes if n["one_cloud"]]
    off_nodes = [str(n["id"]) for n in nodes if not n["one_cloud"]]
    cities = ["省级", *CITIES]
    department_list = [
        dict(code=f"D{d:04d}", name=f"{cities[d % 14]}部门{d}", level="city", city=cities[d % 14])
        for d in range(departments)
    ]
    system_list, resources, migrations = [], [], []
    for n in range(systems):
        department = department_list[n % departments]
        code = f"SYS-{n:05d}"
        classified = rng.random() < 0.02
        system_list.append(
            dict(code=code, name=f"{department['name']}业务系统{n}",
                 department_code=department["code"], city=department["city"],
                 classified=classified, mlps_level=rng.choice([2, 2, 3]),
                 data_level="general", lifecycle="retired" if rng.random() < 0.02 else "active",
                 network_zone=rng.choice(["extranet", "extranet", "extranet", "private_network"]),
                 exemption_valid_until=NOW.date() + timedelta(days=90)
                 if rng.random() < 0.03 else None)
        )  # fmt: skip
        draw, where = rng.random(), "none"
        for share, place in PLACEMENTS:
            if draw < share:
                where = place
                break
            draw -= share
        homes = {
            "on": [rng.choice(on_nodes)],
            "off": [rng.choice(off_nodes)],
            "both": [rng.choice(on_nodes), rng.choice(off_nodes)],
            "none": [],
        }[where]
        for node in homes:
            # 1 in 20 department-cloud VMs was created after the freeze: a violation.
            created = datetime(2024, 6, 1, tzinfo=UTC) if rng.random() < 0.05 else None
            resources.append(
                dict(node_id=node, source="aws", kind="vm", native_id=f"i-{n:05d}-{node}",
                     scope="r1", name=f"vm-{n}", state="running", system_code=code,
                     tags={"yiyun.io/system": code}, raw={}, content_hash="x",
                     created_at_source=created or datetime(2021, 1, 1, tzinfo=UTC),
                     first_seen_at=NOW, last_seen_at=NOW)
            )  # fmt: skip
        if where in ("off", "both") and not classified:
            migrations.append((code, homes[-1]))
    resources += [
        dict(node_id=rng.choice(off_nodes), source="aws", kind="vm", native_id=f"orphan-{i}",
             scope="r1", name=f"orphan-{i}", state="running", system_code=None, tags={},
             raw={}, content_hash="x", created_at_source=datetime(2021, 1, 1, tzinfo=UTC),
             first_seen_at=NOW, last_seen_at=NOW)
        for i in range(500)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(Node), nodes)
        connection.execute(sa.insert(Department), department_list)
        connection.execute(sa.insert(System), system_list)
        connection.execute(sa.insert(Resource), resources)
        connection.execute(sa.insert(ScanRun), [dict(id=1, started_at=NOW, finished_at=NOW,
                                                     status="ok", nodes=[])])  # fmt: skip
        connection.execute(
            sa.insert(ScopeResult),
            [dict(run_id=1, node_id=n["id"], source="aws", kind="vm", scope="r1",
                  status="ok", started_at=NOW - timedelta(hours=30 if i == 3 else 1),
                  finished_at=NOW - timedelta(hours=30 if i == 3 else 1))
             for i, n in enumerate(nodes)],
        )  # fmt: skip
        # Two years of weekly snapshots, each with its city/department breakdown as stored.
        weekly = [
            dict(taken_at=NOW - timedelta(weeks=w), as_of=NOW - timedelta(weeks=w),
                 policy=DEFAULT_POLICY,
                 switches={"exempt_in_denominator": True, "trust_declared": False},
                 numerator=int(systems * 0.6 * (1 - w / 140)), denominator=int(systems * 0.95),
                 rate=round(0.6 * (1 - w / 140) / 0.95, 4), counts={},
                 groups={"city": [], "department": []},
                 system_codes={"on_cloud": [f"SYS-{i:05d}" for i in range(0, systems, 7)]},
                 stale_nodes=[])
            for w in range(104, 0, -1)
        ]  # fmt: skip
        connection.execute(sa.insert(AdoptionSnapshot), weekly)
        plans = [dict(id=i + 1, name=f"plan-{node}", source_nodes=[node], target_node="js-core",
                      status="approved", created_by="bench", created_at=NOW)
                 for i, node in enumerate(off_nodes)]  # fmt: skip
        connection.execute(sa.insert(Plan), plans)
        plan_ids = {node: i + 1 for i, node in enumerate(off_nodes)}
        connection.execute(
            sa.insert(Wave),
            [dict(plan_id=p, number=w, start=NOW.date() + timedelta(days=60 * (w - 2)),
                  end=NOW.date() + timedelta(days=60 * (w - 1)))
             for p in plan_ids.values() for w in range(1, 7)],
        )  # fmt: skip
        connection.execute(
            sa.insert(SystemMigration),
            [dict(plan_id=plan_ids[node], system_code=code, wave=rng.randint(1, 6),
                  state=rng.choice(STATES), move_group=code, readiness="ready",
                  explanation="bench", risk="low")
             for code, node in migrations],
        )  # fmt: skip
        if engine.dialect.name != "sqlite":
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(
        f"seeded {systems:,} systems, {departments:,} departments, {len(resources):,} resources, "
        f"{len(migrations):,} migrations, {len(weekly)} snapshots into {mask_url(url)}"
    )


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(first run, median of the rest or the first, last result): the first run pays imports."""
    found, result = [], None
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        result = action()
        found.append(time.perf_counter() - started)
    rest = found[1:] or found
    return found[0], statistics.median(rest), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=1_000)
    parser.add_argument("--db", help="Database URL (default: a fresh SQLite file).")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="Keep the report files in this folder.")
    args = parser.parse_args()

    from exporters.reports.content import gather_report
    from exporters.reports.html import render_html
    from exporters.reports.migration_view import migration_ledger
    from exporters.reports.xlsx import build_workbook
    from inventory.reports import adoption_report, switches_from

    with tempfile.TemporaryDirectory() as scratch:
        url = args.db or f"sqlite:///{scratch}/bench.db"
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        seed(url, args.systems, args.departments)
        settings = Settings(database_url=url)
        switches = switches_from(settings)
        engine = make_engine(url)
        with Session(engine, expire_on_commit=False) as session:

            def baseline() -> object:
                return adoption_report(session=session, settings=settings, switches=switches)

            def gather() -> object:
                return gather_report(
                    session=session,
                    settings=settings,
                    switches=switches,
                    migration_view=migration_ledger,
                )

            _, base, report = timed(baseline, args.repeat)
            _, gathered, content = timed(gather, args.repeat)
            html_first, html, page = timed(lambda: render_html(content, "zh"), args.repeat)  # type: ignore[arg-type]

            def workbook() -> int:
                target = out / "report.xlsx"
                build_workbook(content, "zh").save(target)  # type: ignore[arg-type]
                return target.stat().st_size

            _, xlsx, size = timed(workbook, args.repeat)
        engine.dispose()
        (out / "report.html").write_text(str(page), encoding="utf-8")

    assert isinstance(report, dict)
    print(f"KPI {report['rate']} ({report['numerator']}/{report['denominator']})")
    rows = [
        ("baseline: adoption_report (province KPI)", base),
        ("gather report content (3 KPIs, lists, trend)", gathered),
        ("render HTML (5 charts), warm", html),
        ("render HTML, first run (matplotlib import, font)", html_first),
        ("write XLSX (9 sheets)", xlsx),
        ("report html end to end (gather + first render)", gathered + html_first),
        ("report xlsx end to end (gather + write)", gathered + xlsx),
    ]
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:7.3f} s  {seconds / base:7.1f}× baseline")
    print(f"  HTML {len(str(page)) / 1e6:.1f} MB, XLSX {int(size) / 1e6:.1f} MB")  # type: ignore[call-overload]
    worst = max(gathered + html_first, gathered + xlsx)
    verdict = "within" if worst < TARGET_SECONDS else "OVER"
    print(f"slowest report {worst:.2f} s: {verdict} the {TARGET_SECONDS:.0f} s target")


if __name__ == "__main__":
    main()
