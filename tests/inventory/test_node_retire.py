"""Nodes that leave the node file: `nodes apply` names them, `nodes retire` (or `apply --prune`)
tombstones their rows with the history kept, a retired node is not scanned, and a node file
that lists it again brings it back. A renamed node is one `retire` away from correct."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.locks import node_lock
from inventory.models import Node, Resource, ResourceEvent
from inventory.nodes import active_nodes, load_node_file, node_columns
from inventory.sim.aws import reset_moto, seed_instances, start_moto_server
from tests.inventory.collectors.conftest import isolate_aws
from tests.inventory.source_estate import (
    SYSTEM_TAG,
    Yiyun,
    all_rows,
    aws_source,
    copies,
    event_types,
    live_rows,
    node,
    write_nodes,
)

REGION = "us-east-1"
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
CORE_URL, EDU_URL = "http://10.1.2.3:9000", "http://10.4.5.6:9000"


@pytest.fixture(scope="module")
def moto_servers() -> Iterator[list[str]]:
    started = [start_moto_server() for _ in range(2)]
    yield [url for _, url in started]
    for server, _ in started:
        server.stop()


@pytest.fixture
def clouds(moto_servers: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    isolate_aws(monkeypatch, tmp_path)
    reset_moto(moto_servers[0])
    return moto_servers


@pytest.fixture
def yiyun(db_url: str, engine: sa.Engine) -> Yiyun:
    return Yiyun(db_url)


def stored(engine: sa.Engine, node_id: str) -> Node:
    with Session(engine) as session:
        row = session.get(Node, node_id)
    assert row is not None
    return row


def retire_events(engine: sa.Engine) -> list[tuple[str, dict[str, str] | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.native_id, ResourceEvent.diff)
            .join(Resource, col(Resource.id) == ResourceEvent.resource_id)
            .where(ResourceEvent.type == "deleted")
        ).all()
    return sorted(rows, key=lambda row: row[0])


def two_nodes(tmp_path: Path, core: str = CORE_URL, edu: str = EDU_URL) -> Path:
    return write_nodes(
        tmp_path / "nodes.yaml",
        node("js-core", aws_source(core)),
        node("edu-dc", aws_source(edu), one_cloud=False),
    )


# --- retire ------------------------------------------------------------------------------------


def test_retire_tombstones_every_row_keeps_history_and_leaves_scans(
    clouds: list[str], yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    core, edu = clouds
    yiyun.import_register(tmp_path)
    seed_instances(core, REGION, count=1, tags={SYSTEM_TAG: "JS-A"})
    edu_vms = seed_instances(edu, REGION, count=2, tags={SYSTEM_TAG: "JS-B"})
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path, core, edu)))
    yiyun.ok("scan")
    rows_before = all_rows(engine)
    assert yiyun.kpi()["counts"]["off_cloud"] == 1  # JS-B, on edu-dc

    out = yiyun.ok("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "moved to js-core")
    code, _, err = yiyun("scan")

    assert "retired node edu-dc: 2 live resources tombstoned (history kept)" in out
    assert code == 0, err
    # Nothing deleted: the same rows, edu-dc's tombstoned, each with who and why.
    assert all_rows(engine) == rows_before
    assert {key[3] for key in live_rows(engine) if key[0] == "edu-dc"} == set()
    note = {"reason": "node_retired", "by": "alice", "note": "moved to js-core"}
    assert retire_events(engine) == [(vm, note) for vm in sorted(edu_vms)]
    assert event_types(engine)["created"] == 3  # the history is still there
    retired = stored(engine, "edu-dc")
    assert (retired.retired_by, retired.retired_reason) == ("alice", "moved to js-core")
    assert retired.retired_at is not None
    counts = yiyun.kpi()["counts"]
    assert (counts["on_cloud"], counts["off_cloud"], counts["no_evidence"]) == (1, 0, 1)
    with Session(engine) as session:
        assert [n.id for n in active_nodes(session=session)] == ["js-core"]


def test_retiring_twice_changes_nothing_and_says_so(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))
    yiyun.ok("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "gone")
    first = stored(engine, "edu-dc")

    out = yiyun.ok("nodes", "retire", "edu-dc", "--by", "bob", "--reason", "again")

    assert "node edu-dc was already retired at" in out and "by alice (gone); nothing changed" in out
    again = stored(engine, "edu-dc")
    assert (again.retired_at, again.retired_by, again.retired_reason) == (
        first.retired_at,
        "alice",
        "gone",
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["edu-cd", "--by", "alice", "--reason", "gone"],
            "unknown node 'edu-cd'; did you mean 'edu-dc'?",
        ),
        (["edu-dc", "--reason", "gone"], "Missing option '--by'"),
        (["edu-dc", "--by", "alice"], "Missing option '--reason'"),
        (["edu-dc", "--by", " ", "--reason", "gone"], "--by and --reason must not be empty"),
    ],
)
def test_bad_retire_is_a_usage_error_and_changes_nothing(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path, args: list[str], fragment: str
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))

    code, out, err = yiyun("nodes", "retire", *args)

    assert code == 2
    assert fragment in " ".join((out + err).split())
    assert stored(engine, "edu-dc").retired_at is None


def test_a_node_being_scanned_is_not_retired(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))

    with node_lock(engine, "edu-dc"):
        code, _, err = yiyun("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "gone")

    assert code == 1
    assert "node edu-dc is being scanned right now" in err
    assert stored(engine, "edu-dc").retired_at is None


# --- apply: missing nodes, --prune, coming back ------------------------------------------------


def test_apply_names_nodes_missing_from_the_file_and_keeps_them(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))
    core_only = write_nodes(tmp_path / "core.yaml", node("js-core", aws_source(CORE_URL)))

    code, out, err = yiyun("nodes", "apply", str(core_only))

    assert code == 0
    assert "not in this file (kept in the ledger, unchanged): edu-dc" in out
    warning = " ".join(err.split())
    assert (
        "nodes edu-dc are in the ledger but not in this file: they are kept and still scanned"
        in warning
    )
    assert (
        "yiyun nodes retire ID --by WHO --reason TEXT" in warning and "--prune --by WHO" in warning
    )
    assert stored(engine, "edu-dc").retired_at is None


def test_apply_prune_retires_missing_nodes_in_the_same_transaction(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))
    with Session(engine) as session:
        session.add(
            Resource(
                node_id="edu-dc",
                source="aws-10-4-5-6-9000",
                kind="vm",
                native_id="i-1",
                content_hash="h",
                first_seen_at=NOW,
                last_seen_at=NOW,
            )
        )
        session.commit()
    core_only = write_nodes(tmp_path / "core.yaml", node("js-core", aws_source(CORE_URL)))

    code, _, err = yiyun("nodes", "apply", "--prune", str(core_only))
    assert (code, "--prune needs --by WHO" in err) == (2, True)
    dry = yiyun.ok("nodes", "apply", "--dry-run", "--prune", "--by", "bob", str(core_only))
    assert "to retire (not in this file): edu-dc" in dry
    assert stored(engine, "edu-dc").retired_at is None

    out = yiyun.ok("nodes", "apply", "--prune", "--by", "bob", str(core_only))

    assert "retired (not in this file): edu-dc" in out
    assert stored(engine, "edu-dc").retired_by == "bob"
    assert retire_events(engine) == [
        ("i-1", {"reason": "node_retired", "by": "bob", "note": "left the node file"})
    ]


def test_prune_with_a_refused_file_retires_nothing(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))
    # js-core and a new node on the same endpoint: refused, so edu-dc is not pruned either.
    clash = write_nodes(
        tmp_path / "clash.yaml",
        node("js-core", aws_source(CORE_URL)),
        node("js-core-2", aws_source(CORE_URL)),
    )

    code, _, err = yiyun("nodes", "apply", "--prune", "--by", "bob", str(clash))

    assert code == 1 and "duplicate node" in err
    assert stored(engine, "edu-dc").retired_at is None
    assert [n.id for n in active_nodes_of(engine)] == ["edu-dc", "js-core"]


def active_nodes_of(engine: sa.Engine) -> list[Node]:
    with Session(engine) as session:
        return active_nodes(session=session)


def test_a_retired_node_listed_again_comes_back_and_its_rows_with_the_next_scan(
    clouds: list[str], yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    core, edu = clouds
    seed_instances(edu, REGION, count=2, tags={SYSTEM_TAG: "JS-B"})
    path = two_nodes(tmp_path, core, edu)
    yiyun.ok("nodes", "apply", str(path))
    yiyun.ok("scan")
    live_before = live_rows(engine)
    yiyun.ok("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "by mistake")

    out = yiyun.ok("nodes", "apply", str(path))
    yiyun.ok("scan")

    assert "back from retirement (listed again; scanned from the next scan on): edu-dc" in out
    back = stored(engine, "edu-dc")
    assert (back.retired_at, back.retired_by, back.retired_reason) == (None, None, None)
    assert live_rows(engine) == live_before  # the same rows, revived
    assert event_types(engine)["reappeared"] == 2


def test_list_marks_retired_nodes(
    yiyun: Yiyun, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a table cell folded over two lines is still there
    yiyun.ok("nodes", "apply", str(two_nodes(tmp_path)))
    yiyun.ok("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "gone")

    rows = {row["id"]: row for row in json.loads(yiyun.ok("nodes", "list", "--format", "json"))}
    table = yiyun.ok("nodes", "list")
    zh = yiyun.ok("--lang", "zh", "nodes", "list")

    assert rows["js-core"]["retired_at"] is None
    assert rows["edu-dc"]["retired_at"].endswith("Z")
    assert (rows["edu-dc"]["retired_by"], rows["edu-dc"]["retired_reason"]) == ("alice", "gone")
    today = rows["edu-dc"]["retired_at"][:10]
    assert f"retired {today}" in table and "active" in table
    assert f"已退役 {today}" in zh and "在用" in zh


# --- a renamed node --------------------------------------------------------------------------


def test_a_renamed_node_is_one_retire_away_from_a_true_kpi(
    clouds: list[str], yiyun: Yiyun, engine: sa.Engine, tmp_path: Path
) -> None:
    edu = clouds[1]
    yiyun.import_register(tmp_path)
    seed_instances(edu, REGION, count=2, tags={SYSTEM_TAG: "JS-B"})
    old = write_nodes(tmp_path / "old.yaml", node("edu-dc", aws_source(edu), one_cloud=False))
    yiyun.ok("nodes", "apply", str(old))
    yiyun.ok("scan")
    assert yiyun.kpi()["counts"]["off_cloud"] == 1
    # The department cloud is brought under the unified cloud (纳管) and renamed.
    new = write_nodes(tmp_path / "new.yaml", node("js-edu", aws_source(edu)))

    code, _, err = yiyun("nodes", "apply", str(new))

    assert code == 1
    assert "lists the same cloud as node 'edu-dc'" in err
    assert "yiyun nodes retire edu-dc --by WHO --reason TEXT" in err
    assert [n.id for n in active_nodes_of(engine)] == ["edu-dc"]

    # A ledger that took both before this refusal existed: the system counts as partial.
    (renamed,) = load_node_file(new)
    with Session(engine) as session:
        session.add(Node(id=renamed.id, **node_columns(renamed)))
        session.commit()
    yiyun.ok("scan")
    assert yiyun.kpi()["counts"]["partial"] == 1
    assert set(copies(engine).values()) == {2}  # every VM counted twice

    yiyun.ok("nodes", "retire", "edu-dc", "--by", "alice", "--reason", "renamed to js-edu")
    yiyun.ok("nodes", "apply", str(new))
    yiyun.ok("scan")

    report = yiyun.kpi()
    assert report["counts"]["partial"] == 0
    assert report["counts"]["on_cloud"] == 1  # JS-B, once
    assert (report["numerator"], report["denominator"]) == (1, 2)
    assert set(copies(engine).values()) == {1}
