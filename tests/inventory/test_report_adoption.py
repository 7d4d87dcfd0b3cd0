"""`yiyun report adoption` on both databases against a hand-computed estate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli import app
from inventory.models import AdoptionSnapshot, ScanRun, ScopeResult
from inventory.settings import Settings
from tests.inventory.kpi_estate import EXPECTED_COUNTS, seed_kpi_estate

runner = CliRunner()


@pytest.fixture
def estate(settings: Settings, engine: sa.Engine) -> Settings:
    with Session(engine) as session:
        seed_kpi_estate(session, settings.today())
    return settings


def adoption_json(*args: str) -> dict:
    result = runner.invoke(app, ["report", "adoption", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_province_kpi_matches_hand_computation(estate: Settings) -> None:
    report = adoption_json()

    # on_cloud S01 S02 S14 S16; denominator = 4 on + 2 exempt + 1 partial + 2 off + 6 none.
    assert report["policy"] == "evidence-v2"
    assert report["expired_scopes"] == []  # none of its scopes has a listing yet to age
    assert report["counts"] == EXPECTED_COUNTS
    assert (report["numerator"], report["denominator"], report["rate"]) == (4, 15, 0.2667)
    assert "groups" not in report
    datetime.strptime(report["as_of"], "%Y-%m-%dT%H:%M:%SZ")


def test_by_city_matches_hand_computation(estate: Settings) -> None:
    report = adoption_json("--by", "city")

    groups = {g["key"]: (g["numerator"], g["denominator"], g["rate"]) for g in report["groups"]}
    # 南京市: on S01 S02 S16, partial S03, none S11 S12 S15.
    # 省级: off S04, none S05 S06 (S09 classified is outside).
    # 苏州市: on S14, exempt S07 S17, off S08, none S13 (S10 retired is outside).
    assert groups == {"南京市": (3, 7, 0.4286), "省级": (0, 3, 0.0), "苏州市": (1, 5, 0.2)}
    suzhou = next(g for g in report["groups"] if g["key"] == "苏州市")
    assert suzhou["counts"]["retired_excluded"] == 1
    assert suzhou["counts"]["exempt"] == 2


def test_policy_switches_change_the_figure(estate: Settings) -> None:
    no_exempt = adoption_json("--no-exempt-in-denominator")
    trusting = adoption_json("--trust-declared")
    both = adoption_json("--trust-declared", "--no-exempt-in-denominator")

    assert (no_exempt["numerator"], no_exempt["denominator"], no_exempt["rate"]) == (4, 13, 0.3077)
    # S06 declares the core node and has no evidence: trusted, it counts as on_cloud.
    assert (trusting["numerator"], trusting["denominator"], trusting["rate"]) == (5, 15, 0.3333)
    assert trusting["counts"]["no_evidence"] == 5
    assert (both["numerator"], both["denominator"]) == (5, 13)


def test_switch_defaults_come_from_settings(
    estate: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inventory.settings import set_settings

    set_settings(estate.model_copy(update={"exempt_in_denominator": False}))
    assert adoption_json()["denominator"] == 13


def test_by_department_and_node(estate: Settings) -> None:
    by_department = {
        g["key"]: g["denominator"] for g in adoption_json("--by", "department")["groups"]
    }
    by_node = {g["key"]: g["counts"] for g in adoption_json("--by", "node")["groups"]}

    assert by_department == {"JS-EDU": 3, "JS-SEC": 0, "NJ-D1": 6, "NJ-D2": 1, "SZ-D3": 5}
    assert by_node["edu-dc"]["partial"] == 1  # S03 only: S17 is exempt
    assert by_node["nj"]["on_cloud"] == 1


def test_classified_systems_are_counted_never_named(estate: Settings, engine: sa.Engine) -> None:
    for fmt in ("json", "csv", "md", "table"):
        for by in ("city", "department", "node"):
            result = runner.invoke(app, ["report", "adoption", "--format", fmt, "--by", by])
            assert result.exit_code == 0
            assert "S09" not in result.stdout and "系统S09" not in result.stdout

    assert runner.invoke(app, ["report", "adoption", "--snapshot"]).exit_code == 0
    with Session(engine) as session:
        snapshot = session.exec(select(AdoptionSnapshot)).one()
    assert "S09" not in json.dumps(snapshot.system_codes)
    assert snapshot.counts == EXPECTED_COUNTS


def test_snapshot_is_stored_and_listed(estate: Settings, engine: sa.Engine) -> None:
    first = runner.invoke(app, ["report", "adoption", "--snapshot", "--format", "json"])
    history = runner.invoke(app, ["report", "adoption", "--history", "--format", "json"])

    assert first.exit_code == 0 and history.exit_code == 0
    rows = json.loads(history.stdout)
    assert [(r["numerator"], r["denominator"], r["rate"]) for r in rows] == [(4, 15, 0.2667)]
    with Session(engine) as session:
        snapshot = session.exec(select(AdoptionSnapshot)).one()
    assert snapshot.system_codes is not None and snapshot.groups is not None
    assert snapshot.system_codes["on_cloud"] == ["S01", "S02", "S14", "S16"]
    assert {g["key"] for g in snapshot.groups["city"]} == {"南京市", "省级", "苏州市"}


def test_csv_and_md_carry_the_same_numbers(estate: Settings) -> None:
    csv_out = runner.invoke(app, ["report", "adoption", "--by", "city", "--format", "csv"]).stdout
    md_out = runner.invoke(app, ["report", "adoption", "--by", "city", "--format", "md"]).stdout

    lines = csv_out.strip().splitlines()
    assert lines[0].startswith("key,numerator,denominator,rate,on_cloud")
    assert "南京市,3,7,0.4286,3,0,1,0,3,0,0" in lines
    assert "| 南京市 | 42.86 % | 3 | 7 |" in md_out


def test_stale_nodes_are_listed(estate: Settings, engine: sa.Engine) -> None:
    now = datetime.now(tz=UTC)
    with Session(engine) as session:
        # core: complete scan an hour ago; nj: its only recent scan failed a scope.
        old = ScanRun(started_at=now - timedelta(hours=1), finished_at=now, status="ok")
        session.add(old)
        session.flush()
        session.add(
            ScopeResult(
                run_id=old.id,
                node_id="core",
                source="aws",
                kind="vm",
                scope="r1",
                status="ok",
                started_at=now,
                finished_at=now,
            )
        )
        session.add(
            ScopeResult(
                run_id=old.id,
                node_id="nj",
                source="kubernetes",
                kind="deployment",
                scope="*",
                status="error",
                started_at=now,
                finished_at=now,
            )
        )
        session.commit()

    # edu-dc has no sources, so nothing can be stale about it.
    assert adoption_json()["stale_nodes"] == ["nj"]


def test_report_refuses_a_database_without_schema(tmp_path) -> None:
    result = runner.invoke(app, ["--db", f"sqlite:///{tmp_path}/empty.db", "report", "adoption"])

    assert result.exit_code == 2
    assert "yiyun db upgrade" in result.output
