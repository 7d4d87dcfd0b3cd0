"""Time the exporter on a province-sized ledger: refreshes, scrapes, and 100 scrapers at once."""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import json
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance  # noqa: E402
from inventory.db import make_engine, mask_url, upgrade  # noqa: E402
from inventory.models import Department, Node, ScanRun, System  # noqa: E402

CITIES = ["南京市", "无锡市", "徐州市", "常州市", "苏州市", "南通市", "连云港市",
          "淮安市", "盐城市", "扬州市", "镇江市", "泰州市", "宿迁市"]  # fmt: skip
PROVINCIAL = "省级"
NOW = datetime.now(tz=UTC).replace(microsecond=0)
FREEZE = date(2022, 4, 4)
# kind → (weight, source); the mix of a real estate: many VMs and volumes, some workloads.
KINDS = {
    "vm": (30, "aws"), "volume": (25, "aws"), "bucket": (4, "aws"), "db_instance": (5, "aws"),
    "deployment": (10, "kubernetes"), "statefulset": (3, "kubernetes"),
    "daemonset": (1, "kubernetes"), "cronjob": (2, "kubernetes"), "pvc": (8, "kubernetes"),
    "service": (5, "kubernetes"), "namespace": (3, "kubernetes"),
    "resource_quota": (3, "kubernetes"), "k8s_node": (1, "kubernetes"),
}  # fmt: skip
RESOURCE_COLUMNS = (
    "node_id", "source", "kind", "native_id", "scope", "name", "namespace", "region", "state",
    "replicas", "vcpu", "memory_gib", "storage_gib", "tags", "raw", "system_code",
    "created_at_source", "content_hash", "first_seen_at", "last_seen_at", "last_seen_run_id",
    "deleted_at",
)  # fmt: skip


# --- the estate ----------------------------------------------------------------------------


def node_rows() -> list[dict[str, object]]:
    """1 + 13 one_cloud nodes ("1+13"), 6 frozen department clouds, 2 server rooms, 1 lease."""
    aws_k8s = [{"name": "aws", "kind": "aws"}, {"name": "k8s", "kind": "kubernetes"}]
    nodes = [dict(id="js-core", name="省级核心节点", level="province_core", one_cloud=True,
                  city=PROVINCIAL, capacity_vcpu=200_000, capacity_memory_gib=800_000,
                  capacity_storage_gib=20_000_000, sources=aws_k8s)]  # fmt: skip
    for i, city in enumerate(CITIES):
        nodes.append(dict(id=f"city-{i:02d}", name=f"{city}骨干节点", level="city_backbone",
                          one_cloud=True, city=city, capacity_vcpu=40_000,
                          capacity_memory_gib=160_000, capacity_storage_gib=4_000_000,
                          sources=aws_k8s))  # fmt: skip
    for i in range(6):
        nodes.append(dict(id=f"dept-dc-{i}", name=f"部门云{i}", level="department_cloud",
                          one_cloud=False, city=PROVINCIAL, frozen_since=FREEZE,
                          capacity_vcpu=8_000, capacity_memory_gib=32_000,
                          capacity_storage_gib=800_000,
                          sources=[{"name": "aws", "kind": "aws"}]))  # fmt: skip
    for i in range(2):
        nodes.append(dict(id=f"room-{i}", name=f"自建机房{i}", level="server_room",
                          one_cloud=False, city=CITIES[i],
                          sources=[{"name": "aws", "kind": "aws"}]))  # fmt: skip
    nodes.append(dict(id="leased-0", name="外租云", level="external_leased", one_cloud=False,
                      city=PROVINCIAL, frozen_since=FREEZE,
                      sources=[{"name": "aws", "kind": "aws"}]))  # fmt: skip
    return nodes


def department_rows(count: int) -> list[dict[str, object]]:
    # A tenth are provincial departments (省级), the rest spread over the 13 cities.
    return [
        dict(code=f"D{i:04d}", name=f"部门{i:04d}",
             level="province" if i < count // 10 else "city",
             city=PROVINCIAL if i < count // 10 else CITIES[i % len(CITIES)])
        for i in range(count)
    ]  # fmt: skip


def system_rows(
    count: int, departments: list[dict[str, object]], rng: random.Random
) -> tuple[list[dict[str, object]], dict[str, tuple[str, ...]]]:
    """Systems and where their resources live: on the cloud, off it, both, or nowhere."""
    nodes = {n["id"]: n for n in node_rows()}
    city_node = {n["city"]: n["id"] for n in nodes.values() if n["level"] == "city_backbone"}
    off_nodes = [n for n, v in nodes.items() if not v["one_cloud"]]
    systems, homes = [], {}
    zones = ["extranet"] * 6 + ["internet", "private_network", "private_network", None]
    for i in range(count):
        department = departments[i % len(departments)]
        code = f"S{i:05d}"
        on = "js-core" if department["city"] == PROVINCIAL else city_node[department["city"]]
        off = off_nodes[i % len(off_nodes)]
        placement = rng.choices(["on", "off", "partial", "none"], [55, 25, 5, 15])[0]
        homes[code] = {"on": (on,), "off": (off,), "partial": (on, off), "none": ()}[placement]
        exempt = rng.random() < 0.03
        systems.append(dict(
            code=code, name=f"系统{i:05d}", department_code=department["code"],
            city=department["city"], classified=rng.random() < 0.01,
            mlps_level=rng.choice([2, 2, 3, 3, 4]), network_zone=rng.choice(zones),
            lifecycle="retired" if rng.random() < 0.02 else "active",
            exemption_reason="硬件专用" if exempt else None,
            exemption_doc="苏政办〔2025〕1号" if exempt else None,
            exemption_valid_until=NOW.date() + timedelta(days=90) if exempt else None,
        ))  # fmt: skip
    return systems, homes


def sqlite_time(moment: datetime | None) -> str | None:
    """How SQLAlchemy's DateTime stores naive UTC on SQLite."""
    return None if moment is None else f"{moment:%Y-%m-%d %H:%M:%S.%f}"


def resource_batches(
    total: int, homes: dict[str, tuple[str, ...]], rng: random.Random, *, batch: int,
    as_text: bool,
) -> Iterator[list[tuple[object, ...]]]:  # fmt: skip
    """`total` resource rows in batches: ~100 per system at province size, 5 % unclaimed,
    8 % tombstoned; creation times from 2020 on, so frozen nodes collect violations."""
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    attributed = [(code, nodes) for code, nodes in homes.items() if nodes]
    all_nodes = [n["id"] for n in node_rows()]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    span = (NOW - start).total_seconds()
    stamp = sqlite_time if as_text else (lambda m: m.replace(tzinfo=None) if m else None)
    rows: list[tuple[object, ...]] = []
    for i in range(total):
        kind = rng.choices(kinds, weights)[0]
        if rng.random() < 0.05:
            system, node = None, all_nodes[i % len(all_nodes)]
        else:
            system, nodes = attributed[i % len(attributed)]
            node = nodes[i % len(nodes)]
        vcpu = memory = storage = None
        replicas = None
        if kind in ("vm", "db_instance"):
            vcpu = float(rng.choice([2, 4, 8, 16]))
            memory = vcpu * 4
        if kind in ("volume", "db_instance", "pvc", "bucket"):
            storage = float(rng.choice([20, 50, 100, 500]))
        if kind in ("deployment", "statefulset", "daemonset"):
            replicas = rng.choice([0, 1, 2, 3])
            vcpu, memory = 0.5 * replicas, 1.0 * replicas
        created = start + timedelta(seconds=rng.random() * span)
        deleted = NOW if rng.random() < 0.08 else None
        tags = json.dumps({"yiyun.io/system": system} if system else {})
        rows.append((
            node, KINDS[kind][1], kind, f"{kind}-{i:08d}",
            "ns-1" if KINDS[kind][1] == "kubernetes" else "region-1",
            f"{kind}-{i}", None, None, "running", replicas, vcpu, memory, storage, tags, "{}",
            system, stamp(created), "h", stamp(NOW - timedelta(days=30)), stamp(NOW), 1,
            stamp(deleted),
        ))  # fmt: skip
        if len(rows) == batch:
            yield rows
            rows = []
    if rows:
        yield rows


def uniform(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """executemany wants the same keys in every row."""
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


def build_ledger(url: str, *, systems: int, departments: int, resources: int) -> None:
    rng = random.Random(44)  # 苏政发〔2022〕44号
    engine = make_engine(url)
    upgrade(engine)
    department_list = department_rows(departments)
    system_list, homes = system_rows(systems, department_list, rng)
    with engine.begin() as connection:
        connection.execute(sa.insert(Node), uniform(node_rows()))
        connection.execute(sa.insert(Department), department_list)
        connection.execute(sa.insert(System), system_list)
        _insert_scans(connection, rng)
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            columns = ", ".join(RESOURCE_COLUMNS)
            with cursor.copy(f"COPY resource ({columns}) FROM STDIN") as copy:
                for rows in resource_batches(resources, homes, rng, batch=50_000, as_text=False):
                    for row in rows:
                        copy.write_row(row)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        placeholders = ", ".join("?" for _ in RESOURCE_COLUMNS)
        statement = f"INSERT INTO resource ({', '.join(RESOURCE_COLUMNS)}) VALUES ({placeholders})"
        with engine.begin() as connection:
            for rows in resource_batches(resources, homes, rng, batch=50_000, as_text=True):
                connection.exec_driver_sql(statement, rows)  # executemany
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    print(f"  {resources:,} resources inserted in {time.perf_counter() - started:.1f} s")
    engine.dispose()


def _insert_scans(connection: sa.Connection, rng: random.Random) -> None:
    """48 hourly scan runs of every node, ~2 % of scopes failing, one node always denied."""
    scope_kinds = {
        "aws": ["vm", "volume", "bucket", "db_instance"],
        "kubernetes": ["deployment", "statefulset", "daemonset", "cronjob", "pvc", "service",
                       "namespace", "resource_quota", "k8s_node"],
    }  # fmt: skip
    runs, scopes = [], []
    for run in range(1, 49):
        end = NOW - timedelta(hours=48 - run)
        runs.append(dict(id=run, started_at=end - timedelta(minutes=10), finished_at=end,
                         status="ok", nodes=[]))  # fmt: skip
        for node in node_rows():
            for source in node["sources"]:  # type: ignore[union-attr]
                for kind in scope_kinds[source["kind"]]:
                    for scope in ("region-1", "region-2") if source["kind"] == "aws" else ("*",):
                        failed = node["id"] == "leased-0" or rng.random() < 0.02
                        status = rng.choice(["denied", "throttled", "error"]) if failed else "ok"
                        scopes.append(dict(run_id=run, node_id=node["id"], source=source["name"],
                                           kind=kind, scope=scope, status=status,
                                           started_at=end - timedelta(minutes=5),
                                           finished_at=end))  # fmt: skip
    connection.execute(sa.insert(ScanRun), runs)
    from inventory.models import ScopeResult

    connection.execute(sa.insert(ScopeResult), scopes)


# --- measuring -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timings(action: Callable[[], object], times: int) -> list[float]:
    found = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        found.append(time.perf_counter() - started)
    return found


def timings_for(action: Callable[[], object], times: int, seconds: float) -> list[float]:
    """At least `times` runs, and for at least `seconds` (one run every 20 ms)."""
    found: list[float] = []
    until = time.monotonic() + seconds
    while len(found) < times or time.monotonic() < until:
        started = time.perf_counter()
        action()
        found.append(time.perf_counter() - started)
        threading.Event().wait(0.02)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def wait_until(check: Callable[[], bool], what: str, deadline_seconds: float = 600) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        threading.Event().wait(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def start(command: list[str], port: int, ready: Callable[[bytes], bool]) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    wait_until(lambda: ready(fetch(f"http://127.0.0.1:{port}/metrics")), " ".join(command[:4]))
    return process


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def static_registry(exposition: str):  # -> CollectorRegistry
    """The baseline: the same series as plain prometheus-client Gauges/Counters/Infos."""
    from prometheus_client import CollectorRegistry, Counter, Gauge
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.process_collector import ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    for family in text_string_to_metric_families(exposition):
        if family.name.startswith("process_") or not family.samples:
            continue
        names = sorted(family.samples[0].labels)
        kind = Counter if family.type == "counter" else Gauge
        metric = kind(family.name, family.documentation or "-", names, registry=registry)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            child = metric.labels(**sample.labels) if names else metric
            if kind is Counter:
                child.inc(sample.value)  # type: ignore[union-attr]
            else:
                child.set(sample.value)  # type: ignore[union-attr]
    return registry


def serve_static(path: str, port: int) -> None:
    """Child-process mode: serve the static baseline registry until SIGTERM."""
    from prometheus_client import start_http_server

    registry = static_registry(Path(path).read_text(encoding="utf-8"))
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(1.0):
        pass
    server.shutdown()


# --- many scrapers at once ------------------------------------------------------------------


async def _scrape_raw(port: int) -> tuple[float, bool]:
    """One scrape as Prometheus makes it (gzip accepted), timed from connect to the last byte;
    (seconds, whether it came back 200 with its whole body)."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        writer.write(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
            b"Connection: close\r\n\r\n"
        )
        response = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    except (OSError, TimeoutError):
        return time.perf_counter() - started, False
    elapsed = time.perf_counter() - started
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        ),
        -1,
    )
    return elapsed, lines[0].split(" ")[1:2] == ["200"] and len(body) == length


def burst_scrapes(port: int, scrapers: int, rounds: int) -> tuple[list[float], int]:
    """`rounds` bursts of `scrapers` scrapes started at the same instant, one connection each:
    the worst case. (An asyncio client in one thread, so the client's own cost stays small and
    even; it still shares the machine's cores with the server.)"""

    async def bursts() -> tuple[list[float], int]:
        times: list[float] = []
        errors = 0
        for _ in range(rounds):
            for elapsed, whole in await asyncio.gather(
                *(_scrape_raw(port) for _ in range(scrapers))
            ):
                times.append(elapsed)
                errors += not whole
            await asyncio.sleep(0.2)
        return times, errors

    return asyncio.run(bursts())


def paced_scrapes(port: int, scrapers: int, seconds: float) -> tuple[list[float], int]:
    """`scrapers` scrapers each scraping once a second for `seconds`, started at random
    phases, as that many Prometheus servers would (at 15 to 30 times their usual rate)."""

    async def scraper(rng: random.Random, until: float) -> list[tuple[float, bool]]:
        await asyncio.sleep(rng.random())
        found = []
        while time.perf_counter() < until:
            elapsed, whole = await _scrape_raw(port)
            found.append((elapsed, whole))
            await asyncio.sleep(max(0.0, 1.0 - elapsed))
        return found

    async def crowd() -> tuple[list[float], int]:
        rng = random.Random(14)
        until = time.perf_counter() + seconds
        done = await asyncio.gather(*(scraper(rng, until) for _ in range(scrapers)))
        results = [result for one in done for result in one]
        return [elapsed for elapsed, _ in results], sum(not whole for _, whole in results)

    return asyncio.run(crowd())


def serve_bytes(path: str, port: int) -> None:
    """Child-process mode, the floor: the exposition's bytes (gzipped once) handed out by the
    standard library's ThreadingHTTPServer with the same listen backlog as yiyun."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from exporters.server import LISTEN_BACKLOG

    text = Path(path).read_bytes()
    zipped = gzip.compress(text)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            body = zipped if "gzip" in self.headers.get("Accept-Encoding", "") else text
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            if body is zipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = LISTEN_BACKLOG

    _serve_until_sigterm(Server(("127.0.0.1", port), Handler))


def serve_old_backlog(url: str, port: int) -> None:
    """Child-process mode, before issue 14: `yiyun exporter serve` as it was, the same app and
    threads but socketserver's default listen backlog of 5."""
    import exporters.server
    from exporters.ledger_file import ledger_engine
    from inventory.settings import Settings

    exporters.server.LISTEN_BACKLOG = 5
    exporter = exporters.server.Exporter(
        engine=ledger_engine(url), settings=Settings(database_url=url), interval=3600
    )
    exporter.refresh()
    endpoint = exporters.server.serve_http(exporter.collector, host="127.0.0.1", port=port)
    _serve_until_sigterm(None)
    endpoint.close()


def _serve_until_sigterm(server: object | None) -> None:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if server is not None:
        threading.Thread(target=server.serve_forever, daemon=True).start()  # type: ignore[attr-defined]
    while not stopping.wait(1.0):
        pass
    if server is not None:
        server.shutdown()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: a new SQLite file in a temp dir)")
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=1_000)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="use --db as it is, build nothing")
    parser.add_argument("--scrapers", type=int, default=100, help="scrapers at once")
    parser.add_argument("--rounds", type=int, default=10, help="bursts of --scrapers scrapes")
    parser.add_argument("--paced-seconds", type=float, default=10.0,
                        help="how long --scrapers scrapers scrape once a second each")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-static", nargs=2, metavar=("EXPOSITION", "PORT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--serve-bytes", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-old-backlog", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        serve_static(args.serve_static[0], int(args.serve_static[1]))
        return
    if args.serve_bytes:
        serve_bytes(args.serve_bytes[0], int(args.serve_bytes[1]))
        return
    if args.serve_old_backlog:
        serve_old_backlog(args.serve_old_backlog[0], int(args.serve_old_backlog[1]))
        return

    workdir = Path(tempfile.mkdtemp(prefix="yiyun-bench-exporter-"))
    url = args.db or f"sqlite:///{workdir / 'ledger.db'}"
    print(
        f"exporter bench: {args.systems:,} systems, {args.departments:,} departments, "
        f"{args.resources:,} resources, {args.scrapes} scrapes, on {mask_url(url)}"
    )
    if not args.reuse:
        started = time.perf_counter()
        build_ledger(url, systems=args.systems, departments=args.departments,
                     resources=args.resources)  # fmt: skip
        print(f"  ledger built in {time.perf_counter() - started:.1f} s")

    from prometheus_client import generate_latest
    from sqlmodel import Session

    from exporters.collector import SnapshotCollector
    from exporters.server import metrics_app, registry_for
    from exporters.snapshot import build_snapshot
    from inventory.settings import Settings

    # 1. Snapshot refresh, in this process.
    engine = make_engine(url)
    settings = Settings(database_url=url)
    snapshots = []

    def refresh() -> None:
        with Session(engine) as session:
            snapshots.append(build_snapshot(session=session, settings=settings, now=NOW))

    refresh_times = timings(refresh, 3)
    collector = SnapshotCollector()
    collector.publish(snapshots[-1], duration_seconds=refresh_times[-1])
    ours = registry_for(collector)
    exposition = generate_latest(ours).decode()
    series = sum(1 for line in exposition.splitlines() if line and not line.startswith("#"))
    per_family = collections.Counter(
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#") and not line.startswith("process_")
    )
    baseline = static_registry(exposition)

    # 2. Rendering in process, no HTTP: what our /metrics app does per scrape (snapshot text
    # from the refresh + health and process families now), generate_latest over our collector
    # (the slow path), and generate_latest over the static registry with the same series.
    app = metrics_app(collector)

    def render_app() -> None:
        app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}, lambda *_: None)

    render_ours = timings(render_app, args.scrapes)
    generate_ours = timings(lambda: generate_latest(ours), args.scrapes)
    generate_static = timings(lambda: generate_latest(baseline), args.scrapes)

    # 3. Scrapes over HTTP of the real `yiyun exporter serve` and of the static baseline, each
    # in a process of its own, so RSS is each one's own.
    static_file = workdir / "exposition.prom"
    static_file.write_text(exposition, encoding="utf-8")
    cli = [sys.executable, "-c", "from cli import main; main()", "--db", url]
    port = free_port()
    exporter = start([*cli, "exporter", "serve", "--port", str(port), "--refresh", "3600"], port,
                     lambda body: b"yiyun_exporter_up 1.0" in body)  # fmt: skip
    scrape_ours = timings(lambda: fetch(f"http://127.0.0.1:{port}/metrics"), args.scrapes)
    rss_ours = rss_mib(exporter.pid)
    stop(exporter)
    port = free_port()
    busy = start([*cli, "exporter", "serve", "--port", str(port), "--refresh", "1"], port,
                 lambda body: b"yiyun_exporter_up 1.0" in body)  # fmt: skip
    # --refresh 1: the refresher rests 1 s between refreshes; scraping across three refreshes
    # puts most scrapes in the middle of one.
    scrape_busy = timings_for(
        lambda: fetch(f"http://127.0.0.1:{port}/metrics"),
        args.scrapes,
        3 * (statistics.median(refresh_times) + 1),
    )
    rss_busy = rss_mib(busy.pid)
    stop(busy)

    # 4. Many scrapers at once, two ways (bursts of --scrapers simultaneous scrapes; and
    # --scrapers scrapers each once a second), against the real `yiyun exporter serve`, the
    # same with the listen backlog it had before issue 14 (5), and the floor: the same bytes
    # from the standard library's threaded server. The old backlog gets at most 3 bursts: its
    # dropped connections wait out 30 s timeouts.
    crowd: dict[str, dict[str, tuple[list[float], int]]] = {}
    for name, command in (
        ("yiyun", [*cli, "exporter", "serve", "--refresh", "3600", "--port"]),
        ("backlog 5 (before)", [sys.executable, __file__, "--serve-old-backlog", url]),
        ("static bytes (floor)", [sys.executable, __file__, "--serve-bytes", str(static_file)]),
    ):
        port = free_port()
        server = start([*command, str(port)], port, lambda body: b"yiyun_exporter_up 1.0" in body)
        rounds = min(args.rounds, 3) if "before" in name else args.rounds
        crowd[name] = {
            "burst": burst_scrapes(port, args.scrapers, rounds),
            "paced": paced_scrapes(port, args.scrapers, args.paced_seconds),
        }
        stop(server)
    port = free_port()
    static = start([sys.executable, __file__, "--serve-static", str(static_file), str(port)],
                   port, lambda body: b"yiyun_exporter_up" in body)  # fmt: skip
    scrape_static = timings(lambda: fetch(f"http://127.0.0.1:{port}/metrics"), args.scrapes)
    rss_static = rss_mib(static.pid)
    stop(static)

    ms = 1000.0
    rows = [
        ("render in process p50 (ms)", percentile(render_ours, 0.5) * ms,
         percentile(generate_static, 0.5) * ms),
        ("render in process p99 (ms)", percentile(render_ours, 0.99) * ms,
         percentile(generate_static, 0.99) * ms),
        ("generate_latest(collector) p50 (ms)", percentile(generate_ours, 0.5) * ms,
         percentile(generate_static, 0.5) * ms),
        ("HTTP scrape p50 (ms)", percentile(scrape_ours, 0.5) * ms,
         percentile(scrape_static, 0.5) * ms),
        ("HTTP scrape p99 (ms)", percentile(scrape_ours, 0.99) * ms,
         percentile(scrape_static, 0.99) * ms),
        ("HTTP scrape p50, refreshing (ms)", percentile(scrape_busy, 0.5) * ms,
         percentile(scrape_static, 0.5) * ms),
        ("HTTP scrape p99, refreshing (ms)", percentile(scrape_busy, 0.99) * ms,
         percentile(scrape_static, 0.99) * ms),
        ("RSS after scrapes (MiB)", rss_ours[0], rss_static[0]),
        ("RSS peak (MiB)", rss_ours[1], rss_static[1]),
        ("RSS peak, refreshing (MiB)", rss_busy[1], rss_static[1]),
    ]  # fmt: skip
    print(
        f"  series exported: {series:,} ({len(exposition) / 1024:.0f} KiB of text, "
        f"{len(gzip.compress(exposition.encode())) / 1024:.0f} KiB gzipped); per metric:"
    )
    for name, count in per_family.most_common():
        print(f"    {name:<44} {count:>6,}")
    print(f"  scrapes while refreshing: {len(scrape_busy)}")
    print(
        f"  snapshot refresh: median {statistics.median(refresh_times):.2f} s, "
        f"min {min(refresh_times):.2f} s over {len(refresh_times)} runs"
    )
    print()
    print(f"  {'measure':<38} {'yiyun':>10} {'static':>10} {'ratio':>7}")
    for name, mine, theirs in rows:
        print(f"  {name:<38} {mine:>10.2f} {theirs:>10.2f} {mine / theirs:>6.2f}x")
    print("  (static: generate_latest over plain Gauges with the same series, served by")
    print("   prometheus_client's own HTTP server in a process of its own)")
    print()
    print("  aim (issue 4): HTTP scrape p99 < 50 ms, RSS < 250 MiB")
    print()
    concurrency: dict[str, dict[str, dict[str, float]]] = {"burst": {}, "paced": {}}
    for load, title in (
        ("burst", f"{args.scrapers} scrapes at the same instant ({args.rounds} bursts)"),
        ("paced", f"{args.scrapers} scrapers, each once a second for {args.paced_seconds:g} s"),
    ):
        print()
        print(f"  {title}; gzip, a connection each:")
        print(f"  {'server':<24} {'scrapes':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
              f"{'errors':>7}")  # fmt: skip
        for name, loads in crowd.items():
            times, errors = loads[load]
            figures = {
                "scrapes": len(times),
                "p50_ms": percentile(times, 0.5) * ms,
                "p99_ms": percentile(times, 0.99) * ms,
                "max_ms": max(times) * ms,
                "errors": errors,
            }
            concurrency[load][name] = figures
            print(
                f"  {name:<24} {len(times):>8} {figures['p50_ms']:>9.1f} "
                f"{figures['p99_ms']:>9.1f} {figures['max_ms']:>9.1f} {errors:>7}"
            )
        now, before, floor = (concurrency[load][k] for k in crowd)
        print(
            f"  yiyun ÷ before: p99 {now['p99_ms'] / before['p99_ms']:.3f}x, max "
            f"{now['max_ms'] / before['max_ms']:.3f}x; yiyun ÷ floor: p50 "
            f"{now['p50_ms'] / floor['p50_ms']:.2f}x, p99 {now['p99_ms'] / floor['p99_ms']:.2f}x"
        )
    print(f"  aim (issue 14): p99 < 50 ms with {args.scrapers} scrapers, no errors")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **provenance(),
                    "database": url.split(":", 1)[0],
                    "size": {"systems": args.systems, "departments": args.departments,
                             "resources": args.resources, "series": series},
                    "sequential_ms_and_mib": {name: [mine, theirs] for name, mine, theirs in rows},
                    "concurrent": {"scrapers": args.scrapers, "rounds": args.rounds,
                                   "paced_seconds": args.paced_seconds, **concurrency},
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )  # fmt: skip
    engine.dispose()
    # The scratch directory (and the ledger in it, unless --db named one elsewhere).
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
