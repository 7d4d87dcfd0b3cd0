"""The vSphere collector: pure normalize, and real paged listings from vcsim."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inventory.collectors.base import DENIED, ScopeFailed, ScopeStats
from inventory.collectors.vsphere import (
    KINDS,
    Attribution,
    ListPolicy,
    free_gib,
    normalize_datastore,
    normalize_host,
    normalize_vm,
    plan_scopes,
    scope_failure,
    tagged_systems,
)
from inventory.sim.vsphere import (
    SIM_PASSWORD,
    SIM_USER,
    VcsimModel,
    VsphereSimulator,
)
from tests.inventory.vsphere_peer import rest, running_vcsim, vsphere_session

DATA = Path(__file__).parents[2] / "data" / "vsphere"
MODEL = VcsimModel(datacenters=1, clusters=1, hosts_per_cluster=2, standalone_hosts=1, vms=3)
SYSTEM = "yiyun.io/system"


def payload(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


# --- normalize (pure) ------------------------------------------------------------------------


def test_normalize_vm() -> None:
    raw = payload("vm")
    row = normalize_vm(raw, scope="DC0", attribution=Attribution(tagged={"vm-42": "gov-portal"}))
    assert row is not None
    assert (row.kind, row.native_id, row.name, row.state) == (
        "vm", "5029a4b1-7e0c-4c7d-9e43-7f0b2f1e0c42", "portal-web-01", "running",
    )  # fmt: skip
    assert (row.vcpu, row.memory_gib, row.storage_gib) == (4, 8.0, 60.0)
    assert row.created_at_source == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert row.system_code == "gov-portal"
    assert row.scope == "DC0"
    # Only allowlisted properties, and JSON-safe.
    assert "config.annotation" not in row.raw
    assert "customValue" not in row.raw
    json.dumps(row.raw)


def test_powered_off_vm_is_stopped_and_live() -> None:
    raw = payload("vm") | {"runtime.powerState": "poweredOff"}
    row = normalize_vm(raw, scope="DC0", attribution=Attribution())
    assert row is not None
    assert (row.state, row.terminal) == ("stopped", False)


def test_template_is_not_a_row() -> None:
    raw = payload("vm") | {"config.template": True}
    assert normalize_vm(raw, scope="DC0", attribution=Attribution()) is None


def test_custom_attribute_attributes_when_no_tag() -> None:
    raw = payload("vm")
    row = normalize_vm(raw, scope="DC0", attribution=Attribution())
    assert row is not None
    assert row.system_code == "tax-filing"
    # Secret-shaped custom attribute values are redacted, the system attribute never is.
    assert row.tags[SYSTEM] == "tax-filing"
    assert row.tags["db-password"] != "hunter2-Very-Secret"


def test_normalize_host_and_datastore() -> None:
    host = normalize_host(payload("host"), scope="DC0", attribution=Attribution())
    assert (host.kind, host.native_id, host.state, host.vcpu, host.memory_gib) == (
        "vsphere_host", "host-21", "connected", 32, 256.0,
    )  # fmt: skip
    store = normalize_datastore(payload("datastore"), scope="DC0", attribution=Attribution())
    assert (store.kind, store.native_id, store.storage_gib, free_gib(store)) == (
        "datastore", "datastore-11", 2048.0, 512.0,
    )  # fmt: skip


def test_fault_names_become_codes() -> None:
    from pyVmomi import vim, vmodl

    denied = scope_failure(vim.fault.NoPermission(msg="nope"), yielded=False)
    assert (denied.status, denied.code) == (DENIED, "NoPermission")
    broken = scope_failure(vmodl.fault.InvalidArgument(msg="bad"), yielded=True)
    assert (broken.status, broken.code) == ("partial", "InvalidArgument")


def test_password_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="password_env"):
        plan_scopes(
            node_id="n",
            source={"host": "h", "username": "u", "password": "p", "datacenters": ["DC0"]},
        )


# --- listing from vcsim ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vcsim() -> Iterator[VsphereSimulator]:
    with running_vcsim(MODEL) as simulator:
        yield simulator


@pytest.fixture
def source(vcsim: VsphereSimulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("YIYUN_TEST_VSPHERE_PASSWORD", SIM_PASSWORD)
    return {
        "kind": "vsphere",
        "name": "room-a",
        "host": vcsim.host,
        "port": vcsim.port,
        "username": SIM_USER,
        "password_env": "YIYUN_TEST_VSPHERE_PASSWORD",
        "datacenters": ["DC0"],
        "verify_tls": False,
        "max_objects": 2,
    }


@pytest.fixture
def service(vcsim: VsphereSimulator) -> Iterator[Any]:
    with vsphere_session(vcsim) as instance:
        yield instance


def _vms(service: Any) -> list[Any]:
    from pyVmomi import vim

    content = service.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(view.view, key=lambda vm: vm._moId)
    finally:
        view.Destroy()


def _scope(source: dict[str, Any], kind: str, **options: Any) -> Any:
    scopes = {s.kind: s for s in plan_scopes(node_id="room-a", source=source, **options)}
    return scopes[kind]


def test_plan_scopes_one_per_kind_and_datacenter(source: dict[str, Any]) -> None:
    source = source | {"datacenters": ["DC0", "DC1"]}
    keys = {s.key for s in plan_scopes(node_id="room-a", source=source)}
    assert keys == {("room-a", "room-a", kind, dc) for kind in KINDS for dc in ("DC0", "DC1")}


def test_multi_page_listing_of_vms_keyed_by_instance_uuid(source: dict[str, Any]) -> None:
    scope = _scope(source, "vm", use_tags=False)
    pages = list(scope.pages(scope.stats))
    rows = [row for page in pages for row in page]
    assert len(rows) == MODEL.vm_count
    assert scope.stats.pages == len(pages) > 1
    assert all(len(page) <= 2 for page in pages)
    assert len({row.native_id for row in rows}) == MODEL.vm_count
    assert all(row.native_id and len(row.native_id) == 36 for row in rows)
    assert all(row.state in ("running", "stopped", "suspended") for row in rows)
    assert all(row.vcpu and row.memory_gib for row in rows)


def test_hosts_clusters_datastores(source: dict[str, Any]) -> None:
    counts = {}
    for kind in ("vsphere_host", "vsphere_cluster", "datastore"):
        scope = _scope(source, kind, use_tags=False)
        rows = [row for page in scope.pages(scope.stats) for row in page]
        assert all(row.vcpu or row.storage_gib for row in rows), kind
        counts[kind] = len(rows)
    assert counts["vsphere_host"] == MODEL.host_count
    assert counts["vsphere_cluster"] == MODEL.clusters
    assert counts["datastore"] >= 1


def test_template_is_skipped(source: dict[str, Any], service: Any) -> None:
    vm = _vms(service)[0]
    from pyVim.task import WaitForTask

    if vm.runtime.powerState == "poweredOn":
        WaitForTask(vm.PowerOffVM_Task())
    pool, host = vm.resourcePool, vm.runtime.host
    vm.MarkAsTemplate()
    try:
        scope = _scope(source, "vm", use_tags=False)
        rows = [row for page in scope.pages(scope.stats) for row in page]
        assert len(rows) == MODEL.vm_count - 1
        assert vm.config.instanceUuid not in {row.native_id for row in rows}
    finally:
        vm.MarkAsVirtualMachine(pool=pool, host=host)


def test_attribution_from_tag_and_custom_attribute(
    vcsim: VsphereSimulator, source: dict[str, Any], service: Any
) -> None:
    tagged, attributed = _vms(service)[-2:]
    session = rest(vcsim, "/com/vmware/cis/session")
    category = rest(
        vcsim, "/com/vmware/cis/tagging/category",
        {"create_spec": {"name": SYSTEM, "description": "", "cardinality": "SINGLE",
                         "associable_types": ["VirtualMachine"]}},
        session,
    )  # fmt: skip
    tag = rest(
        vcsim, "/com/vmware/cis/tagging/tag",
        {"create_spec": {"name": "gov-portal", "description": "", "category_id": category}},
        session,
    )  # fmt: skip
    target = {"object_id": {"id": tagged._moId, "type": "VirtualMachine"}}
    rest(vcsim, f"/com/vmware/cis/tagging/tag-association/id:{tag}?~action=attach", target, session)
    from pyVmomi import vim

    fields = service.RetrieveContent().customFieldsManager
    key = fields.AddCustomFieldDef(name=SYSTEM, moType=vim.VirtualMachine).key
    fields.SetField(entity=attributed, key=key, value="tax-filing")

    source = source | {"rest_url": vcsim.base_url}
    from inventory.collectors.vsphere import parse_source

    assert tagged_systems(parse_source(source), stats=ScopeStats()) == {tagged._moId: "gov-portal"}
    scope = _scope(source, "vm")
    rows = {row.raw["moref"]: row for page in scope.pages(scope.stats) for row in page}
    assert rows[tagged._moId].system_code == "gov-portal"
    assert rows[attributed._moId].system_code == "tax-filing"


def test_expired_session_is_reestablished_once(source: dict[str, Any]) -> None:
    scope = _scope(source, "vm", use_tags=False)
    shared = scope.pages.args[0]
    pages = scope.pages(scope.stats)
    first = next(pages)
    shared.session.instance.content.sessionManager.Logout()
    rest_rows = [row for page in pages for row in page]
    ids = [row.native_id for row in first + rest_rows]
    assert len(ids) == len(set(ids)) == MODEL.vm_count
    assert shared.session.logins == 2
    assert scope.stats.retries == 1


def test_session_expiring_twice_fails_the_scope(source: dict[str, Any]) -> None:
    scope = _scope(source, "vm", use_tags=False, policy=ListPolicy(max_objects=2))
    shared = scope.pages.args[0]
    pages = scope.pages(scope.stats)
    next(pages)
    shared.session.instance.content.sessionManager.Logout()
    next(pages)  # re-established
    shared.session.instance.content.sessionManager.Logout()
    with pytest.raises(ScopeFailed) as failed:
        list(pages)
    assert (failed.value.status, failed.value.code) == (DENIED, "NotAuthenticated")


def test_normalize_vm_storage_is_its_disks_capacity_else_provisioned_space() -> None:
    gib = 2**30
    raw = payload("vm") | {"disks": [{"key": 2000, "capacityInBytes": 100 * gib},
                                     {"key": 2001, "capacityInBytes": 20 * gib}]}  # fmt: skip
    without = {k: v for k, v in payload("vm").items() if k != "disks"}
    without |= {"summary.storage.committed": 30 * gib, "summary.storage.uncommitted": 10 * gib}

    with_disks = normalize_vm(raw, scope="DC0", attribution=Attribution(SYSTEM))
    provisioned = normalize_vm(without, scope="DC0", attribution=Attribution(SYSTEM))

    assert with_disks is not None and with_disks.storage_gib == 120.0
    assert with_disks.raw["disks"] == raw["disks"]
    assert provisioned is not None and provisioned.storage_gib == 40.0


def test_a_misspelt_datacenter_fails_its_scopes_naming_the_ones_there(
    source: dict[str, Any],
) -> None:
    scope = _scope(source | {"datacenters": ["DC9"]}, "vm", use_tags=False)

    with pytest.raises(ScopeFailed) as failed:
        list(scope.pages(scope.stats))

    assert failed.value.code == "DatacenterNotFound"
    assert "'DC9'" in failed.value.message and "this vCenter has: DC0" in failed.value.message
