"""A vSphere peer: govmomi's vcsim (tools/vcsim), built with Debian's Go and run on a free port."""

from __future__ import annotations

import fcntl
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

SOURCE_DIR = Path(__file__).resolve().parents[2] / "tools" / "vcsim"
BUILD_SCRIPT = SOURCE_DIR / "build.sh"
# The binary lives beside the venv's python (.venv/bin), where tools/vcsim/build.sh puts it;
# YIYUN_VCSIM names another one.
DEFAULT_BINARY = Path(sys.prefix) / "bin" / "yiyun-vcsim"
# vcsim accepts any user and password; these are placeholders, not secrets of anything.
SIM_USER = "user"
SIM_PASSWORD = "pass"


class VcsimUnavailable(RuntimeError):
    """vcsim is neither built nor buildable here (no `go`, no govmomi source, or no script)."""


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
            "(apt-get install golang-go golang-github-vmware-govmomi-dev)"
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
