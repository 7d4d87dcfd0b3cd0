"""`yiyun report scorecard`: one department's page in Markdown, HTML and JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from exporters.reports.content import Placement, SystemLine
from exporters.reports.scorecard import next_steps
from inventory.settings import Settings
from tests.reporting.estate import MARKUP_NAME, SECRET_NAME
from tests.reporting.pages import readable

runner = CliRunner()


def scorecard(*args: str) -> str:
    result = runner.invoke(app, ["report", "scorecard", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_scorecard_keeps_english_keys_and_the_kpi_figures(report_estate: Settings) -> None:
    card = json.loads(scorecard("--department", "JS-EDU", "--format", "json", "--lang", "zh"))
    adoption = runner.invoke(app, ["report", "adoption", "--by", "department", "--format", "json"])
    group = next(g for g in json.loads(adoption.stdout)["groups"] if g["key"] == "JS-EDU")

    assert {k: card[k] for k in ("numerator", "denominator", "rate", "counts")} == {
        k: group[k] for k in ("numerator", "denominator", "rate", "counts")
    }
    assert card["name"] == "江苏省教育厅"
    systems = {s["code"]: s for s in card["systems"]}
    assert set(systems) == {"S04", "S05", "S06"}
    s04 = systems["S04"]
    assert (s04["status"], s04["plan"], s04["wave"], s04["wave_end"], s04["migration_state"]) == (
        "off_cloud",
        "edu-dc-2026",
        1,
        "2026-10-31",
        "migrating",
    )
    assert systems["S05"]["blockers"] == ["R6: no 密评 record"]
    kinds = {(step["system"], step["kind"]) for step in card["next_steps"]}
    assert kinds == {
        ("S04", "overdue"),
        ("S04", "advance"),
        ("S04", "network"),
        # S05's R6 finding stays in its blockers column; with nothing of it seen off the cloud
        # no plan can take it, so its step is to make it seen (no_evidence), not "unblock".
        ("S05", "no_evidence"),
        ("S05", "network"),
        ("S06", "no_evidence"),
    }


def test_markdown_scorecard_lists_systems_and_next_steps(report_estate: Settings) -> None:
    page = scorecard("--department", "SZ-D3", "--lang", "zh")

    assert page.startswith("# 部门上云工作单：苏州市卫生健康委员会")
    assert "口径 evidence-v2" in page
    assert "**非涉密系统上云率**：20.00 %（1/5）" in page
    assert "| S08 | 系统S08 | 未上云 | 业务专网 | edu-dc-2026 | 2 | 已定方案 |" in page
    # The step `migrate advance` would print, with its command (migrate/next_step.py).
    assert "- **S08**：当前为已定方案，下一步改为资源开通中：" in page
    assert "yiyun migrate advance S08 --to provisioning --by 操作人" in page
    assert "- **S07**：豁免有效期至" in page
    markup = scorecard("--department", "JS-EDU", "--lang", "en")
    assert MARKUP_NAME not in markup and "&lt;script&gt;" in markup


def test_html_scorecard_is_self_contained_and_escaped(
    report_estate: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "edu.html"
    result = runner.invoke(
        app,
        ["report", "scorecard", "--department", "JS-EDU", "--format", "html", "-o", str(target)],
    )

    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert "default-src 'none'" in page and "<link" not in page
    assert MARKUP_NAME not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "S05" in page and "R6: no 密评 record" in page


def test_classified_department_shows_a_count_only(report_estate: Settings) -> None:
    for fmt in ("md", "html", "json"):
        page = scorecard("--department", "JS-SEC", "--format", fmt, "--lang", "zh")
        page = readable(page)  # an embedded font's base64 can spell "S09" by chance
        assert SECRET_NAME not in page and "S09" not in page
    card = json.loads(scorecard("--department", "JS-SEC", "--format", "json"))
    assert card["counts"]["classified_excluded"] == 1 and card["systems"] == []


def test_unknown_department_suggests_the_closest(report_estate: Settings) -> None:
    result = runner.invoke(app, ["report", "scorecard", "--department", "JS-ED", "--lang", "en"])

    assert result.exit_code == 2
    assert "unknown department code JS-ED" in result.output
    assert "JS-EDU" in result.output


def line(status: str, **fields: object) -> SystemLine:
    values: dict[str, object] = dict(
        code="X1", name="x", department_code="D", city="南京市", status=status,
        network_zone="extranet", mlps_level=2, lifecycle="active",
        exemption_valid_until=None, placement=None, readiness=None, blockers=(),
    )  # fmt: skip
    values.update(fields)
    return SystemLine(**values)  # type: ignore[arg-type]


def kinds(system: SystemLine) -> list[str]:
    steps = next_steps(system, today=date(2026, 11, 26), tag="yiyun.io/system", lang="en")
    return [step.kind for step in steps]


def test_next_steps_follow_status_and_migration() -> None:
    planned = Placement("p", 3, date(2026, 12, 1), date(2027, 1, 31), "planned")
    held = Placement("p", 1, date(2026, 1, 1), date(2026, 2, 1), "on_hold")
    accepted = Placement("p", 1, None, None, "accepted")
    cutover = Placement("p", 1, None, None, "cutover")

    assert kinds(line("off_cloud")) == ["plan"]
    assert kinds(line("off_cloud", placement=planned)) == ["advance"]
    assert kinds(line("off_cloud", placement=held)) == ["on_hold"]
    assert kinds(line("partial", placement=cutover)) == ["partial", "advance"]
    assert kinds(line("on_cloud", placement=cutover)) == ["accept"]
    assert kinds(line("on_cloud", placement=accepted)) == []
    assert kinds(line("on_cloud")) == []
    assert kinds(line("exempt", exemption_valid_until=date(2027, 1, 1))) == ["exempt"]
    assert kinds(line("retired_excluded", network_zone="private_network")) == []
    assert kinds(line("no_evidence", network_zone="private_network")) == [
        "no_evidence",
        "network",
    ]


def test_with_a_migration_ledger_the_step_is_the_one_migrate_decides() -> None:
    from migrate.next_step import Facts, decide

    planned = Placement("p", 3, date(2026, 12, 1), date(2027, 1, 31), "planned")
    blocked = Facts(
        code="X1", today=date(2026, 11, 26), mlps_level=2, crypto_assessed_on=None,
        readiness="blocked", strategy="retain", rules=("R4",), target="core",
        evidence_status="off_cloud", sources=("edu-dc",), plan="p", state="assessed",
    )  # fmt: skip
    step = decide(blocked)
    system = line("off_cloud", blockers=("R4: holds core data",), next_step=step)
    steps = next_steps(system, today=date(2026, 11, 26), tag="yiyun.io/system", lang="zh")
    # The blocker is not a step: the override that unblocks it is, never a plan import.
    assert [s.kind for s in steps] == ["override"]
    assert "yiyun migrate assess override X1 --readiness ready --strategy rehost" in steps[0].text
    assert "plan import" not in steps[0].text

    ready = replace(
        blocked, readiness="ready", strategy="rehost", wave=3, placeable_in_plan=True,
        state="planned",
    )  # fmt: skip
    assert kinds(line("off_cloud", placement=planned, next_step=decide(ready))) == ["advance"]
    # On the cloud but only planned: acceptance is not allowed yet, the next state is.
    on_cloud = decide(replace(ready, evidence_status="on_cloud"))
    assert on_cloud.to_state == "provisioning"
    assert kinds(line("on_cloud", placement=planned, next_step=on_cloud)) == ["advance"]
    # Nothing to move: no step, whatever the placement findings say.
    nothing = decide(replace(blocked, plan=None, state=None, evidence_status="on_cloud"))
    assert nothing.quiet and kinds(line("on_cloud", next_step=nothing)) == []
