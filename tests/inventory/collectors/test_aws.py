"""The AWS-compatible collector: pure normalizing, and listing against moto's server over HTTP."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from inventory.collectors.aws import (
    DEFAULT_SYSTEM_TAG,
    GLOBAL_SCOPE,
    LISTINGS,
    InstanceSize,
    ListingContext,
    MalformedResponse,
    disguised_failure,
    fallback_size,
    normalize_bucket,
    normalize_db_instance,
    normalize_instance,
    normalize_volume,
    plan_scopes,
    result,
)
from inventory.collectors.base import ResourceRow, Scope, ScopeFailed
from inventory.sim.aws import (
    delete_buckets,
    delete_volumes,
    seed_buckets,
    seed_db_instances,
    seed_instances,
    seed_volumes,
    stop_instances,
    terminate_instances,
)
from inventory.sim.faults import (
    FaultProxy,
    action_is,
    aws_empty_result,
    aws_error,
    has_param,
    s3_call,
)

DATA = Path(__file__).parents[2] / "data" / "aws"
REGION, OTHER_REGION = "us-east-1", "eu-west-1"
SYSTEM_TAG = DEFAULT_SYSTEM_TAG


def payload(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def context(**overrides: Any) -> ListingContext:
    return ListingContext(**{"region": REGION, "scope": REGION, **overrides})


def aws_source(endpoint: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "core-aws",
        "kind": "aws",
        "endpoint_url": endpoint,
        "regions": [REGION],
        **overrides,
    }


def plan(endpoint: str, **overrides: Any) -> list[Scope]:
    return plan_scopes(
        node_id="js-core", source=aws_source(endpoint, **overrides), system_tag=SYSTEM_TAG
    )


def scope_for(scopes: list[Scope], kind: str, scope: str = REGION) -> Scope:
    (found,) = [s for s in scopes if (s.kind, s.scope) == (kind, scope)]
    return found


def listed(scope: Scope) -> list[ResourceRow]:
    return [row for page in scope.pages(scope.stats) for row in page]


def failure(scope: Scope) -> ScopeFailed:
    with pytest.raises(ScopeFailed) as caught:
        listed(scope)
    return caught.value


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- normalize (pure) -----------------------------------------------------------------------


def test_normalize_instance_from_payload() -> None:
    raw = payload("instance")
    sizes: dict[str, InstanceSize | None] = {"m5.xlarge": InstanceSize(4.0, 16.0)}

    row = normalize_instance(raw, context(instance_sizes=sizes))

    assert (row.kind, row.native_id, row.scope, row.region) == (
        "vm",
        "i-0a1b2c3d4e5f60001",
        REGION,
        REGION,
    )
    assert (row.name, row.state, row.terminal) == ("社保核心-app-01", "running", False)
    assert (row.vcpu, row.memory_gib, row.storage_gib) == (4.0, 16.0, None)
    assert row.system_code == "JS-HRSS-0042"
    assert row.tags == {
        "Name": "社保核心-app-01",
        "yiyun.io/system": "JS-HRSS-0042",
        "env": "production",
    }
    # The root volume was attached at creation, before the last (re)launch.
    assert row.created_at_source == datetime(2023, 5, 20, 2, 30, tzinfo=UTC)
    # raw keeps the instance's allowlist: ids, type, state, placement, the times and devices
    # the creation time comes from, and the tags; not the address or the tenancy.
    assert row.raw == {
        "InstanceId": "i-0a1b2c3d4e5f60001",
        "InstanceType": "m5.xlarge",
        "ImageId": "ami-0a1b2c3d4e5f60718",
        "State": {"Code": 16, "Name": "running"},
        "Placement": {"AvailabilityZone": "us-east-1a"},
        "LaunchTime": "2025-03-02T08:00:00+00:00",
        "RootDeviceName": "/dev/xvda",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"AttachTime": "2023-05-20T02:30:00+00:00",
                                                "Status": "attached",
                                                "VolumeId": "vol-0a1b2c3d4e5f60001"}},
            {"DeviceName": "/dev/sdf", "Ebs": {"AttachTime": "2021-01-01T00:00:00+00:00",
                                               "Status": "attached",
                                               "VolumeId": "vol-0a1b2c3d4e5f60002"}},
        ],
        "Tags": raw["Tags"],
    }  # fmt: skip


def test_normalize_instance_keeps_raw_json_safe_in_utc() -> None:
    raw = payload("instance")
    raw["LaunchTime"] = datetime(2025, 3, 2, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    raw["BlockDeviceMappings"] = []

    row = normalize_instance(raw, context())

    assert row.raw["LaunchTime"] == "2025-03-02T08:00:00+00:00"
    assert row.created_at_source == datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
    json.dumps(row.raw)
    assert isinstance(raw["LaunchTime"], datetime)  # the caller's item is not modified


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        ("pending", False),
        ("running", False),
        ("stopping", False),
        ("stopped", False),  # still occupies the node
        ("shutting-down", True),
        ("terminated", True),
    ],
)
def test_instance_terminal_states(state: str, terminal: bool) -> None:
    raw = payload("instance") | {"State": {"Code": 0, "Name": state}}

    assert normalize_instance(raw, context()).terminal is terminal


def test_instance_size_comes_from_lookup_then_table_else_unknown() -> None:
    looked_up = {"t3.micro": InstanceSize(2.0, 1.0), "m5.xlarge": None}
    raw = payload("instance")

    from_api = normalize_instance(
        raw | {"InstanceType": "t3.micro"}, context(instance_sizes=looked_up)
    )
    from_table = normalize_instance(raw, context(instance_sizes=looked_up))
    unknown = normalize_instance(raw | {"InstanceType": "hcs.s6.huge"}, context())

    assert (from_api.vcpu, from_api.memory_gib) == (2.0, 1.0)
    assert (from_table.vcpu, from_table.memory_gib) == (4.0, 16.0)
    assert (unknown.vcpu, unknown.memory_gib) == (None, None)


@pytest.mark.parametrize(
    ("instance_type", "size"),
    [
        ("t3.micro", (2.0, 1.0)),
        ("t2.2xlarge", (8.0, 32.0)),
        ("m5.large", (2.0, 8.0)),
        ("c5.9xlarge", (36.0, 72.0)),
        ("r6g.medium", (1.0, 8.0)),
        ("m5.metal", None),
        ("c5n.large", None),  # not on the family rule: unknown rather than wrong
    ],
)
def test_fallback_size_table(instance_type: str, size: tuple[float, float] | None) -> None:
    assert fallback_size(instance_type) == (InstanceSize(*size) if size else None)


def test_normalize_volume_from_payload() -> None:
    raw = payload("volume")

    row = normalize_volume(raw, context())

    assert (row.kind, row.native_id, row.state, row.storage_gib) == (
        "volume",
        "vol-0a1b2c3d4e5f60001",
        "in-use",
        500.0,
    )
    assert row.system_code == "JS-HRSS-0042"
    assert row.name is None
    assert row.created_at_source == datetime(2023, 5, 19, 18, 29, 41, 123000, tzinfo=UTC)
    assert row.terminal is False


@pytest.mark.parametrize(
    ("state", "terminal"),
    [("creating", False), ("available", False), ("in-use", False), ("error", False),
     ("deleting", True), ("deleted", True)],
)  # fmt: skip
def test_volume_terminal_states(state: str, terminal: bool) -> None:
    assert normalize_volume(payload("volume") | {"State": state}, context()).terminal is terminal


def test_normalize_bucket_from_payload() -> None:
    row = normalize_bucket(payload("bucket"), context(scope=GLOBAL_SCOPE))

    assert (row.kind, row.native_id, row.name, row.scope, row.region) == (
        "bucket",
        "hrss-archive",
        "hrss-archive",
        GLOBAL_SCOPE,
        REGION,
    )
    assert row.tags == {"yiyun.io/system": "JS-HRSS-0042", "owner": "省人社厅"}
    assert row.system_code == "JS-HRSS-0042"
    assert row.created_at_source == datetime(2022, 11, 9, 6, 0, tzinfo=UTC)
    assert (row.state, row.terminal) == (None, False)


def test_untagged_bucket_is_unattributed() -> None:
    row = normalize_bucket(payload("bucket") | {"TagSet": []}, context(scope=GLOBAL_SCOPE))

    assert (row.tags, row.system_code) == ({}, None)


def test_normalize_db_instance_from_payload() -> None:
    row = normalize_db_instance(payload("db_instance"), context())

    assert (row.kind, row.native_id, row.name) == (
        "db_instance",
        "arn:aws:rds:us-east-1:123456789012:db:hrss-core-db",
        "hrss-core-db",
    )
    assert (row.state, row.terminal) == ("available", False)
    assert (row.vcpu, row.memory_gib, row.storage_gib) == (8.0, 64.0, 2000.0)
    assert row.system_code == "JS-HRSS-0042"
    assert row.created_at_source == datetime(2021, 7, 1, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "terminal"), [("available", False), ("stopped", False), ("deleting", True)]
)
def test_db_instance_terminal_states(status: str, terminal: bool) -> None:
    raw = payload("db_instance") | {"DBInstanceStatus": status}

    assert normalize_db_instance(raw, context()).terminal is terminal


def test_attribution_tag_key_is_configurable() -> None:
    raw = copy.deepcopy(payload("volume"))
    raw["Tags"] = [
        {"Key": "gov.js/system", "Value": " JS-EDU-0007 "},
        {"Key": SYSTEM_TAG, "Value": "X"},
    ]

    row = normalize_volume(raw, context(system_tag="gov.js/system"))

    assert row.system_code == "JS-EDU-0007"


@pytest.mark.parametrize(
    ("service", "sample"),
    [("ec2", "instance"), ("ebs", "volume"), ("s3", "bucket"), ("rds", "db_instance")],
)
def test_each_declaration_keys_rows_by_its_id_field(service: str, sample: str) -> None:
    listing = LISTINGS[service]
    raw = payload(sample)

    row = listing.normalize(raw, context())

    assert (row.kind, row.native_id) == (listing.kind, raw[listing.id_field])


# --- planning -------------------------------------------------------------------------------


def test_plan_is_one_scope_per_kind_and_region_plus_one_for_buckets() -> None:
    # Nothing listens there: planning must not touch the endpoint.
    scopes = plan(f"http://127.0.0.1:{closed_port()}", regions=[REGION, OTHER_REGION])

    assert {s.key for s in scopes} == {
        ("js-core", "core-aws", kind, region)
        for kind in ("vm", "volume", "db_instance")
        for region in (REGION, OTHER_REGION)
    } | {("js-core", "core-aws", "bucket", GLOBAL_SCOPE)}


def test_plan_lists_only_the_chosen_services() -> None:
    scopes = plan("http://127.0.0.1:9", services=["s3", "rds"])

    assert {(s.kind, s.scope) for s in scopes} == {
        ("bucket", GLOBAL_SCOPE),
        ("db_instance", REGION),
    }


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"services": ["ecs2"]}, "did you mean 'ec2'"),
        ({"aws_secret_access_key": "x"}, "standard chain"),
        ({"verify_ssl": False}, "did you mean 'verify_tls'"),
        ({"regions": []}, "at least one region"),
        ({"addressing_style": "dns"}, "addressing_style"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_plan_refuses_a_bad_source(override: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        plan("http://127.0.0.1:9", **override)


# --- listing over moto's HTTP server --------------------------------------------------------


def test_lists_every_kind_with_attribution(aws_endpoint: str) -> None:
    url = aws_endpoint
    attributed = seed_instances(url, REGION, count=2, tags={SYSTEM_TAG: "JS-A", "Name": "a"})
    (loose,) = seed_instances(url, REGION, tags={"Name": "nobody's"})
    (abroad,) = seed_instances(url, OTHER_REGION, tags={SYSTEM_TAG: "JS-C"})
    (volume,) = seed_volumes(url, REGION, size_gib=50, tags={SYSTEM_TAG: "JS-A"})
    (loose_volume,) = seed_volumes(url, REGION)
    seed_buckets(url, REGION, ["core-logs"], tags={SYSTEM_TAG: "JS-A"})
    seed_buckets(url, REGION, ["core-scratch"])
    (database,) = seed_db_instances(url, REGION, ["orders-db"], tags={SYSTEM_TAG: "JS-B"})
    scopes = plan(url, regions=[REGION, OTHER_REGION])

    listing = [row for scope in scopes for row in listed(scope)]

    # Every instance brings a root volume of its own; they carry no tags unless asked.
    roots = [row for row in listing if row.kind == "volume" and row.raw["Attachments"]]
    rows = [row for row in listing if row not in roots]
    assert {(r.raw["Attachments"][0]["InstanceId"], r.system_code) for r in roots} == {
        (instance, None) for instance in [*attributed, loose, abroad]
    }
    assert {(r.kind, r.scope, r.native_id, r.system_code) for r in rows} == {
        *(("vm", REGION, instance, "JS-A") for instance in attributed),
        ("vm", REGION, loose, None),
        ("vm", OTHER_REGION, abroad, "JS-C"),
        ("volume", REGION, volume, "JS-A"),
        ("volume", REGION, loose_volume, None),
        ("bucket", GLOBAL_SCOPE, "core-logs", "JS-A"),
        ("bucket", GLOBAL_SCOPE, "core-scratch", None),
        ("db_instance", REGION, database, "JS-B"),
    }
    assert not any(row.terminal for row in rows)
    vm = next(row for row in rows if row.native_id == loose)
    assert (vm.vcpu, vm.memory_gib, vm.state) == (2.0, 1.0, "running")  # DescribeInstanceTypes
    json.dumps([row.raw for row in rows])
    buckets = scope_for(scopes, "bucket", GLOBAL_SCOPE)
    assert (buckets.stats.pages, buckets.stats.api_calls) == (1, 3)  # ListBuckets + 2 tag reads


def test_multi_page_listing_returns_every_instance_exactly_once(aws_endpoint: str) -> None:
    # moto pages describe_instances by reservation: one reservation per instance.
    seeded = seed_instances(aws_endpoint, REGION, count=23, per_reservation=1)
    vm = scope_for(plan(aws_endpoint, services=["ec2"], page_size=5), "vm")

    pages = [[row.native_id for row in page] for page in vm.pages(vm.stats)]

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    ids = [native_id for page in pages for native_id in page]
    assert sorted(ids) == sorted(seeded)
    # Five pages plus one instance-type lookup: sizes are cached for the whole scope.
    assert (vm.stats.pages, vm.stats.api_calls, vm.stats.retries) == (5, 6, 0)


def test_terminated_instances_come_back_terminal_and_stopped_ones_live(aws_endpoint: str) -> None:
    running, stopped, terminated = seed_instances(aws_endpoint, REGION, count=3)
    stop_instances(aws_endpoint, REGION, [stopped])
    terminate_instances(aws_endpoint, REGION, [terminated])

    rows = listed(scope_for(plan(aws_endpoint, services=["ec2"]), "vm"))

    assert {(r.native_id, r.state, r.terminal) for r in rows} == {
        (running, "running", False),
        (stopped, "stopped", False),
        (terminated, "terminated", True),
    }


def test_each_node_is_its_own_endpoint_and_estate(
    aws_endpoint: str, other_aws_endpoint: str
) -> None:
    here = set(seed_instances(aws_endpoint, REGION, count=2))
    there = set(seed_instances(other_aws_endpoint, REGION, count=1))

    listed_here = {r.native_id for r in listed(scope_for(plan(aws_endpoint), "vm"))}
    listed_there = {r.native_id for r in listed(scope_for(plan(other_aws_endpoint), "vm"))}

    assert (listed_here, listed_there) == (here, there)


def test_s3_uses_path_style_addressing(aws_faults: FaultProxy) -> None:
    seed_buckets(aws_faults.url, REGION, ["path-style-check"])

    rows = listed(scope_for(plan(aws_faults.url, services=["s3"]), "bucket", GLOBAL_SCOPE))

    assert [row.native_id for row in rows] == ["path-style-check"]
    tag_reads = [r for r in aws_faults.requests if "tagging" in r.query and r.method == "GET"]
    assert [(r.path, r.headers["host"]) for r in tag_reads] == [
        ("/path-style-check", aws_faults.url.removeprefix("http://"))
    ]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_self_signed_endpoint_needs_its_ca_bundle(
    aws_env: None, aws_tls_node: tuple[str, Path]
) -> None:
    url, ca_bundle = aws_tls_node
    (instance,) = seed_instances(url, REGION, ca_bundle=ca_bundle)

    trusted = listed(scope_for(plan(url, services=["ec2"], ca_bundle=str(ca_bundle)), "vm"))
    unchecked = listed(scope_for(plan(url, services=["ec2"], verify_tls=False), "vm"))
    refused = failure(scope_for(plan(url, services=["ec2"], max_attempts=1), "vm"))

    assert instance in {row.native_id for row in trusted}
    assert instance in {row.native_id for row in unchecked}
    assert (refused.status, refused.code) == ("error", "SSLError")


def test_endpoint_without_instance_types_api_uses_the_table(aws_faults: FaultProxy) -> None:
    seed_instances(aws_faults.url, REGION, count=7, per_reservation=1, instance_type="m5.large")
    aws_faults.respond(
        action_is("DescribeInstanceTypes"),
        400,
        aws_error("ec2", "InvalidAction", "The action DescribeInstanceTypes is not valid"),
    )
    vm = scope_for(plan(aws_faults.url, services=["ec2"], page_size=5), "vm")

    rows = listed(vm)

    assert {(row.vcpu, row.memory_gib) for row in rows} == {(2.0, 8.0)}
    asked = [r for r in aws_faults.requests if r.action == "DescribeInstanceTypes"]
    assert len(asked) == 1  # not once per page


# --- failures -------------------------------------------------------------------------------


def test_denied_scope_fails_alone(aws_faults: FaultProxy) -> None:
    (instance,) = seed_instances(aws_faults.url, REGION)
    aws_faults.respond(
        action_is("DescribeVolumes"),
        403,
        aws_error(
            "ec2", "UnauthorizedOperation", "You are not authorized to perform this operation."
        ),
    )
    scopes = plan(aws_faults.url, services=["ec2", "ebs"])

    vms = listed(scope_for(scopes, "vm"))
    volumes = scope_for(scopes, "volume")
    denied = failure(volumes)

    assert [row.native_id for row in vms] == [instance]
    assert (denied.status, denied.code) == ("denied", "UnauthorizedOperation")
    assert "DescribeVolumes" in denied.message
    assert (volumes.stats.api_calls, volumes.stats.retries) == (1, 0)  # a 403 is not retried


@pytest.mark.parametrize(
    ("service", "kind", "scope", "when", "body"),
    [
        ("s3", "bucket", GLOBAL_SCOPE, s3_call("GET", bucket=False),
         aws_error("rest-xml", "AccessDenied", "Access Denied")),
        ("s3", "bucket", GLOBAL_SCOPE, s3_call("GET", bucket=True, subresource="tagging"),
         aws_error("rest-xml", "AccessDenied", "Access Denied")),
        ("rds", "db_instance", REGION, action_is("DescribeDBInstances"),
         aws_error("query", "AccessDenied", "not authorized to perform rds:DescribeDBInstances")),
    ],
)  # fmt: skip
def test_denied_for_every_protocol(
    aws_faults: FaultProxy, service: str, kind: str, scope: str, when: Any, body: bytes
) -> None:
    # A bucket whose tags cannot be read fails its scope too: untagged would be a lie.
    seed_buckets(aws_faults.url, REGION, ["tagged"], tags={SYSTEM_TAG: "JS-A"})
    seed_db_instances(aws_faults.url, REGION, ["db1"])
    aws_faults.respond(when, 403, body)

    denied = failure(scope_for(plan(aws_faults.url, services=[service]), kind, scope))

    assert (denied.status, denied.code) == ("denied", "AccessDenied")


def test_endpoint_down_fails_fast_with_bounded_attempts(aws_env: None) -> None:
    vm = scope_for(plan(f"http://127.0.0.1:{closed_port()}", max_attempts=3), "vm")

    down = failure(vm)

    assert (down.status, down.code) == ("error", "EndpointConnectionError")
    assert (vm.stats.pages, vm.stats.api_calls, vm.stats.retries) == (0, 1, 2)


def test_throttling_within_retries_recovers_and_is_counted(aws_faults: FaultProxy) -> None:
    (instance,) = seed_instances(aws_faults.url, REGION)
    aws_faults.respond(
        action_is("DescribeInstances"),
        400,
        aws_error("ec2", "RequestLimitExceeded", "Request limit exceeded."),
        times=2,
    )
    vm = scope_for(plan(aws_faults.url, services=["ec2"], max_attempts=5), "vm")

    rows = listed(vm)

    assert [row.native_id for row in rows] == [instance]
    assert (vm.stats.pages, vm.stats.retries) == (1, 2)


@pytest.mark.parametrize(
    ("service", "kind", "scope", "when", "status", "body", "code"),
    [
        ("ec2", "vm", REGION, action_is("DescribeInstances"), 400,
         aws_error("ec2", "RequestLimitExceeded", "Limit exceeded."), "RequestLimitExceeded"),
        ("s3", "bucket", GLOBAL_SCOPE, s3_call("GET", bucket=False), 503,
         aws_error("rest-xml", "SlowDown", "Please reduce your request rate."), "SlowDown"),
        ("rds", "db_instance", REGION, action_is("DescribeDBInstances"), 400,
         aws_error("query", "Throttling", "Rate exceeded"), "Throttling"),
    ],
)  # fmt: skip
def test_throttling_beyond_retries_is_throttled(
    aws_faults: FaultProxy,
    service: str,
    kind: str,
    scope: str,
    when: Any,
    status: int,
    body: bytes,
    code: str,
) -> None:
    aws_faults.respond(when, status, body)
    listing = scope_for(plan(aws_faults.url, services=[service], max_attempts=3), kind, scope)

    throttled = failure(listing)

    assert (throttled.status, throttled.code) == ("throttled", code)
    assert (listing.stats.api_calls, listing.stats.retries) == (1, 2)
    assert sum(1 for request in aws_faults.requests if when(request)) == 3


def test_connection_reset_mid_pagination_is_partial(aws_faults: FaultProxy) -> None:
    seed_instances(aws_faults.url, REGION, count=12, per_reservation=1)
    aws_faults.reset(has_param("NextToken"))  # every page after the first
    vm = scope_for(plan(aws_faults.url, services=["ec2"], page_size=5, max_attempts=2), "vm")
    received: list[ResourceRow] = []

    with pytest.raises(ScopeFailed) as caught:
        for page in vm.pages(vm.stats):
            received.extend(page)

    assert (caught.value.status, caught.value.code) == ("partial", "ConnectionClosedError")
    assert (len(received), vm.stats.pages, vm.stats.retries) == (5, 1, 1)


@pytest.mark.parametrize(("after_pages", "status"), [(False, "error"), (True, "partial")])
def test_server_errors_are_error_or_partial(
    aws_faults: FaultProxy, after_pages: bool, status: str
) -> None:
    seed_instances(aws_faults.url, REGION, count=6, per_reservation=1)
    when = has_param("NextToken") if after_pages else action_is("DescribeInstances")
    aws_faults.respond(
        when, 500, aws_error("ec2", "InternalError", "An internal error has occurred")
    )
    vm = scope_for(plan(aws_faults.url, services=["ec2"], page_size=5, max_attempts=2), "vm")

    failed = failure(vm)

    assert (failed.status, failed.code) == (status, "InternalError")
    assert vm.stats.retries == 1  # botocore retried the 500 once


# --- failures disguised as success: HTTP 200 with no result ---------------------------------


@pytest.mark.parametrize(
    ("body", "wrapper", "problem"),
    [
        (aws_error("ec2", "InternalError", "boom"), None, "error document: InternalError: boom"),
        (aws_error("query", "Throttling", "a &amp; b"), None, "error document: Throttling: a & b"),
        (aws_error("rest-xml", "SlowDown", "later"), None, "error document: SlowDown: later"),
        (b"", None, "empty body"),
        (b"  \n", None, "empty body"),
        (
            b"<DescribeDBInstancesResponse><ResponseMetadata/></DescribeDBInstancesResponse>",
            "DescribeDBInstancesResult",
            "without its DescribeDBInstancesResult element",
        ),
        (aws_empty_result("query", "DescribeDBInstances"), "DescribeDBInstancesResult", None),
        (aws_empty_result("ec2", "DescribeInstances"), None, None),
        (
            b"<?xml version='1.0'?><ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>",
            None,
            None,
        ),
        (b"{}", None, None),  # not XML: botocore's parser refuses it itself
    ],
)
def test_a_disguised_failure_is_told_from_a_result(
    body: bytes, wrapper: str | None, problem: str | None
) -> None:
    found = disguised_failure(200, body, wrapper)

    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_result_must_carry_its_key_even_when_it_lists_nothing() -> None:
    assert result({"Reservations": [], "ResponseMetadata": {}}, "Reservations", "Op") == []
    with pytest.raises(MalformedResponse, match="without Reservations"):
        result({"ResponseMetadata": {}}, "Reservations", "DescribeInstances")
    with pytest.raises(MalformedResponse, match="carrying an error: Oops: no"):
        result({"Error": {"Code": "Oops", "Message": "no"}, "Volumes": []}, "Volumes", "Op")


def test_every_listing_declares_the_result_key_of_its_operation() -> None:
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    for listing in LISTINGS.values():
        names = session.get_service_model(listing.client).operation_names
        operation = {xform_name(name): name for name in names}[listing.operation]
        paginator = session.get_paginator_model(listing.client).get_paginator(operation)
        assert paginator["result_key"] == listing.result_key
        assert listing.items.startswith(listing.result_key)


def test_an_endpoint_with_nothing_lists_every_kind_completely(aws_faults: FaultProxy) -> None:
    scopes = plan(aws_faults.url)

    assert all(listed(scope) == [] for scope in scopes)  # empty lists are results


@pytest.mark.parametrize(
    ("service", "kind", "scope", "when", "body", "problem"),
    [
        ("ec2", "vm", REGION, action_is("DescribeInstances"),
         aws_error("ec2", "InternalError", "An internal error has occurred"), "error document"),
        ("ec2", "vm", REGION, action_is("DescribeInstances"),
         aws_empty_result("ec2", "DescribeInstances"), "without Reservations"),
        ("ebs", "volume", REGION, action_is("DescribeVolumes"), b"", "empty body"),
        ("ebs", "volume", REGION, action_is("DescribeVolumes"), b"{}", "Unable to parse"),
        ("rds", "db_instance", REGION, action_is("DescribeDBInstances"),
         aws_error("query", "InternalFailure", "oops"), "error document: InternalFailure"),
        ("rds", "db_instance", REGION, action_is("DescribeDBInstances"),
         aws_empty_result("query", "DescribeDBInstances"), "without DBInstances"),
        ("s3", "bucket", GLOBAL_SCOPE, s3_call("GET", bucket=False), b"", "empty body"),
        ("s3", "bucket", GLOBAL_SCOPE, s3_call("GET", bucket=False),
         aws_empty_result("rest-xml", "ListBuckets"), "without Buckets"),
        ("ec2", "vm", REGION, action_is("DescribeInstanceTypes"),
         aws_error("ec2", "InternalError", "oops"), "DescribeInstanceTypes: HTTP 200"),
    ],
)  # fmt: skip
def test_a_200_without_a_result_fails_the_scope_as_malformed(
    aws_faults: FaultProxy,
    service: str,
    kind: str,
    scope: str,
    when: Any,
    body: bytes,
    problem: str,
) -> None:
    seed_instances(aws_faults.url, REGION, count=2)
    seed_volumes(aws_faults.url, REGION, count=1)
    seed_db_instances(aws_faults.url, REGION, ["db1"])
    seed_buckets(aws_faults.url, REGION, ["listed-bucket"])
    aws_faults.respond_ok(when, body)
    listing = scope_for(plan(aws_faults.url, services=[service], max_attempts=3), kind, scope)

    malformed = failure(listing)

    assert (malformed.status, malformed.code) == ("error", "malformed_response")
    assert problem in malformed.message
    assert (listing.stats.pages, listing.stats.retries) == (0, 0)  # not a page; not retried


def test_a_200_error_document_after_next_token_is_partial(aws_faults: FaultProxy) -> None:
    seed_instances(aws_faults.url, REGION, count=12, per_reservation=1)
    aws_faults.respond_ok(
        every_of(action_is("DescribeInstances"), has_param("NextToken")),
        aws_error("ec2", "InternalError", "An internal error has occurred"),
    )
    vm = scope_for(plan(aws_faults.url, services=["ec2"], page_size=5), "vm")
    received: list[ResourceRow] = []

    with pytest.raises(ScopeFailed) as caught:
        for page in vm.pages(vm.stats):
            received.extend(page)

    assert (caught.value.status, caught.value.code) == ("partial", "malformed_response")
    assert (len(received), vm.stats.pages) == (5, 1)


def test_an_s3_error_document_under_200_is_retried_by_botocore_then_fails(
    aws_faults: FaultProxy,
) -> None:
    """botocore itself reads an S3 error document under 200 as a 500 (S3 does send them)."""
    seed_buckets(aws_faults.url, REGION, ["listed-bucket"])
    aws_faults.respond_ok(
        s3_call("GET", bucket=False), aws_error("rest-xml", "InternalError", "try again")
    )
    buckets = scope_for(plan(aws_faults.url, services=["s3"], max_attempts=3), "bucket", "*")

    failed = failure(buckets)

    assert (failed.status, failed.code, buckets.stats.retries) == ("error", "InternalError", 2)


def every_of(*predicates: Any) -> Any:
    return lambda request: all(predicate(request) for predicate in predicates)


def test_read_timeout_is_error(aws_faults: FaultProxy) -> None:
    aws_faults.delay(action_is("DescribeVolumes"), 30)  # released when the proxy stops
    volumes = scope_for(
        plan(aws_faults.url, services=["ebs"], read_timeout=0.2, max_attempts=1), "volume"
    )

    timed_out = failure(volumes)

    assert (timed_out.status, timed_out.code) == ("error", "ReadTimeoutError")


def test_failure_message_carries_no_credential(aws_faults: FaultProxy) -> None:
    leaked = "AKIAIOSFODNN7EXAMPLE"
    aws_faults.respond(
        action_is("DescribeInstances"),
        403,
        aws_error(
            "ec2",
            "SignatureDoesNotMatch",
            f"Signature mismatch for {leaked}: Credential={leaked}/20250101/us-east-1/ec2/"
            "aws4_request, SignedHeaders=host, Signature=0123456789abcdef",
        ),
    )

    denied = failure(scope_for(plan(aws_faults.url, services=["ec2"]), "vm"))

    assert (denied.status, denied.code) == ("denied", "SignatureDoesNotMatch")
    assert leaked not in str(denied)
    assert "0123456789abcdef" not in denied.message


def test_a_missing_profile_fails_the_scope_without_calls(aws_env: None) -> None:
    vm = scope_for(plan("http://127.0.0.1:9", profile="no-such-profile"), "vm")

    missing = failure(vm)

    assert (missing.status, missing.code) == ("error", "ProfileNotFound")
    assert vm.stats.api_calls == 0


# --- through the scan orchestrator: the stale-data rule with this collector ----------------


# Scan locks are per node id and, on PostgreSQL, database-wide: a name of its own per test
# keeps parallel test runs (other collectors' included) from seeing each other as busy.
def node_id() -> str:
    return f"aws-test-{uuid.uuid4().hex[:12]}"


def scan(engine: Any, node: str, endpoint: str, **overrides: Any) -> dict[str, str]:
    """One scan of the simulated node, planned the way `yiyun scan` plans; {kind/scope: status}."""
    from inventory.models import Node
    from inventory.scan import Scanner

    spec = Node(
        id=node,
        name="省级核心节点",
        level="province_core",
        one_cloud=True,
        sources=[aws_source(endpoint, **overrides)],
    )
    summary = Scanner(engine).run([spec])
    return {f"{o.kind}/{o.scope}": o.status for o in summary.outcomes}


def live(engine: Any, kind: str) -> set[tuple[str, str | None]]:
    from sqlmodel import Session, col, select

    from inventory.models import Resource

    with Session(engine) as session:
        rows = session.exec(
            select(Resource.native_id, Resource.system_code)
            .where(Resource.kind == kind)
            .where(col(Resource.deleted_at).is_(None))
        )
        return set(rows)


def test_two_runs_tombstone_what_is_gone_or_terminal(engine: Any, aws_endpoint: str) -> None:
    url = aws_endpoint
    kept, terminated = seed_instances(url, REGION, count=2, tags={SYSTEM_TAG: "JS-A"})
    volume, deleted_volume = seed_volumes(url, REGION, count=2, tags={SYSTEM_TAG: "JS-A"})
    seed_buckets(url, REGION, ["kept-bucket", "gone-bucket"], tags={SYSTEM_TAG: "JS-A"})
    node = node_id()
    first = scan(engine, node, url, page_size=5)
    terminate_instances(url, REGION, [terminated])
    delete_volumes(url, REGION, [deleted_volume])
    delete_buckets(url, REGION, ["gone-bucket"])

    second = scan(engine, node, url, page_size=5)

    assert set(first.values()) == set(second.values()) == {"ok"}
    assert live(engine, "vm") == {(kept, "JS-A")}
    assert {native_id for native_id, _ in live(engine, "volume")} >= {volume}
    assert deleted_volume not in {native_id for native_id, _ in live(engine, "volume")}
    assert live(engine, "bucket") == {("kept-bucket", "JS-A")}


@pytest.mark.parametrize(
    "breakage",
    [
        "denied", "throttled", "reset_second_page", "server_error",
        "error_document_with_200", "error_document_with_200_on_the_second_page",
        "empty_body_with_200",
    ],
)  # fmt: skip
def test_a_failed_scope_keeps_every_row_it_had(
    engine: Any, aws_faults: FaultProxy, breakage: str
) -> None:
    url = aws_faults.url
    seed_instances(url, REGION, count=12, per_reservation=1, tags={SYSTEM_TAG: "JS-A"})
    node = node_id()
    scan(engine, node, url, services=["ec2"], page_size=5, max_attempts=2)
    before = live(engine, "vm")
    describe = action_is("DescribeInstances")
    {
        "denied": lambda: aws_faults.respond(
            describe, 403, aws_error("ec2", "UnauthorizedOperation", "not authorized")
        ),
        "throttled": lambda: aws_faults.respond(
            describe, 400, aws_error("ec2", "RequestLimitExceeded", "Limit exceeded.")
        ),
        "reset_second_page": lambda: aws_faults.reset(has_param("NextToken")),
        "server_error": lambda: aws_faults.respond(
            has_param("NextToken"), 503, aws_error("ec2", "Unavailable", "try later")
        ),
        "error_document_with_200": lambda: aws_faults.respond_ok(
            describe, aws_error("ec2", "InternalError", "oops")
        ),
        "error_document_with_200_on_the_second_page": lambda: aws_faults.respond_ok(
            has_param("NextToken"), aws_error("ec2", "InternalError", "oops")
        ),
        "empty_body_with_200": lambda: aws_faults.respond_ok(describe, b""),
    }[breakage]()

    statuses = scan(engine, node, url, services=["ec2"], page_size=5, max_attempts=2)

    assert statuses[f"vm/{REGION}"] != "ok"
    assert len(before) == 12
    assert live(engine, "vm") == before
