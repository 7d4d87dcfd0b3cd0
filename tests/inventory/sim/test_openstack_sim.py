"""The OpenStack simulator: Keystone, list shapes, paging, microversions, regions, faults, and
fidelity proven by the unmodified `openstack` CLI and openstacksdk."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import openstack
import openstack.connection
import pytest
from openstack.config.loader import OpenStackConfig

from inventory.sim import openstack as sim_module
from inventory.sim.openstack import SIM_PASSWORD, SIM_USER, OpenStackSimulator
from tests.conftest import missing_peer

Reply = tuple[int, dict[str, str], Any]


@pytest.fixture
def sim() -> Iterator[OpenStackSimulator]:
    with OpenStackSimulator(
        regions=("RegionOne", "RegionTwo"),
        services=("compute", "volumev3", "object-store", "placement", "database"),
        max_limit=3,
    ) as simulator:
        simulator.add_project("edu")
        simulator.add_project("health")
        simulator.add_user("edu-ops", "edu-password", project="edu")
        yield simulator


def call(
    sim: OpenStackSimulator,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    **query: Any,
) -> Reply:
    """One request as (status, headers, body: JSON when it parses, else text)."""
    if path.startswith("http"):
        parts = urlsplit(path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["X-Auth-Token"] = token
        payload = None
        if body is not None:
            payload = json.dumps(body)
            sent["Content-Type"] = "application/json"
        target = f"{path}?{urlencode(query)}" if query else path
        connection.request(method, target, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read().decode()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw
        return response.status, dict(response.getheaders()), parsed
    finally:
        connection.close()


def auth_body(user: str, password: str, project: str | None) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": user, "domain": {"name": "Default"}, "password": password}
            },
        }
    }
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def login(
    sim: OpenStackSimulator,
    user: str = SIM_USER,
    password: str = SIM_PASSWORD,
    project: str | None = "admin",
) -> str:
    status, headers, body = call(
        sim, "POST", "/identity/v3/auth/tokens", body=auth_body(user, password, project)
    )
    assert status == 201, body
    return headers["X-Subject-Token"]


def servers_path(sim: OpenStackSimulator, region: str = "RegionOne") -> str:
    return urlsplit(sim.endpoint("compute", region)).path + "/servers/detail"


def list_all(sim: OpenStackSimulator, path: str, key: str, token: str, **query: Any) -> list[Any]:
    """Follow `{key}_links` next links to the end, as openstacksdk does."""
    items: list[Any] = []
    status, _, body = call(sim, "GET", path, token=token, **query)
    while True:
        assert status == 200, body
        items.extend(body[key])
        links = [link["href"] for link in body.get(f"{key}_links", []) if link["rel"] == "next"]
        if not links:
            return items
        status, _, body = call(sim, "GET", links[0], token=token)


# --- Keystone ----------------------------------------------------------------------------


def test_a_token_carries_user_project_roles_expiry_and_a_catalog_per_region(
    sim: OpenStackSimulator,
) -> None:
    status, headers, body = call(
        sim, "POST", "/identity/v3/auth/tokens", body=auth_body(SIM_USER, SIM_PASSWORD, "admin")
    )

    assert status == 201 and headers["X-Subject-Token"]
    token = body["token"]
    assert (token["user"]["name"], token["project"]["name"]) == (SIM_USER, "admin")
    assert {role["name"] for role in token["roles"]} >= {"admin", "member"}
    assert datetime.fromisoformat(token["expires_at"]) > datetime.now(UTC)
    endpoints = {
        (entry["type"], endpoint["region_id"], endpoint["interface"]): endpoint["url"]
        for entry in token["catalog"]
        for endpoint in entry["endpoints"]
    }
    services = {"identity", "compute", "volumev3", "object-store", "placement", "database"}
    assert set(endpoints) == {
        (service, region, interface)
        for service in services
        for region in ("RegionOne", "RegionTwo")
        for interface in ("public", "internal")
    }
    project_id = sim.project_id("admin")
    assert endpoints[("volumev3", "RegionTwo", "public")].endswith(
        f"/r/RegionTwo/volume/v3/{project_id}"
    )
    assert (
        endpoints[("compute", "RegionOne", "public")]
        != endpoints[("compute", "RegionTwo", "public")]
    )


@pytest.mark.parametrize(
    ("user", "password", "project"),
    [
        (SIM_USER, "wrong", "admin"),
        ("nobody", SIM_PASSWORD, "admin"),
        ("edu-ops", "edu-password", "health"),  # no role there
        ("edu-ops", "edu-password", "no-such-project"),
    ],
    ids=["wrong-password", "unknown-user", "no-role-on-project", "unknown-project"],
)
def test_failed_authentication_is_401_without_a_token(
    sim: OpenStackSimulator, user: str, password: str, project: str
) -> None:
    status, headers, body = call(
        sim, "POST", "/identity/v3/auth/tokens", body=auth_body(user, password, project)
    )

    assert status == 401 and "X-Subject-Token" not in headers
    assert body["error"]["code"] == 401


def test_scoping_by_project_id_and_token_validation(sim: OpenStackSimulator) -> None:
    request = auth_body("edu-ops", "edu-password", None)
    request["auth"]["scope"] = {"project": {"id": sim.project_id("edu")}}
    status, headers, body = call(sim, "POST", "/identity/v3/auth/tokens", body=request)
    token = headers["X-Subject-Token"]

    validated = call(
        sim, "GET", "/identity/v3/auth/tokens", token=token, headers={"X-Subject-Token": token}
    )

    assert status == 201 and body["token"]["project"]["name"] == "edu"
    assert [role["name"] for role in body["token"]["roles"]] == ["member", "reader"]
    assert validated[0] == 200 and validated[2]["token"]["user"]["name"] == "edu-ops"


def test_project_listings_follow_roles(sim: OpenStackSimulator) -> None:
    admin = login(sim)
    member = login(sim, "edu-ops", "edu-password", "edu")
    member_id = sim._users["edu-ops"].id

    everything = call(sim, "GET", "/identity/v3/projects", token=admin)
    by_name = call(sim, "GET", "/identity/v3/projects", token=admin, name="edu")
    refused = call(sim, "GET", "/identity/v3/projects", token=member)
    own = call(sim, "GET", "/identity/v3/auth/projects", token=member)
    users = call(sim, "GET", f"/identity/v3/users/{member_id}/projects", token=member)

    assert {p["name"] for p in everything[2]["projects"]} == {"admin", "edu", "health"}
    assert [p["id"] for p in by_name[2]["projects"]] == [sim.project_id("edu")]
    assert refused[0] == 403
    assert [p["name"] for p in own[2]["projects"]] == ["edu"]
    assert [p["name"] for p in users[2]["projects"]] == ["edu"]


def test_version_documents_need_no_token(sim: OpenStackSimulator) -> None:
    root = call(sim, "GET", "/identity")
    v3 = call(sim, "GET", "/identity/v3")
    compute = call(sim, "GET", "/r/RegionOne/compute/")
    compute21 = call(sim, "GET", "/r/RegionOne/compute/v2.1/")
    volume = call(sim, "GET", "/r/RegionOne/volume/")

    assert root[0] == 300 and root[2]["versions"]["values"][0]["id"] == "v3.14"
    assert v3[2]["version"]["status"] == "stable"
    assert [v["id"] for v in compute[2]["versions"]] == ["v2.0", "v2.1"]
    assert (compute21[2]["version"]["min_version"], compute21[2]["version"]["version"]) == (
        "2.1",
        "2.96",
    )
    assert volume[2]["versions"][0]["version"] == "3.71"


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["none", "unknown"])
def test_service_calls_need_a_valid_token(sim: OpenStackSimulator, token: str | None) -> None:
    project_id = sim.project_id("admin")

    compute = call(sim, "GET", servers_path(sim), token=token)
    swift = call(sim, "GET", f"/r/RegionOne/object-store/v1/AUTH_{project_id}", token=token)

    assert compute[0] == 401 and compute[2]["error"]["message"].startswith("The request you")
    assert "Keystone uri=" in compute[1]["WWW-Authenticate"]
    assert swift[0] == 401 and "<h1>Unauthorized</h1>" in swift[2]


# --- Nova --------------------------------------------------------------------------------


def test_nova_pages_by_marker_and_next_link_and_each_server_comes_once(
    sim: OpenStackSimulator,
) -> None:
    added = {sim.add_server("edu", name=f"vm-{i}") for i in range(7)}
    token = login(sim)

    first = call(sim, "GET", servers_path(sim), token=token, all_tenants="True", limit=2)
    listed = list_all(sim, servers_path(sim), "servers", token, all_tenants="True", limit=2)
    capped = call(sim, "GET", servers_path(sim), token=token, all_tenants="1", limit=50)
    unknown = call(sim, "GET", servers_path(sim), token=token, all_tenants="1", marker="nope")

    next_link = first[2]["servers_links"][0]
    assert (
        next_link["rel"] == "next" and f"marker={first[2]['servers'][1]['id']}" in next_link["href"]
    )
    assert [s["id"] for s in listed] == sorted(added, key=[s["id"] for s in listed].index)
    assert {s["id"] for s in listed} == added and len(listed) == 7
    assert len(capped[2]["servers"]) == 3  # max_limit caps the page
    assert unknown[0] == 400 and "marker [nope] not found" in unknown[2]["badRequest"]["message"]


def test_a_listing_resumes_after_a_deleted_marker_without_skipping(
    sim: OpenStackSimulator,
) -> None:
    ids = [sim.add_server("edu", name=f"vm-{i}") for i in range(5)]
    token = login(sim)
    first = call(sim, "GET", servers_path(sim), token=token, all_tenants="1", limit=2)

    sim.delete_server(ids[1])  # the marker of the next page
    rest = call(sim, "GET", first[2]["servers_links"][0]["href"], token=token)

    assert [s["id"] for s in first[2]["servers"]] == ids[:2]
    assert [s["id"] for s in rest[2]["servers"]] == ids[2:4]


def test_all_tenants_is_admin_only_and_a_member_sees_its_own_project(
    sim: OpenStackSimulator,
) -> None:
    edu = {sim.add_server("edu", name=f"edu-{i}") for i in range(4)}
    health = {sim.add_server("health", name=f"health-{i}") for i in range(2)}
    admin = login(sim)
    member = login(sim, "edu-ops", "edu-password", "edu")

    own = list_all(sim, servers_path(sim), "servers", member)
    refused = call(sim, "GET", servers_path(sim), token=member, all_tenants="True")
    admin_own = list_all(sim, servers_path(sim), "servers", admin)
    filtered = list_all(
        sim,
        servers_path(sim),
        "servers",
        admin,
        all_tenants="True",
        project_id=sim.project_id("health"),
    )
    by_tenant = list_all(
        sim,
        servers_path(sim),
        "servers",
        admin,
        all_tenants="True",
        tenant_id=sim.project_id("edu"),
    )

    assert {s["id"] for s in own} == edu
    assert refused[0] == 403 and "get_all_tenants" in refused[2]["forbidden"]["message"]
    assert admin_own == []
    assert {s["id"] for s in filtered} == health
    assert {s["id"] for s in by_tenant} == edu


def test_deleted_servers_are_hidden_and_soft_deleted_ones_listed(sim: OpenStackSimulator) -> None:
    sim.add_server("edu", name="keep", status="SHELVED_OFFLOADED")
    soft = sim.add_server("edu", name="soft")
    gone = sim.add_server("edu", name="gone")
    removed = sim.add_server("edu", name="removed")
    sim.set_server_status(soft, "SOFT_DELETED")
    sim.set_server_status(gone, "DELETED")
    sim.delete_server(removed)
    token = login(sim)

    default = list_all(sim, servers_path(sim), "servers", token, all_tenants="1")
    deleted = list_all(sim, servers_path(sim), "servers", token, all_tenants="1", deleted="true")
    missing = call(
        sim, "GET", servers_path(sim).removesuffix("/detail") + f"/{removed}", token=token
    )

    assert {(s["name"], s["status"], s["OS-EXT-STS:vm_state"]) for s in default} == {
        ("keep", "SHELVED_OFFLOADED", "shelved_offloaded"),
        ("soft", "SOFT_DELETED", "soft-delete"),
    }
    assert [s["id"] for s in deleted] == [gone]
    assert missing[0] == 404 and "itemNotFound" in missing[2]


@pytest.mark.parametrize(
    ("headers", "echoed", "has_tags", "embedded_flavor"),
    [
        ({}, "2.1", False, False),
        ({"OpenStack-API-Version": "compute 2.25"}, "2.25", False, False),
        ({"OpenStack-API-Version": "compute 2.26"}, "2.26", True, False),
        ({"X-OpenStack-Nova-API-Version": "2.47"}, "2.47", True, True),
        ({"OpenStack-API-Version": "volume 3.5, compute latest"}, "2.96", True, True),
    ],
    ids=["none", "2.25", "2.26", "legacy-2.47", "latest"],
)
def test_microversions_shape_the_server_and_are_echoed(
    sim: OpenStackSimulator,
    headers: dict[str, str],
    echoed: str,
    has_tags: bool,
    embedded_flavor: bool,
) -> None:
    sim.add_server(
        "edu",
        name="web",
        tags=["prod", "yiyun.io_system=JS-EDU-0001"],
        vcpus=4,
        ram_mib=8192,
        disk_gib=80,
        metadata={"owner": "edu"},
    )
    token = login(sim)

    status, sent, body = call(
        sim, "GET", servers_path(sim), token=token, headers=headers, all_tenants="1"
    )

    server = body["servers"][0]
    assert status == 200
    assert sent["OpenStack-API-Version"] == f"compute {echoed}"
    assert sent["X-OpenStack-Nova-API-Version"] == echoed
    assert ("tags" in server) is has_tags
    if has_tags:
        assert server["tags"] == ["prod", "yiyun.io_system=JS-EDU-0001"]
    if embedded_flavor:
        assert {k: server["flavor"][k] for k in ("vcpus", "ram", "disk")} == {
            "vcpus": 4,
            "ram": 8192,
            "disk": 80,
        }
    else:
        assert set(server["flavor"]) == {"id", "links"}
    assert server["metadata"] == {"owner": "edu"}
    assert server["tenant_id"] == sim.project_id("edu")


def test_an_unsupported_microversion_is_406(sim: OpenStackSimulator) -> None:
    token = login(sim)

    status, _, body = call(
        sim,
        "GET",
        servers_path(sim),
        token=token,
        headers={"OpenStack-API-Version": "compute 2.200"},
    )

    assert status == 406 and "maximum is 2.96" in body["computeFault"]["message"]


def test_server_fields_collectors_read(sim: OpenStackSimulator) -> None:
    created = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    server_id = sim.add_server("edu", name="db-1", created=created, server_id="srv-fixed-id")
    volume_id = sim.add_volume("edu", name="data", size_gib=100, attached_to=server_id)
    token = login(sim)

    body = call(
        sim,
        "GET",
        servers_path(sim).removesuffix("/detail") + f"/{server_id}",
        token=token,
        headers={"OpenStack-API-Version": "compute 2.96"},
    )[2]

    server = body["server"]
    assert server["id"] == "srv-fixed-id" and server["created"] == "2025-03-01T08:30:00Z"
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["OS-EXT-STS:vm_state"] == "active" and server["addresses"]["private"]
    assert server["os-extended-volumes:volumes_attached"] == [
        {"id": volume_id, "delete_on_termination": False}
    ]
    assert {"user_id", "updated", "image", "links", "metadata"} <= set(server)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"tags": ["yiyun.io/system=JS-1"]}, "tag"),
        ({"tags": ["a,b"]}, "tag"),
        ({"tags": ["x" * 61]}, "tag"),
        ({"metadata": {"yiyun.io/system": "JS-1"}}, "metadata key"),
    ],
    ids=["tag-with-slash", "tag-with-comma", "tag-too-long", "metadata-key-with-slash"],
)
def test_what_nova_refuses_the_simulator_refuses(
    sim: OpenStackSimulator, kwargs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValueError, match=f"Nova refuses the {needle}"):
        sim.add_server("edu", name="x", **kwargs)


def test_a_page_builds_only_its_own_servers(
    sim: OpenStackSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [sim.add_server("edu", name=f"vm-{i:05d}") for i in range(10_000)]
    built: list[str] = []
    original = sim_module._Handler._server_body

    def counting(self: Any, call_: Any, server: Any, *, detail: bool) -> dict[str, Any]:
        built.append(server.id)
        return original(self, call_, server, detail=detail)

    monkeypatch.setattr(sim_module._Handler, "_server_body", counting)
    token = login(sim)

    body = call(sim, "GET", servers_path(sim), token=token, all_tenants="1", marker=ids[9_000])[2]

    assert [s["id"] for s in body["servers"]] == ids[9_001:9_004] == built


def test_flavors_hypervisors_and_statistics(sim: OpenStackSimulator) -> None:
    sim.add_server("edu", name="a", vcpus=8, ram_mib=16384, disk_gib=100)
    hypervisor = sim.add_hypervisor(
        hostname="cn-01.sim", vcpus=64, memory_mib=262144, local_gb=2000, vcpus_used=8
    )
    sim.add_hypervisor(hostname="cn-02.sim", vcpus=32, memory_mib=131072, local_gb=1000)
    admin, member = login(sim), login(sim, "edu-ops", "edu-password", "edu")
    compute = urlsplit(sim.endpoint("compute")).path
    old = {"OpenStack-API-Version": "compute 2.87"}
    new = {"OpenStack-API-Version": "compute 2.88"}

    flavors = call(sim, "GET", f"{compute}/flavors/detail", token=admin)[2]["flavors"]
    detail_old = call(sim, "GET", f"{compute}/os-hypervisors/detail", token=admin, headers=old)
    detail_new = call(sim, "GET", f"{compute}/os-hypervisors/detail", token=admin, headers=new)
    stats_old = call(sim, "GET", f"{compute}/os-hypervisors/statistics", token=admin, headers=old)
    stats_new = call(sim, "GET", f"{compute}/os-hypervisors/statistics", token=admin, headers=new)
    refused = call(sim, "GET", f"{compute}/os-hypervisors/detail", token=member)

    assert [(f["vcpus"], f["ram"], f["disk"]) for f in flavors] == [(8, 16384, 100)]
    first = detail_old[2]["hypervisors"][0]
    assert (first["id"], first["vcpus"], first["memory_mb"], first["local_gb"]) == (
        hypervisor,
        64,
        262144,
        2000,
    )
    assert first["vcpus_used"] == 8
    assert "vcpus" not in detail_new[2]["hypervisors"][0]
    assert stats_old[2]["hypervisor_statistics"]["vcpus"] == 96
    assert stats_new[0] == 404
    assert refused[0] == 403


# --- Cinder, Swift, Placement, Trove -----------------------------------------------------


def test_cinder_pages_volumes_with_their_fields(sim: OpenStackSimulator) -> None:
    server = sim.add_server("edu", name="app")
    attached = sim.add_volume(
        "edu",
        name="data",
        size_gib=50,
        attached_to=server,
        metadata={"yiyun.io/system": "JS-EDU-0001"},
    )
    others = {sim.add_volume("health", name=f"v{i}", size_gib=i + 1) for i in range(4)}
    admin, member = login(sim), login(sim, "edu-ops", "edu-password", "edu")
    admin_path = urlsplit(sim.endpoint("volumev3")).path + "/volumes/detail"
    member_path = urlsplit(sim.endpoint("volumev3", project="edu")).path + "/volumes/detail"

    everything = list_all(sim, admin_path, "volumes", admin, all_tenants="True")
    own = list_all(sim, member_path, "volumes", member, all_tenants="True")  # ignored: member
    wrong_project = call(sim, "GET", admin_path, token=member)

    assert {v["id"] for v in everything} == others | {attached}
    volume = next(v for v in everything if v["id"] == attached)
    assert (volume["size"], volume["status"], volume["os-vol-tenant-attr:tenant_id"]) == (
        50,
        "in-use",
        sim.project_id("edu"),
    )
    assert volume["metadata"] == {"yiyun.io/system": "JS-EDU-0001"}
    assert volume["attachments"][0]["server_id"] == server
    assert {"created_at", "volume_type", "bootable", "availability_zone"} <= set(volume)
    assert [v["id"] for v in own] == [attached]
    assert wrong_project[0] == 403


def test_swift_lists_containers_by_name_with_account_headers(sim: OpenStackSimulator) -> None:
    for name in ("c", "a", "e", "b", "d"):
        sim.add_container("edu", name, bytes_used=2**30, object_count=3)
    sim.delete_container("edu", "e")
    member = login(sim, "edu-ops", "edu-password", "edu")
    account = urlsplit(sim.endpoint("object-store", project="edu")).path

    first = call(sim, "GET", account, token=member, format="json")
    second = call(sim, "GET", account, token=member, format="json", marker="c")
    head = call(sim, "HEAD", account, token=member)
    other = call(sim, "GET", urlsplit(sim.endpoint("object-store")).path, token=member)

    assert [c["name"] for c in first[2]] == ["a", "b", "c"]
    assert [c["name"] for c in second[2]] == ["d"]
    assert first[2][0] | {"last_modified": ""} == {
        "name": "a",
        "count": 3,
        "bytes": 2**30,
        "last_modified": "",
    }
    assert head[0] == 204
    assert (head[1]["X-Account-Container-Count"], head[1]["X-Account-Bytes-Used"]) == (
        "4",
        str(4 * 2**30),
    )
    assert other[0] == 403  # another project's account


def test_placement_serves_one_provider_per_hypervisor(sim: OpenStackSimulator) -> None:
    provider = sim.add_hypervisor(
        hostname="cn-01.sim",
        vcpus=64,
        memory_mib=262144,
        local_gb=2000,
        vcpus_used=6,
        memory_mib_used=8192,
    )
    admin = login(sim)
    root = urlsplit(sim.endpoint("placement")).path

    providers = call(sim, "GET", f"{root}/resource_providers", token=admin)
    inventories = call(sim, "GET", f"{root}/resource_providers/{provider}/inventories", token=admin)
    usages = call(sim, "GET", f"{root}/resource_providers/{provider}/usages", token=admin)
    refused = call(
        sim, "GET", f"{root}/resource_providers", token=login(sim, "edu-ops", "edu-password", "edu")
    )

    assert [(p["uuid"], p["name"]) for p in providers[2]["resource_providers"]] == [
        (provider, "cn-01.sim")
    ]
    totals = {k: v["total"] for k, v in inventories[2]["inventories"].items()}
    assert totals == {"VCPU": 64, "MEMORY_MB": 262144, "DISK_GB": 2000}
    assert usages[2]["usages"] == {"VCPU": 6, "MEMORY_MB": 8192, "DISK_GB": 0}
    assert refused[0] == 403 and refused[2]["errors"][0]["status"] == 403


def test_trove_instances_only_when_the_cloud_has_database() -> None:
    with (
        OpenStackSimulator(services=("compute", "database")) as with_trove,
        OpenStackSimulator(services=("compute",)) as without,
    ):
        database = with_trove.add_database("admin", name="pg", flavor_vcpus=4, volume_gib=50)
        token = login(with_trove)
        root = urlsplit(with_trove.endpoint("database")).path

        instances = call(with_trove, "GET", f"{root}/instances", token=token)[2]["instances"]
        flavor = call(
            with_trove, "GET", f"{root}/flavors/{instances[0]['flavor']['id']}", token=token
        )[2]["flavor"]
        missing = call(
            without, "GET", "/r/RegionOne/database/v1.0/x/instances", token=login(without)
        )

    assert [(i["id"], i["name"], i["volume"]["size"]) for i in instances] == [(database, "pg", 50)]
    assert flavor["vcpus"] == 4
    assert missing[0] == 404


# --- regions -----------------------------------------------------------------------------


def test_a_region_lists_only_its_own_objects(sim: OpenStackSimulator, tmp_path: Path) -> None:
    one = {sim.add_server("edu", name=f"one-{i}") for i in range(2)}
    two = {sim.add_server("edu", name=f"two-{i}", region="RegionTwo") for i in range(4)}
    sim.add_volume("edu", name="v2", size_gib=1, region="RegionTwo")
    token = login(sim)

    raw_two = list_all(sim, servers_path(sim, "RegionTwo"), "servers", token, all_tenants="1")
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml", region="RegionTwo")
    conn = connect(clouds)
    sdk_two = {s.id for s in conn.compute.servers(all_projects=True)}
    sdk_volumes = [v.name for v in conn.block_storage.volumes(all_projects=True)]

    assert {s["id"] for s in raw_two} == two == sdk_two
    assert not one & sdk_two
    assert sdk_volumes == ["v2"]


def connect(clouds: Path) -> openstack.connection.Connection:
    """An openstacksdk connection from this clouds.yaml alone (nothing from the environment)."""
    config = OpenStackConfig(
        config_files=[str(clouds)], secure_files=[], vendor_files=[], load_envvars=False
    )
    return openstack.connection.Connection(config=config.get_one(cloud="sim"))


# --- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 413])
def test_throttle_answers_with_retry_after_then_heals(sim: OpenStackSimulator, status: int) -> None:
    token = login(sim)
    sim.throttle(service="compute", status=status, retry_after=7, times=2)

    replies = [call(sim, "GET", servers_path(sim), token=token) for _ in range(3)]

    assert [r[0] for r in replies] == [status, status, 200]
    assert replies[0][1]["Retry-After"] == "7"
    assert replies[0][2]["overLimit"] == {
        "code": status,
        "message": "This request was rate-limited.",
        "retryAfter": "7",
    }


def test_a_fault_on_page_two_spares_page_one_and_the_retry(sim: OpenStackSimulator) -> None:
    for i in range(7):
        sim.add_server("edu", name=f"vm-{i}")
    token = login(sim)
    sim.fail(service="compute", status=503, page=2)

    first = call(sim, "GET", servers_path(sim), token=token, all_tenants="1")
    second = call(sim, "GET", first[2]["servers_links"][0]["href"], token=token)
    retried = call(sim, "GET", first[2]["servers_links"][0]["href"], token=token)
    third = call(sim, "GET", retried[2]["servers_links"][0]["href"], token=token)

    assert (first[0], second[0], retried[0], third[0]) == (200, 503, 200, 200)
    assert second[2]["serviceUnavailable"]["code"] == 503
    assert len(first[2]["servers"]) + len(retried[2]["servers"]) + len(third[2]["servers"]) == 7


def test_fail_counts_times_and_other_services_are_untouched(sim: OpenStackSimulator) -> None:
    token = login(sim)
    volumes = urlsplit(sim.endpoint("volumev3")).path + "/volumes/detail"
    sim.fail(service="volumev3", times=2)

    compute = call(sim, "GET", servers_path(sim), token=token)
    cinder = [call(sim, "GET", volumes, token=token) for _ in range(3)]

    assert compute[0] == 200
    assert [r[0] for r in cinder] == [500, 500, 200]
    assert "computeFault" in cinder[0][2]


@pytest.mark.parametrize(
    ("service", "path_of", "shape"),
    [
        ("compute", lambda s: servers_path(s), "computeFault"),
        (
            "volumev3",
            lambda s: urlsplit(s.endpoint("volumev3")).path + "/volumes/detail",
            "computeFault",
        ),
        ("object-store", lambda s: urlsplit(s.endpoint("object-store")).path, "<html>"),
    ],
    ids=["compute", "volumev3", "object-store"],
)
def test_fail_with_200_sends_an_error_document_not_the_list(
    sim: OpenStackSimulator, service: str, path_of: Any, shape: str
) -> None:
    token = login(sim)
    sim.fail_with_200(service=service, page=1)

    status, _, body = call(sim, "GET", path_of(sim), token=token, format="json")
    healed = call(sim, "GET", path_of(sim), token=token, format="json")

    assert status == 200 and shape in (body if isinstance(body, str) else json.dumps(body))
    assert healed[0] == 200 and shape not in json.dumps(healed[2])


def test_reset_connection_is_seen_by_a_raw_http_client(sim: OpenStackSimulator) -> None:
    token = login(sim)
    sim.reset_connection(service="compute", page=1)
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)

    connection.request("GET", servers_path(sim), headers={"X-Auth-Token": token})
    with pytest.raises(ConnectionResetError):
        connection.getresponse()
    connection.close()

    assert call(sim, "GET", servers_path(sim), token=token)[0] == 200


def test_forbid_a_project_on_every_service_and_only_that_project(sim: OpenStackSimulator) -> None:
    edu = login(sim, "edu-ops", "edu-password", "edu")
    admin = login(sim)
    sim.forbid(project="edu")

    edu_paths = [
        servers_path(sim),
        urlsplit(sim.endpoint("volumev3", project="edu")).path + "/volumes/detail",
        urlsplit(sim.endpoint("object-store", project="edu")).path,
        "/identity/v3/auth/projects",
    ]
    refused = [call(sim, "GET", path, token=edu)[0] for path in edu_paths]
    admin_ok = call(sim, "GET", servers_path(sim), token=admin)[0]
    new_token = login(sim, "edu-ops", "edu-password", "edu")  # Keystone still issues tokens

    assert refused == [403, 403, 403, 403]
    assert admin_ok == 200 and new_token


def test_forbid_a_service_for_everyone(sim: OpenStackSimulator) -> None:
    admin = login(sim)
    sim.forbid(service="volumev3")

    cinder = call(
        sim, "GET", urlsplit(sim.endpoint("volumev3")).path + "/volumes/detail", token=admin
    )
    nova = call(sim, "GET", servers_path(sim), token=admin)

    assert cinder[0] == 403 and "forbidden" in cinder[2]
    assert nova[0] == 200


def test_expire_tokens_fails_mid_listing_and_a_new_token_works(sim: OpenStackSimulator) -> None:
    for i in range(7):
        sim.add_server("edu", name=f"vm-{i}")
    token = login(sim)
    sim.expire_tokens(after_requests=1)

    first = call(sim, "GET", servers_path(sim), token=token, all_tenants="1")
    second = call(sim, "GET", first[2]["servers_links"][0]["href"], token=token)
    fresh = login(sim)
    resumed = call(sim, "GET", first[2]["servers_links"][0]["href"], token=fresh)

    assert (first[0], second[0], resumed[0]) == (200, 401, 200)


def test_identity_faults_hit_token_issuing(sim: OpenStackSimulator) -> None:
    sim.fail(service="identity", status=503)

    failed = call(
        sim, "POST", "/identity/v3/auth/tokens", body=auth_body(SIM_USER, SIM_PASSWORD, "admin")
    )

    assert failed[0] == 503 and failed[2]["error"]["code"] == 503
    assert login(sim)


def test_heal_disarms_every_fault(sim: OpenStackSimulator) -> None:
    token = login(sim)
    sim.forbid(project="admin")
    sim.fail(service="compute", times=5)
    sim.reset_connection(service="compute", times=5)
    sim.expire_tokens(after_requests=0)

    sim.heal()

    assert call(sim, "GET", servers_path(sim), token=token)[0] == 200


def test_requests_are_recorded_with_query_and_headers(sim: OpenStackSimulator) -> None:
    token = login(sim)
    call(sim, "GET", servers_path(sim), token=token, all_tenants="True", limit=2)

    last = sim.requests[-1]

    assert (last.method, last.path, last.query) == (
        "GET",
        servers_path(sim),
        {"all_tenants": "True", "limit": "2"},
    )
    assert last.headers["x-auth-token"] == last.headers["X-Auth-Token"] == token


# --- fidelity: openstacksdk and the unmodified `openstack` CLI ---------------------------


@pytest.fixture
def estate(sim: OpenStackSimulator) -> dict[str, set[str]]:
    """Several pages of each kind (max_limit is 3) over two projects."""
    servers = {
        sim.add_server(project, name=f"{project}-vm-{i}")
        for project in ("edu", "health")
        for i in range(4)
    }
    volumes = {sim.add_volume("health", name=f"vol-{i}", size_gib=i + 1) for i in range(7)}
    for i in range(8):
        sim.add_container("admin", f"bucket-{i:02d}", bytes_used=i, object_count=i)
    return {
        "servers": servers,
        "volumes": volumes,
        "containers": {f"bucket-{i:02d}" for i in range(8)},
    }


def test_openstacksdk_lists_what_the_simulator_holds(
    sim: OpenStackSimulator, estate: dict[str, set[str]], tmp_path: Path
) -> None:
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml", region="RegionOne")
    conn = connect(clouds)

    servers = [s.id for s in conn.compute.servers(all_projects=True)]
    volumes = [v.id for v in conn.block_storage.volumes(all_projects=True)]
    containers = [c.name for c in conn.object_store.containers()]

    assert sorted(servers) == sorted(estate["servers"])
    assert sorted(volumes) == sorted(estate["volumes"])
    assert sorted(containers) == sorted(estate["containers"])
    pages = [r for r in sim.requests if r.path.endswith("/servers/detail")]
    assert len(pages) >= 3 and pages[0].headers["OpenStack-API-Version"] == "compute 2.96"


def test_openstacksdk_reauthenticates_when_its_token_expires(
    sim: OpenStackSimulator, estate: dict[str, set[str]], tmp_path: Path
) -> None:
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml", region="RegionOne")
    conn = connect(clouds)
    conn.authorize()
    sim.expire_tokens(after_requests=2)

    servers = {s.id for s in conn.compute.servers(all_projects=True)}

    assert servers == estate["servers"]
    token_requests = [r for r in sim.requests if r.path == "/identity/v3/auth/tokens"]
    assert len(token_requests) == 2


def openstack_cli(clouds: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "openstack"
    if not binary.exists():
        missing_peer("the `openstack` CLI (python-openstackclient) is not installed")
    # Only the simulator's clouds.yaml: nothing from the developer's environment may point the
    # CLI elsewhere.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OS_") and k.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    }
    env.update({"OS_CLIENT_CONFIG_FILE": str(clouds), "HOME": str(home)})
    return subprocess.run(
        [str(binary), "--os-cloud", "sim", *args, "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.peers
def test_openstack_cli_lists_the_same_servers_volumes_and_containers(
    sim: OpenStackSimulator, estate: dict[str, set[str]], tmp_path: Path
) -> None:
    clouds = sim.write_clouds_yaml(tmp_path / "clouds.yaml")

    commands = [
        ("server", "list", "--all-projects"),
        ("volume", "list", "--all-projects"),
        # Without --all the CLI asks Swift for one page only; with it, it follows markers.
        ("container", "list", "--all"),
    ]

    # The CLI spends its time starting up: run the three at once.
    with ThreadPoolExecutor(len(commands)) as pool:
        servers, volumes, containers = pool.map(
            lambda args: openstack_cli(clouds, tmp_path, *args), commands
        )

    for done in (servers, volumes, containers):
        assert done.returncode == 0, done.stderr
    assert {s["ID"] for s in json.loads(servers.stdout)} == estate["servers"]
    assert {v["ID"] for v in json.loads(volumes.stdout)} == estate["volumes"]
    assert {c["Name"] for c in json.loads(containers.stdout)} == estate["containers"]
    markers = [
        r for r in sim.requests if r.path.endswith("/servers/detail") and "marker" in r.query
    ]
    assert len(markers) >= 2  # the CLI itself followed the pages


@pytest.mark.peers
def test_openstack_cli_reports_a_forbidden_project(sim: OpenStackSimulator, tmp_path: Path) -> None:
    clouds = sim.write_clouds_yaml(
        tmp_path / "clouds.yaml", project="edu", user="edu-ops", password="edu-password"
    )
    sim.forbid(project="edu", service="compute")

    done = openstack_cli(clouds, tmp_path, "server", "list")

    assert done.returncode != 0
    assert "403" in done.stderr or "Forbidden" in done.stderr
