"""OpenStack collector: pure normalize per kind, and listings against the OpenStack simulator."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.collectors.base import ResourceRow, Scope, ScopeFailed, is_evidence
from inventory.collectors.openstack import (
    KINDS,
    Attribution,
    ListPolicy,
    normalize_container,
    normalize_database,
    normalize_hypervisor,
    normalize_server,
    normalize_volume,
    page_items,
    parse_tags,
    plan_scopes,
)
from inventory.secret_shape import REDACTED
from inventory.sim.openstack import SIM_PASSWORD, SIM_USER, OpenStackSimulator
from tests.inventory.collectors.conftest import Sleeps

DATA = Path(__file__).resolve().parents[2] / "data" / "openstack"
TAG = "yiyun.io/system"
ATTRIBUTION = Attribution(TAG)
SCOPE = {"scope": "RegionOne/*", "region": "RegionOne", "attribution": ATTRIBUTION}
SECRETS = ("kJ7hWq2ZpX9tRv4LmN8s", "N3ver4GuessAbleSecret", "Zq8WmR2xLp5TvN7kJd3F", "IyEvYmluL3No")


def payload(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def stored(row: ResourceRow) -> str:
    return json.dumps([row.raw, row.tags])


# --- normalize (pure, on samples shaped like the API reference's) --------------------------


def test_normalize_server_from_payload() -> None:
    raw = payload("servers_detail")["servers"][0]

    row = normalize_server(raw, **SCOPE)

    assert (row.kind, row.native_id, row.name, row.scope, row.region) == (
        "vm", "9168b536-cd40-4630-b43f-b259807c6e87", "edu-portal-web-1", "RegionOne/*",
        "RegionOne",
    )  # fmt: skip
    assert (row.state, row.vcpu, row.memory_gib, row.storage_gib) == ("active", 4, 8.0, 50)
    assert row.namespace == "6f70656e737461636b20342065766572"
    assert row.created_at_source == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert row.system_code == "JS-EDU-0001"  # the tag wins over the metadata key
    assert not row.terminal and is_evidence(row.kind, row.replicas, row.state)
    assert row.tags == {
        "owner": "edu-it", "db_password": REDACTED, TAG: "JS-EDU-0001", "production": "",
        "api_token": REDACTED,
    }  # fmt: skip


def test_normalize_server_keeps_only_allowlisted_raw_fields() -> None:
    raw = payload("servers_detail")["servers"][0]

    row = normalize_server(raw, **SCOPE)

    assert set(row.raw) <= {
        "id", "name", "status", "tenant_id", "user_id", "created", "updated", "tags", "flavor",
        "image", "metadata", "OS-EXT-AZ:availability_zone", "OS-EXT-STS:vm_state",
        "OS-EXT-STS:power_state", "OS-EXT-STS:task_state", "OS-EXT-SRV-ATTR:host",
        "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-SRV-USG:launched_at",
        "os-extended-volumes:volumes_attached",
    }  # fmt: skip
    assert row.raw["flavor"] == {
        "disk": 40, "ephemeral": 10, "original_name": "m1.large", "ram": 8192, "swap": 0,
        "vcpus": 4,
    }  # fmt: skip
    assert row.raw["tags"] == ["yiyun.io/system=JS-EDU-0001", "production", "api_token=<redacted>"]
    text = stored(row)
    assert not any(secret in text for secret in SECRETS)
    assert "fa:16:3e" not in text and "security_groups" not in text and "links" not in text


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("ACTIVE", False), ("SHUTOFF", False), ("ERROR", False), ("SHELVED_OFFLOADED", False),
     ("DELETED", True), ("SOFT_DELETED", True)],
)  # fmt: skip
def test_server_states_error_and_shelved_are_live(status: str, terminal: bool) -> None:
    raw = {**payload("servers_detail")["servers"][1], "status": status}

    row = normalize_server(raw, **SCOPE)

    assert (row.state, row.terminal) == (status.lower(), terminal)


def test_a_server_below_2_47_is_sized_from_the_flavor_list() -> None:
    raw = {**payload("servers_detail")["servers"][1], "flavor": {"id": "2", "links": []}}
    flavors = {"2": {"id": "2", "vcpus": 2, "ram": 4096, "disk": 20}}

    row = normalize_server(raw, **SCOPE, flavors=flavors)
    unknown = normalize_server(raw, **SCOPE)

    assert (row.vcpu, row.memory_gib, row.storage_gib) == (2, 4.0, 20)
    assert (unknown.vcpu, unknown.memory_gib, unknown.storage_gib) == (None, None, None)


def test_normalize_volume_from_payload() -> None:
    in_use, failed = payload("volumes_detail")["volumes"]

    row = normalize_volume(in_use, **SCOPE)
    broken = normalize_volume(failed, **SCOPE)

    assert (row.kind, row.native_id, row.name, row.state, row.storage_gib) == (
        "volume", "6edbc2f4-1507-44f8-ac0d-eed1d2608d38", "edu-portal-data", "in-use", 100
    )  # fmt: skip
    assert row.system_code == "JS-EDU-0001"
    assert row.created_at_source == datetime(2024, 3, 1, 8, 4, 31, tzinfo=UTC)
    assert row.raw["attachments"] == [
        {"server_id": "9168b536-cd40-4630-b43f-b259807c6e87",
         "attachment_id": "3b8b6631-1cf7-4fd7-9afb-c01e541a073c", "device": "/dev/vdb"}
    ]  # fmt: skip
    assert "volume_image_metadata" not in row.raw and "links" not in row.raw
    assert (broken.state, broken.terminal, broken.system_code) == ("error", False, None)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("available", False), ("error", False), ("error_deleting", False), ("deleting", True),
     ("deleted", True)],
)  # fmt: skip
def test_volume_states(status: str, terminal: bool) -> None:
    raw = {**payload("volumes_detail")["volumes"][1], "status": status}

    assert normalize_volume(raw, **SCOPE).terminal is terminal


def test_normalize_container_is_keyed_by_its_project() -> None:
    archive, empty = ({**c, "project_id": "p1"} for c in payload("containers"))

    row = normalize_container(archive, **SCOPE)

    assert (row.kind, row.native_id, row.name, row.storage_gib, row.system_code) == (
        "bucket", "p1/edu-archive", "edu-archive", 5.0, None
    )  # fmt: skip
    assert row.raw == {**archive}
    assert normalize_container(empty, **SCOPE).native_id == "p1/empty"


def test_normalize_database_sizes_from_the_flavor_and_volume() -> None:
    raw = payload("trove_instances")["instances"][0]
    flavors = {"3": {"id": "3", "vcpus": 2, "ram": 4096, "disk": 40}}

    row = normalize_database(raw, **SCOPE, flavors=flavors)

    assert (row.kind, row.native_id, row.name, row.state) == (
        "db_instance", "6a3b1d5e-7f2c-4e8a-9b0d-1c2e3f4a5b6c", "edu-db", "active"
    )  # fmt: skip
    assert (row.vcpu, row.memory_gib, row.storage_gib, row.system_code) == (2, 4.0, 50, None)
    assert row.raw["datastore"] == {"type": "mysql", "version": "8.0"}
    assert "ip" not in row.raw and "links" not in row.raw


def test_normalize_hypervisor_from_placement_and_from_os_hypervisors() -> None:
    provider = payload("resource_providers")["resource_providers"][0]
    placed = {**provider, "inventories": payload("inventories")["inventories"]}
    detail = payload("hypervisors_detail")["hypervisors"][0]

    row = normalize_hypervisor(placed, **SCOPE)
    legacy = normalize_hypervisor(detail, **SCOPE)

    assert (row.kind, row.native_id, row.name, row.vcpu, row.memory_gib, row.storage_gib) == (
        "hypervisor", "4e8e5957-649f-477b-9e5b-f1f75b21c03c", "compute-01.js-core", 64, 256.0,
        2000,
    )  # fmt: skip
    assert row.raw["inventories"]["VCPU"] == {"total": 64, "reserved": 0, "allocation_ratio": 16.0}
    assert (legacy.native_id, legacy.name, legacy.state, legacy.vcpu, legacy.memory_gib) == (
        "b1e43b5f-eec1-44e0-9f10-7b4945c0226d", "compute-02.js-core", "disabled", 2, 8.0
    )  # fmt: skip
    assert "host_ip" not in legacy.raw and "cpu_info" not in legacy.raw
    assert not is_evidence("hypervisor", None, "up")


# --- attribution -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "metadata", "system"),
    [
        (["yiyun.io/system=JS-EDU-0001"], {TAG: "JS-OTHER-1"}, "JS-EDU-0001"),
        (["yiyun.io/system= "], {TAG: "JS-HEALTH-0002"}, "JS-HEALTH-0002"),
        (["production"], {TAG: "JS-HEALTH-0002"}, "JS-HEALTH-0002"),
        (["yiyun.io:system=JS-EDU-0002"], {TAG: "JS-OTHER-1"}, "JS-EDU-0002"),
        ([], {"yiyun.io:system": "JS-HEALTH-0003"}, "JS-HEALTH-0003"),
        (["yiyun.io/system"], {}, None),
        ([], {"owner": "x"}, None),
    ],
    ids=[
        "tag",
        "blank-tag-then-metadata",
        "metadata",
        "nova-spelling-tag",
        "nova-spelling-metadata",
        "bare-tag",
        "none",
    ],
)
def test_attribution_server_tag_else_metadata_else_none(
    tags: list[str], metadata: dict[str, str], system: str | None
) -> None:
    raw = {**payload("servers_detail")["servers"][1], "tags": tags, "metadata": metadata}

    assert normalize_server(raw, **SCOPE).system_code == system


def test_attribution_volume_metadata_and_configurable_key() -> None:
    raw = {**payload("volumes_detail")["volumes"][1], "metadata": {"sys": "JS-EDU-0003"}}
    other = {**SCOPE, "attribution": Attribution("sys")}

    assert normalize_volume(raw, **SCOPE).system_code is None
    assert normalize_volume(raw, **other).system_code == "JS-EDU-0003"


def test_attribution_tags_parse_key_value_and_bare() -> None:
    assert parse_tags(["a=b", "c", "d=e=f", 3]) == {"a": "b", "c": "", "d": "e=f"}


# --- response validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"computeFault": {"code": 500, "message": "boom"}}, "without 'servers'"),
        ({"servers": None}, "not a list"),
        ({"servers": {"id": "x"}}, "not a list"),
        ({"servers": [{"name": "no-id"}]}, "without 'id'"),
        ([{"id": "x"}], "expected an object"),
    ],
    ids=["error-document", "null", "object", "item-without-id", "bare-list"],
)
def test_only_a_page_of_the_listing_asked_for_is_trusted(body: Any, problem: str) -> None:
    result = page_items(body, KINDS["vm"])

    assert isinstance(result, str) and problem in result


def test_a_swift_page_is_a_list_of_named_containers() -> None:
    assert page_items(payload("containers"), KINDS["bucket"]) == payload("containers")
    assert page_items(None, KINDS["bucket"]) == []  # 204 No Content: an empty account
    assert isinstance(page_items({"error": "x"}, KINDS["bucket"]), str)


# --- planning --------------------------------------------------------------------------------

SOURCE: dict[str, Any] = {"name": "dept-os", "kind": "openstack", "cloud": "sim",
                          "regions": ["RegionOne", "RegionTwo"]}  # fmt: skip


def test_plan_is_one_scope_per_kind_region_and_project_plus_hypervisors() -> None:
    everything = plan_scopes(node_id="edu-dc", source=SOURCE, system_tag=TAG)
    per_project = plan_scopes(
        node_id="edu-dc", source={**SOURCE, "regions": ["RegionOne"], "projects": ["edu", "hr"],
                                  "services": ["compute", "volume"]},
        system_tag=TAG,
    )  # fmt: skip

    assert {(s.kind, s.scope) for s in everything} == {
        (kind, f"{region}/*")
        for region in ("RegionOne", "RegionTwo")
        for kind in ("vm", "volume", "bucket", "db_instance", "hypervisor")
    }
    assert {s.source for s in everything} == {"dept-os"}
    assert sorted((s.kind, s.scope) for s in per_project) == [
        ("hypervisor", "RegionOne/*"), ("vm", "RegionOne/edu"), ("vm", "RegionOne/hr"),
        ("volume", "RegionOne/edu"), ("volume", "RegionOne/hr"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"cloud": ""}, "cloud"),
        ({"regions": []}, "regions"),
        ({"projects": "edu"}, "projects"),
        ({"services": ["compute", "dns"]}, "dns"),
        ({"password": "x"}, "secret"),
        ({"kind": "aws"}, "not an openstack source"),
    ],
    ids=["no-cloud", "no-regions", "projects-not-a-list", "unknown-service", "secret", "kind"],
)
def test_plan_refuses_a_bad_source(override: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        plan_scopes(node_id="edu-dc", source={**SOURCE, **override}, system_tag=TAG)


def test_planning_does_no_io_and_a_missing_cloud_fails_each_scope_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE", raising=False)
    missing = {**SOURCE, "clouds_yaml": str(tmp_path / "nope.yaml")}
    (tmp_path / "clouds.yaml").write_text("clouds:\n  other:\n    auth: {auth_url: http://x}\n")
    unknown = {**SOURCE, "cloud": "js-edu", "clouds_yaml": str(tmp_path / "clouds.yaml")}
    (tmp_path / "broken.yaml").write_text('clouds:\n  sim:\n    auth: {password: "x\n')
    broken = {**SOURCE, "clouds_yaml": str(tmp_path / "broken.yaml")}

    failures = []
    for source in (missing, unknown, broken):
        scope = plan_scopes(node_id="edu-dc", source=source, system_tag=TAG)[0]
        with pytest.raises(ScopeFailed) as failed:
            list(scope.pages(scope.stats))
        failures.append(failed.value)

    assert [(f.status, f.code) for f in failures] == [("error", "cloud_config")] * 3
    assert "'sim'" in failures[0].message and "does not exist" in failures[0].message
    assert "'js-edu' is not defined" in failures[1].message
    assert "broken.yaml is not valid YAML" in failures[2].message


def test_policy_from_source_takes_the_page_size() -> None:
    assert ListPolicy.from_source({"page_size": 3}).page_size == 3


# --- listings against the simulator ----------------------------------------------------------

REGIONS = ("RegionOne", "RegionTwo")
SERVICES = ("compute", "volumev3", "object-store", "placement", "database")


@pytest.fixture
def cloud() -> Iterator[OpenStackSimulator]:
    with OpenStackSimulator(regions=REGIONS, services=SERVICES) as simulator:
        simulator.add_project("edu")
        simulator.add_project("hr")
        yield simulator


@pytest.fixture
def clouds_yaml(cloud: OpenStackSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The simulator's clouds.yaml; no OS_* setting of the developer's leaks in."""
    for name in [n for n in os.environ if n.startswith("OS_")]:
        monkeypatch.delenv(name)
    return str(cloud.write_clouds_yaml(tmp_path / "clouds.yaml"))


def fast(sleeps: Sleeps, **changes: Any) -> ListPolicy:
    return replace(ListPolicy(sleep=sleeps, backoff_base=0.001), **changes)


def source_of(clouds_yaml: str, **changes: Any) -> dict[str, Any]:
    return {"name": "dept-os", "kind": "openstack", "cloud": "sim", "clouds_yaml": clouds_yaml,
            "regions": ["RegionOne"], **changes}  # fmt: skip


def scopes_of(clouds_yaml: str, policy: ListPolicy, **changes: Any) -> dict[tuple[str, str], Scope]:
    scopes = plan_scopes(
        node_id="edu-dc", source=source_of(clouds_yaml, **changes), system_tag=TAG, policy=policy
    )
    return {(s.kind, s.scope): s for s in scopes}


def drain(scope: Scope) -> tuple[list[ResourceRow], ScopeFailed]:
    rows: list[ResourceRow] = []
    with pytest.raises(ScopeFailed) as failed:
        for page in scope.pages(scope.stats):
            rows.extend(page)
    return rows, failed.value


def complete(scope: Scope) -> list[ResourceRow]:
    return [row for page in scope.pages(scope.stats) for row in page]


def add_servers(cloud: OpenStackSimulator, count: int, project: str = "edu") -> list[str]:
    return [
        cloud.add_server(project, name=f"vm-{i:03d}", tags=[f"{NOVA_TAG}=JS-EDU-0001"])
        for i in range(count)
    ]


NOVA_TAG = "yiyun.io:system"  # Nova refuses "/" in tags and metadata keys


def test_lists_every_kind_with_sizes_and_attribution(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    web = cloud.add_server(
        "edu", name="web", vcpus=4, ram_mib=8192, disk_gib=80,
        tags=[f"{NOVA_TAG}=JS-EDU-0001"], metadata={NOVA_TAG: "JS-OTHER"},
    )  # fmt: skip
    cloud.add_server("hr", name="payroll", metadata={NOVA_TAG: "JS-HR-0001"})
    cloud.add_server("hr", name="stray")
    cloud.add_volume("edu", name="data", size_gib=100, metadata={TAG: "JS-EDU-0001"},
                     attached_to=web)  # fmt: skip
    cloud.add_container("edu", "archive", bytes_used=3 * 2**30, object_count=9)
    cloud.add_container("admin", "backups", bytes_used=2**30)
    cloud.add_database("hr", name="hr-db", flavor_vcpus=4, ram_mib=16384, volume_gib=50)
    cloud.add_hypervisor(hostname="compute-01", vcpus=64, memory_mib=262144, local_gb=2000)

    scopes = scopes_of(clouds_yaml, fast(sleeps))
    rows = {kind: complete(scope) for (kind, _), scope in scopes.items()}

    assert {(r.name, r.system_code, r.vcpu, r.memory_gib, r.storage_gib) for r in rows["vm"]} == {
        ("web", "JS-EDU-0001", 4, 8.0, 80), ("payroll", "JS-HR-0001", 2, 4.0, 40),
        ("stray", None, 2, 4.0, 40),
    }  # fmt: skip
    assert {(r.name, r.system_code, r.storage_gib, r.state) for r in rows["volume"]} == {
        ("data", "JS-EDU-0001", 100, "in-use")
    }
    # Swift lists the token's own account: the admin project's containers.
    admin = cloud.project_id("admin")
    assert {(r.native_id, r.storage_gib) for r in rows["bucket"]} == {(f"{admin}/backups", 1.0)}
    assert {(r.name, r.vcpu, r.memory_gib, r.storage_gib) for r in rows["db_instance"]} == {
        ("hr-db", 4, 16.0, 50)
    }
    assert {(r.name, r.vcpu, r.memory_gib, r.storage_gib) for r in rows["hypervisor"]} == {
        ("compute-01", 64, 256.0, 2000)
    }
    assert {r.scope for kind_rows in rows.values() for r in kind_rows} == {"RegionOne/*"}
    assert sleeps == []
    listing = [r for r in cloud.requests if r.path.endswith("/servers/detail")]
    assert {r.headers.get("OpenStack-API-Version") for r in listing} == {"compute 2.47"}
    assert {r.query.get("all_tenants") for r in listing} == {"True"}


def test_multi_page_listing_returns_every_item_exactly_once(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    ids = add_servers(cloud, 7)
    for i in range(5):
        cloud.add_volume("edu", name=f"vol-{i}", size_gib=1)
        cloud.add_container("admin", f"bucket-{i}")
    scopes = scopes_of(clouds_yaml, fast(sleeps, page_size=3))

    servers = complete(scopes[("vm", "RegionOne/*")])
    volumes = complete(scopes[("volume", "RegionOne/*")])
    buckets = complete(scopes[("bucket", "RegionOne/*")])

    assert sorted(r.native_id for r in servers) == sorted(ids)
    assert len({r.name for r in volumes}) == len(volumes) == 5
    assert len({r.name for r in buckets}) == len(buckets) == 5
    assert scopes[("vm", "RegionOne/*")].stats.pages == 3
    assert scopes[("bucket", "RegionOne/*")].stats.pages == 2
    markers = [r.query.get("marker") for r in cloud.requests if r.path.endswith("/servers/detail")]
    assert markers[0] is None and len(set(markers)) == 3


def test_multi_page_listing_asks_for_one_page_ahead_and_no_more(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    # The next page is fetched while this one is stored; a consumer that stops after the
    # first page has cost at most that one request more, never the rest of the listing.
    add_servers(cloud, 10)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=2))[("vm", "RegionOne/*")]
    pages = scope.pages(scope.stats)

    first = next(pages)
    pages.close()

    listed = [r for r in cloud.requests if r.path.endswith("/servers/detail")]
    assert len(first) == 2
    assert 1 <= len(listed) <= 2
    assert scope.stats.pages == 1


def test_multi_page_listing_follows_the_servers_own_page_cap(
    clouds_yaml: str, tmp_path: Path, sleeps: Sleeps
) -> None:
    with OpenStackSimulator(max_limit=2) as capped:
        ids = add_servers(capped, 5, project="admin")
        path = str(capped.write_clouds_yaml(tmp_path / "capped.yaml"))

        rows = complete(scopes_of(path, fast(sleeps, page_size=500))[("vm", "RegionOne/*")])

    assert sorted(r.native_id for r in rows) == sorted(ids)


def test_an_admin_lists_every_project_and_a_member_only_its_own(
    cloud: OpenStackSimulator, clouds_yaml: str, tmp_path: Path, sleeps: Sleeps
) -> None:
    cloud.add_server("edu", name="edu-vm")
    cloud.add_server("hr", name="hr-vm")
    cloud.add_user("clerk", "clerk-password", project="hr")
    member = str(cloud.write_clouds_yaml(tmp_path / "member.yaml", user="clerk",
                                         password="clerk-password", project="hr"))  # fmt: skip

    as_admin = complete(scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")])
    as_member = scopes_of(member, fast(sleeps))

    assert {r.name for r in as_admin} == {"edu-vm", "hr-vm"}
    assert {r.name for r in complete(as_member[("vm", "RegionOne/*")])} == {"hr-vm"}
    # Hypervisors are for admins: denied for this scope only.
    _, failure = drain(as_member[("hypervisor", "RegionOne/*")])
    assert (failure.status, failure.code) == ("denied", "HTTP403")


def test_forbidden_project_fails_only_its_own_scopes(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    cloud.add_server("edu", name="edu-vm")
    cloud.add_server("hr", name="hr-vm")
    cloud.add_volume("hr", name="hr-data", size_gib=1)
    for project in ("edu", "hr"):
        cloud.add_user(SIM_USER, SIM_PASSWORD, project=project)
    cloud.forbid(project="edu")
    scopes = scopes_of(clouds_yaml, fast(sleeps), projects=["edu", "hr"])

    failures = {key: drain(scope)[1] for key, scope in scopes.items() if key[1] == "RegionOne/edu"}

    assert {f.status for f in failures.values()} == {"denied"}
    assert set(failures) == {
        ("vm", "RegionOne/edu"), ("volume", "RegionOne/edu"), ("bucket", "RegionOne/edu"),
        ("db_instance", "RegionOne/edu"),
    }  # fmt: skip
    assert {r.name for r in complete(scopes[("vm", "RegionOne/hr")])} == {"hr-vm"}
    assert {r.name for r in complete(scopes[("volume", "RegionOne/hr")])} == {"hr-data"}
    assert {r.scope for r in complete(scopes[("vm", "RegionOne/hr")])} == {"RegionOne/hr"}


def test_region_isolation(cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps) -> None:
    cloud.add_server("edu", name="one", region="RegionOne")
    cloud.add_server("edu", name="two", region="RegionTwo")
    cloud.add_volume("edu", name="two-data", size_gib=1, region="RegionTwo")
    scopes = scopes_of(clouds_yaml, fast(sleeps), regions=list(REGIONS))

    seen = {key: {(r.name, r.region) for r in complete(scope)} for key, scope in scopes.items()}

    assert seen[("vm", "RegionOne/*")] == {("one", "RegionOne")}
    assert seen[("vm", "RegionTwo/*")] == {("two", "RegionTwo")}
    assert seen[("volume", "RegionOne/*")] == set()
    assert seen[("volume", "RegionTwo/*")] == {("two-data", "RegionTwo")}


@pytest.mark.parametrize("listed", [True, False], ids=["regions-in-clouds-yaml", "catalog"])
def test_a_region_the_cloud_does_not_have_fails_clearly(
    clouds_yaml: str, sleeps: Sleeps, listed: bool
) -> None:
    if not listed:  # clouds.yaml names no regions: only the catalog can tell
        entry = yaml.safe_load(Path(clouds_yaml).read_text(encoding="utf-8"))
        del entry["clouds"]["sim"]["regions"]
        Path(clouds_yaml).write_text(yaml.safe_dump(entry), encoding="utf-8")
    scope = scopes_of(clouds_yaml, fast(sleeps), regions=["RegionThree"])[("vm", "RegionThree/*")]

    _, failure = drain(scope)

    assert failure.status == "error" and "RegionThree" in failure.message
    assert failure.code == ("cloud_config" if listed else "unknown_region")


def test_a_service_missing_from_the_catalog_is_an_empty_complete_listing(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    with OpenStackSimulator(services=("compute",)) as bare:
        bare.add_server("admin", name="only")
        bare.add_hypervisor(hostname="compute-01", vcpus=48, memory_mib=131072, local_gb=900)
        path = str(bare.write_clouds_yaml(tmp_path / "bare.yaml"))
        scopes = scopes_of(path, fast(sleeps))

        rows = {kind: complete(scope) for (kind, _), scope in scopes.items()}

    assert {kind: len(found) for kind, found in rows.items()} == {
        "vm": 1, "volume": 0, "bucket": 0, "db_instance": 0, "hypervisor": 1
    }  # fmt: skip
    # Without Placement, capacity comes from os-hypervisors detail.
    [hypervisor] = rows["hypervisor"]
    assert (hypervisor.name, hypervisor.vcpu, hypervisor.memory_gib, hypervisor.storage_gib) == (
        "compute-01", 48, 128.0, 900
    )  # fmt: skip


@pytest.mark.parametrize("status", ["ERROR", "SHELVED_OFFLOADED", "SHUTOFF"])
def test_error_and_shelved_servers_are_listed_live(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, status: str
) -> None:
    cloud.add_server("edu", name="odd", status=status)

    [row] = complete(scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")])

    assert (row.state, row.terminal) == (status.lower(), False)


# --- faults ------------------------------------------------------------------------------------


def requests_to(cloud: OpenStackSimulator, suffix: str) -> int:
    return sum(1 for r in cloud.requests if r.path.endswith(suffix))


def test_an_expired_token_mid_listing_is_replaced_once_and_counted(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    ids = add_servers(cloud, 7)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3))[("vm", "RegionOne/*")]
    pages = scope.pages(scope.stats)
    first = next(pages)
    cloud.expire_tokens(after_requests=0)  # the token of the first page dies before the second

    rows = first + [row for page in pages for row in page]

    assert sorted(r.native_id for r in rows) == sorted(ids)
    assert scope.stats.retries == 1
    assert requests_to(cloud, "/auth/tokens") == 2


def test_a_401_beyond_the_reauthentication_is_denied(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    add_servers(cloud, 2)
    cloud.fail(service="compute", status=401, times=100)
    scope = scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")]

    _, failure = drain(scope)

    assert (failure.status, failure.code) == ("denied", "HTTP401")
    assert requests_to(cloud, "/servers/detail") == 2  # the first try and one after re-auth


def test_a_wrong_password_is_denied_without_the_password_in_the_message(
    cloud: OpenStackSimulator, tmp_path: Path, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(cloud.write_clouds_yaml(tmp_path / "bad.yaml", password="Wr0ngPassw0rdXyZ"))

    _, failure = drain(scopes_of(path, fast(sleeps))[("vm", "RegionOne/*")])

    assert (failure.status, failure.code) == ("denied", "HTTP401")
    assert "Wr0ngPassw0rdXyZ" not in failure.message


@pytest.mark.parametrize("status", [429, 413])
def test_throttling_honours_retry_after_then_succeeds_and_is_counted(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, status: int
) -> None:
    add_servers(cloud, 4)
    cloud.throttle(service="compute", status=status, retry_after=2, times=2, page=2)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3))[("vm", "RegionOne/*")]

    rows = complete(scope)

    assert len(rows) == 4
    assert scope.stats.retries == 2 and len(sleeps) == 2
    assert all(2 <= wait < 2.01 for wait in sleeps)


def test_throttling_beyond_the_retry_budget_is_throttled(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    add_servers(cloud, 4)
    cloud.throttle(service="compute", times=100, page=2)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3, max_throttle_retries=2))[
        ("vm", "RegionOne/*")
    ]

    rows, failure = drain(scope)

    assert (failure.status, failure.code) == ("throttled", "HTTP429")
    assert len(rows) == 3 and len(sleeps) == 2


def test_a_retry_after_beyond_the_cap_is_throttled_without_waiting(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    add_servers(cloud, 2)
    cloud.throttle(service="compute", retry_after=3600)
    scope = scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")]

    _, failure = drain(scope)

    assert failure.status == "throttled" and sleeps == []


def test_a_passing_server_error_is_retried_with_backoff_and_counted(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    add_servers(cloud, 2)
    cloud.fail(service="compute", status=503, times=2)
    scope = scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")]

    assert len(complete(scope)) == 2
    assert scope.stats.retries == 2 and len(sleeps) == 2
    assert requests_to(cloud, "/servers/detail") == 3  # no retry hidden in keystoneauth


@pytest.mark.parametrize(
    ("page", "status"), [(1, "error"), (2, "partial")], ids=["first-page", "second-page"]
)
def test_a_persistent_server_error_is_error_before_any_page_and_partial_after(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, page: int, status: str
) -> None:
    add_servers(cloud, 4)
    cloud.fail(service="compute", times=100, page=page)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3, max_server_error_retries=2))[
        ("vm", "RegionOne/*")
    ]

    _, failure = drain(scope)

    assert (failure.status, failure.code) == (status, "HTTP500")
    assert requests_to(cloud, "/servers/detail") == page + 2


@pytest.mark.parametrize(
    ("page", "status"), [(1, "error"), (2, "partial")], ids=["first-page", "second-page"]
)
def test_a_200_with_an_error_body_is_not_a_page(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, page: int, status: str
) -> None:
    add_servers(cloud, 4)
    cloud.fail_with_200(service="compute", page=page)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3))[("vm", "RegionOne/*")]

    _, failure = drain(scope)

    assert (failure.status, failure.code) == (status, "malformed_response")
    assert "'servers'" in failure.message


def test_a_reset_connection_is_retried_once_and_counted(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    add_servers(cloud, 2)
    cloud.reset_connection(service="compute")
    scope = scopes_of(clouds_yaml, fast(sleeps))[("vm", "RegionOne/*")]

    assert len(complete(scope)) == 2
    assert scope.stats.retries == 1


@pytest.mark.parametrize(
    ("page", "status"), [(1, "error"), (2, "partial")], ids=["first-page", "second-page"]
)
def test_a_connection_reset_again_and_again_is_error_or_partial(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, page: int, status: str
) -> None:
    add_servers(cloud, 4)
    cloud.reset_connection(service="compute", page=page, times=100)
    scope = scopes_of(clouds_yaml, fast(sleeps, page_size=3))[("vm", "RegionOne/*")]

    _, failure = drain(scope)

    assert (failure.status, failure.code) == (status, "ConnectionError")
    assert requests_to(cloud, "/servers/detail") == page + 1  # one retry, none hidden


def test_no_message_or_log_carries_the_password_or_a_token(
    cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    add_servers(cloud, 4)
    cloud.add_volume("edu", name="data", size_gib=1)
    faults: list[Callable[[], None]] = [
        lambda: cloud.fail(service="compute", status=401, times=100),
        lambda: cloud.forbid(service="volumev3"),
        lambda: cloud.throttle(service="compute", times=100),
        lambda: cloud.fail_with_200(service="compute", page=2),
        lambda: cloud.reset_connection(service="compute", times=100),
        lambda: cloud.fail(service="identity", times=100),
    ]
    messages = []
    # configure_logging (any CLI test before this one in the worker) quiets keystoneauth;
    # its debug log is part of what must not leak, so it is captured here whatever ran first.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="keystoneauth"):
        for arm in faults:
            cloud.heal()
            arm()
            policy = fast(sleeps, page_size=3, max_throttle_retries=0)
            for scope in scopes_of(clouds_yaml, policy, services=["compute", "volume"]).values():
                try:
                    complete(scope)
                except ScopeFailed as failure:
                    messages.append(repr((failure.args, failure.message, str(scope.stats))))

    tokens = {r.headers.get("X-Auth-Token") for r in cloud.requests} - {None}
    assert tokens and len(messages) >= len(faults)  # there was something to leak
    assert any(r.name.startswith("keystoneauth") for r in caplog.records)  # its debug log too
    text = "\n".join([*messages, *(record.getMessage() for record in caplog.records)])
    assert SIM_PASSWORD not in text
    assert not any(token in text for token in tokens)


# --- through the scan orchestrator: the stale-data rule with this collector --------------------

NODE_ID = "edu-dc"


def scan(engine: Any, clouds_yaml: str, policy: ListPolicy, **changes: Any) -> dict[str, str]:
    """One `yiyun scan` of the simulated cloud; returns {kind/scope: status}."""
    from inventory.models import Node
    from inventory.scan import Scanner

    node = Node(id=NODE_ID, name="省教育厅部门云", level="department_cloud", one_cloud=False)
    scopes = plan_scopes(
        node_id=NODE_ID, source=source_of(clouds_yaml, **changes), system_tag=TAG, policy=policy
    )
    summary = Scanner(engine, concurrency=4, planner=lambda _node: (scopes, [])).run([node])
    return {f"{o.kind}/{o.scope}": o.status for o in summary.outcomes}


def live(engine: Any, kind: str) -> set[tuple[str | None, str | None]]:
    from sqlmodel import Session, col, select

    from inventory.models import Resource

    with Session(engine) as session:
        rows = session.exec(
            select(Resource.name, Resource.system_code)
            .where(Resource.kind == kind)
            .where(col(Resource.deleted_at).is_(None))
        )
        return set(rows)


def events(engine: Any, name: str) -> list[tuple[str, dict | None]]:
    from sqlmodel import Session, select

    from inventory.models import Resource, ResourceEvent

    with Session(engine) as session:
        rows = session.exec(
            select(ResourceEvent.type, ResourceEvent.diff)
            .join(Resource, Resource.id == ResourceEvent.resource_id)  # type: ignore[arg-type]
            .where(Resource.name == name)
            .order_by(ResourceEvent.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_two_runs_tombstone_a_deleted_and_a_soft_deleted_server(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    ids = add_servers(cloud, 7)
    policy = fast(sleeps, page_size=3)
    first = scan(engine, clouds_yaml, policy)
    cloud.delete_server(ids[3])
    cloud.set_server_status(ids[5], "SOFT_DELETED")

    second = scan(engine, clouds_yaml, policy)

    assert set(first.values()) == set(second.values()) == {"ok"}
    assert live(engine, "vm") == {(f"vm-{i:03d}", "JS-EDU-0001") for i in (0, 1, 2, 4, 6)}


def test_two_runs_a_cloud_that_lists_none_of_its_servers_is_held_not_swept(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    # Twelve servers gone at once looks like a cloud answering wrongly, not a mass deletion:
    # the sweep guard of [truth] holds the rows until the next listing agrees.
    ids = add_servers(cloud, 12)
    policy = fast(sleeps, page_size=5)
    scan(engine, clouds_yaml, policy)
    for server_id in ids:
        cloud.delete_server(server_id)

    held = scan(engine, clouds_yaml, policy)
    kept = live(engine, "vm")
    agreed = scan(engine, clouds_yaml, policy)

    assert held["vm/RegionOne/*"] == "held"
    assert len(kept) == 12
    assert agreed["vm/RegionOne/*"] == "ok"
    assert live(engine, "vm") == set()


# Every way a listing fails, and the status it fails with.
FAULTS: dict[str, tuple[Callable[[OpenStackSimulator], None], str]] = {
    "forbidden": (lambda c: c.forbid(service="compute"), "denied"),
    "401_beyond_reauth": (lambda c: c.fail(service="compute", status=401, times=100), "denied"),
    "throttled_beyond_budget": (
        lambda c: c.throttle(service="compute", times=100, page=2),
        "throttled",
    ),
    "retry_after_over_cap": (
        lambda c: c.throttle(service="compute", retry_after=3600),
        "throttled",
    ),
    "413_beyond_budget": (
        lambda c: c.throttle(service="compute", status=413, times=100),
        "throttled",
    ),
    "500_first_page": (lambda c: c.fail(service="compute", times=100), "error"),
    "500_second_page": (lambda c: c.fail(service="compute", times=100, page=2), "partial"),
    "error_body_under_200": (lambda c: c.fail_with_200(service="compute", page=1), "error"),
    "error_body_under_200_second_page": (
        lambda c: c.fail_with_200(service="compute", page=2),
        "partial",
    ),
    "connection_reset": (lambda c: c.reset_connection(service="compute", times=100), "error"),
    "connection_reset_second_page": (
        lambda c: c.reset_connection(service="compute", times=100, page=2),
        "partial",
    ),
    "keystone_down": (lambda c: c.fail(service="identity", times=100), "error"),
}


@pytest.mark.parametrize("fault", [*FAULTS, "unknown_cloud", "missing_clouds_yaml"])
def test_a_failed_scope_keeps_every_row_it_had(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps, fault: str
) -> None:
    ids = add_servers(cloud, 7)
    policy = fast(sleeps, page_size=3, max_throttle_retries=1, max_server_error_retries=1)
    scan(engine, clouds_yaml, policy, services=["compute"])
    before = live(engine, "vm")
    for gone in (ids[0], ids[5], ids[6]):  # gone, but the next listing cannot prove it
        cloud.delete_server(gone)
    path, cloud_name, expected = clouds_yaml, "sim", "error"
    if fault == "unknown_cloud":
        cloud_name = "no-such-cloud"
    elif fault == "missing_clouds_yaml":
        path = clouds_yaml + ".moved"
    else:
        arm, expected = FAULTS[fault]
        arm(cloud)

    statuses = scan(engine, path, policy, services=["compute"], cloud=cloud_name)

    assert statuses["vm/RegionOne/*"] == expected
    assert live(engine, "vm") == before


def test_revival_when_a_soft_deleted_server_is_restored(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    server = cloud.add_server("edu", name="portal", tags=[f"{NOVA_TAG}=JS-EDU-0001"])
    scan(engine, clouds_yaml, fast(sleeps))
    cloud.set_server_status(server, "SOFT_DELETED")  # `openstack server delete` with reclaim
    scan(engine, clouds_yaml, fast(sleeps))
    assert live(engine, "vm") == set()

    cloud.set_server_status(server, "ACTIVE")  # `openstack server restore` within the window
    scan(engine, clouds_yaml, fast(sleeps))

    assert live(engine, "vm") == {("portal", "JS-EDU-0001")}
    assert [t for t, _ in events(engine, "portal")] == ["created", "deleted", "reappeared"]


def test_events_record_creation_and_a_diff_of_what_changed(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    server = cloud.add_server("edu", name="portal", tags=[f"{NOVA_TAG}=JS-EDU-0001"])
    scan(engine, clouds_yaml, fast(sleeps))
    cloud.set_server_status(server, "SHUTOFF")

    scan(engine, clouds_yaml, fast(sleeps))
    scan(engine, clouds_yaml, fast(sleeps))  # nothing changed: nothing written

    history = events(engine, "portal")
    assert [t for t, _ in history] == ["created", "updated"]
    assert history[1][1]["state"] == {"from": "active", "to": "shutoff"}  # type: ignore[index]


def test_stored_rows_carry_no_secret(
    engine: Any, cloud: OpenStackSimulator, clouds_yaml: str, sleeps: Sleeps
) -> None:
    from sqlmodel import Session, select

    from inventory.models import Resource

    secret = "Zq8WmR2xLp5TvN7kJd3F"
    cloud.add_server("edu", name="leaky", tags=[f"api_token={secret}", f"{NOVA_TAG}=JS-EDU-1"],
                     metadata={"db_password": secret, "note": f"password={secret}"})  # fmt: skip
    cloud.add_volume("edu", name="leaky-data", size_gib=1, metadata={"token": secret})
    scan(engine, clouds_yaml, fast(sleeps))

    with Session(engine) as session:
        stored = [(r.tags, r.raw, r.system_code) for r in session.exec(select(Resource))]

    text = json.dumps(stored, default=str)
    assert len(stored) == 2 and secret not in text and SIM_PASSWORD not in text
    assert ("JS-EDU-1" in text) and "adminPass" not in text and "addresses" not in text


def test_a_random_looking_system_code_is_never_redacted_in_either_spelling() -> None:
    # A generated code is as random as a token; the system key is exempt in both spellings,
    # in the row's tags and in its stored raw alike, while a secret beside it is redacted.
    code = "Xk29fQ7LmZ3pR8vT2nW5"
    raw = payload("servers_detail")["servers"][0] | {
        "tags": [f"yiyun.io:system={code}"],
        "metadata": {"yiyun.io:system": code, "build": "Tq82LmX9vZ3kR7pW4nY6"},
    }

    row = normalize_server(raw, **SCOPE)

    assert row.system_code == code
    assert row.tags == {"yiyun.io:system": code, "build": REDACTED}
    assert row.raw["tags"] == [f"yiyun.io:system={code}"]
    assert row.raw["metadata"] == {"yiyun.io:system": code, "build": REDACTED}


def test_a_secret_under_a_tag_key_given_twice_is_still_redacted() -> None:
    raw = payload("servers_detail")["servers"][0] | {
        "tags": ["note=Tq82LmX9vZ3kR7pW4nY6", "note=plain"],
    }

    row = normalize_server(raw, **SCOPE)

    assert row.raw["tags"] == ["note=<redacted>", "note=plain"]
