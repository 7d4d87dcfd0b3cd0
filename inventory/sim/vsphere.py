"""A vSphere peer: govmomi's vcsim (tools/vcsim), built with Debian's Go and run on a free port."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

SOURCE_DIR = Path(__file__).resolve().parents[2] / "tools" / "vcsim"
BUILD_SCRIPT = SOURCE_DIR / "build.sh"
# The binary lives beside the venv's python (.venv/bin), where tools/vcsim/build.sh puts it;
# YIYUN_VCSIM names another one.
DEFAULT_BINARY = Path(sys.prefix) / "bin" / "yiyun-vcsim"
# vcsim accepts any user and password; these are placeholders, not secrets of anything.
SIM_USER = "user"
SIM_PASSWORD = "pass"


class VcsimUnavailable(RuntimeError):
    """vcsim is neither built nor buildable here (no `go`, no govmomi source, or no script).

    `missing_go` says the plain reason a person can act on: Go is not installed."""

    def __init__(self, message: str, *, missing_go: bool = False) -> None:
        super().__init__(message)
        self.missing_go = missing_go


@dataclass(frozen=True)
class VcsimModel:
    """The simulated vCenter's inventory, in govmomi's simulator.Model counts."""

    datacenters: int = 1
    clusters: int = 1  # per datacenter
    hosts_per_cluster: int = 3
    standalone_hosts: int = 1  # per datacenter
    vms: int = 2  # per cluster (its root resource pool) and per standalone host
    datastores: int = 1  # per datacenter, mounted on every host

    @property
    def vm_count(self) -> int:
        return self.datacenters * (self.clusters + self.standalone_hosts) * self.vms

    @property
    def host_count(self) -> int:
        return self.datacenters * (self.clusters * self.hosts_per_cluster + self.standalone_hosts)

    def args(self) -> list[str]:
        return [
            f"-dc={self.datacenters}",
            f"-cluster={self.clusters}",
            f"-host={self.hosts_per_cluster}",
            f"-standalone={self.standalone_hosts}",
            f"-vm={self.vms}",
            f"-ds={self.datastores}",
        ]


def _stale(binary: Path) -> bool:
    if not binary.exists():
        return True
    sources = list(SOURCE_DIR.glob("*.go"))
    return any(source.stat().st_mtime > binary.stat().st_mtime for source in sources)


def vcsim_binary() -> Path:
    """The vcsim binary, built on first use (and after tools/vcsim changes) when Go is here."""
    named = os.environ.get("YIYUN_VCSIM")
    if named:
        if not os.access(named, os.X_OK):
            raise VcsimUnavailable(f"YIYUN_VCSIM={named} is not an executable")
        return Path(named)
    binary = DEFAULT_BINARY
    if not _stale(binary):
        return binary
    if not BUILD_SCRIPT.exists():
        raise VcsimUnavailable(f"{binary} is missing and {BUILD_SCRIPT} is not here to build it")
    if shutil.which("go") is None:
        raise VcsimUnavailable(
            f"{binary} is missing and `go` is not installed "
            "(apt-get install golang-go golang-github-vmware-govmomi-dev)",
            missing_go=True,
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may all want it at once: one builds, the others wait for it.
    with open(binary.parent / ".yiyun-vcsim.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stale(binary):
            built = subprocess.run(
                [str(BUILD_SCRIPT), str(binary)], capture_output=True, text=True, check=False
            )
            if built.returncode != 0:
                raise VcsimUnavailable(f"building vcsim failed:\n{built.stderr.strip()}")
    return binary


def unverified_context() -> ssl.SSLContext:
    """vcsim serves httptest's self-signed certificate: a test peer, never a real endpoint."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class VsphereSimulator:
    """One vcsim process serving `model`; `url` is its SDK URL (https://user:pass@host:port/sdk)."""

    def __init__(
        self,
        model: VcsimModel | None = None,
        *,
        start_timeout: float = 30.0,
        plain_http: bool = False,
    ) -> None:
        self.model = model or VcsimModel()
        self.start_timeout = start_timeout
        # Plain http lets a FaultProxy (inventory/sim/faults.py) sit in front of it.
        self.plain_http = plain_http
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 443

    @property
    def base_url(self) -> str:
        """https://host:port, without credentials or path (the REST API is under /rest)."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, f"{self.host}:{self.port}", "", "", ""))

    def start(self) -> VsphereSimulator:
        binary = vcsim_binary()
        self.process = subprocess.Popen(
            [str(binary), "-port=0", *self.model.args(), *(["-http"] if self.plain_http else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()  # the one line: the URL it serves
        if not line:
            code = self.process.wait(timeout=5)
            raise RuntimeError(f"vcsim exited ({code}) before printing its URL")
        self.url = line
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with urllib.request.urlopen(
                    f"{self.base_url}/about", timeout=2, context=unverified_context()
                ):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"vcsim at {self.base_url} did not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> VsphereSimulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class VcsimInventory:
    """Puts things into a running vcsim through its own APIs, as an administrator would: VMs
    (SOAP CreateVM_Task), custom attributes (SOAP) and tags (the vAPI REST tagging API)."""

    def __init__(self, simulator: VsphereSimulator, datacenter: str = "DC0") -> None:
        from pyVim.connect import SmartConnect
        from pyVmomi import vim

        self.simulator = simulator
        self.instance = SmartConnect(
            host=simulator.host,
            port=simulator.port,
            user=SIM_USER,
            pwd=SIM_PASSWORD,
            protocol=urlsplit(simulator.base_url).scheme,
            sslContext=unverified_context(),
        )
        self.content = self.instance.RetrieveContent()
        found = self.content.searchIndex.FindByInventoryPath(datacenter)
        if not isinstance(found, vim.Datacenter):
            raise LookupError(f"vcsim has no datacenter {datacenter!r}")
        self.datacenter = found
        compute = found.hostFolder.childEntity[0]
        self.pool = compute.resourcePool
        self.host = compute.host[0] if getattr(compute, "host", None) else None
        self.datastore = found.datastore[0].name
        self._fields: dict[str, int] = {}

    def create_vm(
        self,
        name: str,
        *,
        vcpu: int = 2,
        memory_mib: int = 4096,
        disk_gib: int = 0,
        created: datetime | None = None,
    ) -> Any:
        """A powered-on VM in the datacenter's first cluster (or host), with one disk, created
        `created` (now when not given) as config.createDate says."""
        from pyVim.task import WaitForTask
        from pyVmomi import vim

        devices = []
        if disk_gib:
            controller = vim.vm.device.VirtualLsiLogicController(
                key=1000, busNumber=0, sharedBus="noSharing"
            )
            disk = vim.vm.device.VirtualDisk(
                key=2000,
                controllerKey=1000,
                unitNumber=0,
                capacityInKB=disk_gib * 1024 * 1024,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    diskMode="persistent", thinProvisioned=True, fileName=""
                ),
            )
            add = vim.vm.device.VirtualDeviceSpec.Operation.add
            devices = [
                vim.vm.device.VirtualDeviceSpec(operation=add, device=controller),
                vim.vm.device.VirtualDeviceSpec(
                    operation=add,
                    fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create,
                    device=disk,
                ),
            ]
        spec = vim.vm.ConfigSpec(
            name=name,
            numCPUs=vcpu,
            memoryMB=memory_mib,
            guestId="otherLinux64Guest",
            files=vim.vm.FileInfo(vmPathName=f"[{self.datastore}]"),
            deviceChange=devices,
        )
        task = self.datacenter.vmFolder.CreateVM_Task(config=spec, pool=self.pool, host=self.host)
        WaitForTask(task)
        vm = task.info.result
        self.set_created(vm, created or datetime.now(UTC))
        WaitForTask(vm.PowerOnVM_Task())
        return vm

    def set_created(self, vm: Any, created: datetime) -> None:
        """The VM's config.createDate (tools/vcsim/createdate.go's control endpoint)."""
        form = urlencode({"vm": vm._moId, "date": created.astimezone(UTC).isoformat()})
        request = urllib.request.Request(
            f"{self.simulator.base_url}/yiyun/vm/createDate", data=form.encode(), method="POST"
        )
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(request, timeout=10, context=unverified_context()):
            pass

    def power_off(self, vm: Any) -> None:
        from pyVim.task import WaitForTask

        WaitForTask(vm.PowerOffVM_Task())

    def set_attribute(self, vm: Any, name: str, value: str) -> None:
        """The custom attribute `name` (defined on first use for VMs) set to `value`."""
        from pyVmomi import vim

        manager = self.content.customFieldsManager
        if name not in self._fields:
            existing = {field.name: field.key for field in manager.field or []}
            self._fields[name] = existing.get(name) or (
                manager.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
            )
        manager.SetField(entity=vm, key=self._fields[name], value=value)

    def tag(self, category: str, tagged: dict[str, list[Any]]) -> None:
        """Tags in `category` (created), each attached to its VMs: {tag name: [vm, …]}."""
        session = self.rest("/com/vmware/cis/session")
        spec = {"name": category, "description": "", "cardinality": "SINGLE",
                "associable_types": ["VirtualMachine"]}  # fmt: skip
        category_id = self.rest("/com/vmware/cis/tagging/category", {"create_spec": spec}, session)
        for name, vms in tagged.items():
            spec = {"name": name, "description": "", "category_id": category_id}
            tag_id = self.rest("/com/vmware/cis/tagging/tag", {"create_spec": spec}, session)
            for vm in vms:
                target = {"object_id": {"id": vm._moId, "type": "VirtualMachine"}}
                self.rest(
                    f"/com/vmware/cis/tagging/tag-association/id:{tag_id}?~action=attach",
                    target,
                    session,
                )

    def rest(self, path: str, body: Any = None, session: str | None = None) -> Any:
        """One vAPI REST call (POST with a body or for a session, else GET): its `value`."""
        return rest_call(self.simulator, path, body, session)

    def close(self) -> None:
        from pyVim.connect import Disconnect

        Disconnect(self.instance)


def rest_call(
    simulator: VsphereSimulator, path: str, body: Any = None, session: str | None = None
) -> Any:
    """One vAPI REST call to vcsim (POST with a body or to open a session, else GET)."""
    headers = {"Content-Type": "application/json"}
    if session is None:
        token = base64.b64encode(f"{SIM_USER}:{SIM_PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    else:
        headers["vmware-api-session-id"] = session
    data = json.dumps(body).encode() if body is not None else None
    method = "POST" if data is not None or session is None else "GET"
    request = urllib.request.Request(
        f"{simulator.base_url}/rest{path}", data=data, headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=10, context=unverified_context()) as response:
        raw = response.read()
    return json.loads(raw).get("value") if raw else None
