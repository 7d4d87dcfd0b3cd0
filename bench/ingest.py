"""Benchmark: scan ingest on SQLite and PostgreSQL against raw executemany / COPY baselines.

For each database: first ingest of N resources through the real scan orchestrator, an
unchanged rescan, a 1 %-changed rescan, `report adoption --by department`, one exporter
refresh, and each scan's peak RSS (every scan runs in a child process of its own). Baselines
measured in the same run: the time to merely generate the rows ("reading the source"), to
bulk-load them raw (PostgreSQL COPY, sqlite3 executemany of tuples), the naive per-row ORM
upsert (inventory.store_simple) on 10,000 rows, and one bare aggregate query for the reads.

    .venv/bin/python bench/ingest.py --resources 100000 [--pg URL] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.estate import EstateSize, resource_rows, seed_register, shares
from bench.provenance import provenance
from inventory.collectors.base import ResourceRow, Scope, ScopeStats
from inventory.db import make_engine, upgrade

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PAGE = 500


def pages(rows: Iterator[ResourceRow]) -> Iterator[list[ResourceRow]]:
    while page := list(islice(rows, PAGE)):
        yield page


def scan_once(
    url: str, size: EstateSize, generation: int, changed_every: int, plain: bool = False
) -> dict:
    """One scan of the whole estate through inventory.scan.Scanner (runs in a child);
    `plain` writes through the naive per-row ORM path (inventory.store_simple) instead."""
    from sqlmodel import Session, select

    from inventory import store_simple
    from inventory.models import Node
    from inventory.scan import Scanner

    engine = make_engine(url)
    plan = shares(size)

    def planner(node: Node) -> tuple[list[Scope], list]:
        planned = []
        for (node_id, kind, scope), count in plan.items():
            if node_id != node.id:
                continue

            def listing(
                stats: ScopeStats, kind: str = kind, count: int = count
            ) -> Iterator[list[ResourceRow]]:
                for page in pages(
                    resource_rows(
                        size,
                        node=node.id,
                        kind=kind,
                        share=count,
                        changed_every=changed_every,
                        generation=generation,
                    )
                ):
                    stats.pages += 1
                    yield page

            planned.append(
                Scope(node_id=node.id, source="bench", kind=kind, scope=scope, pages=listing)
            )
        return planned, []

    with Session(engine) as session:
        nodes = list(session.exec(select(Node)))
    start = time.perf_counter()
    paths = (
        {"upsert": store_simple.upsert_resources, "sweep": store_simple.sweep_scope}
        if plain
        else {}
    )
    summary = Scanner(engine, concurrency=2, planner=planner, **paths).run(nodes)
    seconds = time.perf_counter() - start
    written = sum(o.counts.written for o in summary.outcomes)
    assert summary.ok, [o for o in summary.outcomes if o.status != "ok"][:3]
    return {
        "seconds": seconds,
        "written": written,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_scan(
    url: str, size: EstateSize, generation: int, changed_every: int, plain: bool = False
) -> dict:
    """Run scan_once in a fresh interpreter so its peak RSS is the scan's alone."""
    code = (
        "import json,sys; sys.path.insert(0, '.');"
        "from bench.ingest import scan_once; from bench.estate import EstateSize;"
        f"print(json.dumps(scan_once({url!r}, EstateSize(**{asdict(size)!r}), {generation}, "
        f"{changed_every}, {plain})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def read_source(size: EstateSize) -> float:
    """Time to produce every row and its content hash, without any database."""
    start = time.perf_counter()
    for (node, kind, _scope), count in shares(size).items():
        for row in resource_rows(size, node=node, kind=kind, share=count):
            row.content_hash()
    return time.perf_counter() - start


def _raw_dicts(size: EstateSize) -> Iterator[dict]:
    now = datetime.now(tz=UTC)
    for (node, kind, scope), count in shares(size).items():
        for row in resource_rows(size, node=node, kind=kind, share=count):
            yield {
                "node_id": node,
                "source": "bench",
                "kind": kind,
                "native_id": row.native_id,
                "scope": scope,
                "name": row.name,
                "namespace": row.namespace,
                "region": row.region,
                "state": row.state,
                "replicas": row.replicas,
                "vcpu": row.vcpu,
                "memory_gib": row.memory_gib,
                "storage_gib": row.storage_gib,
                "tags": row.tags,
                "raw": row.raw,
                "system_code": row.system_code,
                "created_at_source": row.created_at_source,
                "content_hash": row.content_hash(),
                "first_seen_at": now,
                "last_seen_at": now,
            }


def raw_load(url: str, size: EstateSize) -> float:
    """Baseline: the same rows bulk-loaded with no upsert logic (executemany / COPY)."""
    engine = make_engine(url)
    start = time.perf_counter()
    if engine.dialect.name == "postgresql":
        columns = list(next(_raw_dicts(EstateSize(**{**asdict(size), "resources": 1}))))
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY resource ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in _raw_dicts(size):
                    copy.write_row(
                        [
                            json.dumps(row[c])
                            if c in ("tags", "raw")
                            else (
                                row[c].replace(tzinfo=None)
                                if isinstance(row[c], datetime)
                                else row[c]
                            )
                            for c in columns
                        ]
                    )
            raw.commit()
    else:
        # Plain sqlite3 executemany of tuples: no ORM, no upsert, no events.
        columns = list(next(_raw_dicts(EstateSize(**{**asdict(size), "resources": 1}))))
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO resource ({', '.join(columns)}) VALUES ({marks})"
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            cursor = raw.cursor()
            batch: list[list] = []
            for row in _raw_dicts(size):
                batch.append(
                    [
                        json.dumps(row[c])
                        if c in ("tags", "raw")
                        else (
                            row[c].replace(tzinfo=None).isoformat(" ")
                            if isinstance(row[c], datetime)
                            else row[c]
                        )
                        for c in columns
                    ]
                )
                if len(batch) == 5000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
            raw.commit()
    return time.perf_counter() - start


def best_of(runs: int, step: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    return min(timings)


def read_latencies(url: str) -> dict[str, float]:
    """`report adoption --by department`, one exporter refresh, and their baseline: the one
    bare aggregate any KPI needs (live rows per system), best of three each."""
    from sqlmodel import Session

    from exporters.snapshot import build_snapshot
    from inventory.reports import adoption_report, switches_from
    from inventory.settings import Settings

    engine = make_engine(url)
    settings = Settings(database_url=url)

    def report() -> None:
        with Session(engine) as session:
            adoption_report(
                session=session,
                settings=settings,
                switches=switches_from(settings),
                by="department",
            )

    def exporter() -> None:
        with Session(engine) as session:
            build_snapshot(session=session, settings=settings, now=datetime.now(tz=UTC))

    def bare() -> None:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT system_code, count(*) FROM resource "
                    "WHERE deleted_at IS NULL GROUP BY system_code"
                )
            ).all()

    return {
        "report_by_department_s": best_of(3, report),
        "exporter_refresh_s": best_of(3, exporter),
        "bare_aggregate_s": best_of(3, bare),
    }


def fresh_database(kind: str, pg_url: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        path = tmp / f"{uuid.uuid4().hex}.db"
        return f"sqlite:///{path}", lambda: None
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(pg_url)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    return f"{pg_url}?options=-csearch_path%3D{schema}", drop


NAIVE_ROWS = 10_000


def naive_rows_per_s(kind: str, size: EstateSize, pg_url: str, tmp: Path) -> float:
    """The naive per-row ORM upsert (inventory.store_simple) on 10,000 rows, for scale."""
    url, drop = fresh_database(kind, pg_url, tmp)
    small = EstateSize(**{**asdict(size), "resources": NAIVE_ROWS})
    try:
        upgrade(make_engine(url))
        seed_register(make_engine(url), small)
        return NAIVE_ROWS / child_scan(url, small, 0, 0, plain=True)["seconds"]
    finally:
        drop()


def bench_database(kind: str, size: EstateSize, pg_url: str, tmp: Path) -> dict:
    url, drop = fresh_database(kind, pg_url, tmp)
    base_url, base_drop = fresh_database(kind, pg_url, tmp)
    try:
        for u in (url, base_url):
            upgrade(make_engine(u))
        seed_register(make_engine(url), size)
        source = read_source(size)
        raw = raw_load(base_url, size)
        naive = naive_rows_per_s(kind, size, pg_url, tmp)
        first = child_scan(url, size, 0, 0)
        same = child_scan(url, size, 0, 0)
        changed = child_scan(url, size, 1, 100)
        reads = read_latencies(url)
        return {
            "db": kind,
            "resources": size.resources,
            "source_read_s": source,
            "raw_load_s": raw,
            "raw_load_rows_per_s": size.resources / raw,
            "naive_orm_rows_per_s": naive,
            "first_ingest_s": first["seconds"],
            "first_ingest_rows_per_s": size.resources / first["seconds"],
            "first_vs_raw": first["seconds"] / raw,
            "unchanged_rescan_s": same["seconds"],
            "unchanged_rows_written": same["written"],
            "unchanged_vs_source_read": same["seconds"] / source,
            "changed_1pct_rescan_s": changed["seconds"],
            "changed_rows_written": changed["written"],
            **reads,
            "peak_rss_mib": max(
                first["peak_rss_mib"], same["peak_rss_mib"], changed["peak_rss_mib"]
            ),
        }
    finally:
        drop()
        base_drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--pg", default=os.environ.get("YIYUN_TEST_PG_URL", PG_DEFAULT))
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    size = EstateSize(systems=args.systems, resources=args.resources)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            results.append(bench_database(kind, size, args.pg, Path(tmp)))
    header = (
        "db",
        "rows",
        "first ingest",
        "rows/s",
        "× raw load",
        "× naive ORM",
        "unchanged rescan",
        "rows written",
        "× source read",
        "1% changed",
        "written",
        "report --by dept",
        "exporter refresh",
        "bare aggregate",
        "peak RSS",
    )
    print(" | ".join(header))
    for r in results:
        print(
            " | ".join(
                [
                    r["db"],
                    f"{r['resources']:,}",
                    f"{r['first_ingest_s']:.2f} s",
                    f"{r['first_ingest_rows_per_s']:,.0f}",
                    f"{r['first_vs_raw']:.2f}× ({r['raw_load_s']:.2f} s)",
                    f"{r['first_ingest_rows_per_s'] / r['naive_orm_rows_per_s']:.1f}× "
                    f"({r['naive_orm_rows_per_s']:,.0f} rows/s)",
                    f"{r['unchanged_rescan_s']:.2f} s",
                    str(r["unchanged_rows_written"]),
                    f"{r['unchanged_vs_source_read']:.2f}× ({r['source_read_s']:.2f} s)",
                    f"{r['changed_1pct_rescan_s']:.2f} s",
                    str(r["changed_rows_written"]),
                    f"{r['report_by_department_s'] * 1000:.0f} ms",
                    f"{r['exporter_refresh_s'] * 1000:.0f} ms",
                    f"{r['bare_aggregate_s'] * 1000:.0f} ms",
                    f"{r['peak_rss_mib']:.0f} MiB",
                ]
            )
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **provenance(),
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
