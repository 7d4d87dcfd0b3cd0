"""Benchmark: importing a 20,000-system GB18030 register against a plain csv.reader pass."""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from inventory.db import make_engine, normalize_url, session_scope, upgrade
from inventory.registry import CITIES, PROVINCIAL, ImportReport, import_register
from inventory.sim.estate import REGISTER_HEADERS

HEADER = REGISTER_HEADERS
BUREAUS = [
    "教育局",
    "卫生健康委员会",
    "公安局",
    "自然资源和规划局",
    "人力资源和社会保障局",
    "市场监督管理局",
    "交通运输局",
    "农业农村局",
    "生态环境局",
    "民政局",
]
PROVINCIAL_DEPARTMENTS = [
    "教育厅",
    "卫生健康委员会",
    "公安厅",
    "自然资源厅",
    "民政厅",
    "人力资源和社会保障厅",
    "市场监督管理局",
    "交通运输厅",
    "农业农村厅",
    "生态环境厅",
    "财政厅",
    "大数据管理中心",
]


def write_register(path: Path, systems: int, *, revision: int = 0, seed: int = 20221) -> None:
    """A deterministic register as Excel on a Chinese desktop saves it: GB18030, CRLF.

    A later `revision` changes the contact of every tenth system, as a yearly update would.
    """
    rng = random.Random(seed)
    departments = [
        (f"JS-P{i:02d}", f"江苏省{name}", PROVINCIAL)
        for i, name in enumerate(PROVINCIAL_DEPARTMENTS)
    ]
    departments += [
        (f"JS-C{c:02d}-{b:02d}", f"{city}{bureau}", city.removesuffix("市"))
        for c, city in enumerate(CITIES)
        for b, bureau in enumerate(BUREAUS)
    ]
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(systems):
            code, department, city = departments[i % len(departments)]
            exempt = rng.random() < 0.03
            writer.writerow(
                [
                    f"{code}-{i:06d}",
                    f"{department}业务应用系统{i}",
                    code,
                    department,
                    city,
                    "是" if rng.random() < 0.04 else "否",
                    rng.choice(["二级", "第三级", "3", "2级", "一级"]),
                    rng.choice(["政务外网", "互联网区", "业务专网", ""]),
                    rng.choice(["一般", "重要", "核心"]),
                    rng.choice(["在用", "在用", "在用", "拟下线", "已下线"]),
                    rng.choice(["", "", f"dc-{i % 40:02d}"]),
                    rng.choice(["生产", "测试", "开发"]),
                    rng.choice(["高", "中", "低"]),
                    rng.choice(["", "2024/3/15", "2023年11月2日", "2025-01-20"]),
                    f"联系人{i % 500}" + (f"（{revision}）" if revision and i % 10 == 0 else ""),
                    "等待新平台验收" if exempt else "",
                    f"苏政办〔2025〕{i}号" if exempt else "",
                    "2027年6月30日" if exempt else "",
                ]
            )


def baseline(path: Path) -> int:
    """The floor: decode the file and split it into cells, nothing more."""
    with path.open(encoding="gb18030", newline="") as handle:
        return sum(1 for _ in csv.reader(handle))


@contextmanager
def scratch_database(url: str | None, workdir: Path) -> Iterator[sa.Engine]:
    """A fresh, upgraded database: a SQLite file, or a throwaway schema in PostgreSQL."""
    if url is None or normalize_url(url).startswith("sqlite"):
        engine = make_engine(url or f"sqlite:///{workdir / 'bench.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    url = normalize_url(url)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    engine = make_engine(f"{url}{separator}options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def timed_import(engine: sa.Engine, path: Path) -> tuple[float, ImportReport]:
    started = time.perf_counter()
    with session_scope(engine) as session:
        report = import_register(session=session, path=path)
    return time.perf_counter() - started, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", type=int, default=20_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="yiyun-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "register.csv"
        write_register(path, args.systems)
        size_mib = path.stat().st_size / 2**20

        started = time.perf_counter()
        records = baseline(path)
        reader_seconds = time.perf_counter() - started

        with scratch_database(args.db, workdir) as engine:
            backend = engine.dialect.name
            import_seconds, first = timed_import(engine, path)
            reimport_seconds, again = timed_import(engine, path)
            revised = workdir / "register-2.csv"
            write_register(revised, args.systems, revision=2)
            update_seconds, changed = timed_import(engine, revised)

    # A benchmark of an import that silently did something else would measure nothing.
    if not (first.ok and first.created == args.systems):
        raise SystemExit(f"first import went wrong: {first}")
    if again.unchanged != args.systems or again.created or again.updated:
        raise SystemExit(f"re-import was not a no-op: {again}")
    if changed.updated != len(range(0, args.systems, 10)):
        raise SystemExit(f"the revised register did not update every tenth system: {changed}")
    print(f"register: {args.systems} systems, {size_mib:.1f} MiB GB18030 CSV ({records} records)")
    rows = [
        ("baseline: csv.reader pass", reader_seconds, f"{records} records"),
        (
            f"import into empty {backend}",
            import_seconds,
            f"{first.created} created, {first.departments_created} departments",
        ),
        ("re-import, no change", reimport_seconds, f"{again.unchanged} unchanged"),
        ("import, 10% of rows changed", update_seconds, f"{changed.updated} updated"),
    ]
    for label, seconds, note in rows:
        print(f"{label:<30} {seconds:7.3f} s {seconds / reader_seconds:7.1f}x baseline   ({note})")
    target = 5.0
    if backend == "sqlite":
        verdict = "within" if import_seconds < target else "OVER"
        print(f"target: import under {target:.0f} s on SQLite: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
