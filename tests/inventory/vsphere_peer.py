"""vcsim for tests: started or reported missing, a pyvmomi session on it, and its REST API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from inventory.sim.vsphere import (
    SIM_PASSWORD,
    SIM_USER,
    VcsimModel,
    VcsimUnavailable,
    VsphereSimulator,
    rest_call,
    unverified_context,
    vcsim_binary,
)
from tests.conftest import missing_peer


@contextmanager
def running_vcsim(model: VcsimModel, *, plain_http: bool = False) -> Iterator[VsphereSimulator]:
    """vcsim serving `model`; skipped (failed under YIYUN_REQUIRE_PEERS) when it can't be built."""
    try:
        vcsim_binary()
    except VcsimUnavailable as error:
        missing_peer(str(error))
    with VsphereSimulator(model, plain_http=plain_http) as simulator:
        yield simulator


@contextmanager
def vsphere_session(vcsim: VsphereSimulator) -> Iterator[Any]:
    """A pyvmomi service instance logged in to `vcsim`."""
    from pyVim.connect import Disconnect, SmartConnect

    instance = SmartConnect(
        host=vcsim.host,
        port=vcsim.port,
        user=SIM_USER,
        pwd=SIM_PASSWORD,
        protocol=vcsim.base_url.split("://")[0],
        sslContext=unverified_context(),
    )
    try:
        yield instance
    finally:
        Disconnect(instance)


def rest(vcsim: VsphereSimulator, path: str, body: Any = None, session: str | None = None) -> Any:
    """One vAPI REST call (POST with a body or for a session, else GET): its `value`."""
    return rest_call(vcsim, path, body, session)
