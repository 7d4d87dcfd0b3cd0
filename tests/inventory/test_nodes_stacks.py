"""The node file's `kind: vsphere` and `kind: openstack` sources: valid shapes, stable ids,
refused secrets and duplicate endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from inventory.nodes import (
    VsphereSource,
    duplicate_endpoints,
    parse_node_file,
)
from inventory.settings import Settings
from tests.inventory.test_nodes import (
    DROP,
    SECRET,
    changed,
    document,
    node,
    problems_of,
    stored,
    write,
)

VSPHERE: dict[str, Any] = {
    "kind": "vsphere",
    "host": "vc.wx-room.example",
    "username": "yiyun-reader@vsphere.local",
    "password_env": "YIYUN_WX_VC_PASSWORD",
    "datacenters": ["DC-Wuxi"],
}
OPENSTACK: dict[str, Any] = {
    "kind": "openstack",
    "cloud": "nj-city",
    "regions": ["RegionOne"],
}


def vsphere(**changes: Any) -> dict[str, Any]:
    return changed(VSPHERE, **changes)


def openstack(**changes: Any) -> dict[str, Any]:
    return changed(OPENSTACK, **changes)


def messages(source: dict[str, Any]) -> str:
    return "\n".join(str(p) for p in problems_of(document(node(sources=[source]))))


def test_both_kinds_load_with_defaults_and_derived_ids() -> None:
    [spec] = parse_node_file(document(node(sources=[vsphere(), openstack()])))

    first, second = (source.stored() for source in spec.sources)
    assert first["name"] == "vsphere-vc-wx-room-example"
    assert (first["port"], first["verify_tls"], first["max_objects"]) == (443, True, 500)
    assert second["name"] == "openstack-nj-city"
    assert second["services"] == ["compute", "volume", "object_store", "database"]
    assert second["projects"] is None and second["hypervisors"] is True


def test_a_vcenter_on_another_port_gets_the_port_in_its_id() -> None:
    [spec] = parse_node_file(document(node(sources=[vsphere(port=8443)])))
    assert spec.sources[0].stored()["name"] == "vsphere-vc-wx-room-example-8443"


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        (vsphere(host="https://vc.example:443"), "host name or address alone"),
        (vsphere(host="vc example"), "is not a host name"),
        (vsphere(datacenters=[]), "at least one datacenter"),
        (vsphere(datacenters=["DC0", "DC0"]), "lists a datacenter twice"),
        (vsphere(password_env=DROP), "required key 'password_env' is missing"),
        (vsphere(port=70000), "port"),
        (vsphere(max_objects=0), "max_objects"),
        (vsphere(ca_bundle="/etc/ca.pem", verify_tls=False), "ca_bundle is set"),
        (vsphere(datacenter=["DC0"]), "did you mean 'datacenters'"),
        (openstack(regions=[]), "at least one region"),
        (openstack(projects=[]), "leave it out to list every project"),
        (openstack(projects=["*"]), "'*' and '/' are not project names"),
        (openstack(services=["nova"]), "unknown service 'nova'"),
        (openstack(cloud=DROP), "required key 'cloud' is missing"),
        ({"kind": "vmware", "host": "vc"}, "did you mean 'vsphere'"),
        ({"kind": "huawei", "cloud": "x"}, "did you mean 'openstack'"),
    ],
)
def test_bad_sources_are_refused_with_a_clear_reason(source: dict[str, Any], fragment: str) -> None:
    assert fragment in messages(source)


def test_a_password_in_the_node_file_is_refused_and_never_echoed() -> None:
    text = messages(vsphere(password=SECRET))

    assert "key 'password'" in text and "looks like a credential" in text
    assert "password_env" in text, "the hint says where the password goes instead"
    assert SECRET not in text


def test_a_password_written_into_password_env_is_refused_and_never_echoed() -> None:
    text = messages(vsphere(password_env=SECRET + "!"))

    assert "must name an environment variable" in text
    assert SECRET not in text


def test_an_openstack_password_belongs_in_clouds_yaml() -> None:
    text = messages(openstack(auth={"password": SECRET}))

    assert "clouds.yaml" in text and SECRET not in text


def test_two_nodes_listing_the_same_datacenter_of_one_vcenter_are_duplicates() -> None:
    same = [vsphere(datacenters=["DC-Wuxi", "DC-Jiangyin"]) | {"name": "a"}]
    other = [vsphere(datacenters=["DC-Jiangyin"], port=443) | {"name": "b"}]
    apart = [vsphere(datacenters=["DC-Yixing"]) | {"name": "c"}]

    [duplicate] = duplicate_endpoints([("n1", same), ("n2", other)])
    assert "datacenter DC-Jiangyin" in str(duplicate.describe())
    assert duplicate_endpoints([("n1", same), ("n3", apart)]) == []


def test_two_nodes_listing_one_cloud_and_region_are_duplicates() -> None:
    first = [openstack(regions=["RegionOne", "RegionTwo"])]
    second = [openstack(regions=["RegionTwo"])]

    [duplicate] = duplicate_endpoints([("n1", first), ("n2", second)])
    assert "region RegionTwo" in str(duplicate.describe())


def test_nodes_apply_stores_the_variable_name_not_a_password(
    settings: Settings, engine: Any, tmp_path: Path
) -> None:
    path = write(tmp_path, document(node(sources=[vsphere(), openstack()])))

    result = CliRunner().invoke(app, ["--db", settings.database_url, "nodes", "apply", str(path)])

    assert result.exit_code == 0, result.output
    sources = stored(engine)["edu-dc"].sources or []
    assert [s["kind"] for s in sources] == ["vsphere", "openstack"]
    assert sources[0]["password_env"] == "YIYUN_WX_VC_PASSWORD"
    assert set(VsphereSource.model_fields) >= set(sources[0])
