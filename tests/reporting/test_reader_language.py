"""Blockers and the punctuation yiyun composes read in the reader's language in every report."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from cli import app
from exporters.reports.scorecard import next_steps
from inventory.i18n import text
from inventory.settings import Settings
from migrate.reasons import Blocker
from tests.reporting.test_html import section
from tests.reporting.test_scorecard import line
from tests.reporting.test_xlsx import records

runner = CliRunner()
# S05 of the report estate: needs_work by R6, stored with its English reason.
ENGLISH = "R6: no 密评 record"
CHINESE = "R6：等保三级及以上系统验收前须有密评记录"
BLOCKER = {"zh": CHINESE, "en": ENGLISH}


def report(tmp_path: Path, *args: str, suffix: str = "") -> Path:
    target = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["report", *args, "-o", str(target)])
    assert result.exit_code == 0, result.output
    return target


def row(page: str, code: str) -> str:
    match = re.search(rf"<tr><td>{code}</td>(.*?)</tr>", page, re.S)
    assert match, code
    return match.group(1)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_report_words_the_blocker_for_its_reader(
    report_estate: Settings, tmp_path: Path, lang: str
) -> None:
    page = report(tmp_path, "html", "--lang", lang).read_text(encoding="utf-8")

    s05 = row(section(page, "pending"), "S05")
    assert BLOCKER[lang] in s05
    if lang == "zh":
        assert "no 密评 record" not in s05


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_scorecard_words_the_blocker_for_its_reader(
    report_estate: Settings, tmp_path: Path, lang: str
) -> None:
    args = ("scorecard", "--department", "JS-EDU", "--lang", lang)
    html = report(tmp_path, *args, "-f", "html").read_text(encoding="utf-8")
    markdown = report(tmp_path, *args, "-f", "md").read_text(encoding="utf-8")

    assert BLOCKER[lang] in row(section(html, "systems"), "S05")
    s05 = next(r for r in markdown.splitlines() if r.startswith("| S05 |"))
    assert s05.endswith(f"| {BLOCKER[lang]} |")
    if lang == "zh":
        assert "no 密评 record" not in html + markdown


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_workbook_words_the_blocker_for_its_reader(
    report_estate: Settings, tmp_path: Path, lang: str
) -> None:
    book = load_workbook(report(tmp_path, "xlsx", "--lang", lang, suffix=".xlsx"))
    systems = {
        r[text("system_code", lang)].value: r for r in records(book[text("sheet_systems", lang)])
    }

    assert systems["S05"][text("blockers", lang)].value == BLOCKER[lang]


def test_step_blocked_lists_the_blockers_in_the_readers_language() -> None:
    rule = {"id": "R6", "outcome": "needs_work", "reason": "no 密评 record", "facts": {}}
    system = line("off_cloud", blockers=(Blocker(rule, "edu-dc"),))

    def blocked(lang: str) -> str:
        steps = next_steps(system, today=date(2026, 11, 26), tag="yiyun.io/system", lang=lang)
        return next(step.text for step in steps if step.kind == "blocked")

    assert blocked("zh") == f"解决阻碍事项：{CHINESE}"
    assert blocked("en") == f"Resolve the blockers: {ENGLISH}"


def test_zh_pages_use_full_width_punctuation_where_yiyun_composes_text(
    report_estate: Settings, tmp_path: Path
) -> None:
    page = report(tmp_path, "html", "--lang", "zh").read_text(encoding="utf-8")
    header = re.search(r"<header>(.*?)</header>", page, re.S)
    assert header
    assert "口径开关：豁免系统计入分母 是，采信自报部署节点 否" in header.group(1)
    assert "（Asia/Shanghai）" in header.group(1)
    card = report(tmp_path, "scorecard", "--department", "SZ-D3", "--lang", "zh", "-f", "html")
    steps = section(card.read_text(encoding="utf-8"), "next-steps")
    assert "<strong>S08</strong>：" in steps and "</strong>:" not in steps
    markdown = report(tmp_path, "scorecard", "--department", "SZ-D3", "--lang", "zh")
    assert "**非涉密系统上云率**：20.00 %（1/5）" in markdown.read_text(encoding="utf-8")


def test_en_pages_keep_ascii_punctuation(report_estate: Settings, tmp_path: Path) -> None:
    page = report(tmp_path, "html", "--lang", "en").read_text(encoding="utf-8")
    header = re.search(r"<header>(.*?)</header>", page, re.S)
    assert header
    switches = f"{text('switches', 'en')}: {text('exempt_in_denominator', 'en')} yes, "
    assert switches in header.group(1) and " (Asia/Shanghai)" in header.group(1)
    assert "，" not in header.group(1) and "（" not in header.group(1)
    markdown = report(tmp_path, "scorecard", "--department", "SZ-D3", "--lang", "en")
    assert f"**{text('kpi_name', 'en')}**: 20.00 % (1/5)" in markdown.read_text(encoding="utf-8")
