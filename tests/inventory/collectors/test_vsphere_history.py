"""The vSphere collector through the real scan, on SQLite and PostgreSQL: stale rows, failed
scopes that keep their rows, revival and events. vcsim speaks plain http here so that a
FaultProxy can sit in front of it and answer as a broken vCenter or gateway would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, col, select

from inventory.collectors.vsphere import ListPolicy, plan_scopes
from inventory.models import Node, Resource, ResourceEvent
from inventory.scan import Scanner
from inventory.sim.faults import FaultProxy, ProxiedRequest
from inventory.sim.vsphere import SIM_PASSWORD, SIM_USER, VcsimModel, VsphereSimulator
from tests.inventory.vsphere_peer import running_vcsim, vsphere_session

NODE_ID = "wx-room"
SYSTEM = "yiyun.io/system"
PASSWORD_ENV = "YIYUN_TEST_VSPHERE_PASSWORD"
MODEL = VcsimModel(datacenters=1, clusters=1, hosts_per_cluster=2, standalone_hosts=1, vms=3)
# Two objects a page: six VMs are three pages, so a fault can strike after some were listed.
POLICY = ListPolicy(max_objects=2)

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>{body}</soapenv:Body>'
    "</soapenv:Envelope>"
)
SOAP = {"Content-Type": "text/xml; charset=utf-8"}


def soap_fault(fault: str, message: str) -> bytes:
    """A fault as vCenter sends it: HTTP 500 with a SOAP Fault naming the vim25 fault type."""
    detail = (
        f'<{fault}Fault xmlns="urn:vim25" xsi:type="{fault}">'
        '<object type="PropertyCollector">propertyCollector</object>'
        f"<privilegeId>System.View</privilegeId></{fault}Fault>"
    )
    body = (
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
        f"<faultstring>{message}</faultstring><detail>{detail}</detail></soapenv:Fault>"
    )
    return _ENVELOPE.format(body=body).encode()


# A well-formed answer to a continuation that carries no objects: a 200 that lies.
EMPTY_CONTINUATION = _ENVELOPE.format(
    body='<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"/>'
).encode()


def soap_call(name: str) -> Callable[[ProxiedRequest], bool]:
    marker = f"<{name} ".encode()
    return lambda request: request.path == "/sdk" and marker in request.body


CONTINUE = soap_call("ContinueRetrievePropertiesEx")
FIRST_PAGE = soap_call("RetrievePropertiesEx")


@pytest.fixture
def vcsim() -> Iterator[VsphereSimulator]:
    # One vcsim per test: each changes the inventory. Starting one takes well under a second.
    with running_vcsim(MODEL, plain_http=True) as simulator:
        yield simulator


@pytest.fixture
def proxy(vcsim: VsphereSimulator) -> Iterator[FaultProxy]:
    with FaultProxy(vcsim.base_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def source(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(PASSWORD_ENV, SIM_PASSWORD)
    parts = urlsplit(proxy.url)
    return {
        "kind": "vsphere",
        "name": "wx-vcenter",
        "host": parts.hostname,
        "port": parts.port,
        "username": SIM_USER,
        "password_env": PASSWORD_ENV,
        "datacenters": ["DC0"],
        "protocol": "http",
    }


def scan(
    engine: Any, source: dict[str, Any], *, use_tags: bool = False, guard: Any = None
) -> dict[str, str]:
    """One `yiyun scan` of the simulated vCenter; returns {kind/scope: status}."""
    node = Node(id=NODE_ID, name="无锡市自建机房", level="server_room", one_cloud=False)
    scopes = plan_scopes(
        node_id=NODE_ID, source=source, system_tag=SYSTEM, policy=POLICY, use_tags=use_tags
    )
    scanner = Scanner(engine, concurrency=4, planner=lambda _node: (scopes, []), guard=guard)
    summary = scanner.run([node])
    return {f"{o.kind}/{o.scope}": o.status for o in summary.outcomes}


def live(engine: Any, kind: str = "vm") -> set[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.name)
            .where(Resource.kind == kind)
            .where(col(Resource.deleted_at).is_(None))
        )
        return {name for name in rows if name}


def events(engine: Any) -> list[tuple[str | None, str, dict[str, Any] | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.name, ResourceEvent.type, ResourceEvent.diff)
            .join(Resource, col(Resource.id) == ResourceEvent.resource_id)
            .order_by(col(ResourceEvent.id))
        )
        return [(name, kind, diff) for name, kind, diff in rows]


def vm_named(instance: Any, name: str) -> Any:
    from pyVmomi import vim

    content = instance.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.Destroy()


def power_off(vm: Any) -> None:
    from pyVim.task import WaitForTask

    if vm.runtime.powerState == "poweredOn":
        WaitForTask(vm.PowerOffVM_Task())


def test_two_runs_tombstone_a_vm_gone_from_a_complete_listing(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any]
) -> None:
    from pyVim.task import WaitForTask

    first = scan(engine, source)
    names = live(engine)
    gone = sorted(names)[0]
    with vsphere_session(vcsim) as instance:
        vm = vm_named(instance, gone)
        power_off(vm)
        WaitForTask(vm.Destroy_Task())

    second = scan(engine, source)

    assert set(first.values()) == set(second.values()) == {"ok"}
    assert len(names) == MODEL.vm_count
    assert live(engine) == names - {gone}
    assert live(engine, "vsphere_host") and live(engine, "datastore"), "capacity rows stay"


@pytest.mark.parametrize(
    ("breakage", "status"),
    [
        ("no_permission", "denied"),
        ("session_expired_twice", "denied"),
        ("reset_every_continuation", "partial"),
        ("server_error_page_on_a_continuation", "partial"),
        ("status_200_html_on_a_continuation", "partial"),
        ("status_200_empty_continuation", "partial"),
        ("reset_every_first_page", "error"),
        ("tags_unavailable", "error"),
    ],
)
def test_a_failed_scope_keeps_every_row_it_had(
    engine: Any,
    vcsim: VsphereSimulator,
    proxy: FaultProxy,
    source: dict[str, Any],
    breakage: str,
    status: str,
) -> None:
    from pyVim.task import WaitForTask

    use_tags = breakage == "tags_unavailable"
    scan(engine, source, use_tags=use_tags)
    before = live(engine)
    with vsphere_session(vcsim) as instance:  # gone, but the next listing cannot prove it
        for name in sorted(before)[:3]:
            vm = vm_named(instance, name)
            power_off(vm)
            WaitForTask(vm.Destroy_Task())
    expired = soap_fault("NotAuthenticated", "The session is not authenticated.")
    denied = soap_fault("NoPermission", "Permission to perform this operation was denied.")
    html = b"<html><body>502 Bad Gateway</body></html>"
    {
        "no_permission": lambda: proxy.respond(FIRST_PAGE, 500, denied, headers=SOAP),
        "session_expired_twice": lambda: proxy.respond(CONTINUE, 500, expired, headers=SOAP),
        "reset_every_continuation": lambda: proxy.reset(CONTINUE),
        "server_error_page_on_a_continuation": lambda: proxy.respond(
            CONTINUE, 502, html, headers={"Content-Type": "text/html"}
        ),
        "status_200_html_on_a_continuation": lambda: proxy.respond_ok(
            CONTINUE, html, headers={"Content-Type": "text/html"}
        ),
        "status_200_empty_continuation": lambda: proxy.respond_ok(
            CONTINUE, EMPTY_CONTINUATION, headers=SOAP
        ),
        "reset_every_first_page": lambda: proxy.reset(FIRST_PAGE),
        "tags_unavailable": lambda: proxy.respond(
            lambda request: request.path.startswith("/rest/"), 503, b"unavailable"
        ),
    }[breakage]()

    statuses = scan(engine, source, use_tags=use_tags)

    assert statuses["vm/DC0"] == status
    assert live(engine) == before


EMPTY_FIRST_PAGE = _ENVELOPE.format(
    body='<RetrievePropertiesExResponse xmlns="urn:vim25"/>'
).encode()


def test_a_vcenter_answering_no_vms_is_held_by_the_sweep_guard(
    engine: Any, proxy: FaultProxy, source: dict[str, Any]
) -> None:
    # An empty first page is how vCenter says "nothing here", so it cannot be refused as
    # malformed; losing every VM at once is what the sweep guard of [truth] holds back.
    from inventory.store import SweepGuard

    guard = SweepGuard(minimum=3)  # six VMs here; the default asks for ten
    scan(engine, source, guard=guard)
    before = live(engine)
    proxy.respond_ok(FIRST_PAGE, EMPTY_FIRST_PAGE, headers=SOAP, times=None)

    statuses = scan(engine, source, guard=guard)

    assert statuses["vm/DC0"] == "held"
    assert live(engine) == before and len(before) == MODEL.vm_count


def test_revival_of_a_vm_that_comes_back(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any]
) -> None:
    scan(engine, source)
    name = sorted(live(engine))[0]
    with vsphere_session(vcsim) as instance:
        vm = vm_named(instance, name)
        power_off(vm)
        pool, host = vm.resourcePool, vm.runtime.host
        vm.MarkAsTemplate()  # a template is no evidence: the VM is gone from the listing
        scan(engine, source)
        assert name not in live(engine)
        vm.MarkAsVirtualMachine(pool=pool, host=host)

    scan(engine, source)

    assert name in live(engine)
    assert [kind for n, kind, _ in events(engine) if n == name] == [
        "created",
        "deleted",
        "reappeared",
    ]


def test_events_record_creation_and_a_diff_of_what_changed(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any]
) -> None:
    scan(engine, source)
    name = sorted(live(engine))[0]
    with vsphere_session(vcsim) as instance:
        power_off(vm_named(instance, name))

    scan(engine, source)
    scan(engine, source)  # nothing changed: nothing written

    history = [(kind, diff) for n, kind, diff in events(engine) if n == name]
    assert [kind for kind, _ in history] == ["created", "updated"]
    assert history[1][1] is not None
    assert history[1][1]["state"] == {"from": "running", "to": "stopped"}
    created = [n for n, kind, _ in events(engine) if kind == "created"]
    assert len([n for n in created if n in live(engine)]) >= MODEL.vm_count


def test_listed_hosts_and_datastores_are_the_nodes_listed_capacity_for_the_exporter(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any], settings: Any
) -> None:
    from exporters.snapshot import build_snapshot
    from tests.exporters.test_snapshot import exposition, samples

    scan(engine, source)
    with Session(engine) as session:
        session.add(Node(id=NODE_ID, name="无锡市自建机房", level="server_room", one_cloud=False))
        session.commit()
    with vsphere_session(vcsim) as instance:
        from pyVmomi import vim

        content = instance.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.HostSystem, vim.Datastore], True
        )
        hosts = [o for o in view.view if isinstance(o, vim.HostSystem)]
        cores = sum(h.summary.hardware.numCpuCores for h in hosts)
        memory = sum(h.summary.hardware.memorySize for h in hosts)
        storage = sum(d.summary.capacity for d in view.view if isinstance(d, vim.Datastore))
        view.Destroy()

    with Session(engine) as session:
        snapshot = build_snapshot(session=session, settings=settings, now=datetime.now(UTC))

    assert len(hosts) == MODEL.host_count
    assert snapshot.node_capacity_listed == {
        (NODE_ID, "vcpu"): cores,
        (NODE_ID, "memory_bytes"): memory,
        (NODE_ID, "storage_bytes"): storage,
    }
    assert not any(key[0] == NODE_ID for key in snapshot.node_capacity), "nothing declared"
    exposed = samples(exposition(snapshot))
    assert exposed[("yiyun_node_capacity_listed", (("node", NODE_ID), ("resource", "vcpu")))] == (
        cores
    )


def test_a_vm_created_after_the_freeze_is_a_freeze_violation_by_its_create_date(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any], settings: Any
) -> None:
    from datetime import date

    from inventory.sim.vsphere import VcsimInventory
    from inventory.violations import freeze_violations

    inventory = VcsimInventory(vcsim)
    try:
        for vm in inventory.datacenter.vmFolder.childEntity:
            inventory.set_created(vm, datetime(2020, 6, 1, tzinfo=UTC))
        inventory.create_vm("late-vm", disk_gib=80, created=datetime(2025, 3, 1, 9, tzinfo=UTC))
    finally:
        inventory.close()
    with Session(engine) as session:
        session.add(
            Node(
                id=NODE_ID,
                name="无锡市自建机房",
                level="server_room",
                one_cloud=False,
                frozen_since=date(2024, 1, 1),
            )
        )
        session.commit()

    scan(engine, source)

    with Session(engine) as session:
        found = freeze_violations(session=session, tz=settings.tz)
        late = session.exec(select(Resource).where(Resource.name == "late-vm")).one()
    assert [(v.kind, v.name, v.basis) for v in found] == [("vm", "late-vm", "source creation time")]
    assert late.storage_gib == 80.0, "a VM's storage is its disks' capacity"
    assert late.created_at_source is not None
    assert late.created_at_source.replace(tzinfo=UTC) == datetime(2025, 3, 1, 9, tzinfo=UTC)


def test_each_vm_records_its_inventory_path_with_its_folders(
    engine: Any, vcsim: VsphereSimulator, source: dict[str, Any]
) -> None:
    from pyVim.task import WaitForTask

    from inventory.sim.vsphere import VcsimInventory

    inventory = VcsimInventory(vcsim)
    try:
        outer = inventory.datacenter.vmFolder.CreateFolder("教育")
        inner = outer.CreateFolder("门户/前端")  # a "/" in a name is escaped in the path
        vm = inventory.create_vm("web-01")
        WaitForTask(inner.MoveIntoFolder_Task([vm]))
    finally:
        inventory.close()

    scan(engine, source)

    with Session(engine) as session:
        paths = {
            r.name: (r.raw or {}).get("inventoryPath")
            for r in session.exec(select(Resource).where(Resource.kind == "vm"))
        }
    assert paths["web-01"] == "/DC0/vm/教育/门户%2f前端/web-01"
    assert all(path == f"/DC0/vm/{name}" for name, path in paths.items() if name != "web-01")
