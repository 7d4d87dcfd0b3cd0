"""Time listing many EC2 instances: yiyun's vm scope against a bare boto3 paginator loop."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from inventory.collectors.aws import ListingContext, normalize_instance, plan_scopes
from inventory.collectors.base import ScopeStats
from inventory.sim.aws import SIM_REGION, seed_instances, start_moto_server


def bare_paginator_loop(endpoint_url: str, page_size: int) -> int:
    """The baseline: what a script using boto3 as documented would do, counting instances."""
    import boto3

    ec2 = boto3.client("ec2", region_name=SIM_REGION, endpoint_url=endpoint_url)
    count = 0
    pages = ec2.get_paginator("describe_instances").paginate(
        PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        for reservation in page["Reservations"]:
            count += len(reservation["Instances"])
    return count


def yiyun_vm_scope(endpoint_url: str, page_size: int) -> int:
    """yiyun's way: plan the source, then iterate every page of its vm scope into rows."""
    source = {
        "name": "bench",
        "kind": "aws",
        "endpoint_url": endpoint_url,
        "regions": [SIM_REGION],
        "services": ["ec2"],
        "page_size": page_size,
    }
    (scope,) = plan_scopes(node_id="bench", source=source, system_tag="yiyun.io/system")
    stats = ScopeStats()
    count = sum(len(rows) for rows in scope.pages(stats))
    yiyun_vm_scope.last_stats = stats  # type: ignore[attr-defined]
    return count


def warm_up(endpoint_url: str, page_size: int) -> None:
    """One untimed page each, so neither timing pays for loading botocore's models."""
    import boto3

    ec2 = boto3.client("ec2", region_name=SIM_REGION, endpoint_url=endpoint_url)
    ec2.describe_instances(MaxResults=page_size)
    (scope,) = plan_scopes(
        node_id="bench",
        source={"name": "bench", "endpoint_url": endpoint_url, "regions": [SIM_REGION],
                "services": ["ec2"], "page_size": page_size},
        system_tag="yiyun.io/system",
    )  # fmt: skip
    next(scope.pages(ScopeStats()))


def timed(run: Callable[[str, int], int], endpoint_url: str, page_size: int) -> tuple[float, int]:
    start = time.perf_counter()
    count = run(endpoint_url, page_size)
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000, help="EC2 instances to seed")
    parser.add_argument(
        "--per-reservation",
        type=int,
        default=100,
        help="instances per run_instances call (moto pages describe_instances by reservation)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=10,
        help="reservations per page (10 × 100 ≈ AWS's 1,000-instance maximum page)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each, interleaved")
    args = parser.parse_args()

    # Placeholder credentials for the local simulator only; nothing leaves the loopback.
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.pop("AWS_PROFILE", None)
    server, url = start_moto_server()
    try:
        start = time.perf_counter()
        seed_instances(url, SIM_REGION, count=args.n, per_reservation=args.per_reservation)
        print(f"seeded {args.n:,} instances in {time.perf_counter() - start:.1f} s")

        warm_up(url, args.page_size)
        bare_times, yiyun_times = [], []
        for _ in range(args.repeat):
            elapsed, count = timed(bare_paginator_loop, url, args.page_size)
            assert count == args.n
            bare_times.append(elapsed)
            elapsed, count = timed(yiyun_vm_scope, url, args.page_size)
            assert count == args.n
            yiyun_times.append(elapsed)
        # yiyun's own per-item work, apart from the HTTP and XML parsing both share.
        import boto3

        ec2 = boto3.client("ec2", region_name=SIM_REGION, endpoint_url=url)
        pages = ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": args.page_size}
        )
        items = list(pages.search("Reservations[].Instances[]"))
        start = time.perf_counter()
        context = ListingContext(region=SIM_REGION, scope=SIM_REGION)
        for item in items:
            normalize_instance(item, context)
        normalize_seconds = time.perf_counter() - start
    finally:
        server.stop()

    bare, yiyun = statistics.median(bare_times), statistics.median(yiyun_times)
    stats = yiyun_vm_scope.last_stats  # type: ignore[attr-defined]
    print(f"(a) bare boto3 paginator loop : {bare:8.2f} s  ({args.n / bare:,.0f} instances/s)")
    print(f"(b) yiyun vm scope, all pages : {yiyun:8.2f} s  ({args.n / yiyun:,.0f} instances/s)")
    print(f"    yiyun: {stats.pages} pages, {stats.api_calls} API calls, {stats.retries} retries")
    print(f"overhead ratio (b)/(a)        : {yiyun / bare:8.2f}x   (median of {args.repeat})")
    print(
        f"of which normalizing          : {normalize_seconds:8.2f} s  "
        f"({normalize_seconds / args.n * 1e6:,.0f} µs/instance, "
        f"{normalize_seconds / bare:.1%} of (a))"
    )


if __name__ == "__main__":
    main()
