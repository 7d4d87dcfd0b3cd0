"""Time `yiyun serve` on a province-sized PostgreSQL ledger under 50 clients, beside a hello."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exporter import CITIES, build_ledger, free_port, percentile, rss_mib  # noqa: E402
from bench.provenance import provenance  # noqa: E402
from inventory.db import make_engine, mask_url  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
YIYUN = ROOT / ".venv" / "bin" / "yiyun"
API = "/api/v1"
# Bump when the estate below changes, so a ledger built by an older generator is not reused.
ESTATE_VERSION = 2
PLAN = "bench-api"
OFF_CLOUD = ["dept-dc-0", "dept-dc-1", "dept-dc-2", "dept-dc-3", "dept-dc-4", "dept-dc-5",
             "room-0", "room-1", "leased-0"]  # fmt: skip
# Each step is allowed by migrate/tracking.py's TRANSITIONS and passes its gates on a placed
# system: planned → provisioning checks the wave, other plans and the evidence; → migrating
# the evidence again; → rolled_back nothing; → planned the wave. Around and around.
CYCLE = {
    "planned": "provisioning",
    "provisioning": "migrating",
    "migrating": "rolled_back",
    "rolled_back": "planned",
}
# The targets (p99 in seconds) and the service's resident set.
TARGETS = {"systems": 0.100, "adoption": 0.300, "advance": 0.200}
RSS_TARGET_MIB = 300.0
REQUEST_TIMEOUT_SECONDS = 120


# --- the ledger ----------------------------------------------------------------------------


def schema_of(*, systems: int, departments: int, resources: int) -> str:
    """The ledger's schema, named by what built it: same parameters, same ledger, reused."""
    return f"bench_api_v{ESTATE_VERSION}_{systems}s_{departments}d_{resources}r"


def province_ledger(
    pg_url: str, *, systems: int, departments: int, resources: int, rebuild: bool
) -> str:
    """The URL of a ledger of this size with plan `bench-api` in it; built once, then reused.

    A schema is marked complete (its comment) only after the plan is made, so a build that
    was interrupted is dropped and made again rather than measured."""
    schema = schema_of(systems=systems, departments=departments, resources=resources)
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    admin = make_engine(pg_url)
    complete = f"{Path(__file__).name} estate v{ESTATE_VERSION} complete"
    with admin.begin() as connection:
        comment = connection.execute(
            sa.text(
                "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :s"
            ),
            {"s": schema},
        ).first()
        if comment is not None and comment[0] == complete and not rebuild:
            print(f"  reusing ledger schema {schema}")
            admin.dispose()
            return url
        # This size's ledger from an older generator too: a million rows are worth the space.
        stale = connection.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern"),
            {"pattern": schema.replace(f"_v{ESTATE_VERSION}_", "_v%_", 1)},
        ).scalars()
        for old in {*stale, schema}:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{old}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    print(f"  building ledger schema {schema}")
    started = time.perf_counter()
    build_ledger(url, systems=systems, departments=departments, resources=resources)
    with admin.begin() as connection:
        # The unified cloud's platform level (等保三级), without which the assessment blocks
        # every system; level-4 systems stay blocked (no dedicated pool), as in the province.
        connection.execute(sa.text(f'UPDATE "{schema}".node SET mlps_level = 3 WHERE one_cloud'))
        # Room on the target for every placeable system: the benchmark needs systems to move,
        # not the planner's capacity verdict (bench/waves.py measures that).
        connection.execute(
            sa.text(
                f'UPDATE "{schema}".node SET capacity_vcpu = 2000000, '
                "capacity_memory_gib = 8000000, capacity_storage_gib = 200000000 "
                "WHERE id = 'js-core'"
            )
        )
    # The plan through its own command, so its rows are the planner's, not this file's guess.
    sources = [word for node in OFF_CLOUD for word in ("--source", node)]
    made = subprocess.run(
        [str(YIYUN), "--db", url, "migrate", "plan", "create", *sources, "--target", "js-core",
         "--name", PLAN, "--max-systems-per-wave", "200", "--by", "bench"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "YIYUN_LANG": "en"},
    )  # fmt: skip
    if made.returncode != 0:
        raise SystemExit(f"plan create failed ({made.returncode}): {made.stdout}{made.stderr}")
    print("  " + made.stdout.strip().replace("\n", "\n  "))
    with admin.begin() as connection:
        placed = connection.execute(
            sa.text(f'SELECT count(*) FROM "{schema}".systemmigration WHERE wave IS NOT NULL')
        ).scalar_one()
        if not placed:
            raise SystemExit(f"plan {PLAN} placed no system: nothing to advance")
        connection.execute(sa.text(f'ANALYZE "{schema}".systemmigration'))
        connection.execute(sa.text(f"COMMENT ON SCHEMA \"{schema}\" IS '{complete}'"))
    admin.dispose()
    print(f"  ledger built in {time.perf_counter() - started:.1f} s")
    return url


@dataclass
class Estate:
    """What the clients need to know about the ledger: tokens, cycling systems, sizes."""

    tokens: dict[str, str]
    department: str
    states: dict[str, str]
    readable_systems: int


def prepare_estate(url: str) -> Estate:
    """Fresh API tokens (made as the CLI's local operator would) and where each system of the
    plan stands now, so the clients only ask for allowed steps."""
    from sqlmodel import Session

    from inventory.access import Actor
    from inventory.grants import create_token

    engine = make_engine(url)
    with engine.connect() as connection:
        states: dict[str, str] = dict(
            connection.execute(
                sa.text(
                    "SELECT m.system_code, m.state FROM systemmigration m JOIN plan p "
                    "ON p.id = m.plan_id WHERE p.name = :plan AND m.wave IS NOT NULL "
                    "AND m.state IN :states ORDER BY m.system_code"
                ).bindparams(sa.bindparam("states", expanding=True)),
                {"plan": PLAN, "states": sorted(CYCLE)},
            ).all()
        )
        readable = connection.execute(
            sa.text("SELECT count(*) FROM system WHERE NOT classified")
        ).scalar_one()
        # The department_it principal: a department of the plan with the most systems in it.
        department = connection.execute(
            sa.text(
                "SELECT s.department_code FROM system s JOIN systemmigration m "
                "ON m.system_code = s.code GROUP BY s.department_code "
                "ORDER BY count(*) DESC, s.department_code LIMIT 1"
            )
        ).scalar_one()
    if not states:
        raise SystemExit(f"plan {PLAN} has no placed system in {sorted(CYCLE)}: use --rebuild")
    grants = {
        "viewer": ("viewer", "province"),
        "admin": ("admin", "province"),
        "department_it": ("department_it", f"department:{department}"),
    }
    tokens = {}
    now = datetime.now(tz=UTC)
    with Session(engine) as session:
        for name, (role, scope) in grants.items():
            issued = create_token(
                session=session,
                actor=Actor.local("bench"),
                principal=f"bench-{name}",
                role=role,
                scope=scope,
                lifetime=timedelta(days=1),
                now=now,
            )
            tokens[name] = issued.token
        session.commit()
    engine.dispose()
    return Estate(tokens=tokens, department=department, states=states, readable_systems=readable)


# --- the servers ---------------------------------------------------------------------------


def serve_hello(port: int) -> None:
    """Child-process mode, the baseline: a bare FastAPI app with one route, on uvicorn with
    the settings `yiyun serve` uses (commands/serve.py)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    # A plain `def`, as yiyun's routes are: both pay the hop to the thread pool.
    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "一云"}

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    uvicorn.Server(config).run()


def start(command: list[str], ready_url: str, log: Path) -> subprocess.Popen[bytes]:
    """The server, once it answers `ready_url`; its stderr (tracebacks under load) to `log`."""
    with log.open("wb") as errors:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {process.returncode}: see {log}")
        try:
            with urllib.request.urlopen(ready_url, timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            pass
        # Polling a port that is not open yet: each failed connect returns at once.
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{' '.join(command[:4])} not ready after 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every core, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- the load ------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    token: str | None = None
    body: dict[str, Any] | None = None
    # What the answer teaches the client (the advance cycle follows the state it is told).
    then: Callable[[int, bytes], None] | None = None
    # A portal session's cookie (bench/portal.py), instead of a bearer token.
    cookie: str | None = None


@dataclass
class Phase:
    name: str
    port: int
    pid: int
    # (worker number, its random source) → the next call that worker makes.
    next_call: Callable[[int, random.Random], Call]
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    machine_cpu: float = 0.0


async def drive(phase: Phase, *, clients: int, seconds: float, warmup: float, think: float) -> None:
    """`clients` workers, each sending its next call `think` seconds after the last one was
    answered (at once by default: the most load 50 clients can make), over keep-alive
    connections; only calls started after the warm-up count."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    base = f"http://127.0.0.1:{phase.port}"
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
        started = time.perf_counter()
        counting_from = started + warmup
        until = counting_from + seconds
        marks: dict[str, float] = {}

        async def mark_window() -> None:
            # Not synchronisation: the measured window opens when the warm-up is over.
            await asyncio.sleep(warmup)
            busy, total = machine_busy()
            marks.update(
                wall=time.perf_counter(),
                client=time.process_time(),
                server=cpu_seconds(phase.pid),
                busy=busy,
                total=total,
            )

        async def worker(number: int) -> None:
            rng = random.Random(f"{phase.name}:{number}")
            while time.perf_counter() < until:
                call = phase.next_call(number, rng)
                headers = {"Accept-Language": "zh"}
                if call.token:
                    headers["Authorization"] = f"Bearer {call.token}"
                if call.cookie:
                    headers["Cookie"] = call.cookie
                begun = time.perf_counter()
                try:
                    async with http.request(
                        call.method, call.path, json=call.body, headers=headers
                    ) as response:
                        body = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    body, status = b"", 599
                elapsed = time.perf_counter() - begun
                if begun >= counting_from:
                    phase.latencies.append(elapsed)
                    phase.statuses[status] += 1
                if call.then is not None:
                    call.then(status, body)
                if think:
                    # A person reading the answer; a random share so clients do not march.
                    await asyncio.sleep(think * (0.5 + rng.random()))

        await asyncio.gather(mark_window(), *(worker(n) for n in range(clients)))
        ended = time.perf_counter()
        busy, total = machine_busy()
        phase.seconds = ended - marks["wall"]
        phase.client_cpu = (time.process_time() - marks["client"]) / phase.seconds
        phase.server_cpu = (cpu_seconds(phase.pid) - marks["server"]) / phase.seconds
        phase.machine_cpu = (busy - marks["busy"]) / max(1.0, total - marks["total"])


def systems_calls(estate: Estate) -> Callable[[int, random.Random], Call]:
    """Pages of 50 as readers ask for them: a province viewer paging the whole list in some
    order, one city's or one KPI status's systems, a name search; and the department_it
    principal, whose list the scope filter cuts to its own department."""
    pages = max(1, estate.readable_systems // 50)
    # A city holds about a fourteenth of the estate, a status a fifth or more.
    city_pages, status_pages = max(1, pages // 14), max(1, pages // 5)

    def next_call(_worker: int, rng: random.Random) -> Call:
        draw = rng.random()
        if draw < 0.2:
            return Call("GET", f"{API}/systems?offset=0&limit=50", estate.tokens["department_it"])
        if draw < 0.4:
            city, offset = rng.choice(CITIES), rng.randrange(city_pages) * 50
            query = f"city={city}&offset={offset}"
        elif draw < 0.5:
            status = rng.choice(["on_cloud", "off_cloud", "no_evidence"])
            query = f"status={status}&offset={rng.randrange(status_pages) * 50}"
        elif draw < 0.55:
            query = f"q={rng.randrange(100):02d}"
        else:
            sort = rng.choice(["code", "code", "name", "-status", "department"])
            query = f"sort={sort}&offset={rng.randrange(pages) * 50}"
        return Call("GET", f"{API}/systems?{query}&limit=50", estate.tokens["viewer"])

    return next_call


def adoption_calls(estate: Estate) -> Callable[[int, random.Random], Call]:
    """The KPI by department, as a province viewer (most) and as the department_it principal."""

    def next_call(_worker: int, rng: random.Random) -> Call:
        who = "department_it" if rng.random() < 0.2 else "viewer"
        return Call("GET", f"{API}/adoption?by=department", estate.tokens[who])

    return next_call


def advance_calls(
    estate: Estate, clients: int, url: str
) -> tuple[Callable[[int, random.Random], Call], Counter[str]]:
    """Each worker owns its own share of the plan's systems and walks each round CYCLE, so two
    workers never race on one system: a 409 here is a refusal the client did not expect.
    On one, the system's state is read back from the ledger and the cycle goes on from it."""
    codes = sorted(estate.states)
    if len(codes) < clients:
        raise SystemExit(f"{len(codes)} systems to advance for {clients} clients: fewer clients")
    owned = [codes[n::clients] for n in range(clients)]
    turn = [0] * clients
    refusals: Counter[str] = Counter()
    engine = make_engine(url)

    def resync(code: str) -> None:
        with engine.connect() as connection:
            state = connection.execute(
                sa.text(
                    "SELECT m.state FROM systemmigration m JOIN plan p ON p.id = m.plan_id "
                    "WHERE p.name = :plan AND m.system_code = :code"
                ),
                {"plan": PLAN, "code": code},
            ).scalar_one()
        estate.states[code] = state

    def next_call(worker: int, _rng: random.Random) -> Call:
        mine = owned[worker]
        code = mine[turn[worker] % len(mine)]
        turn[worker] += 1
        to = CYCLE.get(estate.states[code], "planned")

        def then(status: int, body: bytes) -> None:
            if status == 201:
                estate.states[code] = to
                return
            if status == 409:
                try:
                    refusals[json.loads(body).get("code", "?")] += 1
                except ValueError:
                    refusals["?"] += 1
                resync(code)

        return Call("POST", f"{API}/systems/{code}/advance", estate.tokens["admin"],
                    {"to": to, "evidence": "bench", "note": "bench/api.py"}, then)  # fmt: skip

    return next_call, refusals


def hello_calls() -> Callable[[int, random.Random], Call]:
    return lambda _worker, _rng: Call("GET", "/hello")


def routes_served(port: int, token: str) -> set[str]:
    """The service's API paths, from its OpenAPI document: a route not served is skipped."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{API}/openapi.json", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return set(json.load(response)["paths"])


# --- the report ----------------------------------------------------------------------------


def figures(phase: Phase) -> dict[str, Any]:
    ms = 1000.0
    lat = phase.latencies
    return {
        "requests": len(lat),
        "per_second": len(lat) / phase.seconds if phase.seconds else 0.0,
        "p50_ms": percentile(lat, 0.50) * ms,
        "p95_ms": percentile(lat, 0.95) * ms,
        "p99_ms": percentile(lat, 0.99) * ms,
        "max_ms": max(lat) * ms,
        "statuses": dict(sorted(phase.statuses.items())),
        "client_cpu": phase.client_cpu,
        "server_cpu": phase.server_cpu,
        "machine_cpu": phase.machine_cpu,
    }


def print_table(
    results: dict[str, dict[str, Any]], rss: dict[str, tuple[float, float]], clients: int
) -> None:
    base = results["hello"]
    print()
    print(
        f"  {clients} clients, keep-alive; p in ms; CPU as a share of one core (machine: of all);"
    )
    print("  the server's RSS after the route's load and its peak so far, MiB")
    head = (f"  {'route':<30} {'n':>6} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>8} "
            f"{'max':>8} {'×p50':>6} {'×p99':>7} {'×req/s':>7} {'srv':>5} {'cli':>5} "
            f"{'mach':>5} {'RSS':>5} {'peak':>5}  statuses")  # fmt: skip
    print(head)
    titles = {
        "hello": "GET /hello (bare FastAPI)",
        "systems": "GET /api/v1/systems?limit=50",
        "adoption": "GET /api/v1/adoption?by=dept",
        "advance": "POST /api/v1/systems/…/advance",
    }
    for name, f in results.items():
        statuses = " ".join(f"{code}:{count}" for code, count in f["statuses"].items())
        print(
            f"  {titles[name]:<30} {f['requests']:>6} {f['per_second']:>7.1f} {f['p50_ms']:>7.1f} "
            f"{f['p95_ms']:>7.1f} {f['p99_ms']:>8.1f} {f['max_ms']:>8.1f} "
            f"{f['p50_ms'] / base['p50_ms']:>5.1f}× {f['p99_ms'] / base['p99_ms']:>6.1f}× "
            f"{f['per_second'] / base['per_second']:>6.3f}× "
            f"{f['server_cpu']:>5.0%} {f['client_cpu']:>5.0%} {f['machine_cpu']:>5.0%} "
            f"{f['rss_mib']:>5.0f} {f['peak_rss_mib']:>5.0f}  {statuses}"
        )
    print()
    (hello_now, hello_peak), (now, peak) = rss["hello"], rss["yiyun"]
    print(f"  RSS (MiB)     {'current':>8} {'peak':>8}")
    print(f"  yiyun serve   {now:>8.0f} {peak:>8.0f}   ×{peak / hello_peak:.1f} the hello's peak")
    print(f"  bare hello    {hello_now:>8.0f} {hello_peak:>8.0f}")
    print()
    print("  targets (issue 17):")
    for name, limit in TARGETS.items():
        if name not in results:
            print(f"    {name:<9} p99 < {limit * 1000:.0f} ms: not measured")
            continue
        p99 = results[name]["p99_ms"]
        verdict = "PASS" if p99 < limit * 1000 else "MISS"
        print(f"    {name:<9} p99 < {limit * 1000:.0f} ms: {p99:.1f} ms  {verdict}")
    verdict = "PASS" if peak < RSS_TARGET_MIB else "MISS"
    print(f"    RSS       peak < {RSS_TARGET_MIB:.0f} MiB: {peak:.0f} MiB  {verdict}")
    busy = [name for name, f in results.items() if f["client_cpu"] > 0.8]
    if busy:
        print(f"  note: the client used > 80 % of a core during {', '.join(busy)}: "
              "it may have been the bottleneck there")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL URL (a schema is made in it)")
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=1_000)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="build the ledger even if kept")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per route")
    parser.add_argument("--warmup", type=float, default=3.0, help="not measured, per route")
    parser.add_argument("--only", nargs="*", choices=["systems", "adoption", "advance"],
                        help="routes to measure (default: every one the service has)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--yiyun", type=Path, default=YIYUN,
                        help="the yiyun to serve with (another checkout's, say)")  # fmt: skip
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds each client waits between answer and next call")  # fmt: skip
    parser.add_argument("--serve-hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return

    print(
        f"API bench: {args.systems:,} systems, {args.departments:,} departments, "
        f"{args.resources:,} resources on {mask_url(args.pg)}; {args.clients} clients, "
        f"{args.seconds:g} s per route after {args.warmup:g} s of warm-up"
    )
    url = province_ledger(args.pg, systems=args.systems, departments=args.departments,
                          resources=args.resources, rebuild=args.rebuild)  # fmt: skip
    estate = prepare_estate(url)
    print(
        f"  {len(estate.states):,} systems of plan {PLAN} cycle through {' → '.join(CYCLE)}; "
        f"department_it scope department:{estate.department}"
    )

    logs = Path(tempfile.mkdtemp(prefix="yiyun-bench-api-"))
    port = free_port()
    service = start([str(args.yiyun), "--db", url, "serve", "--port", str(port)],
                    f"http://127.0.0.1:{port}/readyz", logs / "serve.log")  # fmt: skip
    hello_port = free_port()
    hello = start([sys.executable, __file__, "--serve-hello", str(hello_port)],
                  f"http://127.0.0.1:{hello_port}/hello", logs / "hello.log")  # fmt: skip
    try:
        paths = routes_served(port, estate.tokens["viewer"])
        wanted = {
            "systems": f"{API}/systems",
            "adoption": f"{API}/adoption",
            "advance": f"{API}/systems/{{code}}/advance",
        }
        chosen = [n for n in args.only or wanted if wanted[n] in paths]
        missing = [n for n in args.only or wanted if wanted[n] not in paths]
        if missing:
            print(f"  not served yet, skipped: {', '.join(missing)}")
        refusals: Counter[str] = Counter()
        phases = [Phase("hello", hello_port, hello.pid, hello_calls())]
        for name in chosen:
            if name == "systems":
                next_call = systems_calls(estate)
            elif name == "adoption":
                next_call = adoption_calls(estate)
            else:
                next_call, refusals = advance_calls(estate, args.clients, url)
            phases.append(Phase(name, port, service.pid, next_call))
        results = {}
        for phase in phases:
            print(f"  measuring {phase.name} …", flush=True)
            asyncio.run(drive(phase, clients=args.clients, seconds=args.seconds,
                              warmup=args.warmup, think=args.think))  # fmt: skip
            results[phase.name] = figures(phase)
            # The server's RSS after this route's load, and its peak so far: where memory went.
            results[phase.name]["rss_mib"], results[phase.name]["peak_rss_mib"] = rss_mib(phase.pid)
        rss = {"yiyun": rss_mib(service.pid), "hello": rss_mib(hello.pid)}
    finally:
        stop(service)
        stop(hello)

    print_table(results, rss, args.clients)
    failed = sum(n for f in results.values() for code, n in f["statuses"].items() if code >= 500)
    if failed:
        print(f"  {failed} answers were 5xx or no answer (599): the servers' stderr is in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    if refusals:
        print(f"  advance refusals (409) by code: {dict(refusals.most_common())}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **provenance(),
                    "size": {"systems": args.systems, "departments": args.departments,
                             "resources": args.resources, "cycling": len(estate.states)},
                    "clients": args.clients,
                    "seconds": args.seconds,
                    "think_seconds": args.think,
                    "routes": results,
                    "advance_409_by_code": dict(refusals),
                    "rss_mib": {k: {"current": v[0], "peak": v[1]} for k, v in rss.items()},
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )  # fmt: skip


if __name__ == "__main__":
    main()
