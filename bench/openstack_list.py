"""Time listing 10,000 Nova servers: yiyun's vm scope against a bare openstacksdk paging loop.

    .venv/bin/python bench/openstack_list.py [--servers N] [--page-size N] [--repeat N]
        [--no-resources] [--profile]

One simulated cloud (inventory/sim/openstack.py) serves an estate of several projects whose
servers carry the tags and metadata a department cloud has, attributed with Nova's spelling
of the system tag ("yiyun.io:system=CODE"). In the same run, interleaved, it times:

  (a) yiyun: plan the `kind: openstack` source and drain its `vm` scope (listing + normalize);
  (b) the baseline: a bare openstacksdk loop of `conn.compute.get("/servers/detail", …)` with
      the same page size and microversion, `.json()` only, until a short page;
  (c) once, for reference only: `list(conn.compute.servers(details=True, all_projects=True))`,
      openstacksdk's resource objects.

Each contender authenticates and discovers the compute endpoint afresh, as a scan does. The
simulator serves from a child process, so that rendering its JSON does not compete with the
client being measured for this interpreter's GIL.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance  # noqa: E402
from inventory.collectors.base import ScopeStats  # noqa: E402
from inventory.collectors.openstack import (  # noqa: E402
    NOVA_MICROVERSION,
    Attribution,
    ListPolicy,
    normalize_server,
    plan_scopes,
)
from inventory.secret_shape import secret_shaped  # noqa: E402
from inventory.sim.openstack import OpenStackSimulator  # noqa: E402

CLOUD = "sim"
REGION = "RegionOne"
SYSTEM_TAG = "yiyun.io/system"
NOVA_SYSTEM_TAG = SYSTEM_TAG.replace("/", ":")  # Nova refuses "/" in tags and metadata keys
DEPARTMENTS = ("EDU", "HEALTH", "TAX", "POLICE", "TRANSPORT", "CIVIL", "WATER", "ENERGY")


@dataclass
class Listing:
    """What one contender's run saw."""

    servers: int
    pages: int
    api_calls: int
    microversion: str | None
    attributed: int | None = None  # rows with a system code (yiyun's only)


Contender = Callable[[str, int], Listing]


# --- the estate (built in the simulator's process) ----------------------------------------


def build_estate(sim: OpenStackSimulator, servers: int, projects: int) -> int:
    """Add `servers` servers over `projects` department projects; returns how many carry a
    system code (by tag or, for some, only by metadata), so every run can be checked."""
    rng = random.Random(15)  # the same estate every run
    names = [f"dept-{DEPARTMENTS[i % len(DEPARTMENTS)].lower()}-{i:02d}" for i in range(projects)]
    for name in names:
        sim.add_project(name)
    sizes = ((1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 16384, 160), (16, 65536, 200))
    created = datetime(2023, 1, 1, tzinfo=UTC)
    attributed = 0
    for index in range(servers):
        project = names[index % projects]
        department = DEPARTMENTS[(index % projects) % len(DEPARTMENTS)]
        code = f"JS-{department}-{rng.randrange(1, 400):04d}"
        env = rng.choice(("prod", "prod", "prod", "test", "dev"))
        tags = [f"env={env}", f"owner={department.lower()}-it", "managed-by=terraform"]
        metadata = {
            "department": department.lower(),
            "app": f"app-{rng.randrange(1, 2000):04d}",
            "backup": rng.choice(("daily", "weekly", "none")),
            "cost_center": f"CC-{rng.randrange(100, 999)}",
        }
        roll = rng.random()
        if roll < 0.80:  # the convention: a Nova tag in Nova's spelling of the key
            tags.append(f"{NOVA_SYSTEM_TAG}={code}")
            attributed += 1
        elif roll < 0.90:  # older servers: only a metadata key
            metadata[NOVA_SYSTEM_TAG] = code
            attributed += 1
        if rng.random() < 0.02:  # what real estates hold: a secret someone put in metadata
            metadata["db_password"] = f"p{rng.getrandbits(64):016x}"
        vcpus, ram_mib, disk_gib = rng.choice(sizes)
        sim.add_server(
            project, name=f"{department.lower()}-vm-{index:05d}", region=REGION,
            status=rng.choices(("ACTIVE", "SHUTOFF", "ERROR"), (90, 8, 2))[0],
            vcpus=vcpus, ram_mib=ram_mib, disk_gib=disk_gib, tags=tags, metadata=metadata,
            created=created + timedelta(minutes=17 * index),
        )  # fmt: skip
    return attributed


def serve(servers: int, projects: int, clouds_yaml: str) -> None:
    """The child process: build the estate, serve it, print the auth URL and the number of
    attributed servers, and stop when the parent closes our stdin (or dies)."""
    sim = OpenStackSimulator(regions=(REGION,), services=("compute",))
    attributed = build_estate(sim, servers, projects)
    sim.start()
    try:
        sim.write_clouds_yaml(Path(clouds_yaml), cloud=CLOUD, region=REGION)
        print(sim.auth_url, attributed, flush=True)
        sys.stdin.read()
    finally:
        sim.stop()


# --- the contenders ------------------------------------------------------------------------


def connect(clouds_yaml: str) -> Any:
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(config_files=[clouds_yaml])
    return openstack.connection.Connection(config=config.get_one(cloud=CLOUD, region_name=REGION))


def yiyun_vm_scope(clouds_yaml: str, page_size: int) -> Listing:
    """(a) What `yiyun scan` does for the vm scope: plan, authenticate, discover, list pages
    and normalize every server into a row."""
    # As a scan's process meets the estate: no secret-shape answer remembered yet.
    secret_shaped.cache_clear()
    source = {
        "name": "bench", "kind": "openstack", "cloud": CLOUD, "clouds_yaml": clouds_yaml,
        "regions": [REGION], "services": ["compute"],
    }  # fmt: skip
    scopes = plan_scopes(
        node_id="bench", source=source, system_tag=SYSTEM_TAG,
        policy=ListPolicy(page_size=page_size),
    )  # fmt: skip
    scope = next(s for s in scopes if s.kind == "vm")
    stats = ScopeStats()
    count = attributed = 0
    for rows in scope.pages(stats):
        count += len(rows)
        attributed += sum(1 for row in rows if row.system_code)
    # The scope does not say which microversion it negotiated; the request log would.
    return Listing(count, stats.pages, stats.api_calls, None, attributed)


def bare_sdk_loop(
    clouds_yaml: str, page_size: int, keep: list[dict[str, Any]] | None = None
) -> Listing:
    """(b) The baseline: the same pages through openstacksdk's compute proxy, JSON only
    (`keep` collects the servers, for timing normalize alone)."""
    from openstack import utils

    conn = connect(clouds_yaml)
    microversion = utils.maximum_supported_microversion(conn.compute, NOVA_MICROVERSION)
    count, marker, pages = 0, None, 0
    while True:
        params: dict[str, Any] = {"all_tenants": True, "limit": page_size}
        if marker is not None:
            params["marker"] = marker
        response = conn.compute.get("/servers/detail", params=params, microversion=microversion)
        response.raise_for_status()
        pages += 1
        servers = response.json()["servers"]
        count += len(servers)
        if keep is not None:
            keep.extend(servers)
        if len(servers) < page_size:
            return Listing(count, pages, pages, microversion)
        marker = servers[-1]["id"]


def sdk_resources(clouds_yaml: str, page_size: int) -> Listing:
    """(c) For reference: openstacksdk's own listing into Server resource objects."""
    conn = connect(clouds_yaml)
    count = len(list(conn.compute.servers(details=True, all_projects=True)))
    return Listing(count, 0, 0, None)


def normalize_only(clouds_yaml: str, page_size: int, repeat: int) -> float:
    """Median CPU seconds of normalizing every server once (cold secret-shape cache): yiyun's
    own work per server, apart from the HTTP and JSON decoding both contenders share. CPU,
    not wall: on a shared machine this loop's wall time is mostly other processes'."""
    servers: list[dict[str, Any]] = []
    bare_sdk_loop(clouds_yaml, page_size, keep=servers)
    attribution = Attribution(SYSTEM_TAG)
    seconds = []
    for _ in range(repeat):
        secret_shaped.cache_clear()
        started = time.process_time()
        for raw in servers:
            normalize_server(raw, scope=f"{REGION}/*", region=REGION, attribution=attribution)
        seconds.append(time.process_time() - started)
    return statistics.median(seconds)


def timed(run: Contender, clouds_yaml: str, page_size: int, expected: int) -> dict[str, float]:
    """Wall and CPU seconds of one run (CPU: this process only, not the simulator's)."""
    wall, cpu = time.perf_counter(), time.process_time()
    listing = run(clouds_yaml, page_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if listing.servers != expected:
        raise SystemExit(f"{run.__name__} listed {listing.servers:,} servers, not {expected:,}")
    return {"wall": round(wall, 4), "cpu": round(cpu, 4)}


def profile_yiyun(clouds_yaml: str, page_size: int, top: int) -> str:
    """Where (a)'s time goes, by cumulative and by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    yiyun_vm_scope(clouds_yaml, page_size)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the run --------------------------------------------------------------------------------


def start_simulator(
    servers: int, projects: int, clouds_yaml: str
) -> tuple[subprocess.Popen[str], str, int]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--servers", str(servers),
         "--projects", str(projects), "--clouds-yaml", clouds_yaml],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if len(line) != 2:
        child.kill()
        child.wait()
        raise SystemExit("the simulator did not start")
    return child, line[0], int(line[1])


def stop_simulator(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()  # the child's read() returns: it stops its server and exits
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


A, B = "(a) yiyun vm scope", "(b) bare openstacksdk loop"
C = "(c) openstacksdk resources (once, reference)"


def measure(args: argparse.Namespace, clouds_yaml: str, attributed: int) -> dict[str, Any]:
    contenders: dict[str, Contender] = {A: yiyun_vm_scope, B: bare_sdk_loop}
    # One untimed run each: imports, and openstacksdk loading its models the first time.
    yiyun = yiyun_vm_scope(clouds_yaml, args.page_size)
    bare = bare_sdk_loop(clouds_yaml, args.page_size)
    if (yiyun.servers, yiyun.attributed) != (args.servers, attributed):
        raise SystemExit(
            f"yiyun listed {yiyun.servers:,} servers, {yiyun.attributed:,} of them attributed; "
            f"the estate has {args.servers:,}, {attributed:,} attributed"
        )
    seconds: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for repetition in range(args.repeat):
        # Alternate who goes first, so a drift in the machine's load hits both alike.
        order = list(contenders.items())
        for name, run in order if repetition % 2 == 0 else order[::-1]:
            seconds[name].append(timed(run, clouds_yaml, args.page_size, args.servers))
    found: dict[str, Any] = {
        "yiyun": asdict(yiyun), "bare": asdict(bare), "seconds": seconds,
        "normalize_only_seconds": normalize_only(clouds_yaml, args.page_size, args.repeat),
    }  # fmt: skip
    if not args.no_resources:
        found["sdk_resources_once"] = timed(sdk_resources, clouds_yaml, 0, args.servers)
    if args.profile:
        found["profile"] = profile_yiyun(clouds_yaml, args.page_size, args.profile)
    return found


def report(
    args: argparse.Namespace, auth_url: str, attributed: int, found: dict[str, Any]
) -> dict[str, Any]:
    seconds = found["seconds"]
    median = {
        name: {key: statistics.median(t[key] for t in times) for key in ("wall", "cpu")}
        for name, times in seconds.items()
    }
    yiyun, bare = found["yiyun"], found["bare"]
    print(
        f"listing {args.servers:,} servers ({args.projects} projects, {attributed:,} attributed) "
        f"from {auth_url}, page size {args.page_size}, microversion {bare['microversion']}"
    )
    print(
        f"yiyun: {yiyun['pages']} pages, {yiyun['api_calls']} API calls (token included); "
        f"bare loop: {bare['pages']} pages"
    )
    print(f"{'contender':<46} {'median s':>9} {'best s':>7} {'client CPU s':>13} {'µs/server':>10}")
    rows = [(name, median[name], min(t["wall"] for t in times)) for name, times in seconds.items()]
    if "sdk_resources_once" in found:
        rows.append((C, found["sdk_resources_once"], None))
    for name, m, best in rows:
        shown = "" if best is None else f"{best:.2f}"
        print(
            f"{name:<46} {m['wall']:>9.2f} {shown:>7} {m['cpu']:>13.2f} "
            f"{m['wall'] / args.servers * 1e6:>10.0f}"
        )
    ratio = median[A]["wall"] / median[B]["wall"]
    cpu_ratio = median[A]["cpu"] / median[B]["cpu"]
    # Each repetition's (a) and (b) ran back to back: their ratio drifts less with the load.
    paired = [x["wall"] / y["wall"] for x, y in zip(seconds[A], seconds[B], strict=True)]
    normalize = found["normalize_only_seconds"]
    print(
        f"ratio (a)/(b): {ratio:.2f}x wall, {cpu_ratio:.2f}x client CPU "
        f"(medians of {args.repeat}); per repetition {min(paired):.2f}-{max(paired):.2f}x, "
        f"median {statistics.median(paired):.2f}x"
    )
    print(
        f"normalize_server alone: {normalize:.2f} s CPU ({normalize / args.servers * 1e6:.0f} "
        f"µs/server; (a) - (b) client CPU: {median[A]['cpu'] - median[B]['cpu']:.2f} s)"
    )
    if "profile" in found:
        print(found["profile"])
    return {
        **provenance(),
        "benchmark": "bench/openstack_list.py",
        "servers": args.servers, "projects": args.projects, "attributed": attributed,
        "page_size": args.page_size, "microversion": bare["microversion"], "repeat": args.repeat,
        "yiyun_pages": yiyun["pages"], "yiyun_api_calls": yiyun["api_calls"],
        "seconds": seconds, "median_seconds": median,
        "sdk_resources_once": found.get("sdk_resources_once"),
        "normalize_only_seconds": round(normalize, 4),
        "ratio_wall": round(ratio, 3), "ratio_client_cpu": round(cpu_ratio, 3),
        "ratio_wall_per_repetition": [round(r, 3) for r in paired],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=8)
    parser.add_argument("--page-size", type=int, default=ListPolicy().page_size)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of (a) and (b) each")
    parser.add_argument(
        "--no-resources", action="store_true", help="skip (c), openstacksdk's resource objects"
    )
    parser.add_argument(
        "--profile", type=int, nargs="?", const=30, default=0,
        help="cProfile one more run of (a); print the top N functions",
    )  # fmt: skip
    parser.add_argument("--json", help="where to write the results (default: bench/results/)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clouds-yaml", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.servers, args.projects, args.clouds_yaml)
        return

    # Only the clouds.yaml the bench writes: no OS_* variable may change the run.
    for name in [n for n in os.environ if n.startswith("OS_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="yiyun-bench-os-") as tmp:
        clouds_yaml = str(Path(tmp) / "clouds.yaml")
        started = time.perf_counter()
        child, auth_url, attributed = start_simulator(args.servers, args.projects, clouds_yaml)
        print(f"estate of {args.servers:,} servers built in {time.perf_counter() - started:.1f} s")
        try:
            found = measure(args, clouds_yaml, attributed)
        finally:
            stop_simulator(child)
    document = report(args, auth_url, attributed, found)
    out = (
        Path(args.json)
        if args.json
        else ROOT / "bench" / "results" / f"openstack-list-{args.servers}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
