"""`yiyun infra import-spec` for vSphere and OpenStack sources, beside AWS, on both databases."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from infra.import_spec import SOURCE_MAPPINGS
from inventory.models import Node, Resource, System
from inventory.settings import Settings
from tests.conftest import missing_peer
from tests.infra.test_import_spec import IMPORT_FILE_SCHEMA

# pulumi_openstack warns about its own deprecated classes when it loads.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_openstack.*")

runner = CliRunner()
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
MANAGED = {"yiyun.io/managed-by": "pulumi"}
VSPHERE_VM = "vsphere:index/virtualMachine:VirtualMachine"
NOVA = "openstack:compute/instance:Instance"
CINDER = "openstack:blockstorage/volume:Volume"
SWIFT = "openstack:objectstorage/container:Container"
EC2 = "aws:ec2/instance:Instance"
S3 = "aws:s3/bucket:Bucket"

# The node's sources as `nodes apply` stores them: the id under "name", and the kind.
SOURCES = [
    {"name": "vc-room", "kind": "vsphere"},
    {"name": "os-room", "kind": "openstack"},
    {"name": "aws-room", "kind": "aws"},
]

# What the vSphere collector records beside the allowlisted properties, by native id.
RAWS = {"4210-3333": {"parent": "group-v9", "inventoryPath": "/DC0/vm/教育%2f公共/edu-web"}}

# (source, kind, native_id, name, scope, system, state, tags) on node room-a.
Row = tuple[str, str, str, str | None, str, str | None, str | None, dict[str, str]]
ESTATE: list[Row] = [
    # vSphere: native id = config.instanceUuid, scope = the datacenter listed.
    ("vc-room", "vm", "4210-aaaa", "edu-web", "DC0", "EDU-01", "running", {}),
    ("vc-room", "vm", "4210-bbbb", "教务前端", "DC0", "EDU-01", "stopped", {}),
    # The same name in a folder: the path the collector recorded (RAWS) tells them apart.
    ("vc-room", "vm", "4210-3333", "edu-web", "DC0", "EDU-01", "running", {}),
    # Same name in one datacenter (one is managed already): the path cannot tell them apart.
    ("vc-room", "vm", "4210-cccc", "dup", "DC0", None, "running", {}),
    ("vc-room", "vm", "4210-dddd", "dup", "DC0", None, "running", MANAGED),
    # The same name in another datacenter is another path.
    ("vc-room", "vm", "4210-eeee", "dup", "DC1", None, "running", {}),
    ("vc-room", "vm", "4210-ffff", "sec-db", "DC0", "SEC-01", "running", {}),
    # A classified VM and an ordinary one of the same name: the reader who may not see the
    # first must not learn of it from the second being left out.
    ("vc-room", "vm", "4210-1111", "twin", "DC0", "SEC-01", "running", {}),
    ("vc-room", "vm", "4210-2222", "twin", "DC0", "EDU-02", "running", {}),
    ("vc-room", "vsphere_host", "host-21", "esxi-01", "DC0", None, "connected", {}),
    ("vc-room", "vsphere_cluster", "domain-c7", "cluster-01", "DC0", None, None, {}),
    ("vc-room", "datastore", "datastore-15", "LocalDS_0", "DC0", None, "accessible", {}),
    # OpenStack: Nova server ids, Cinder volume ids, Swift "<project_id>/<name>".
    ("os-room", "vm", "5f0c-server-a", "portal", "RegionOne", "EDU-01", "active", {}),
    ("os-room", "vm", "5f0c-server-b", "going", "RegionOne", None, "soft_deleted", {}),
    ("os-room", "volume", "9a1e-volume-a", "data", "RegionOne", "EDU-02", "in-use", {}),
    ("os-room", "bucket", "p-edu/archive", "archive", "RegionOne", "EDU-02", None, {}),
    ("os-room", "bucket", "p-edu/logs", "logs", "RegionOne", None, None, {}),
    ("os-room", "bucket", "p-tax/logs", "logs", "RegionOne", None, None, {}),
    ("os-room", "db_instance", "77aa-trove", "pg", "RegionOne", "EDU-02", "active", {}),
    ("os-room", "hypervisor", "1", "compute-01", "RegionOne", None, "up", {}),
    # AWS on the same node: the same row kinds, its own types.
    ("aws-room", "vm", "i-0a1", "edu-web", "edu-1", "EDU-01", "running", {}),
    ("aws-room", "bucket", "edu-archive", "edu-archive", "edu-1", "EDU-02", None, {}),
    # A source no longer in the node's sources: retired by the next scan, never adopted.
    ("vc-old", "vm", "4210-0000", "old", "DC0", None, "running", {}),
]  # fmt: skip

EXPECTED = {
    (VSPHERE_VM, "/DC0/vm/edu-web"),
    (VSPHERE_VM, "/DC0/vm/教务前端"),
    (VSPHERE_VM, "/DC0/vm/教育%2f公共/edu-web"),
    (VSPHERE_VM, "/DC1/vm/dup"),
    (VSPHERE_VM, "/DC0/vm/twin"),  # EDU-02's: the classified twin is not counted for this reader
    (NOVA, "5f0c-server-a"),
    (CINDER, "9a1e-volume-a"),
    (SWIFT, "archive"),
    (EC2, "i-0a1"),
    (S3, "edu-archive"),
}


@pytest.fixture
def room(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        session.add(
            Node(id="room-a", name="机房A", level="server_room", one_cloud=False, sources=SOURCES)
        )
        for code, department, classified in (
            ("EDU-01", "JS-EDU", False),
            ("EDU-02", "JS-EDU", False),
            ("SEC-01", "JS-SEC", True),
        ):
            session.add(
                System(
                    code=code, name=f"系统{code}", department_code=department, city="省级",
                    mlps_level=2, classified=classified,
                )
            )  # fmt: skip
        for source, kind, native_id, name, scope, system, state, tags in ESTATE:
            labels = {**tags, **({"yiyun.io/system": system} if system else {})}
            session.add(
                Resource(
                    node_id="room-a", source=source, kind=kind, native_id=native_id, name=name,
                    scope=scope, region=scope, state=state, system_code=system, tags=labels,
                    raw=RAWS.get(native_id, {}), content_hash="x", first_seen_at=NOW,
                    last_seen_at=NOW,
                )
            )  # fmt: skip
        session.commit()
    return settings


def import_spec(*args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["infra", "import-spec", "--node", "room-a", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_each_row_maps_by_its_source_kind_to_the_providers_type_and_import_id(
    room: Settings,
) -> None:
    spec, stderr = import_spec()

    jsonschema.validate(spec, IMPORT_FILE_SCHEMA)
    assert Counter((r["type"], r["id"]) for r in spec["resources"]) == Counter(EXPECTED)
    names = [r["name"] for r in spec["resources"]]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names), names
    assert "10 resources to adopt on room-a; 1 already managed by Pulumi" in stderr


def test_names_are_the_same_scheme_for_every_provider(room: Settings) -> None:
    spec, _ = import_spec()
    by_id = {r["id"]: r["name"] for r in spec["resources"]}
    assert by_id["5f0c-server-a"] == "js-edu-edu-01-vm-portal"
    assert by_id["archive"] == "js-edu-edu-02-bucket-archive"
    assert by_id["/DC1/vm/dup"] == "unattributed-vm-dup"
    # A name with no ASCII falls back to the instance uuid.
    assert by_id["/DC0/vm/教务前端"] == "js-edu-edu-01-vm-4210-bbbb"
    # A vSphere VM and an EC2 instance of the same system and name: each gets an id hash.
    assert re.fullmatch(r"js-edu-edu-01-vm-edu-web-[0-9a-f]{6}", by_id["/DC0/vm/edu-web"])
    assert re.fullmatch(r"js-edu-edu-01-vm-edu-web-[0-9a-f]{6}", by_id["i-0a1"])
    assert by_id["/DC0/vm/edu-web"] != by_id["i-0a1"]
    assert import_spec()[0] == spec  # stable


def test_what_is_left_out_is_said_with_its_reason(room: Settings) -> None:
    _, stderr = import_spec()
    said = one_line(stderr)
    for line in (
        "not in the spec: 1 vsphere_host — ESXi hosts belong to the vCenter's own lifecycle",
        "not in the spec: 1 vsphere_cluster — the vCenter's clusters are the platform",
        "not in the spec: 1 datastore — datastores belong to the vCenter's own lifecycle",
        "not in the spec: 1 hypervisor — hypervisors are the OpenStack cloud's own capacity",
        "not in the spec: 1 db_instance — pulumi-openstack cannot import a Trove instance",
        "not in the spec: 1 vm — being deleted at the source",
        "not in the spec: 1 vm — the same import path as another VM of the node",
        "not in the spec: 2 bucket — the same container name in another project of the node",
        "not in the spec: 1 vm — its source is no longer in the node's sources",
        "not in the spec: 2 vm — of a classified (涉密) system",
    ):
        assert line in said, line


def test_a_classified_systems_vms_are_withheld_and_named_neutrally_when_asked_for(
    room: Settings,
) -> None:
    result = runner.invoke(app, ["infra", "import-spec", "--node", "room-a"])
    assert result.exit_code == 0, result.output
    assert "sec-db" not in result.output and "SEC-01" not in result.output
    # Only `dup` shares a path: the twin's classified peer is not counted for this reader.
    assert "1 vm — the same import path" in one_line(result.stderr)
    assert "/DC0/vm/twin" in result.stdout

    spec, stderr = import_spec("--include-classified")
    by_id = {r["id"]: r for r in spec["resources"]}
    classified = by_id["/DC0/vm/sec-db"]
    assert classified["type"] == VSPHERE_VM
    assert re.fullmatch(r"classified-vm-[0-9a-f]{6}", classified["name"])
    # Now the twins are both visible, and one path cannot adopt both.
    assert "/DC0/vm/twin" not in by_id
    assert "3 vm — the same import path as another VM of the node" in one_line(stderr)
    assert "SEC-01" not in json.dumps(spec) and "js-sec" not in json.dumps(spec)


def test_kind_filter_and_kinds_that_are_never_adopted(room: Settings) -> None:
    spec, _ = import_spec("--kind", "bucket")
    assert {(r["type"], r["id"]) for r in spec["resources"]} == {
        (SWIFT, "archive"),
        (S3, "edu-archive"),
    }

    for kind, message in (
        ("datastore", "kind datastore is not adopted into Pulumi"),
        ("vsphere_host", "kind vsphere_host is not adopted into Pulumi"),
        ("hypervisor", "kind hypervisor is not adopted into Pulumi"),
        ("datastor", "did you mean datastore?"),
    ):
        result = runner.invoke(app, ["infra", "import-spec", "--node", "room-a", "--kind", kind])
        assert result.exit_code == 2, kind
        assert message in one_line(result.output), result.output
        assert result.stdout.strip() == ""


def test_type_tokens_name_resource_classes_of_the_installed_providers() -> None:
    packages = {"vsphere": "pulumi_vsphere", "openstack": "pulumi_openstack"}
    try:
        for package in packages.values():
            importlib.import_module(package)
    except ImportError as error:
        missing_peer(f"Pulumi providers not importable ({error}); pip install -e '.[infra]'")
    tokens = {m.type_token for table in SOURCE_MAPPINGS.values() for m in table.values()}
    # Trove's type exists (the reason it is left out is that it cannot be imported).
    for token in sorted(tokens | {"openstack:database/instance:Instance"}):
        package, module, class_name = token.split(":")
        # vsphere:index/… lives at the package's top; openstack:compute/… in .compute.
        path = packages[package] + (
            "" if module.startswith("index/") else "." + module.split("/")[0]
        )
        resource_class = getattr(importlib.import_module(path), class_name)
        assert resource_class.pulumi_type == token
        assert f"{class_name} is deprecated" not in inspect.getsource(resource_class), token
