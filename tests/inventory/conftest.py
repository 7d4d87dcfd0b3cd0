"""Fixtures the scan tests of tests/inventory share: a moto server and an endpoint that is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.sim.aws import reset_moto, seed_instances, start_moto_server
from tests.inventory.collectors.conftest import isolate_aws
from tests.inventory.source_estate import SYSTEM_TAG, Yiyun

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def dead_endpoint() -> str:
    """A loopback port nothing listens on: every connection is refused, as a source that is
    down or a wrong address in the node file would be."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def registered_estate(
    moto_server: str, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Yiyun:
    """The CLI on a ledger with the register imported, and two VMs of system JS-A in moto."""
    isolate_aws(monkeypatch, tmp_path)
    reset_moto(moto_server)
    seed_instances(moto_server, REGION, count=2, tags={SYSTEM_TAG: "JS-A"})
    cli = Yiyun(db_url)
    cli.import_register(tmp_path)
    return cli
