"""Time listing ~10,000 vSphere VMs from vcsim: yiyun's vm scope against a bare pyvmomi loop.

    .venv/bin/python bench/vsphere_list.py [--vms 10000] [--repeat 3] [--max-objects 500]

Both contenders log in, list every VM of the datacenter with one ContainerView and paged
RetrievePropertiesEx / ContinueRetrievePropertiesEx calls asking for the same properties in
pages of the same size, and log out. yiyun's scope also reads the system tags over REST and
turns each VM into a row. vcsim runs in its own process; the client's CPU time is reported
beside the wall time, since on a shared machine it is the steadier of the two.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance  # noqa: E402
from inventory.collectors.base import ScopeStats  # noqa: E402
from inventory.collectors.vsphere import (  # noqa: E402
    DEVICES,
    KINDS,
    Attribution,
    ListPolicy,
    Session,
    list_objects,
    parse_source,
    plan_scopes,
)
from inventory.sim.vsphere import (  # noqa: E402
    SIM_PASSWORD,
    SIM_USER,
    VcsimModel,
    VsphereSimulator,
    unverified_context,
)

DATACENTER = "DC0"  # vcsim's first datacenter
# The variable the bench source names in `password_env` (vcsim accepts any password).
PASSWORD_ENV = "YIYUN_BENCH_VSPHERE_PASSWORD"
BASELINE = "bare pyvmomi loop (baseline)"
YIYUN = "yiyun vm scope (rows)"
NO_DEVICES = "bare loop without device lists"

Contender = Callable[[VsphereSimulator, int], int]


def model_for(vms: int) -> VcsimModel:
    """One datacenter, one cluster and one standalone host, each with half the VMs: vcsim's
    -vm count is per cluster and per standalone host, so the total is 2 × vms_each."""
    return VcsimModel(
        datacenters=1, clusters=1, hosts_per_cluster=3, standalone_hosts=1,
        vms=math.ceil(vms / 2), datastores=1,
    )  # fmt: skip


def source_for(vcsim: VsphereSimulator, max_objects: int) -> dict[str, Any]:
    return {
        "name": "bench", "kind": "vsphere", "host": vcsim.host, "port": vcsim.port,
        "username": SIM_USER, "password_env": PASSWORD_ENV, "datacenters": [DATACENTER],
        "verify_tls": False, "max_objects": max_objects,
    }  # fmt: skip


def bare_pyvmomi_loop(vcsim: VsphereSimulator, max_objects: int) -> int:
    """The baseline: log in, one ContainerView of the VMs, RetrievePropertiesEx then
    ContinueRetrievePropertiesEx with the vm scope's properties and page size; count objects."""
    return bare_listing(vcsim, max_objects, KINDS["vm"].properties)


def bare_without_devices(vcsim: VsphereSimulator, max_objects: int) -> int:
    """The baseline without `config.hardware.device`: what the VMs' device lists cost."""
    return bare_listing(
        vcsim, max_objects, tuple(p for p in KINDS["vm"].properties if p != DEVICES)
    )


def bare_listing(vcsim: VsphereSimulator, max_objects: int, properties: tuple[str, ...]) -> int:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    instance = SmartConnect(
        host=vcsim.host, port=vcsim.port, user=SIM_USER, pwd=SIM_PASSWORD,
        sslContext=unverified_context(),
    )  # fmt: skip
    try:
        content = instance.RetrieveContent()
        pc = vmodl.query.PropertyCollector
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        traverse = pc.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView
        )
        wanted = pc.PropertySpec(type=vim.VirtualMachine, pathSet=list(properties))
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[traverse])], propSet=[wanted]
        )
        collector = content.propertyCollector
        count = 0
        result = collector.RetrievePropertiesEx([spec], pc.RetrieveOptions(maxObjects=max_objects))
        while result is not None:
            count += len(result.objects)
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        view.Destroy()
        return count
    finally:
        Disconnect(instance)


def yiyun_vm_scope(vcsim: VsphereSimulator, max_objects: int) -> int:
    """What `yiyun scan` does for the vm scope: plan the source, then drain the scope's pages
    (login, system tags over REST, the paged listing, every VM normalized into a row)."""
    scopes = plan_scopes(
        node_id="bench", source=source_for(vcsim, max_objects),
        policy=ListPolicy(max_objects=max_objects),
    )  # fmt: skip
    scope = next(s for s in scopes if s.kind == "vm")
    try:
        return sum(len(rows) for rows in scope.pages(ScopeStats()))
    finally:
        # The scopes share one SOAP session (partial(scope_pages, shared, …)); end it as the
        # baseline ends its own.
        scope.pages.args[0].session.close()  # type: ignore[attr-defined]


def timed(
    run: Contender, vcsim: VsphereSimulator, max_objects: int, expected: int
) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one pass, which must list every VM."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = run(vcsim, max_objects)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if count != expected:
        raise SystemExit(f"{run.__name__} listed {count} VMs, expected {expected}")
    return wall, cpu


def normalize_alone(vcsim: VsphereSimulator, max_objects: int, repeat: int) -> float:
    """Median seconds to turn the listed raw dicts into rows: yiyun's own work per pass, free
    of the network and of vcsim."""
    session = Session(parse_source(source_for(vcsim, max_objects)))
    try:
        raws = [
            raw
            for page in list_objects(
                session, KINDS["vm"], DATACENTER, ScopeStats(), policy=ListPolicy(max_objects)
            )
            for raw in page
        ]
    finally:
        session.close()
    normalize, attribution = KINDS["vm"].normalize, Attribution()
    seconds = []
    for _ in range(repeat):
        started = time.process_time()
        for raw in raws:
            normalize(raw, scope=DATACENTER, attribution=attribution)
        seconds.append(time.process_time() - started)
    return statistics.median(seconds)


def profile(vcsim: VsphereSimulator, max_objects: int, top: int) -> list[dict[str, Any]]:
    """Where one yiyun pass spends its time: the functions with the most own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    yiyun_vm_scope(vcsim, max_objects)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = [
        {
            "function": f"{Path(path).name}:{line}({function})",
            "calls": calls,
            "own_s": round(own, 3),
            "cumulative_s": round(cumulative, 3),
        }
        for (path, line, function), (_, calls, own, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\ncProfile of one yiyun pass ({total:.1f} s under the profiler), most own time first:")
    for row in rows[:top]:
        print(
            f"  {row['own_s']:>7.2f} s own {row['cumulative_s']:>7.2f} s cum "
            f"{row['calls']:>10,} calls  {row['function']}"
        )
    return rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vms", type=int, default=10_000, help="VMs for vcsim to serve (even)")
    parser.add_argument(
        "--max-objects", type=int, default=ListPolicy().max_objects,
        help="RetrievePropertiesEx page size, for both contenders",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="timed passes of each, interleaved")
    parser.add_argument(
        "--profile", type=int, default=20, metavar="N",
        help="print the N functions where one yiyun pass spends most own time (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--device-cost", action="store_true",
        help=f"also time the bare loop without {DEVICES} (what the device lists cost)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "vsphere-list.json",
        help="where to write the results",
    )  # fmt: skip
    args = parser.parse_args()

    # A SIGTERM (a CI timeout, `kill`) unwinds through the `with` below, which stops vcsim.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ[PASSWORD_ENV] = SIM_PASSWORD
    model = model_for(args.vms)
    contenders: dict[str, Contender] = {BASELINE: bare_pyvmomi_loop, YIYUN: yiyun_vm_scope}
    if args.device_cost:
        contenders[NO_DEVICES] = bare_without_devices
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    started = time.perf_counter()
    with VsphereSimulator(model, start_timeout=300) as vcsim:
        print(
            f"vcsim serving {model.vm_count:,} VMs ({time.perf_counter() - started:.1f} s to "
            f"start); pages of {args.max_objects}; {args.repeat} interleaved passes each",
            flush=True,
        )
        # Untimed: one page through yiyun's scope loads pyVmomi's type tables and the TLS
        # contexts both contenders use.
        warm = plan_scopes(node_id="bench", source=source_for(vcsim, args.max_objects))
        scope = next(s for s in warm if s.kind == "vm")
        next(scope.pages(ScopeStats()))
        scope.pages.args[0].session.close()  # type: ignore[attr-defined]
        for attempt in range(args.repeat):
            # Alternate who goes first, so a drifting machine favours neither.
            order = list(contenders.items())
            for name, run in order if attempt % 2 == 0 else order[::-1]:
                pass_wall, pass_cpu = timed(run, vcsim, args.max_objects, model.vm_count)
                wall[name].append(pass_wall)
                cpu[name].append(pass_cpu)
                print(f"  {name}: {pass_wall:.2f} s wall, {pass_cpu:.2f} s CPU", flush=True)
        normalize_s = normalize_alone(vcsim, args.max_objects, args.repeat)
        hotspots = profile(vcsim, args.max_objects, args.profile) if args.profile else []

    median_wall = {name: statistics.median(s) for name, s in wall.items()}
    median_cpu = {name: statistics.median(s) for name, s in cpu.items()}
    ratio_wall = median_wall[YIYUN] / median_wall[BASELINE]
    ratio_cpu = median_cpu[YIYUN] / median_cpu[BASELINE]
    print(f"\n{'contender':<30} {'wall s':>8} {'best':>7} {'× base':>7} {'CPU s':>7} {'× base':>7}")
    for name in contenders:
        print(
            f"{name:<30} {median_wall[name]:>8.2f} {min(wall[name]):>7.2f} "
            f"{median_wall[name] / median_wall[BASELINE]:>6.2f}x {median_cpu[name]:>7.2f} "
            f"{median_cpu[name] / median_cpu[BASELINE]:>6.2f}x"
        )
    per_vm_us = normalize_s / model.vm_count * 1e6
    print(
        f"of which normalize (raw dict → row, no I/O): {normalize_s:.2f} s CPU, "
        f"{per_vm_us:.0f} µs per VM\naim: yiyun ≤ 1.3× the bare loop — "
        f"{'met' if ratio_wall <= 1.3 else 'NOT met'} ({ratio_wall:.2f}× wall, "
        f"{ratio_cpu:.2f}× client CPU)"
    )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {
        **provenance(),
        "benchmark": "vsphere_list",
        "vms": model.vm_count,
        "model": asdict(model),
        "max_objects": args.max_objects,
        "properties": list(KINDS["vm"].properties),
        "repeat": args.repeat,
        "wall_s": wall,
        "cpu_s": cpu,
        "median_wall_s": median_wall,
        "median_cpu_s": median_cpu,
        "ratio_yiyun_to_bare_wall": ratio_wall,
        "ratio_yiyun_to_bare_cpu": ratio_cpu,
        "normalize_cpu_s": normalize_s,
        "normalize_us_per_vm": per_vm_us,
        "profile_top_own_time": hotspots,
    }
    args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
