"""Run every benchmark with sizes that fit a 2-core machine, printing each one's own table.

    .venv/bin/python bench/run_all.py [--resources 100000 | --full]

`--full` uses the province sizes of the scale issue (1,000,000 resources); expect a long
run. Each benchmark prints its result next to a baseline measured in the same run; the
ingest results are also written as JSON to bench/results/ for comparison over time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(title: str, *args: str) -> None:
    print(f"\n## {title}\n", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    print(f"({time.perf_counter() - start:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 resources")
    args = parser.parse_args()
    resources = 1_000_000 if args.full else args.resources
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run(
        "scan ingest (SQLite and PostgreSQL)",
        "bench/ingest.py",
        "--resources",
        str(resources),
        "--json",
        str(results / f"ingest-{resources}-{stamp}.json"),
    )
    run(
        "service API (PostgreSQL, 50 clients)",
        "bench/api.py",
        "--resources",
        str(resources),
        "--json",
        str(results / f"api-{resources}-{stamp}.json"),
    )
    run("register import", "bench/registry_import.py")
    run("wave planning", "bench/waves.py")
    run("exporter", "bench/exporter.py", "--resources", str(resources), "--scrapes", "100")
    run("Kubernetes listing", "bench/k8s_list.py", "--deployments", "20000")
    run("AWS-compatible listing", "bench/aws_list.py", "--n", "2000")
    # openstacksdk's resource objects take ~2 min for 10,000 servers: the reference (c) is
    # left to a run by hand.
    run(
        "OpenStack listing",
        "bench/openstack_list.py",
        "--no-resources",
        "--json",
        str(results / f"openstack-list-10000-{stamp}.json"),
    )


if __name__ == "__main__":
    main()
