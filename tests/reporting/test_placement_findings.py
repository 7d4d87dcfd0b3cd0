"""A system on the unified cloud placed against R1–R6 is a compliance finding in the manager
reports and the scorecard, never a blocker of a move."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from inventory.i18n import text
from inventory.settings import Settings
from tests.migrate.placement_estate import seed_placement_estate

runner = CliRunner()
HEADER_ROW = 2


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def assessed(settings: Settings, engine: sa.Engine) -> Settings:
    """The placement estate, assessed: P1's stored rules carry R1/R2 blocked, R6 needs_work."""
    with Session(engine) as session:
        seed_placement_estate(session, settings.today())
    run("migrate", "assess")
    return settings


def test_scorecard_json_has_findings_and_no_blockers_for_a_system_on_the_cloud(
    assessed: Settings,
) -> None:
    card = json.loads(run("report", "scorecard", "--department", "JS-EDU", "--format", "json"))
    systems = {s["code"]: s for s in card["systems"]}
    p1 = systems["P1"]
    assert p1["status"] == "on_cloud" and p1["readiness"] == "out_of_scope"
    assert p1["blockers"] == []  # nothing to move, so nothing blocks a move
    assert [(f["node"], f["rules"]) for f in p1["findings"]] == [("core", ["R1", "R2", "R6"])]
    assert [(f["node"], f["rules"]) for f in systems["P6"]["findings"]] == [("core", ["R1", "R2"])]
    assert systems["P2"]["findings"] == [] and systems["P5"]["findings"] == []
    steps = [(s["system"], s["kind"]) for s in card["next_steps"]]
    assert ("P1", "placement") in steps and ("P1", "blocked") not in steps
    # A system still waiting to move keeps its blockers: only placement is not one. A04 is
    # level 5, which never moves (R3): its step says it stays, not how to unblock it.
    assert systems["A04"]["blockers"] and ("A04", "stays") in steps
    assert "P4" not in systems  # classified: never named


def test_scorecard_markdown_says_non_compliant_in_chinese(assessed: Settings) -> None:
    page = run("report", "scorecard", "--department", "JS-EDU", "--lang", "zh")
    row = next(line for line in page.splitlines() if line.startswith("| P1 |"))
    assert row.endswith(" · 部署不合规 | — |")  # readiness, then no blockers
    assert "## 合规问题：部署不合规" in page
    assert "- **P1**（core）：等保四级系统部署在三级平台 core（R1）；" in page
    step = next(line for line in page.splitlines() if line.startswith("- **P1**：部署不合规"))
    assert "等保四级系统尚无密评记录（R6）" in step
    assert "解决阻碍事项" not in "".join(line for line in page.splitlines() if "P1" in line)


def test_scorecard_html_shows_the_finding_section(assessed: Settings, tmp_path: Path) -> None:
    target = tmp_path / "card.html"
    run(
        "report", "scorecard", "--department", "JS-EDU", "--format", "html", "--lang", "zh",
        "-o", str(target),
    )  # fmt: skip
    page = target.read_text(encoding="utf-8")
    section = page[page.index('<section id="placement">') :]
    section = section[: section.index("</section>")]
    assert "合规问题：部署不合规" in section
    assert "<strong>P1</strong>（core）：等保四级系统部署在三级平台 core（R1）" in section


def test_html_report_lists_findings_counting_the_classified_one(
    assessed: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    run("report", "html", "-o", str(target), "--lang", "en")
    page = target.read_text(encoding="utf-8")
    section = page[page.index('<section id="violations">') :]
    section = section[: section.index("</section>")]
    assert "Compliance findings: placement against the rules" in section
    assert "MLPS level-4 system on core, a level-3 platform (R1)" in section
    assert "breaks R3 (classified system: details withheld)" in section
    readable = re.sub(r"data:[^\"')]+", "", page)  # the embedded font and charts
    assert "P4" not in readable and "机要通信系统" not in readable


def _records(path: Path, sheet: str) -> list[dict[str, Any]]:
    rows = list(load_workbook(path)[sheet].iter_rows(min_row=HEADER_ROW, values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_workbook_counts_and_lists_findings(assessed: Settings, tmp_path: Path) -> None:
    target = tmp_path / "report.xlsx"
    run("report", "xlsx", "-o", str(target), "--lang", "zh")
    t = lambda key: text(key, "zh")  # noqa: E731
    summary = {r[t("metric")]: r[t("value")] for r in _records(target, t("sheet_summary"))}
    assert summary[t("pl_count")] == 4
    placed = [r for r in _records(target, t("sheet_violations")) if r[t("rule")] == "部署不合规"]
    assert [(r[t("node")], r[t("native_id")]) for r in placed] == [
        ("core", "P1"),
        ("core", "P6"),
        ("core", t("redacted")),
        ("nj", "P3"),
    ]
    systems = {r[t("system_code")]: r for r in _records(target, t("sheet_systems"))}
    assert systems["P1"][t("blockers")] == "—"
    assert systems["P1"][t("pl_findings")].startswith("等保四级系统部署在三级平台 core（R1）")
    assert systems["A01"][t("pl_findings")] is None
