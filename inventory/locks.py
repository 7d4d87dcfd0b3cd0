"""Per-node scan locks that the operating system or database releases if the holder dies."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


class NodeBusy(RuntimeError):
    """Another process is scanning this node right now."""


def _advisory_key(node_id: str) -> int:
    digest = hashlib.sha256(f"yiyun-scan:{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_dir(engine: sa.Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        return Path(os.environ.get("TMPDIR", "/tmp")) / "yiyun-locks"
    return Path(database).resolve().parent / (Path(database).name + ".locks")


@contextmanager
def node_lock(engine: sa.Engine, node_id: str) -> Iterator[None]:
    """Hold the scan lock of one node, or raise NodeBusy at once (never wait)."""
    if engine.dialect.name == "postgresql":
        # A session-level advisory lock dies with its connection, so a killed scan frees it.
        with engine.connect() as connection:
            key = _advisory_key(node_id)
            got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            if not got.scalar():
                raise NodeBusy(f"node {node_id} is being scanned by another process")
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
        return
    # SQLite: an flock on a file beside the database, released by the kernel on any exit.
    directory = _lock_dir(engine)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{node_id}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise NodeBusy(f"node {node_id} is being scanned by {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
