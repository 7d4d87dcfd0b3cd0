"""The command line's writes are audited too: the OS user as the principal, --by beside it."""

from __future__ import annotations

import getpass

from sqlmodel import Session, col, select

from inventory.models import AuditEntry
from tests.migrate.conftest import invoke
from tests.service.conftest import Served


def entries(served: Served, action: str) -> list[AuditEntry]:
    with Session(served.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def test_a_cli_advance_is_audited_as_local_with_the_os_user_and_by(served: Served) -> None:
    code, out, err = invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "王工")
    assert code == 0, out + err
    [entry] = entries(served, "migration.advance")
    assert (entry.principal, entry.principal_kind, entry.by) == (getpass.getuser(), "local", "王工")
    assert entry.target == "A01"
    assert entry.before is not None and entry.before["state"] == "planned"
    assert entry.after is not None and entry.after["state"] == "provisioning"


def test_a_refused_cli_write_leaves_no_entry(served: Served) -> None:
    code, _, _ = invoke("migrate", "advance", "A01", "--to", "accepted", "--by", "王工")
    assert code == 1
    assert entries(served, "migration.advance") == []


def test_retiring_a_node_from_the_cli_is_audited(served: Served) -> None:
    code, out, err = invoke("nodes", "retire", "room", "--by", "运维", "--reason", "机房撤并")
    assert code == 0, out + err
    [entry] = entries(served, "nodes.retire")
    assert (entry.principal_kind, entry.by, entry.target) == ("local", "运维", "room")
    assert entry.after is not None and entry.after["reason"] == "机房撤并"
    # Retiring it again changes nothing, so nothing more is recorded.
    code, _, _ = invoke("nodes", "retire", "room", "--by", "运维", "--reason", "机房撤并")
    assert code == 0
    assert len(entries(served, "nodes.retire")) == 1
