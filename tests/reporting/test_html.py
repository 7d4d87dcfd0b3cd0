"""`yiyun report html`: one self-contained page with every section, on both databases."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from exporters.reports.content import gather_report
from exporters.reports.html import render_html
from exporters.reports.migration_view import migration_ledger
from inventory.db import make_engine, upgrade
from inventory.reports import switches_from
from inventory.settings import Settings, set_settings
from tests.inventory.kpi_estate import seed_kpi_estate
from tests.reporting.estate import MARKUP_NAME, SECRET_NAME, SECRET_RESOURCE
from tests.reporting.pages import readable

runner = CliRunner()
SECTIONS = ("kpi", "trend", "status", "by-city", "by-department", "pending", "network",
            "violations", "freshness", "migration")  # fmt: skip


def render(tmp_path: Path, *args: str) -> str:
    target = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "html", "-o", str(target), *args])
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8")


def section(page: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert match, name
    return match.group(1)


def test_report_has_every_section_with_as_of_and_policy(
    report_estate: Settings, tmp_path: Path
) -> None:
    page = render(tmp_path, "--lang", "zh")

    assert page.startswith("<!doctype html>")
    assert '<html lang="zh-CN">' in page
    for name in SECTIONS:
        body = section(page, name)
        # Every section (and, through the fixed footer, every printed page) carries both.
        assert "数据截至" in body and "口径 evidence-v2" in body, name
    assert 'class="page-stamp"' in page
    kpi = section(page, "kpi")
    assert "26.67 %" in kpi and "非涉密系统上云率" in kpi
    assert "nj" in kpi  # stale node warned about


def test_charts_are_embedded_svg_and_nothing_is_fetched(
    report_estate: Settings, tmp_path: Path
) -> None:
    page = render(tmp_path, "--lang", "zh")

    sources = re.findall(r'<img class="chart" alt="[^"]*" src="([^"]+)"', page)
    assert len(sources) == 5  # trend, status, city, department, network
    for source in sources:
        prefix = "data:image/svg+xml;base64,"
        assert source.startswith(prefix)
        svg = ET.fromstring(base64.b64decode(source[len(prefix) :]))
        assert svg.tag.endswith("svg")
    # No script, stylesheet link, remote image or font: the extranet has no internet.
    assert "<script" not in page.replace("&lt;script", "")
    assert "<link" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "default-src 'none'" in page


def test_classified_systems_are_counted_never_named(
    report_estate: Settings, tmp_path: Path
) -> None:
    for lang in ("zh", "en"):
        page = readable(render(tmp_path, "--lang", lang))

        assert page.count("<svg") == 5  # the charts' labels are searched too
        assert SECRET_NAME not in page
        assert "S09" not in page
        assert SECRET_RESOURCE not in page and "i-secret" not in page
    assert "涉密系统 1 个：只计数，不列名。" in render(tmp_path, "--lang", "zh")


def test_user_data_is_escaped(report_estate: Settings, tmp_path: Path) -> None:
    page = render(tmp_path)

    assert MARKUP_NAME not in page
    assert "&lt;b&gt;学籍&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pending_systems_show_migration_state_wave_and_blockers(
    report_estate: Settings, tmp_path: Path
) -> None:
    pending = section(render(tmp_path, "--lang", "zh"), "pending")

    # Departments with most pending systems first: SZ-D3 (4), JS-EDU (3), NJ-D1 (3), NJ-D2 (1).
    headings = re.findall(r"<h3>(.*?) · (\d+)</h3>", pending)
    assert [count for _, count in headings] == ["4", "3", "3", "1"]
    assert headings[0][0] == "苏州市卫生健康委员会（SZ-D3）"
    s04 = re.search(r"<tr><td>S04</td>(.*?)</tr>", pending, re.S)
    assert s04
    assert "edu-dc-2026" in s04.group(1)
    assert "1（2026-09-01 – 2026-10-31）" in s04.group(1)
    assert "迁移中" in s04.group(1)
    s05 = re.search(r"<tr><td>S05</td>(.*?)</tr>", pending, re.S)
    assert s05 and "R6：等保三级及以上系统验收前须有密评记录" in s05.group(1)
    # On the cloud: not listed as pending.
    assert "<td>S01</td>" not in pending


def test_network_violations_freshness_and_migration_sections(
    report_estate: Settings, tmp_path: Path
) -> None:
    page = render(tmp_path, "--lang", "zh")

    network = section(page, "network")
    assert re.search(r"江苏省教育厅（JS-EDU）</td>(<td[^>]*>\d+</td>)*", network)
    assert "66.67 %" in network  # 2 of JS-EDU's 3 live systems on 业务专网
    violations = section(page, "violations")
    assert "S04-vm" in violations and "（涉密系统资源，不列名）" in violations
    assert "2022-04-04" in violations
    freshness = section(page, "freshness")
    assert re.search(r'<tr class="stale"><td>nj</td>', freshness)
    assert "无数据源" in freshness  # edu-dc has no sources
    migration = section(page, "migration")
    assert "edu-dc-2026" in migration and "割接中" in migration
    trend = section(page, "trend")
    assert "另有 1 个快照采用不同口径或开关" in trend
    assert trend.count("<tr><td>") == 4  # three snapshots and today


def test_english_from_the_setting_when_no_option(report_estate: Settings, tmp_path: Path) -> None:
    set_settings(report_estate.model_copy(update={"lang": "en"}))

    page = render(tmp_path)

    assert '<html lang="en">' in page
    assert "Adoption by city" in page and "各设区市上云率" not in page
    assert "Systems not yet on the cloud, by department" in page


def test_missing_migration_tables_show_a_dash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine)
    # A ledger without the migration tables (they came with migration 0002).
    with engine.begin() as connection:
        for table in ("assessment", "dependency", "migrationevent", "plan", "systemmigration",
                      "wave"):  # fmt: skip
            connection.exec_driver_sql(f"DROP TABLE {table}")
    settings = Settings(database_url=url)
    with Session(engine) as session:
        seed_kpi_estate(session, settings.today())
        content = gather_report(
            session=session,
            settings=settings,
            switches=switches_from(settings),
            migration_view=migration_ledger,
        )
    engine.dispose()

    page = render_html(content, "zh")

    assert content.migration_ledger is False
    assert "迁移台账尚未建立（—）" in section(page, "migration")
    assert re.search(r"<tr><td>S04</td>.*?<td>—</td>", section(page, "pending"), re.S)


def test_an_empty_register_still_renders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url)
    with Session(engine) as session:
        content = gather_report(
            session=session,
            settings=settings,
            switches=switches_from(settings),
            now=datetime(2026, 11, 26, tzinfo=UTC),
        )
    engine.dispose()

    page = render_html(content, "en")

    assert "No systems in the register yet" in page
    assert "No snapshots yet" in page


def test_stale_schema_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    set_settings(Settings(database_url=url))
    try:
        result = runner.invoke(app, ["report", "html", "-o", str(tmp_path / "x.html")])
    finally:
        set_settings(None)

    assert result.exit_code == 2
    assert not (tmp_path / "x.html").exists()
    assert "schema" in result.output


def test_expired_scopes_are_shown_where_stale_nodes_are(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    from tests.inventory.evidence_age_estate import age_run, scan, seed_nodes_and_register

    with Session(engine) as session:
        seed_nodes_and_register(session)
    first = scan(engine, "core")
    age_run(engine, first.run_id, timedelta(days=8))
    scan(engine, "core", failing={"cn-js-1"})  # cn-js-1: no complete listing for 8 days

    page = render(tmp_path, "--lang", "en")
    workbook = tmp_path / "report.xlsx"
    written = runner.invoke(app, ["report", "xlsx", "-o", str(workbook), "--lang", "zh"])

    kpi = " ".join(section(page, "kpi").split())
    assert "These scopes have had no complete listing for 168 h" in kpi
    assert "core/aws/vm/cn-js-1" in kpi
    assert "These nodes have no complete scan" in kpi  # core is stale too: both are shown
    assert written.exit_code == 0, written.output
    summary = {row[0]: row[1] for row in load_workbook(workbook)["概览"].iter_rows(
        min_row=3, values_only=True)}  # fmt: skip
    assert summary["证据过期的扫描范围"] == "core/aws/vm/cn-js-1"
