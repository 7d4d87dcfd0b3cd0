"""Policy evidence-v2 (evidence has a maximum age) and retired nodes, through real scans, on
both databases: the KPI, the report JSON, snapshots and the trend, before and after."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import app
from inventory.evidence import evidence_nodes, expired_scopes, stale_nodes
from inventory.models import AdoptionSnapshot, ScanRun, ScopeResult
from inventory.settings import Settings
from tests.inventory.evidence_age_estate import age_run, retire, scan, seed_nodes_and_register

runner = CliRunner()
WEEK = timedelta(hours=168)
EXPIRED = "core/aws/vm/cn-js-1"


@pytest.fixture
def estate(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        seed_nodes_and_register(session)
    return settings


def adoption(*args: str) -> dict:
    result = runner.invoke(app, ["report", "adoption", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def statuses(engine: sa.Engine) -> dict[str, str]:
    """system → status, from the codes the latest snapshot stores."""
    with Session(engine) as session:
        snapshot = session.exec(
            select(AdoptionSnapshot).order_by(col(AdoptionSnapshot.id).desc())
        ).first()
    assert snapshot is not None and snapshot.system_codes is not None
    return {code: status for status, codes in snapshot.system_codes.items() for code in codes}


def scan_then_deny_a_region(engine: sa.Engine, age: timedelta) -> None:
    """core listed both regions completely `age` ago; since then cn-js-1 is denied (its rows
    are kept, unproven) while cn-js-2 and edu-dc list fine."""
    first = scan(engine, "core")
    age_run(engine, first.run_id, age)
    assert not scan(engine, "core", failing={"cn-js-1"}).ok
    assert scan(engine, "edu-dc").ok


def test_all_fresh_both_policies_agree(estate: Settings, engine: sa.Engine) -> None:
    scan(engine, "core")
    scan(engine, "edu-dc")

    v2, v1 = adoption("--snapshot"), adoption("--policy", "evidence-v1")

    assert v2["policy"] == "evidence-v2" and v1["policy"] == "evidence-v1"
    assert v2["counts"] == v1["counts"]
    assert (v2["numerator"], v2["denominator"]) == (2, 4)  # S1 S2 on; S3 partial; S4 off
    assert v2["expired_scopes"] == [] and v2["stale_nodes"] == []
    assert statuses(engine) == {"S1": "on_cloud", "S2": "on_cloud", "S3": "partial",
                                    "S4": "off_cloud"}  # fmt: skip


def test_a_scope_unlisted_past_the_maximum_age_stops_counting(
    estate: Settings, engine: sa.Engine
) -> None:
    scan_then_deny_a_region(engine, WEEK + timedelta(hours=2))

    v2 = adoption("--snapshot")
    v1 = adoption("--policy", "evidence-v1")

    # evidence-v2: cn-js-1's rows prove nothing any more. S1 had only them; S3 keeps its
    # department-cloud VM alone.
    assert v2["expired_scopes"] == [EXPIRED]
    assert statuses(engine) == {"S1": "no_evidence", "S2": "on_cloud", "S3": "off_cloud",
                                    "S4": "off_cloud"}  # fmt: skip
    assert (v2["numerator"], v2["denominator"], v2["rate"]) == (1, 4, 0.25)
    # evidence-v1 still counts every live row.
    assert v1["expired_scopes"] == []
    assert (v1["numerator"], v1["counts"]["partial"], v1["counts"]["no_evidence"]) == (2, 1, 0)
    # stale_nodes keeps its own meaning: core's last complete scan is the aged one.
    assert v2["stale_nodes"] == v1["stale_nodes"] == ["core"]
    with Session(engine) as session:
        snapshot = session.exec(select(AdoptionSnapshot)).one()
    assert snapshot.policy == "evidence-v2"
    assert snapshot.expired_scopes == [EXPIRED]
    assert snapshot.stale_nodes == ["core"]


def test_stale_is_not_expired(estate: Settings, engine: sa.Engine) -> None:
    scan_then_deny_a_region(engine, timedelta(hours=30))

    v2 = adoption()

    assert v2["stale_nodes"] == ["core"]  # no complete scan for 30 h
    assert v2["expired_scopes"] == []  # but cn-js-1 listed completely within 168 h
    assert (v2["numerator"], v2["counts"]["partial"]) == (2, 1)


def test_the_maximum_age_is_a_setting(estate: Settings, engine: sa.Engine) -> None:
    from inventory.settings import set_settings

    scan_then_deny_a_region(engine, timedelta(hours=30))
    set_settings(estate.model_copy(update={"evidence_max_age_hours": 24}))

    assert adoption()["expired_scopes"] == [EXPIRED]


def test_the_policy_is_a_setting_too(estate: Settings, engine: sa.Engine) -> None:
    from inventory.settings import set_settings

    scan_then_deny_a_region(engine, WEEK * 2)
    set_settings(estate.model_copy(update={"kpi_policy": "evidence-v1"}))

    report = adoption()
    assert (report["policy"], report["expired_scopes"], report["numerator"]) == (
        "evidence-v1", [], 2
    )  # fmt: skip
    set_settings(estate.model_copy(update={"kpi_policy": "evidence-v9"}))
    refused = runner.invoke(app, ["report", "adoption"])
    assert refused.exit_code == 2
    assert "unknown KPI policy 'evidence-v9'" in refused.output
    assert "Traceback" not in refused.output


def test_a_scope_that_never_listed_completely_proves_nothing(
    estate: Settings, engine: sa.Engine
) -> None:
    # The first listing of cn-js-1 returned a page and was then denied: rows, no `ok` ever.
    assert not scan(engine, "core", failing={"cn-js-1"}).ok
    scan(engine, "edu-dc")

    v2, v1 = adoption(), adoption("--policy", "evidence-v1")

    assert v2["expired_scopes"] == [EXPIRED]
    assert v2["counts"]["no_evidence"] == 1 and v1["counts"]["no_evidence"] == 0


def test_only_completed_runs_refresh_evidence(estate: Settings, engine: sa.Engine) -> None:
    """As for stale_nodes: an `ok` listing in a run that never finished does not count."""
    scan_then_deny_a_region(engine, WEEK * 2)
    again = scan(engine, "core")
    with Session(engine) as session:
        run = session.get(ScanRun, again.run_id)
        assert run is not None
        run.status, run.finished_at = "interrupted", None
        session.add(run)
        session.commit()

    assert adoption()["expired_scopes"] == [EXPIRED]

    with Session(engine) as session:
        run = session.get(ScanRun, again.run_id)
        assert run is not None
        run.status, run.finished_at = "ok", datetime.now(tz=UTC)
        session.add(run)
        session.commit()
    assert adoption()["expired_scopes"] == []


def test_rows_of_a_planned_scope_a_killed_run_never_recorded(
    estate: Settings, engine: sa.Engine
) -> None:
    """A first listing cut off by a kill wrote rows but no result: never proven complete."""
    scan(engine, "edu-dc")
    killed = scan(engine, "core")
    with Session(engine) as session:
        session.execute(sa.delete(ScopeResult).where(col(ScopeResult.run_id) == killed.run_id))
        run = session.get(ScanRun, killed.run_id)
        assert run is not None
        run.status = "abandoned"
        run.planned = [["core", "aws", "vm", "cn-js-1"], ["core", "aws", "vm", "cn-js-2"]]
        session.add(run)
        session.commit()

    assert adoption()["expired_scopes"] == [EXPIRED, "core/aws/vm/cn-js-2"]
    assert adoption("--policy", "evidence-v1")["expired_scopes"] == []


def test_history_marks_where_the_policy_changed(estate: Settings, engine: sa.Engine) -> None:
    scan_then_deny_a_region(engine, WEEK * 2)
    for policy in ("evidence-v1", "evidence-v1", "evidence-v2"):
        assert adoption("--snapshot", "--policy", policy)

    rows = json.loads(
        runner.invoke(app, ["report", "adoption", "--history", "--format", "json"]).stdout
    )
    table = runner.invoke(
        app, ["report", "adoption", "--history", "--lang", "en"], env={"COLUMNS": "200"}
    )
    md = runner.invoke(app, ["report", "adoption", "--history", "--format", "md", "--lang", "zh"])

    # Newest first: the v2 snapshot is where the rules changed.
    assert [(r["policy"], r["policy_change"], r["numerator"]) for r in rows] == [
        ("evidence-v2", "evidence-v1 → evidence-v2", 1),
        ("evidence-v1", None, 2),
        ("evidence-v1", None, 2),
    ]
    assert "Policy change" in table.stdout and "evidence-v1 →" in table.stdout
    assert "口径变更" in md.stdout and "| evidence-v1 → evidence-v2 |" in md.stdout


def test_table_and_markdown_show_expired_scopes(estate: Settings, engine: sa.Engine) -> None:
    scan_then_deny_a_region(engine, WEEK * 2)

    table = runner.invoke(app, ["report", "adoption", "--lang", "en"], env={"COLUMNS": "200"})
    table = table.stdout
    md = runner.invoke(app, ["report", "adoption", "--format", "md", "--lang", "zh"]).stdout

    assert "no complete listing for 168 h" in " ".join(table.split())
    assert EXPIRED in table
    assert f"168 小时内没有完整列表，其资源不再计为证据（口径 evidence-v2）： {EXPIRED}" in md


# --- retired nodes --------------------------------------------------------------------------


def test_a_retired_node_leaves_the_kpi_freshness_and_expiry(
    estate: Settings, engine: sa.Engine
) -> None:
    scan(engine, "core")
    edu = scan(engine, "edu-dc", failing={"edu-1"})  # edu-dc: stale, its scope never ok
    assert not edu.ok
    before, before_v1 = adoption(), adoption("--by", "node", "--policy", "evidence-v1")

    retire(engine, "edu-dc")  # as `yiyun nodes retire` marks it (rows left live on purpose)
    after, after_v1 = adoption(), adoption("--by", "node", "--policy", "evidence-v1")

    assert before["stale_nodes"] == ["edu-dc"]
    assert before["expired_scopes"] == ["edu-dc/aws/vm/edu-1"]
    assert after["stale_nodes"] == [] and after["expired_scopes"] == []
    # Even where every live row counts, edu-dc's rows count no more: S3 was partial only
    # through it, S4 had evidence only there.
    assert {g["key"] for g in before_v1["groups"]} == {"core", "edu-dc"}
    assert {g["key"] for g in after_v1["groups"]} == {"core", "(none)"}
    assert (before_v1["numerator"], before_v1["counts"]["partial"]) == (2, 1)
    assert (after_v1["numerator"], after_v1["counts"]["partial"]) == (3, 0)
    assert after_v1["counts"]["no_evidence"] == 1
    with Session(engine) as session:
        assert stale_nodes(session=session, now=datetime.now(tz=UTC), freshness=WEEK) == []
        assert "edu-dc" not in {
            node for nodes in evidence_nodes(session=session, retired={"edu-dc"}).values()
            for node in nodes
        }  # fmt: skip


def test_a_declared_retired_node_is_not_trusted(estate: Settings, engine: sa.Engine) -> None:
    from inventory.models import System

    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == "S1")).one()
        system.declared_node = "core"
        session.add(system)
        session.commit()
    before = adoption("--trust-declared", "--by", "node")
    retire(engine, "core")
    after = adoption("--trust-declared", "--by", "node")

    assert before["counts"]["on_cloud"] == 1
    assert after["counts"]["on_cloud"] == 0
    assert "core" not in {g["key"] for g in after["groups"]}


# --- the evidence query stays what it was when nothing has expired --------------------------


def test_nothing_expired_means_one_plain_evidence_query(
    estate: Settings, engine: sa.Engine
) -> None:
    scan(engine, "core")
    scan(engine, "edu-dc")
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(" ".join(statement.split()).lower())

    with Session(engine) as session:
        assert expired_scopes(session=session, now=datetime.now(tz=UTC), max_age=WEEK) == []
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            evidence_nodes(session=session, expired=[])
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)

    on_resource = [s for s in statements if "from resource" in s]
    assert len(on_resource) == 1
    # Only columns of ix_resource_live_evidence (and deleted_at, its WHERE): no scope join.
    assert "resource.scope" not in on_resource[0]
    assert "resource.source" not in on_resource[0]


def test_only_pairs_with_evidence_solely_in_expired_scopes_are_taken_out(
    estate: Settings, engine: sa.Engine
) -> None:
    from inventory.models import Resource

    scan(engine, "core")
    scan(engine, "edu-dc")
    now = datetime.now(tz=UTC)
    with Session(engine) as session:
        # S2 also runs a VM in cn-js-1, besides its own in cn-js-2.
        session.add(
            Resource(node_id="core", source="aws", kind="vm", native_id="i-s2-extra",
                     scope="cn-js-1", state="running", system_code="S2", content_hash="x",
                     first_seen_at=now, last_seen_at=now)
        )  # fmt: skip
        session.commit()
        every = evidence_nodes(session=session)
        aged = evidence_nodes(session=session, expired=[("core", "aws", "vm", "cn-js-1")])

    assert every == {"S1": {"core"}, "S2": {"core"}, "S3": {"core", "edu-dc"}, "S4": {"edu-dc"}}
    # S1 had only cn-js-1; S3 keeps edu-dc; S2 keeps core through cn-js-2.
    assert aged == {"S2": {"core"}, "S3": {"edu-dc"}, "S4": {"edu-dc"}}
