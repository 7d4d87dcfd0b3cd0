"""Per-node scan locks that the operating system or database releases if the holder dies."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import sqlalchemy as sa


class NodeBusy(RuntimeError):
    """Another process is scanning this node right now."""


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


def _flock(directory: Path, node_id: str, stack: ExitStack) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = stack.enter_context(open(directory / f"{node_id}.lock", "a+"))  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise NodeBusy(f"node {node_id} is being scanned by {holder}") from None
    stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()


@contextmanager
def node_locks(engine: sa.Engine, node_ids: Sequence[str]) -> Iterator[list[str]]:
    """Take the scan lock of every node that is free, never waiting; yield the busy ones.

    PostgreSQL: session-level advisory locks on one dedicated connection, so a killed scan
    frees them with its connection and a scan of many nodes holds one connection, not one
    per node. SQLite: an flock per node on a file beside the database, which the kernel
    releases on any exit.
    """
    busy: list[str] = []
    with ExitStack() as stack:
        if engine.dialect.name == "postgresql":
            connection = stack.enter_context(engine.connect())
            held: list[int] = []
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
        else:
            directory = _lock_dir(engine)
            for node_id in node_ids:
                try:
                    _flock(directory, node_id, stack)
                except NodeBusy:
                    busy.append(node_id)
        yield busy


@contextmanager
def node_lock(engine: sa.Engine, node_id: str) -> Iterator[None]:
    """Hold one node's scan lock, or raise NodeBusy at once."""
    with node_locks(engine, [node_id]) as busy:
        if busy:
            raise NodeBusy(f"node {node_id} is being scanned by another process")
        yield
