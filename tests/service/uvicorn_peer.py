"""The real `yiyun serve` process for tests: a loopback port, the real provider, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.service import oidc_peer
from tests.service.conftest import Served
from tests.service.oidc_peer import AUDIENCE, CLIENTS, OidcKeys, OidcProvider, require_oidc_tool

YIYUN = Path(sys.executable).with_name("yiyun")
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
# The address `yiyun serve` prints once its socket is bound (--port 0 picks a free port).
_SERVING = re.compile(r"http://127\.0\.0\.1:(\d+)/api/v1")

# Clients the province registers besides oidc_peer's: department IT of NJ-D1 (南京市), and a
# robot whose token carries no grants at all, so every right it has comes from the ledger.
ESTATE_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "nj-d1-it",
        "client_secret": "nj-d1-it-secret",
        "claims": {
            "preferred_username": "南京市大数据局",
            "yiyun_roles": ["department_it:department:NJ-D1"],
        },
    },
    {
        "client_id": "bare-robot",
        "client_secret": "bare-robot-secret",
        "claims": {"preferred_username": "巡检机器人"},
    },
]


def wait_for(check: Callable[[], object], *, what: str, seconds: float) -> object:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not there yet: keep polling until the deadline
            last_error = error
        threading.Event().wait(0.05)
    pytest.fail(f"timed out after {seconds:.0f}s waiting for {what} (last error: {last_error!r})")


def oidc_environment(provider: OidcProvider) -> dict[str, str]:
    return {"YIYUN_OIDC_ISSUER": provider.issuer, "YIYUN_OIDC_AUDIENCE": AUDIENCE}


@dataclass
class LiveService:
    """A running `yiyun --db URL serve --port 0 …`, its output kept in files."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    url: str = ""

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1{path}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def readiness(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code it left with."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"yiyun serve ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f}s")

    def _started_url(self) -> str | None:
        if self.process.poll() is not None:
            pytest.fail(
                f"yiyun serve exited {self.process.returncode} before it was ready:\n"
                f"{self.stdout()}\n{self.stderr()}"
            )
        match = _SERVING.search(self.stdout())
        return f"http://127.0.0.1:{match.group(1)}" if match else None


def start_service(
    db_url: str,
    workdir: Path,
    *,
    environment: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> LiveService:
    """Start `yiyun serve` on a port of its own choosing and wait until /readyz says 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = workdir / "serve.stdout", workdir / "serve.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(YIYUN), "--db", db_url, "serve", "--port", "0", *options],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **(environment or {})},
        )
    service = LiveService(process=process, stdout_path=stdout_path, stderr_path=stderr_path)
    try:
        service.url = str(
            wait_for(service._started_url, what="serve's address", seconds=READY_TIMEOUT_SECONDS)
        )
        wait_for(lambda: service.readiness() == 200, what="/readyz", seconds=READY_TIMEOUT_SECONDS)
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(scope="module")
def estate_provider(
    oidc_keys: OidcKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcProvider]:
    """oidc_peer's provider with ESTATE_CLIENTS registered as well."""
    require_oidc_tool()
    # OidcProvider reads the module's CLIENTS when it writes its clients file and when it asks
    # for a token; it takes no list of its own.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oidc_peer, "CLIENTS", [*CLIENTS, *ESTATE_CLIENTS])
        provider = OidcProvider(oidc_keys, tmp_path_factory.mktemp("estate-provider"))
        provider.start()
        try:
            yield provider
        finally:
            provider.stop()


@pytest.fixture
def live_service(
    served: Served, estate_provider: OidcProvider, tmp_path: Path
) -> Iterator[LiveService]:
    """`yiyun serve` over the served estate (plan p1), trusting the estate's provider; it must
    stop with exit 0 on SIGTERM."""
    service = start_service(
        served.settings.database_url,
        tmp_path / "serve",
        environment=oidc_environment(estate_provider),
    )
    yield service
    assert service.stop() == 0, service.stderr()
