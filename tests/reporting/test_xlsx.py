"""`yiyun report xlsx`: the workbook's figures equal `report adoption --format json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

from cli import app
from inventory.adoption import STATUSES
from inventory.i18n import status_label, text
from inventory.settings import Settings
from tests.reporting.estate import FORMULA_NAME, SECRET_NAME, SECRET_RESOURCE

runner = CliRunner()
HEADER_ROW = 2


def adoption_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["report", "adoption", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def workbook(tmp_path: Path, *args: str) -> Any:
    target = tmp_path / "report.xlsx"
    result = runner.invoke(app, ["report", "xlsx", "-o", str(target), *args])
    assert result.exit_code == 0, result.output
    return load_workbook(target)


def records(sheet: Worksheet) -> list[dict[str, Any]]:
    """Rows below the header as {header: cell}."""
    headers = [c.value for c in sheet[HEADER_ROW]]
    return [dict(zip(headers, row, strict=True)) for row in sheet.iter_rows(min_row=HEADER_ROW + 1)]


def figures(row: dict[str, Any], lang: str) -> dict[str, Any]:
    return {
        "numerator": row[text("numerator", lang)].value,
        "denominator": row[text("denominator", lang)].value,
        "rate": row[text("rate", lang)].value,
        "counts": {s: row[status_label(s, lang)].value for s in STATUSES},
    }


def contract(group: dict[str, Any]) -> dict[str, Any]:
    return {k: group[k] for k in ("numerator", "denominator", "rate", "counts")}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_workbook_numbers_equal_the_json_report(
    report_estate: Settings, tmp_path: Path, lang: str
) -> None:
    book = workbook(tmp_path, "--lang", lang)
    province = adoption_json()
    by_city = adoption_json("--by", "city")
    by_department = adoption_json("--by", "department")

    summary = {
        row[text("metric", lang)].value: row[text("value", lang)]
        for row in records(book[text("sheet_summary", lang)])
    }
    assert summary[text("kpi_name", lang)].value == province["rate"]
    assert summary[text("kpi_name", lang)].number_format == "0.00%"
    assert summary[text("numerator", lang)].value == province["numerator"]
    assert summary[text("denominator", lang)].value == province["denominator"]
    assert {s: summary[status_label(s, lang)].value for s in STATUSES} == province["counts"]
    assert summary[text("policy", lang)].value == province["policy"]

    cities = {
        row[text("city", lang)].value: figures(row, lang)
        for row in records(book[text("sheet_city", lang)])
    }
    assert cities == {g["key"]: contract(g) for g in by_city["groups"]}
    departments = {
        row[text("department_code", lang)].value: figures(row, lang)
        for row in records(book[text("sheet_department", lang)])
    }
    assert departments == {g["key"]: contract(g) for g in by_department["groups"]}


def test_sheets_headers_formats_and_frozen_rows(report_estate: Settings, tmp_path: Path) -> None:
    book = workbook(tmp_path, "--lang", "en")

    assert book.sheetnames == [
        "Summary", "By city", "By department", "Systems", "Violations",
        "Migration progress", "One network", "Scan freshness", "Trend",
    ]  # fmt: skip
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A3", sheet.title
        assert "evidence-v2" in sheet["A1"].value and "As of" in sheet["A1"].value
        assert all(c.font.bold for c in sheet[HEADER_ROW] if c.value)
        assert "evidence-v2" in sheet.oddHeader.center.text  # on every printed page
    city = book["By city"]
    assert all(row["Adoption rate"].number_format == "0.00%" for row in records(city))
    systems = book["Systems"]
    widths = {c: systems.column_dimensions[c].width for c in "AB"}
    assert widths["B"] > widths["A"] >= 6  # names are wider than codes
    s04 = next(row for row in records(systems) if row["System code"].value == "S04")
    assert s04["Plan"].value == "edu-dc-2026"
    assert s04["Wave"].value == 1
    assert s04["Wave start"].number_format == "yyyy-mm-dd"
    assert s04["Migration state"].value == "migrating"
    progress = {
        (row["Plan"].value, row["Wave"].value): row["Systems"].value
        for row in records(book["Migration progress"])
    }
    assert progress == {("edu-dc-2026", 1): 2, ("edu-dc-2026", 2): 1}
    network = {
        row["Department code"].value: row["business private network"].value
        for row in records(book["One network"])
    }
    assert network == {"JS-EDU": 2, "JS-SEC": 1, "SZ-D3": 1}


def test_user_text_is_escaped_and_classified_systems_never_named(
    report_estate: Settings, tmp_path: Path
) -> None:
    book = workbook(tmp_path, "--lang", "zh")

    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    values = [str(c.value) for c in cells if c.value is not None]
    assert not any(SECRET_NAME in v or SECRET_RESOURCE in v or v == "S09" for v in values)
    # No cell is a formula; the hostile name stays visible text.
    assert not any(c.data_type == "f" for c in cells)
    assert "'" + FORMULA_NAME in values
    codes = [row["系统编码"].value for row in records(book["系统清单"])]
    assert "S09" not in codes and len(codes) == 16
