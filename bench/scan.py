"""Benchmark: a whole `yiyun scan` (CLI, real collectors, SQLite ledger) against bare list loops.

Seeds N deployments in the Kubernetes simulator (its own process) and M EC2 instances in
moto, then times, in the same run: a bare kubernetes-client loop and a bare boto3 paginator
over the same data (the baseline), the first `yiyun scan` into a fresh ledger, and a rescan
of the unchanged estate (rows written should be only bookkeeping), with each scan's peak RSS.

    .venv/bin/python bench/scan.py [--deployments 50000] [--instances 2000]
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
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.aws_list import bare_paginator_loop
from bench.k8s_list import typed_client_loop
from inventory.sim.aws import SIM_REGION, seed_instances, start_moto_server

ROOT = Path(__file__).resolve().parent.parent


def run_scan(db: str, nodes: Path) -> tuple[float, float]:
    """One `yiyun scan` in a child process: (seconds, peak RSS MiB of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "--db",
            db,
            "--config",
            str(nodes),
            "scan",
            "--concurrency",
            "2",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(before, after) / 1024


def counts(db: str) -> tuple[int, int]:
    engine = sa.create_engine(db)
    with engine.connect() as connection:
        resources = connection.execute(sa.text("SELECT count(*) FROM resource")).scalar_one()
        events = connection.execute(sa.text("SELECT count(*) FROM resourceevent")).scalar_one()
    return resources, events


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deployments", type=int, default=50_000)
    parser.add_argument(
        "--instances",
        type=int,
        default=2_000,
        help="moto's run_instances slows as instances pile up: 10,000 take ~3 min",
    )
    args = parser.parse_args()
    # Placeholder credentials that only the local simulator accepts.
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.pop("AWS_PROFILE", None)
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inventory.sim.k8s",
                "--deployments",
                str(args.deployments),
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        server, url = start_moto_server()
        try:
            assert sim.stdout is not None and sim.stdout.readline().strip()
            seed_instances(url, SIM_REGION, count=args.instances, per_reservation=100)
            nodes = Path(tmp) / "nodes.yaml"
            nodes.write_text(
                json.dumps(
                    {
                        "nodes": [
                            {
                                "id": "bench",
                                "name": "bench",
                                "level": "province_core",
                                "one_cloud": True,
                                "city": "省级",
                                "sources": [
                                    {
                                        "kind": "kubernetes",
                                        "kubeconfig": str(kubeconfig),
                                        "context": "yiyun-sim",
                                    },
                                    {
                                        "kind": "aws",
                                        "endpoint_url": url,
                                        "regions": [SIM_REGION],
                                        "services": ["ec2"],
                                    },
                                ],
                            }
                        ]
                    }
                ),
                encoding="utf-8",
            )
            db = f"sqlite:///{tmp}/bench.db"
            subprocess.run(
                [sys.executable, "-m", "cli", "--db", db, "db", "upgrade"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            typed_client_loop(str(kubeconfig), 500)  # untimed: the simulator's first encoding
            start = time.perf_counter()
            listed = typed_client_loop(str(kubeconfig), 500) + bare_paginator_loop(url, 10)
            bare = time.perf_counter() - start
            first, first_rss = run_scan(db, nodes)
            rows, events = counts(db)
            again, again_rss = run_scan(db, nodes)
            rows_after, events_after = counts(db)
        finally:
            sim.terminate()
            sim.wait(timeout=30)
            server.stop()
    print(
        f"{args.deployments:,} deployments + {args.instances:,} instances "
        f"({listed:,} objects listed by the bare loops)"
    )
    print(f"{'step':<34} {'seconds':>8} {'× bare loops':>13} {'rows':>9} {'events':>8} {'RSS':>8}")
    print(f"{'bare client loops (baseline)':<34} {bare:>8.2f} {1:>12.2f}×")
    print(
        f"{'yiyun scan, first':<34} {first:>8.2f} {first / bare:>12.2f}× {rows:>9,} "
        f"{events:>8,} {first_rss:>6.0f} MiB"
    )
    print(
        f"{'yiyun scan, unchanged estate':<34} {again:>8.2f} {again / bare:>12.2f}× "
        f"{rows_after - rows:>9,} {events_after - events:>8,} {again_rss:>6.0f} MiB"
    )


if __name__ == "__main__":
    main()
