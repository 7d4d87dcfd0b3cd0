"""Scan locks at scale: `yiyun scan` of 5,000 nodes holds every node's lock at once with a
handful of file descriptors (one lock file on SQLite, one connection on PostgreSQL), under an
open-file limit of 256; a lock file it cannot use stops the scan with a clear message, exit 1,
before any run is recorded."""

from __future__ import annotations

import os
import resource
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory import locks
from inventory.locks import LOCK_FILE
from inventory.models import Node, Resource, ScanRun
from tests.exporters.test_ledger_gone import without_permission_override
from tests.hardening.conftest import YIYUN, Cli, isolated_env

NODES = 5000
# Far below the node count: one descriptor per node (the old flock files) cannot fit.
FD_LIMIT = 256


def open_file_limit(limit: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return lower


def seed_retired_sources(engine: sa.Engine, count: int) -> None:
    """`count` server rooms whose sources were all taken out of the node file, each with one
    live VM left in the ledger: every one of them still gets a scan (which retires its rows),
    so the scan locks all of them without listing anything — the test stays about locks."""
    now = datetime.now(tz=UTC)
    nodes = [
        dict(id=f"room-{i:04d}", name=f"自建机房{i:04d}", level="server_room",
             one_cloud=False, city="南京市", sources=[])
        for i in range(count)
    ]  # fmt: skip
    rows = [
        dict(node_id=f"room-{i:04d}", source="aws", kind="vm", native_id=f"i-{i:05d}",
             scope="cn-js-1", content_hash="h", first_seen_at=now, last_seen_at=now,
             tags={}, raw={})
        for i in range(count)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(Node), nodes)
        connection.execute(sa.insert(Resource), rows)


@dataclass
class Descriptors:
    """What a running process held, sampled from /proc: its descriptors and, per descriptor
    open on the scan-lock file, the OFD locks on it."""

    most_open: int = 0
    most_lock_files: int = 0
    most_locks_on_one: int = 0
    samples: int = 0

    def sample(self, pid: int) -> None:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # the process has ended
            return
        lock_files, locks = 0, 0
        for fd in fds:
            try:
                if not os.readlink(f"/proc/{pid}/fd/{fd}").endswith(f"/{LOCK_FILE}"):
                    continue
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            lock_files += 1
            locks = max(locks, info.count("OFDLCK"))
        self.most_open = max(self.most_open, len(fds))
        self.most_lock_files = max(self.most_lock_files, lock_files)
        self.most_locks_on_one = max(self.most_locks_on_one, locks)
        self.samples += 1


def watch(process: subprocess.Popen[bytes], seen: Descriptors) -> threading.Thread:
    def loop() -> None:
        while process.poll() is None:
            seen.sample(process.pid)
            threading.Event().wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_a_scan_of_5000_nodes_holds_their_locks_on_a_few_descriptors(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    seed_retired_sources(engine, NODES)
    seen = Descriptors()

    process = subprocess.Popen(
        [*YIYUN, "--db", db_url, "scan"],
        env=isolated_env(tmp_path, YIYUN_LANG="en"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=open_file_limit(FD_LIMIT),
    )
    watcher = watch(process, seen)
    _, err_bytes = process.communicate(timeout=300)
    watcher.join(10)
    err = err_bytes.decode()

    assert process.returncode == 0, err[-3000:]
    assert "Too many open files" not in err and "Traceback" not in err
    with Session(engine) as session:
        (run,) = session.exec(select(ScanRun)).all()
        live = session.exec(
            select(sa.func.count()).select_from(Resource).where(col(Resource.deleted_at).is_(None))
        ).one()
    assert run.status == "ok" and len(run.nodes or []) == NODES
    assert live == 0  # every node was scanned: each one's orphaned VM retired
    assert seen.samples > 0 and seen.most_open < FD_LIMIT
    if engine.dialect.name == "sqlite":
        # All 5,000 locks were held at one moment, on a single descriptor.
        assert seen.most_locks_on_one == NODES
        assert seen.most_lock_files == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_lock_file_that_cannot_be_opened_stops_the_scan_before_any_run(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    seed_retired_sources(engine, 3)
    database = engine.url.database
    assert database is not None
    locks = Path(database).resolve().parent / (Path(database).name + ".locks")
    locks.mkdir()
    locks.chmod(0o555)  # a directory the scan may not create its lock file in
    try:
        result = subprocess.run(
            [*YIYUN, "--db", db_url, "scan"],
            env=isolated_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=without_permission_override,
        )
        zh = subprocess.run(
            [*YIYUN, "--db", db_url, "--lang", "zh", "scan"],
            env=isolated_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=without_permission_override,
        )
    finally:
        locks.chmod(0o755)

    assert result.returncode == 1 and zh.returncode == 1
    assert "Traceback" not in result.stderr + zh.stderr
    assert "cannot take the scan locks" in result.stderr
    assert "Permission denied" in result.stderr and str(locks) in result.stderr
    assert "No node was scanned and nothing was changed" in result.stderr
    assert "无法取得扫描锁" in zh.stderr
    with Session(engine) as session:
        assert session.exec(select(ScanRun)).all() == []  # none recorded, none left running
        live = session.exec(select(sa.func.count()).select_from(Resource)).one()
    assert live == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_running_out_of_descriptors_while_taking_locks_is_a_clear_error(
    engine: sa.Engine, db_url: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real EMFILE in the middle of the locks: the one-flock-file-per-node way, which yiyun
    keeps where OFD locks do not exist (macOS), under a limit the nodes do not fit in."""
    seed_retired_sources(engine, 300)
    monkeypatch.setattr(locks, "_OFD_SETLK", None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 100, hard))
    try:
        code, _, err = cli("--db", db_url, "scan")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert code == 1
    assert "cannot take the scan locks" in err and "Too many open files" in err
    with Session(engine) as session:
        assert session.exec(select(ScanRun)).all() == []
    # The descriptors taken before the failure were all given back: the next scan works.
    monkeypatch.undo()
    assert cli("--db", db_url, "scan")[0] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_busy_node_names_the_process_holding_its_lock(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    seed_retired_sources(engine, 2)

    with locks.node_lock(engine, "room-0001"):
        result = subprocess.run(
            [*YIYUN, "--db", db_url, "scan"],
            env=isolated_env(tmp_path, YIYUN_LANG="en"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        with (
            pytest.raises(locks.NodeBusy, match=f"scanned by pid {os.getpid()}"),
            locks.node_lock(engine, "room-0001"),
        ):
            pass

    assert result.returncode == 1
    assert (
        f"node room-0001 is being scanned by another process; skipped (pid {os.getpid()} "
        "holds its lock)" in result.stderr
    )
