"""Systems on the unified cloud placed against R1–R6: a compliance finding (部署不合规)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from exporters.snapshot import build_snapshot
from inventory.confidentiality import REDACTED, Disclosure
from inventory.settings import Settings
from inventory.violations import PLACEMENT, placement_violations
from migrate.placement import breaches, placement_counts
from migrate.placement import placement_violations as migrate_placement_violations
from migrate.rules import (
    NOT_APPLICABLE,
    PASS,
    PLACEMENT_RULES,
    SystemProfile,
    TargetProfile,
    assess,
)
from tests.migrate.conftest import invoke
from tests.migrate.placement_estate import EXPECTED, seed_placement_estate

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def placed(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        seed_placement_estate(session, settings.today())
    return settings


def _found(disclosure: Disclosure, engine: sa.Engine) -> dict[tuple[str, str], tuple[str, ...]]:
    with Session(engine) as session:
        found = migrate_placement_violations(session=session, disclosure=disclosure)
    return {(v.node_id, v.system_code): v.rules for v in found}


def test_each_system_on_the_cloud_is_judged_on_each_node_it_runs_on(
    placed: Settings, engine: sa.Engine
) -> None:
    named = _found(Disclosure(include_classified=True), engine)
    assert named == EXPECTED
    # Counted, never named: the classified system keeps its node and its rule, nothing else.
    withheld = _found(Disclosure(), engine)
    assert withheld == {
        (node, REDACTED if code == "P4" else code): rules
        for (node, code), rules in EXPECTED.items()
    }
    with Session(engine) as session:
        redacted = [
            v
            for v in migrate_placement_violations(session=session, disclosure=Disclosure())
            if v.redacted
        ]
    assert [(v.name, v.department_code) for v in redacted] == [(None, None)]
    assert all(b.facts == {} and b.reason == REDACTED for b in redacted[0].breaches)


def test_the_facts_are_the_rules_own(placed: Settings, engine: sa.Engine) -> None:
    with Session(engine) as session:
        found = migrate_placement_violations(session=session)
    p1 = next(v for v in found if v.system_code == "P1")
    r1 = p1.breaches[0]
    assert (r1.rule, r1.outcome) == ("R1", "blocked")
    assert r1.facts == {"system_mlps_level": 4, "platform_mlps_level": 3}
    assert "below the system's level 4" in r1.reason


def test_counts_have_a_zero_for_every_unified_cloud_node(
    placed: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        assert placement_counts(session=session) == {"core": 3, "core4": 0, "nj": 1}


def test_inventory_asks_through_the_installed_check(placed: Settings, engine: sa.Engine) -> None:
    # cli.py installs migrate's check; inventory alone never imports migrate/.
    import cli  # noqa: F401

    with Session(engine) as session:
        through_inventory = placement_violations(session=session)
        direct = migrate_placement_violations(session=session)
    assert through_inventory == direct and len(direct) == 4


def test_the_exporter_counts_placement_per_node_and_names_nothing(
    placed: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        plain = build_snapshot(session=session, settings=placed, now=NOW)
        snapshot = build_snapshot(
            session=session, settings=placed, now=NOW, placement_counts=placement_counts
        )
    series = {k: v for k, v in snapshot.policy_violations.items() if k[0] == PLACEMENT}
    assert series == {
        (PLACEMENT, "core"): 3.0,
        (PLACEMENT, "core4"): 0.0,
        (PLACEMENT, "nj"): 1.0,
    }
    # Without the seam there is no placement series, and the other rules are untouched.
    assert {k: v for k, v in snapshot.policy_violations.items() if k[0] != PLACEMENT} == dict(
        plain.policy_violations
    )
    labels = {value for key in snapshot.policy_violations for value in key}
    assert labels.isdisjoint({"P1", "P3", "P4", "P6", "机要通信系统"})


def test_report_violations_lists_placement_with_rules_and_facts(placed: Settings) -> None:
    code, out, err = invoke("report", "violations", "--format", "json")
    assert code == 1, out + err  # a violation: a cron job notices
    rows = [r for r in json.loads(out) if r["rule"] == PLACEMENT]
    assert [(r["node"], r["native_id"]) for r in rows] == [
        ("core", "P1"),
        ("core", "P6"),
        ("core", REDACTED),
        ("nj", "P3"),
    ]
    assert rows[0]["basis"].startswith("R1: platform core is MLPS level 3")
    assert rows[2]["basis"] == "R3" and rows[2]["name"] is None
    assert "P4" not in out and "机要通信系统" not in out

    code, out, err = invoke("report", "violations", "--format", "md", "--lang", "zh")
    assert code == 1, out + err
    line = next(row for row in out.splitlines() if "| P1 |" in row)
    assert "部署不合规" in line
    assert "等保四级系统部署在三级平台 core（R1）" in line
    assert "等保四级系统部署在 core，该平台没有四级专用资源池（R2）" in line
    assert "等保四级系统尚无密评记录（R6）" in line
    p3 = next(row for row in out.splitlines() if "| P3 |" in row)
    assert "含重要数据的系统部署在二级平台 nj，应为三级及以上（R5）" in p3
    assert "违反 R3（涉密系统，详情不列出）" in out

    code, out, err = invoke("report", "violations", "--lang", "zh")
    assert "部署不合规 4 项" in err

    code, out, _ = invoke("report", "violations", "--format", "json", "--include-classified")
    rows = [r for r in json.loads(out) if r["rule"] == PLACEMENT]
    assert ("core", "P4") in [(r["node"], r["native_id"]) for r in rows]


def test_assessment_of_an_on_cloud_system_still_says_nothing_to_move(placed: Settings) -> None:
    # The rules broken on the node where it runs are a finding, not the assessment's verdict.
    code, out, err = invoke("migrate", "assess", "--format", "json")
    assert code == 0, out + err
    p1 = next(row for row in json.loads(out) if row["system_code"] == "P1")
    assert p1["readiness"] == "out_of_scope"


# ---------------------------------------------------------------- one definition of R1–R6

levels = st.integers(min_value=1, max_value=5)
profiles = st.builds(
    SystemProfile,
    code=st.just("S"),
    mlps_level=levels,
    classified=st.booleans(),
    data_level=st.sampled_from(["general", "important", "core"]),
    crypto_assessed_on=st.none() | st.just(date(2026, 1, 1)),
    evidence_status=st.sampled_from(["on_cloud", "off_cloud", "partial"]),
)
targets = st.builds(
    TargetProfile,
    id=st.just("n"),
    mlps_level=st.none() | levels,
    dedicated_level4_pool=st.booleans(),
)


@given(profiles, targets)
def test_a_finding_is_exactly_what_assessment_would_say_of_that_node(
    system: SystemProfile, target: TargetProfile
) -> None:
    verdict = assess(system, target, today=date(2026, 11, 26))
    fired = [
        (r.id, r.outcome, r.reason, r.facts)
        for r in verdict.rules
        if r.id in PLACEMENT_RULES and r.outcome not in (PASS, NOT_APPLICABLE)
    ]
    assert [(b.rule, b.outcome, b.reason, b.facts) for b in breaches(system, target)] == fired
