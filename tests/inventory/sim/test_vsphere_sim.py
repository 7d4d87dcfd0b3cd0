"""vcsim as a vSphere peer: pyvmomi lists VMs, hosts and datastores from it, paged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inventory.sim.vsphere import (
    VcsimModel,
    VsphereSimulator,
)
from tests.inventory.vsphere_peer import rest, running_vcsim, vsphere_session

MODEL = VcsimModel(datacenters=2, clusters=2, hosts_per_cluster=2, standalone_hosts=1, vms=3)
VM_PROPERTIES = [
    "config.instanceUuid",
    "runtime.powerState",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
]


@pytest.fixture(scope="module")
def vcsim() -> Iterator[VsphereSimulator]:
    with running_vcsim(MODEL) as simulator:
        yield simulator


@pytest.fixture
def service(vcsim: VsphereSimulator) -> Iterator[Any]:
    with vsphere_session(vcsim) as instance:
        yield instance


def retrieve_paged(service: Any, max_objects: int) -> tuple[dict[str, list[Any]], int]:
    """One ContainerView, one PropertyCollector retrieval, paged: ({type: objects}, pages)."""
    from pyVmomi import vim, vmodl

    collector = vmodl.query.PropertyCollector
    content = service.RetrieveContent()
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.VirtualMachine, vim.HostSystem, vim.Datastore], True
    )
    try:
        traverse = collector.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView
        )
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
            propSet=[
                collector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PROPERTIES),
                collector.PropertySpec(type=vim.HostSystem, pathSet=["name"]),
                collector.PropertySpec(type=vim.Datastore, pathSet=["name", "summary.capacity"]),
            ],
        )
        pc = content.propertyCollector
        result = pc.RetrievePropertiesEx([spec], collector.RetrieveOptions(maxObjects=max_objects))
        found: dict[str, list[Any]] = {}
        pages = 0
        while result is not None:
            pages += 1
            assert len(result.objects) <= max_objects
            for item in result.objects:
                found.setdefault(type(item.obj).__name__, []).append(item)
            result = pc.ContinueRetrievePropertiesEx(result.token) if result.token else None
        return found, pages
    finally:
        view.Destroy()


def test_pyvmomi_pages_all_vms_hosts_and_datastores(service: Any) -> None:
    found, pages = retrieve_paged(service, max_objects=4)
    total = sum(len(items) for items in found.values())
    assert pages == -(-total // 4) > 1

    vms = found["vim.VirtualMachine"]
    assert len(vms) == MODEL.vm_count
    uuids = set()
    for vm in vms:
        props = {prop.name: prop.val for prop in vm.propSet}
        assert set(props) == set(VM_PROPERTIES), vm.obj
        assert props["runtime.powerState"] in ("poweredOn", "poweredOff", "suspended")
        assert props["config.hardware.numCPU"] > 0
        assert props["config.hardware.memoryMB"] > 0
        uuids.add(props["config.instanceUuid"])
    assert len(uuids) == MODEL.vm_count

    assert len(found["vim.HostSystem"]) == MODEL.host_count
    assert len(found["vim.Datastore"]) >= MODEL.datacenters


def test_unknown_continue_token_is_a_fault(service: Any) -> None:
    from pyVmomi import vmodl

    with pytest.raises(vmodl.fault.InvalidArgument):
        service.RetrieveContent().propertyCollector.ContinueRetrievePropertiesEx("no-such-token")


def test_system_tag_through_the_rest_api(vcsim: VsphereSimulator, service: Any) -> None:
    from pyVmomi import vim

    content = service.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vm_id = view.view[0]._moId
    view.Destroy()

    session = rest(vcsim, "/com/vmware/cis/session")
    category = rest(
        vcsim,
        "/com/vmware/cis/tagging/category",
        {
            "create_spec": {
                "name": "yiyun.io/system",
                "description": "",
                "cardinality": "SINGLE",
                "associable_types": ["VirtualMachine"],
            }
        },
        session,
    )
    tag = rest(
        vcsim,
        "/com/vmware/cis/tagging/tag",
        {"create_spec": {"name": "gov-portal", "description": "", "category_id": category}},
        session,
    )
    vm = {"object_id": {"id": vm_id, "type": "VirtualMachine"}}
    rest(vcsim, f"/com/vmware/cis/tagging/tag-association/id:{tag}?~action=attach", vm, session)

    attached = rest(
        vcsim, "/com/vmware/cis/tagging/tag-association?~action=list-attached-tags", vm, session
    )
    assert attached == [tag]
    read = rest(vcsim, f"/com/vmware/cis/tagging/tag/id:{tag}", session=session)
    assert read["name"] == "gov-portal"
    assert read["category_id"] == category
    assert (
        rest(vcsim, f"/com/vmware/cis/tagging/category/id:{category}", session=session)["name"]
        == "yiyun.io/system"
    )
