"""Time listing a large Kubernetes estate: the collector against a bare kubernetes-client loop."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from inventory.collectors.base import ScopeStats
from inventory.collectors.kubernetes import ListPolicy, list_objects, plan_scopes


def typed_client_loop(kubeconfig: str, page_size: int) -> int:
    """The baseline: what a script using the official client as documented would do."""
    from kubernetes import client, config

    apps = client.AppsV1Api(config.new_client_from_config(config_file=kubeconfig))
    count, token = 0, None
    while True:
        page = apps.list_deployment_for_all_namespaces(limit=page_size, _continue=token)
        count += len(page.items)
        token = page.metadata._continue if page.metadata else None
        if not token:
            return count


def raw_pages(kubeconfig: str, page_size: int) -> int:
    """The collector's paginate helper alone: raw JSON pages, no rows."""
    from kubernetes import client, config

    apps = client.AppsV1Api(config.new_client_from_config(config_file=kubeconfig))
    policy = ListPolicy(page_size=page_size)
    pages = list_objects(apps.list_deployment_for_all_namespaces, stats=ScopeStats(), policy=policy)
    return sum(len(items) for items in pages)


def collector_scope(kubeconfig: str, page_size: int) -> int:
    """What `yiyun scan` does for the deployment scope: namespace labels, pages, normalized rows."""
    source = {"name": "bench", "kind": "kubernetes", "kubeconfig": kubeconfig}
    scopes = plan_scopes(
        node_id="bench", source=source, system_tag="yiyun.io/system",
        policy=ListPolicy(page_size=page_size),
    )  # fmt: skip
    scope = next(s for s in scopes if s.kind == "deployment")
    return sum(len(rows) for rows in scope.pages(scope.stats))


def timed(
    run: Callable[[str, int], int], kubeconfig: str, page_size: int, repeat: int
) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        count = run(kubeconfig, page_size)
        seconds.append(time.perf_counter() - started)
        if count == 0:
            raise SystemExit(f"{run.__name__} listed nothing")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployments", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = str(Path(tmp) / "kubeconfig")
        # The simulator runs in its own process so that serving does not compete with the
        # client being measured for this interpreter's GIL.
        server = subprocess.Popen(
            [sys.executable, "-m", "inventory.sim.k8s", "--deployments", str(args.deployments),
             "--kubeconfig", kubeconfig],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            if not url:
                raise SystemExit("the simulator did not start")
            # One untimed pass: the simulator encodes each object on first serve, and neither
            # contender should pay for that.
            raw_pages(kubeconfig, args.page_size)
            results = {
                "kubernetes client, typed models (baseline)": timed(
                    typed_client_loop, kubeconfig, args.page_size, args.repeat
                ),
                "collector paginate helper, raw JSON": timed(
                    raw_pages, kubeconfig, args.page_size, args.repeat
                ),
                "collector scope, normalized rows": timed(
                    collector_scope, kubeconfig, args.page_size, args.repeat
                ),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)

    baseline = statistics.median(next(iter(results.values())))
    print(
        f"listing {args.deployments:,} deployments from {url}, page size {args.page_size}, "
        f"median of {args.repeat}"
    )
    print(f"{'contender':<46} {'median s':>9} {'best s':>8} {'vs baseline':>12}")
    for name, seconds in results.items():
        median = statistics.median(seconds)
        print(f"{name:<46} {median:>9.2f} {min(seconds):>8.2f} {median / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
