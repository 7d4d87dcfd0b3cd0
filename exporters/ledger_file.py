"""The SQLite ledger file under the exporter: still the file it opened, at its path, readable."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from inventory.db import make_engine, normalize_url


class LedgerGone(RuntimeError):
    """The ledger file is gone from its path, unreadable, or another file than the one read."""


def sqlite_path(url: sa.URL | str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL, an in-memory database or a URI form."""
    parsed = make_url(normalize_url(url) if isinstance(url, str) else url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # sqlite's own URI syntax: the caller knows best
        return None
    # absolute(), not resolve(): a symlinked ledger is followed anew at every check.
    return Path(database).absolute()


def ledger_engine(url: str) -> sa.Engine:
    """The exporter's engine. On a SQLite file it opens the ledger without ever creating it
    (sqlite's mode=rw): a refresh that found the file gone, racing its check, would otherwise
    leave an empty ledger at the path — and `yiyun db upgrade` would later build on that."""
    path = sqlite_path(url)
    if path is None:
        return make_engine(url)
    uri = f"{path.as_uri()}?mode=rw"
    return make_engine(
        f"sqlite:///{path}",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
    )


class LedgerFile:
    """Tells at each refresh whether the SQLite file at `path` is still the one being read.

    A connection that SQLite holds open keeps reading the file it opened: moved away, deleted
    or replaced, it would go on serving the old figures as current. The first check pins the
    file's (device, inode); a later check raises LedgerGone when the path holds nothing, an
    unreadable file, or another file. A replacement is reported once and then pinned, so a
    ledger restored from a copy is served again from the next refresh (its schema checked
    like any other).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def check(self) -> None:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            raise LedgerGone(f"the ledger file {self.path} is gone (moved or deleted)") from None
        except OSError as error:
            raise LedgerGone(
                f"cannot reach the ledger file {self.path}: {error.strerror}"
            ) from None
        if not stat.S_ISREG(status.st_mode):
            raise LedgerGone(f"{self.path} is not a file any more")
        try:
            os.close(os.open(self.path, os.O_RDONLY))
        except OSError as error:
            raise LedgerGone(f"cannot read the ledger file {self.path}: {error.strerror}") from None
        identity = (status.st_dev, status.st_ino)
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            was, self.identity = self.identity, identity
            raise LedgerGone(
                f"the ledger file {self.path} was replaced by another file (inode {was[1]} → "
                f"{identity[1]}); the next refresh reads the new one"
            )
