"""`yiyun migrate assess` on both databases: every rule against the seeded estate, overrides."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import System
from inventory.settings import Settings
from migrate.models import Assessment
from tests.migrate.conftest import invoke


def assessed(*args: str) -> dict[str, dict]:
    code, out, err = invoke("migrate", "assess", "--format", "json", *args)
    assert code == 0, out + err
    return {row["system_code"]: row for row in json.loads(out)}


def rule_ids(row: dict) -> set[str]:
    return {part.split(" ")[0] for part in row["rules"].split("; ") if part}


def test_every_system_gets_its_rule_against_the_best_node(estate: Settings) -> None:
    rows = assessed()

    verdicts = {code: (r["readiness"], r["strategy"], rule_ids(r)) for code, r in rows.items()}
    assert verdicts == {
        "A01": ("ready", "rehost", {"T9"}),
        "A02": ("needs_work", "replatform", {"R6", "T7"}),
        "A03": ("ready", "rehost", {"T9"}),  # core4 has a dedicated level-4 pool
        "A04": ("blocked", "retain", {"R1", "R3", "R6", "T4"}),
        "A06": ("blocked", "retain", {"R4", "T4"}),
        "A07": ("ready", "rehost", {"T9"}),  # important data on a level-3 platform
        "A08": ("ready", "retire", {"T2"}),
        "A09": ("exempt", "retain", {"X3", "T3"}),
        "A10": ("out_of_scope", None, {"X2", "T1"}),
        "A11": ("out_of_scope", None, {"X1", "T1"}),
        "A12": ("ready", "rehost", {"T8"}),
        "A13": ("ready", "rehost", {"T8"}),
        "A14": ("ready", "relocate", {"T5"}),
    }
    assert rows["A03"]["node"] == "core4"
    assert rows["A07"]["node"] == "core"


def test_assessing_against_one_node_applies_its_level(estate: Settings) -> None:
    rows = assessed("--node", "nj")

    assert (rows["A02"]["readiness"], rule_ids(rows["A02"]) >= {"R1", "R6"}) == ("blocked", True)
    assert (rows["A03"]["readiness"], rule_ids(rows["A03"]) >= {"R1", "R2"}) == ("blocked", True)
    assert (rows["A07"]["readiness"], rule_ids(rows["A07"]) >= {"R5"}) == ("blocked", True)
    assert rows["A01"]["readiness"] == "ready"


def test_sizing_counts_what_systems_claim_not_cluster_capacity(estate: Settings) -> None:
    rows = assessed()

    sizing = {c: (r["vcpu"], r["memory_gib"], r["storage_gib"]) for c, r in rows.items()}
    assert sizing["A02"] == (12, 48, 500)  # a VM plus a database instance
    assert sizing["A12"] == (1, 0, 0)  # the cluster node and the quota are not claims
    assert sizing["A13"] == (1, 0, 20)  # the PVC holds its storage
    assert sizing["A10"] == (0, 0, 0)  # already on the unified cloud: nothing left to move


def test_classified_systems_are_never_named(estate: Settings) -> None:
    code, out, err = invoke("migrate", "assess")
    _, as_json, _ = invoke("migrate", "assess", "--format", "csv")

    assert code == 0
    assert "A05" not in out + err + as_json
    assert "1 classified not shown" in out


def test_reassessing_writes_only_what_changed(estate: Settings, engine: sa.Engine) -> None:
    assessed()
    assessed()
    with Session(engine) as session:
        assert len(session.exec(select(Assessment)).all()) == 14
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        system.crypto_assessed_on = estate.today()
        session.add(system)
        session.commit()

    rows = assessed()

    assert rows["A02"]["readiness"] == "ready"
    with Session(engine) as session:
        history = session.exec(
            select(Assessment)
            .where(col(Assessment.system_code) == "A02")
            .order_by(col(Assessment.id))
        ).all()
        assert [(h.readiness, h.superseded_at is None) for h in history] == [
            ("needs_work", False),
            ("ready", True),
        ]
        assert len(session.exec(select(Assessment)).all()) == 15


def test_override_is_kept_across_reassessment_and_audited(estate: Settings) -> None:
    assessed()

    code, out, err = invoke(
        "migrate", "assess", "override", "A01", "--strategy", "refactor",
        "--rationale", "单体拆分, 迁移时一并改造", "--by", "张工",
    )  # fmt: skip
    rows = assessed()
    _, shown, _ = invoke("migrate", "assess", "show", "A01", "--format", "json")

    assert code == 0, out + err
    assert (rows["A01"]["strategy"], rows["A01"]["assessed_strategy"]) == ("refactor", "rehost")
    assert rows["A01"]["override_by"] == "张工"
    history = json.loads(shown)
    assert [(h["override_strategy"], h["override_by"]) for h in history] == [
        (None, None),
        ("refactor", "张工"),
    ]
    assert history[-1]["override_rationale"] == "单体拆分, 迁移时一并改造"
    assert {r["id"] for r in history[-1]["rules"]} >= {"R1", "R2", "R3", "R4", "R5", "R6"}


def test_override_can_be_cleared(estate: Settings) -> None:
    invoke("migrate", "assess", "override", "A06", "--readiness", "ready", "--rationale",
           "核心数据已脱敏", "--by", "李处")  # fmt: skip

    code, _, _ = invoke(
        "migrate", "assess", "override", "A06", "--clear", "--rationale", "撤销", "--by", "李处"
    )

    assert code == 0
    assert assessed()["A06"]["readiness"] == "blocked"


def test_r3_override_is_refused_and_writes_nothing(estate: Settings, engine: sa.Engine) -> None:
    assessed()

    code, _, err = invoke(
        "migrate", "assess", "override", "A04", "--readiness", "ready", "--rationale", "x",
        "--by", "y",
    )  # fmt: skip

    assert code == 1
    assert "R3 cannot be overridden" in err
    with Session(engine) as session:
        assert len(session.exec(select(Assessment)).all()) == 14


def test_override_of_a_classified_system_does_not_confirm_it(estate: Settings) -> None:
    code, _, err = invoke(
        "migrate", "assess", "override", "A05", "--readiness", "ready", "--rationale", "x",
        "--by", "y",
    )  # fmt: skip

    assert code == 1
    assert "unknown system" in err


def test_unknown_or_off_cloud_node_is_a_usage_error(estate: Settings) -> None:
    unknown = invoke("migrate", "assess", "--node", "nowhere")
    off_cloud = invoke("migrate", "assess", "--node", "edu-dc")

    assert unknown[0] == 2 and "unknown node" in unknown[2]
    assert off_cloud[0] == 2 and "not part of the unified cloud" in off_cloud[2]


def test_classified_system_is_stored_out_of_scope_by_r3(
    estate: Settings, engine: sa.Engine
) -> None:
    assessed()

    with Session(engine) as session:
        row = session.exec(select(Assessment).where(col(Assessment.system_code) == "A05")).one()

    r3 = next(r for r in row.rules or [] if r["id"] == "R3")
    assert (row.readiness, row.strategy) == ("out_of_scope", None)
    assert (r3["outcome"], r3["facts"]["classified"]) == ("out_of_scope", True)
