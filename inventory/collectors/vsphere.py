"""vSphere collector: VMs, hosts, clusters and datastores of a vCenter's datacenters (pyvmomi)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import threading
import urllib.request
import xml.parsers.expat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from inventory.collectors.allowlist import allowed_raw
from inventory.collectors.base import (
    DENIED,
    ERROR,
    PARTIAL,
    ResourceRow,
    Scope,
    ScopeFailed,
    ScopeStats,
)
from inventory.secret_shape import redact_labels

DEFAULT_SYSTEM_TAG = "yiyun.io/system"
MIB_PER_GIB = 1024
BYTES_PER_GIB = 2**30
# vSphere's own power states; a powered-off VM still holds its disks and its reservation
# (as a stopped EC2 instance does), so it is live.
VM_STATES = {"poweredOn": "running", "poweredOff": "stopped", "suspended": "suspended"}
# Faults that say "these credentials may not do this"; anything else is an error.
DENIED_FAULTS = frozenset({"NoPermission", "NotAuthenticated", "InvalidLogin", "NoPermissionOnAD"})
# A dropped connection, an HTTP answer that is not SOAP (a gateway's 502, a 500 page), or a
# body that is not XML: the transport failed, not vSphere.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
    xml.parsers.expat.ExpatError,
)
# The session ended under us (idle timeout, vCenter restart, an admin's TerminateSession).
EXPIRED_FAULT = "NotAuthenticated"

Raw = dict[str, Any]


# --- listing policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListPolicy:
    """How a listing pages and how often it re-establishes a session that expired."""

    max_objects: int = 500
    relogins: int = 1
    # A dropped connection or a gateway's non-SOAP answer: the listing starts again from a new
    # view this many times (its continuation token may have died with the connection).
    restarts: int = 1

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> ListPolicy:
        policy = cls()
        if source.get("max_objects") is not None:
            policy = replace(policy, max_objects=int(source["max_objects"]))
        return policy


# --- attribution and normalize (pure) --------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """Where a row's system comes from: a tag in the system category (looked up by the REST
    tagging API, moref → tag name), else the custom attribute of the same name."""

    system_tag: str = DEFAULT_SYSTEM_TAG
    tagged: Mapping[str, str] = field(default_factory=dict)

    def system_of(self, moref: str, attributes: Mapping[str, str]) -> str | None:
        tag = (self.tagged.get(moref) or "").strip()
        if tag:
            return tag
        return (attributes.get(self.system_tag) or "").strip() or None


@dataclass(frozen=True)
class KindSpec:
    """One vSphere managed-object type: the properties asked for and how they become a row."""

    kind: str  # the ledger's row kind
    vim_type: str  # the managed-object type, as `vim.<vim_type>`
    properties: tuple[str, ...]
    normalize: Callable[..., ResourceRow | None]


# The row kind → its declaration in allowlist.RAW_FIELDS (`vm` there is an EC2 instance).
RAW_KEYS = {
    "vm": "vsphere_vm",
    "vsphere_host": "vsphere_host",
    "vsphere_cluster": "vsphere_cluster",
    "datastore": "vsphere_datastore",
}


def json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def stored_raw(kind: str, raw: Mapping[str, Any], system_tag: str) -> Raw:
    """The allowlisted properties of `raw` (allowlist.RAW_FIELDS), as plain JSON values."""
    return json_safe(allowed_raw(RAW_KEYS[kind], raw, system_tag=system_tag))


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(
    kind: str, raw: Raw, *, scope: str, attribution: Attribution, **fields: Any
) -> ResourceRow:
    attributes = raw.get("customValue") or {}
    return ResourceRow(
        kind=kind,
        scope=scope,
        region=scope,
        name=raw.get("name"),
        tags=redact_labels(dict(attributes), keep=attribution.system_tag),
        raw=stored_raw(kind, raw, attribution.system_tag),
        system_code=attribution.system_of(raw["moref"], attributes),
        **fields,
    )


def normalize_vm(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow | None:
    """A VirtualMachine as a `vm` row; a template is no evidence of anything and gives None."""
    if raw.get("config.template"):
        return None
    memory_mb = raw.get("config.hardware.memoryMB")
    disks = raw.get("disks")
    committed = raw.get("summary.storage.committed")
    uncommitted = raw.get("summary.storage.uncommitted")
    if disks is not None:
        # The disks' capacity: what the VM was given, thin or thick, as the migration must
        # provide it on the unified cloud (not what its files happen to occupy today).
        sizes = [disk.get("capacityInBytes") for disk in disks]
        storage = sum(size for size in sizes if size) / BYTES_PER_GIB
    elif committed is not None:
        # Provisioned space (committed + not yet committed) when the devices were not listed.
        storage = (committed + (uncommitted or 0)) / BYTES_PER_GIB
    else:
        storage = None
    return _row(
        "vm", raw, scope=scope, attribution=attribution,
        native_id=raw["config.instanceUuid"],
        state=VM_STATES.get(str(raw.get("runtime.powerState")), "unknown"),
        vcpu=raw.get("config.hardware.numCPU"),
        memory_gib=memory_mb / MIB_PER_GIB if memory_mb is not None else None,
        storage_gib=storage,
        created_at_source=_utc(raw.get("config.createDate")),
    )  # fmt: skip


def normalize_host(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    """A HostSystem as a `vsphere_host` row: the node's physical capacity."""
    memory = raw.get("summary.hardware.memorySize")
    if raw.get("runtime.inMaintenanceMode"):
        state = "maintenance"
    else:
        state = str(raw.get("runtime.connectionState") or "unknown")
    return _row(
        "vsphere_host", raw, scope=scope, attribution=attribution,
        native_id=raw["moref"], state=state,
        vcpu=raw.get("summary.hardware.numCpuCores"),
        memory_gib=memory / BYTES_PER_GIB if memory is not None else None,
    )  # fmt: skip


def normalize_cluster(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    """A ClusterComputeResource as a `vsphere_cluster` row (its hosts' summed capacity)."""
    memory = raw.get("summary.totalMemory")
    return _row(
        "vsphere_cluster", raw, scope=scope, attribution=attribution,
        native_id=raw["moref"],
        vcpu=raw.get("summary.numCpuCores"),
        memory_gib=memory / BYTES_PER_GIB if memory is not None else None,
    )  # fmt: skip


def normalize_datastore(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    """A Datastore as a `datastore` row: capacity as storage_gib, free space in raw."""
    capacity = raw.get("summary.capacity")
    accessible = raw.get("summary.accessible")
    return _row(
        "datastore", raw, scope=scope, attribution=attribution,
        native_id=raw["moref"],
        state=None if accessible is None else ("accessible" if accessible else "inaccessible"),
        storage_gib=capacity / BYTES_PER_GIB if capacity is not None else None,
    )  # fmt: skip


def free_gib(row: ResourceRow) -> float | None:
    """A datastore row's free space (kept in raw; ResourceRow has no column for it)."""
    free = row.raw.get("summary.freeSpace")
    return free / BYTES_PER_GIB if free is not None else None


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("vm", "VirtualMachine", (
            "name", "config.instanceUuid", "config.uuid", "config.template",
            "config.createDate", "config.guestId", "config.hardware.numCPU",
            "config.hardware.memoryMB", "config.hardware.device", "runtime.powerState",
            "runtime.host", "summary.storage.committed", "summary.storage.uncommitted",
            "customValue", "parent",
        ), normalize_vm),
        KindSpec("vsphere_host", "HostSystem", (
            "name", "summary.hardware.uuid", "summary.hardware.numCpuCores",
            "summary.hardware.memorySize", "runtime.connectionState",
            "runtime.inMaintenanceMode", "runtime.powerState", "parent", "customValue",
        ), normalize_host),
        KindSpec("vsphere_cluster", "ClusterComputeResource", (
            "name", "summary.numCpuCores", "summary.totalMemory", "summary.numHosts",
            "customValue",
        ), normalize_cluster),
        KindSpec("datastore", "Datastore", (
            "name", "summary.url", "summary.type", "summary.capacity", "summary.freeSpace",
            "summary.accessible", "customValue",
        ), normalize_datastore),
    )
}  # fmt: skip


# --- faults ----------------------------------------------------------------------------------


def fault_name(error: BaseException) -> str:
    """A vmodl fault's WSDL name (NotAuthenticated, NoPermission), else the exception class."""
    return str(getattr(error, "_wsdlName", None) or type(error).__name__)


def _is_fault(error: BaseException) -> bool:
    from pyVmomi import vmodl

    return isinstance(error, vmodl.MethodFault)


def scope_failure(error: BaseException, *, yielded: bool) -> ScopeFailed:
    name = fault_name(error)
    message = str(getattr(error, "msg", None) or error)[:500]
    if name in DENIED_FAULTS:
        return ScopeFailed(DENIED, name, message)
    return ScopeFailed(PARTIAL if yielded else ERROR, name, message)


# --- I/O: the session and the one paged retrieval ---------------------------------------------


@dataclass(frozen=True)
class VsphereSourceConfig:
    """One `kind: vsphere` source; the password is read from the variable it names."""

    name: str
    host: str
    port: int
    username: str
    password_env: str
    datacenters: tuple[str, ...]
    verify_tls: bool = True
    ca_bundle: str | None = None
    rest_url: str | None = None
    # Test knob, not in the node file: vcsim behind the fault proxy speaks plain http.
    protocol: str = "https"

    def password(self) -> str:
        value = os.environ.get(self.password_env)
        if value is None:
            raise ScopeFailed(
                DENIED, "missing_password", f"environment variable {self.password_env} is not set"
            )
        return value

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @property
    def base_url(self) -> str:
        return self.rest_url or f"{self.protocol}://{self.host}:{self.port}"


def parse_source(source: Mapping[str, Any]) -> VsphereSourceConfig:
    if source.get("kind", "vsphere") != "vsphere":
        raise ValueError(f"not a vsphere source: kind {source.get('kind')!r}")
    if "password" in source:
        raise ValueError("a vsphere source names `password_env`, never the password itself")
    datacenters = source.get("datacenters")
    if not isinstance(datacenters, list) or not datacenters or not all(datacenters):
        raise ValueError("`datacenters` must be a non-empty list of datacenter names")
    return VsphereSourceConfig(
        name=str(source.get("name") or "vsphere"),
        host=str(source["host"]),
        port=int(source.get("port", 443)),
        username=str(source["username"]),
        password_env=str(source["password_env"]),
        datacenters=tuple(str(name) for name in datacenters),
        verify_tls=bool(source.get("verify_tls", True)),
        ca_bundle=source.get("ca_bundle"),
        rest_url=source.get("rest_url"),
        protocol="http" if source.get("protocol") == "http" else "https",
    )


class Session:
    """The source's SOAP session, shared by its scopes and re-established when it expires."""

    def __init__(self, config: VsphereSourceConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._instance: Any = None
        self.logins = 0

    def content(self, stats: ScopeStats) -> Any:
        with self._lock:
            if self._instance is None:
                self._login(stats)
            return self._instance.RetrieveContent()

    def relogin(self, stats: ScopeStats, expired: Any) -> None:
        """A new session, unless another scope already replaced the expired one."""
        with self._lock:
            if self._instance is None or self._instance is expired:
                self._login(stats)

    @property
    def instance(self) -> Any:
        return self._instance

    def _login(self, stats: ScopeStats) -> None:
        from pyVim.connect import SmartConnect

        stats.api_calls += 1
        self._instance = SmartConnect(
            host=self.config.host,
            port=self.config.port,
            user=self.config.username,
            pwd=self.config.password(),
            protocol=self.config.protocol,
            sslContext=self.config.ssl_context(),
        )
        self.logins += 1

    def close(self) -> None:
        from pyVim.connect import Disconnect

        with self._lock:
            if self._instance is not None:
                Disconnect(self._instance)
                self._instance = None


# A VM's device list is asked for only for its disks; the rest (NICs, backings, file names)
# is dropped as it is read.
DEVICES = "config.hardware.device"


def _disks(devices: Any) -> list[Raw]:
    """A VM's virtual disks as [{key, capacityInBytes}] (older vCenters give only KB)."""
    from pyVmomi import vim

    disks = []
    for device in devices or []:
        if isinstance(device, vim.vm.device.VirtualDisk):
            size = device.capacityInBytes
            if not size and device.capacityInKB is not None:
                size = device.capacityInKB * 1024
            disks.append({"key": device.key, "capacityInBytes": size})
    return disks


def _plain(name: str, value: Any, field_names: Mapping[int, str]) -> Any:
    """A pyvmomi property value as plain data: references by moref, enums as strings."""
    if name == "customValue":
        return {
            field_names[item.key]: item.value
            for item in value or []
            if item.key in field_names and isinstance(getattr(item, "value", None), str)
        }
    if hasattr(value, "_moId"):
        return value._moId
    if isinstance(value, bool | int | float | datetime) or value is None:
        return value
    return str(value)


def retrieve(
    content: Any, container: Any, vim_type: str, properties: tuple[str, ...], max_objects: int
) -> Iterator[list[tuple[str, Any]]]:
    """Pages of (moref, propSet) from one ContainerView and one paged PropertyCollector call."""
    from pyVmomi import vim, vmodl

    pc_types = vmodl.query.PropertyCollector
    managed = getattr(vim, vim_type)
    view = content.viewManager.CreateContainerView(container, [managed], True)
    try:
        traverse = pc_types.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView
        )
        spec = pc_types.FilterSpec(
            objectSet=[pc_types.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
            propSet=[pc_types.PropertySpec(type=managed, pathSet=list(properties))],
        )
        collector = content.propertyCollector
        result = collector.RetrievePropertiesEx(
            [spec], pc_types.RetrieveOptions(maxObjects=max_objects)
        )
        while result is not None:
            yield [(item.obj._moId, item.propSet) for item in result.objects]
            if not result.token:
                return
            result = collector.ContinueRetrievePropertiesEx(result.token)
            # A token promises more objects: an empty answer to it is a failure that answered
            # 200 (a gateway, a truncated reply), never the end of the listing.
            if result is None or not result.objects:
                raise ScopeFailed(
                    PARTIAL,
                    "malformed_page",
                    "ContinueRetrievePropertiesEx answered a continuation token with no objects",
                )
    finally:
        # A view of an expired session is gone already.
        with contextlib.suppress(vmodl.MethodFault, OSError):
            view.Destroy()


def _datacenter(content: Any, name: str, stats: ScopeStats) -> Any:
    from pyVmomi import vim

    stats.api_calls += 1
    found = content.searchIndex.FindByInventoryPath(name)
    if isinstance(found, vim.Datacenter):
        return found
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datacenter], True)
    try:
        stats.api_calls += 1
        names = []
        for datacenter in view.view:
            if datacenter.name == name:
                return datacenter
            names.append(datacenter.name)
    finally:
        view.Destroy()
    # Name the ones there are: the node file's `datacenters:` is most likely misspelt.
    there = ", ".join(sorted(names)[:20]) or "none"
    raise ScopeFailed(
        ERROR, "DatacenterNotFound", f"no datacenter named {name!r} (this vCenter has: {there})"
    )


def _field_names(content: Any, stats: ScopeStats) -> dict[int, str]:
    manager = content.customFieldsManager
    if manager is None:
        return {}
    stats.api_calls += 1
    return {item.key: item.name for item in manager.field or []}


def _escaped(name: str) -> str:
    """A name as vSphere writes it in an inventory path ("%", "/" and "\\" escaped)."""
    return name.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


@dataclass(frozen=True)
class VmFolders:
    """The datacenter's VM folders (moref → name, parent), for each VM's inventory path
    `/<datacenter>/vm/<folders…>/<name>`: the id pulumi-vsphere imports a VM by."""

    datacenter: str
    folders: Mapping[str, tuple[str, str | None]]

    def path(self, parent: str | None, name: str | None) -> str | None:
        parts: list[str] = []
        seen: set[str] = set()
        while parent is not None and parent in self.folders and parent not in seen:
            seen.add(parent)
            folder_name, parent = self.folders[parent]
            parts.append(_escaped(folder_name))
        if not parts or name is None:
            return None  # a VM outside the datacenter's VM folders (or unnamed): no path
        return "/" + "/".join([_escaped(self.datacenter), *reversed(parts), _escaped(name)])


FOLDER_PAGE = 1000


def _vm_folders(content: Any, container: Any, stats: ScopeStats) -> VmFolders:
    """Every folder under the datacenter, one paged retrieval (a few dozen objects)."""
    folders: dict[str, tuple[str, str | None]] = {}
    # Folders are few (dozens, rarely hundreds): one page of their own size, whatever the
    # VMs' page size is.
    pages = retrieve(content, container, "Folder", ("name", "parent"), FOLDER_PAGE)
    for page in pages:
        stats.api_calls += 1
        for moref, prop_set in page:
            props = {prop.name: prop.val for prop in prop_set}
            parent = props.get("parent")
            folders[moref] = (str(props.get("name") or moref), getattr(parent, "_moId", None))
    return VmFolders(str(container.name), folders)


def list_objects(
    session: Session,
    spec: KindSpec,
    datacenter: str,
    stats: ScopeStats,
    *,
    policy: ListPolicy,
) -> Iterator[list[Raw]]:
    """Pages of raw property dicts ({"moref", "type", <path>: value}) of one kind in one
    datacenter. A session that expires is re-established `policy.relogins` times; the page is
    then asked for again from a new view (the old token died with the old session), skipping
    the objects already handed out."""
    handed_out: set[str] = set()
    relogins = restarts = 0
    while True:
        instance = session.instance
        try:
            content = session.content(stats)
            instance = session.instance
            field_names = _field_names(content, stats)
            container = _datacenter(content, datacenter, stats)
            folders = (
                _vm_folders(content, container, stats)
                if spec.vim_type == "VirtualMachine"
                else None
            )
            pages = retrieve(content, container, spec.vim_type, spec.properties, policy.max_objects)
            while True:
                stats.api_calls += 1
                page = next(pages, None)
                if page is None:
                    return
                items = []
                for moref, prop_set in page:
                    if moref in handed_out:
                        continue
                    raw: Raw = {"moref": moref, "type": spec.vim_type}
                    for prop in prop_set:
                        if prop.name == DEVICES:
                            raw["disks"] = _disks(prop.val)
                        else:
                            raw[prop.name] = _plain(prop.name, prop.val, field_names)
                    if folders is not None:
                        raw["inventoryPath"] = folders.path(raw.get("parent"), raw.get("name"))
                    items.append(raw)
                    handed_out.add(moref)
                stats.pages += 1
                yield items
        except ScopeFailed:
            raise
        except Exception as error:
            if not _is_fault(error) and not isinstance(error, TRANSIENT_ERRORS):
                raise
            if fault_name(error) == EXPIRED_FAULT and relogins < policy.relogins:
                relogins += 1
                stats.retries += 1
                session.relogin(stats, instance)
                continue
            if isinstance(error, TRANSIENT_ERRORS) and restarts < policy.restarts:
                restarts += 1
                stats.retries += 1
                continue
            raise scope_failure(error, yielded=bool(handed_out)) from error


# --- attribution through the vAPI REST tagging API -------------------------------------------


def _rest(
    base_url: str, path: str, *, context: ssl.SSLContext, session: str | None,
    body: Any = None, auth: str | None = None, timeout: float = 30.0,
) -> Any:  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    if session is not None:
        headers["vmware-api-session-id"] = session
    data = json.dumps(body).encode() if body is not None else None
    method = "POST" if data is not None or session is None else "GET"
    request = urllib.request.Request(
        f"{base_url}/rest{path}", data=data, headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        answer = response.read()
    return json.loads(answer).get("value") if answer else None


def tagged_systems(
    config: VsphereSourceConfig, *, category: str = DEFAULT_SYSTEM_TAG, stats: ScopeStats
) -> dict[str, str]:
    """moref → system code: the tags of `category` and the objects they are attached to.

    A handful of calls whatever the estate's size: the categories, the category's tags, then
    one list-attached-objects-on-tags for all of them.
    """
    import base64

    context = config.ssl_context()
    token = base64.b64encode(f"{config.username}:{config.password()}".encode()).decode()
    call = partial(_rest, config.base_url, context=context)
    stats.api_calls += 1
    session = call("/com/vmware/cis/session", session=None, auth=f"Basic {token}")
    try:
        stats.api_calls += 1
        category_id = None
        for candidate in call("/com/vmware/cis/tagging/category", session=session) or []:
            stats.api_calls += 1
            read = call(f"/com/vmware/cis/tagging/category/id:{candidate}", session=session)
            if read["name"] == category:
                category_id = candidate
                break
        if category_id is None:
            return {}
        stats.api_calls += 1
        tag_ids = call(
            f"/com/vmware/cis/tagging/tag/id:{category_id}?~action=list-tags-for-category",
            session=session, body={},
        ) or []  # fmt: skip
        names: dict[str, str] = {}
        for tag_id in tag_ids:
            stats.api_calls += 1
            names[tag_id] = call(f"/com/vmware/cis/tagging/tag/id:{tag_id}", session=session)[
                "name"
            ]
        if not tag_ids:
            return {}
        stats.api_calls += 1
        attached = call(
            "/com/vmware/cis/tagging/tag-association?~action=list-attached-objects-on-tags",
            session=session, body={"tag_ids": tag_ids},
        ) or []  # fmt: skip
        return {
            obj["id"]: names[entry["tag_id"]]
            for entry in attached
            for obj in entry.get("object_ids") or []
        }
    finally:
        stats.api_calls += 1
        request = urllib.request.Request(
            f"{config.base_url}/rest/com/vmware/cis/session",
            headers={"vmware-api-session-id": session},
            method="DELETE",
        )
        # The session times out on its own; logging out is a courtesy.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10, context=context).close()


# --- scopes ----------------------------------------------------------------------------------


class _Source:
    """What the scopes of one source share: the SOAP session and the tag attribution."""

    def __init__(
        self, config: VsphereSourceConfig, system_tag: str, policy: ListPolicy, use_tags: bool
    ) -> None:
        self.config = config
        self.system_tag = system_tag
        self.policy = policy
        self.use_tags = use_tags
        self.session = Session(config)
        self._lock = threading.Lock()
        self._tagged: dict[str, str] | None = None

    def attribution(self, stats: ScopeStats) -> Attribution:
        if not self.use_tags:
            return Attribution(self.system_tag)
        with self._lock:
            if self._tagged is None:
                try:
                    self._tagged = tagged_systems(
                        self.config, category=self.system_tag, stats=stats
                    )
                except OSError as error:
                    # Without the tags, tagged rows would lose their system: fail, keep rows.
                    raise ScopeFailed(
                        ERROR, type(error).__name__, f"reading system tags: {error}"[:500]
                    ) from error
            return Attribution(self.system_tag, self._tagged)


def scope_pages(
    shared: _Source, spec: KindSpec, datacenter: str, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    attribution = shared.attribution(stats)
    for items in list_objects(shared.session, spec, datacenter, stats, policy=shared.policy):
        rows = (spec.normalize(raw, scope=datacenter, attribution=attribution) for raw in items)
        yield [row for row in rows if row is not None]


def plan_scopes(
    *,
    node_id: str,
    source: Mapping[str, Any],
    system_tag: str = DEFAULT_SYSTEM_TAG,
    policy: ListPolicy | None = None,
    use_tags: bool = True,
) -> list[Scope]:
    """One scope per (kind, datacenter). Planning does no I/O; the first scope logs in."""
    config = parse_source(source)
    shared = _Source(config, system_tag, policy or ListPolicy.from_source(source), use_tags)
    return [
        Scope(
            node_id=node_id,
            source=config.name,
            kind=spec.kind,
            scope=datacenter,
            pages=partial(scope_pages, shared, spec, datacenter),
        )
        for datacenter in config.datacenters
        for spec in KINDS.values()
    ]
