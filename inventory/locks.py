"""Per-node scan locks that the operating system or database releases if the holder dies."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import sqlalchemy as sa

# Linux's open-file-description locks: byte-range locks owned by one open file, so a single
# descriptor holds the lock of every node of a scan (one flock file per node ran out of
# descriptors at ~1,000 nodes), two opens in one process still exclude each other (classic
# POSIX locks would not), and the kernel drops them when the holder's last descriptor closes,
# SIGKILL included. Elsewhere (macOS) the old flock file per node stays.
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
# struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
_FLOCK = struct.Struct("hhqqi4x")
# Byte offsets a lock may start at: l_start + l_len must stay within a signed 64-bit off_t.
_OFFSETS = (1 << 63) - 1
LOCK_FILE = "nodes.lock"


class NodeBusy(RuntimeError):
    """Another process is scanning this node right now."""


class LocksUnavailable(RuntimeError):
    """The scan locks could not be taken at all: the lock file cannot be opened or locked
    (no permission, a read-only disk, too many open files). Nothing has been scanned."""

    def __init__(self, path: Path | str, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(f"cannot take the scan locks in {path}: {reason}")
        self.path, self.reason = str(path), reason


def _advisory_key(namespace: str, node_id: str) -> int:
    # Advisory locks are server-wide: the key names the ledger (database and schema) too, so
    # two ledgers on one server never block each other's scans.
    digest = hashlib.sha256(f"yiyun-scan:{namespace}:{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_dir(engine: sa.Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        return Path(os.environ.get("TMPDIR", "/tmp")) / "yiyun-locks"
    return Path(database).resolve().parent / (Path(database).name + ".locks")


def _offset(directory: Path, node_id: str) -> int:
    """The node's byte in the lock file: a 63-bit hash of the ledger and the node id (two
    nodes share a byte with odds of about n² / 2⁶⁴: never, in practice)."""
    digest = hashlib.sha256(f"yiyun-scan:{directory}:{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _OFFSETS


def _ofd_lock(fd: int, offset: int) -> bool:
    """Take the write lock on one byte without waiting; False when someone else holds it."""
    assert _OFD_SETLK is not None
    request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, _OFD_SETLK, request)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _open_lock_file(directory: Path, stack: ExitStack) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    stack.callback(os.close, fd)  # closing the descriptor releases every lock it holds
    return fd


def _flock(directory: Path, node_id: str, stack: ExitStack) -> None:
    """Without OFD locks: an flock on a file of the node's own (one descriptor per node)."""
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = stack.enter_context(open(directory / f"{node_id}.lock", "a+"))  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise NodeBusy(f"node {node_id} is being scanned by another process") from None
    stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()


def _file_locks(engine: sa.Engine, node_ids: Sequence[str], stack: ExitStack) -> list[str]:
    directory = _lock_dir(engine)
    busy: list[str] = []
    try:
        if _OFD_SETLK is None:
            for node_id in node_ids:
                try:
                    _flock(directory, node_id, stack)
                except NodeBusy:
                    busy.append(node_id)
            return busy
        fd = _open_lock_file(directory, stack)
        for node_id in node_ids:
            if not _ofd_lock(fd, _offset(directory, node_id)):
                busy.append(node_id)
    except OSError as error:  # EMFILE, EACCES, EROFS, ENOLCK…: no scan without its locks
        raise LocksUnavailable(directory, error) from error
    return busy


@contextmanager
def node_locks(engine: sa.Engine, node_ids: Sequence[str]) -> Iterator[list[str]]:
    """Take the scan lock of every node that is free, never waiting; yield the busy ones.

    PostgreSQL: session-level advisory locks on one dedicated connection, so a killed scan
    frees them with its connection and a scan of many nodes holds one connection, not one
    per node. SQLite: a byte-range lock per node in one lock file beside the database, all on
    one descriptor, which the kernel releases on any exit. Raises LocksUnavailable when the
    lock file cannot be used at all.
    """
    with ExitStack() as stack:
        if engine.dialect.name == "postgresql":
            busy = _advisory_locks(engine, node_ids, stack)
        else:
            busy = _file_locks(engine, node_ids, stack)
        yield busy


def _advisory_locks(engine: sa.Engine, node_ids: Sequence[str], stack: ExitStack) -> list[str]:
    connection = stack.enter_context(engine.connect())
    held: list[int] = []
    busy: list[str] = []
    ledger = connection.execute(
        sa.text("SELECT current_database() || '.' || current_schema()")
    ).scalar_one()

    def release() -> None:
        for key in held:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()

    stack.callback(release)
    for node_id in node_ids:
        key = _advisory_key(ledger, node_id)
        got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
        if got.scalar():
            held.append(key)
        else:
            busy.append(node_id)
    connection.commit()
    return busy


def lock_holders(engine: sa.Engine, node_ids: Sequence[str]) -> dict[str, int]:
    """node → pid of the process holding its scan lock, where the system can tell (SQLite
    on Linux; {} elsewhere). An OFD lock does not name its owner (F_OFD_GETLK and
    /proc/locks say -1), so this looks for the descriptors open on the lock file in /proc and
    reads the locks each holds: a walk over every process, made only when a node is busy."""
    if engine.dialect.name == "postgresql" or _OFD_SETLK is None or not node_ids:
        return {}
    directory = _lock_dir(engine)
    wanted = {_offset(directory, node_id): node_id for node_id in node_ids}
    try:
        target = os.stat(directory / LOCK_FILE)
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return {}
    holders: dict[str, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        for fd in fds:
            try:
                opened = os.stat(f"/proc/{pid}/fd/{fd}")
                if (opened.st_dev, opened.st_ino) != (target.st_dev, target.st_ino):
                    continue
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            for line in info.splitlines():
                # lock:	1: OFDLCK ADVISORY  WRITE -1 fe:00:2146929 <start> <end>
                fields = line.split()
                if fields[:1] == ["lock:"] and "OFDLCK" in fields and fields[-2].isdigit():
                    node_id = wanted.get(int(fields[-2]))
                    if node_id is not None:
                        holders[node_id] = int(pid)
    return holders


@contextmanager
def node_lock(engine: sa.Engine, node_id: str) -> Iterator[None]:
    """Hold one node's scan lock, or raise NodeBusy at once."""
    with node_locks(engine, [node_id]) as busy:
        if busy:
            pid = lock_holders(engine, busy).get(node_id)
            holder = f"pid {pid}" if pid else "another process"
            raise NodeBusy(f"node {node_id} is being scanned by {holder}")
        yield
