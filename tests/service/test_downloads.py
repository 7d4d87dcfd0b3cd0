"""GET /reports/html, /reports/xlsx and /reports/scorecard: the CLI's files, to their readers."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import openpyxl
import pytest

from tests.migrate.conftest import invoke
from tests.service.conftest import Served

# The minute the report was made, as pages and sheet titles print it; two runs a few seconds
# apart may straddle a minute, and the charts (images) plot the current point at its second.
MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
CHART = re.compile(r'src="data:image/svg\+xml;base64,[^"]*"')
CLASSIFIED_NAME = "系统A05"  # A05 of the migration estate is 涉密


def comparable(page: str) -> str:
    return CHART.sub('src="chart"', MINUTE.sub("MINUTE", page))


def filename(response: Any) -> str:
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename*=UTF-8''")
    return unquote(disposition.split("''", 1)[1])


def sheets(payload: bytes) -> dict[str, list[tuple[Any, ...]]]:
    workbook = openpyxl.load_workbook(io.BytesIO(payload))
    return {
        sheet.title: [
            tuple(
                "MOMENT"
                if isinstance(v, datetime)
                else MINUTE.sub("MINUTE", v)
                if isinstance(v, str)
                else v
                for v in row
            )
            for row in sheet.iter_rows(values_only=True)
        ]
        for sheet in workbook.worksheets
    }


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_html_report_is_the_clis_file(served: Served, lang: str) -> None:
    response = served.client.get(
        "/api/v1/reports/html", headers=served.headers("viewer", "province", lang=lang)
    )
    code, page, err = invoke("--lang", lang, "report", "html", "-o", "-")

    assert response.status_code == 200, response.text
    assert code == 0, err
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert re.fullmatch(r"yiyun-report-\d{4}-\d{2}-\d{2}\.html", filename(response))
    assert comparable(response.text) == comparable(page)
    assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in response.text
    assert CLASSIFIED_NAME not in response.text


def test_the_workbook_is_the_clis_file(served: Served, tmp_path: Path) -> None:
    response = served.client.get(
        "/api/v1/reports/xlsx", headers=served.headers("planner", "province")
    )
    target = tmp_path / "r.xlsx"
    code, out, err = invoke("--lang", "zh", "report", "xlsx", "-o", str(target))

    assert response.status_code == 200, response.text
    assert code == 0, out + err
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert filename(response).endswith(".xlsx")
    served_sheets = sheets(response.content)
    assert served_sheets == sheets(target.read_bytes())
    assert len(served_sheets) > 3
    assert CLASSIFIED_NAME not in json.dumps(served_sheets, ensure_ascii=False, default=str)


def test_the_policy_switches_reach_the_report(served: Served, tmp_path: Path) -> None:
    headers = served.headers("viewer", "province")
    plain = served.client.get("/api/v1/reports/xlsx", headers=headers)
    trusting = served.client.get(
        "/api/v1/reports/xlsx", params={"trust_declared": "true"}, headers=headers
    )
    target = tmp_path / "r.xlsx"
    invoke("--lang", "zh", "report", "xlsx", "-o", str(target), "--trust-declared")

    assert sheets(trusting.content) == sheets(target.read_bytes())
    assert sheets(trusting.content) != sheets(plain.content)


@pytest.mark.parametrize(
    ("role", "scope"),
    [("viewer", "city:南京市"), ("department_it", "department:JS-EDU"), ("admin", "city:省级")],
)
def test_the_province_reports_are_refused_below_the_province(
    served: Served, role: str, scope: str
) -> None:
    # They name every system of the province: a narrower reader gets its scorecard instead.
    for path in ("/api/v1/reports/html", "/api/v1/reports/xlsx"):
        zh = served.client.get(path, headers=served.headers(role, scope))
        en = served.client.get(path, headers=served.headers(role, scope, lang="en"))
        assert zh.status_code == en.status_code == 403
        assert zh.headers["content-type"] == "application/problem+json"
        assert zh.json()["code"] == "access_denied"
        assert "无权对 province 执行“read”" in zh.json()["detail"]
        assert "may not 'read' on province" in en.json()["detail"]


@pytest.mark.parametrize("fmt", ["json", "md", "html"])
def test_a_department_reads_its_own_scorecard_as_the_cli_writes_it(
    served: Served, fmt: str
) -> None:
    response = served.client.get(
        "/api/v1/reports/scorecard",
        params={"department": "JS-EDU", "format": fmt},
        headers=served.headers("department_it", "department:JS-EDU"),
    )
    code, page, err = invoke(
        "--lang", "zh", "report", "scorecard", "--department", "JS-EDU", "-f", fmt
    )

    assert response.status_code == 200, response.text
    assert code == 0, err
    assert filename(response).startswith("yiyun-scorecard-JS-EDU-")
    assert filename(response).endswith(f".{fmt}")
    if fmt == "json":
        served_card, cli_card = response.json(), json.loads(page)
        assert served_card.pop("as_of") and cli_card.pop("as_of")
        assert served_card == cli_card
        assert served_card["department"] == "JS-EDU"
        assert {s["code"] for s in served_card["systems"]} >= {"A01", "A02"}
    else:
        assert comparable(response.text) == comparable(page)
    assert CLASSIFIED_NAME not in response.text


@pytest.mark.parametrize(
    ("role", "scope", "readable", "unreadable"),
    [
        ("department_it", "department:JS-EDU", "JS-EDU", "NJ-D1"),
        ("viewer", "city:南京市", "NJ-D1", "JS-HEA"),
        ("viewer", "city:省级", "JS-HEA", "NJ-D1"),
    ],
)
def test_another_departments_scorecard_reads_as_unknown(
    served: Served, role: str, scope: str, readable: str, unreadable: str
) -> None:
    headers = served.headers(role, scope)

    def scorecard(department: str) -> Any:
        return served.client.get(
            "/api/v1/reports/scorecard",
            params={"department": department, "format": "json"},
            headers=headers,
        )

    own, other, unknown = scorecard(readable), scorecard(unreadable), scorecard("NOPE-9")

    assert own.status_code == 200 and own.json()["department"] == readable
    assert other.status_code == unknown.status_code == 404
    assert other.json()["code"] == unknown.json()["code"] == "department_unknown"
    assert other.json()["detail"].replace(unreadable, "NOPE-9") == unknown.json()["detail"]


def test_did_you_mean_names_only_departments_the_reader_may_read(served: Served) -> None:
    def detail(role: str, scope: str, department: str) -> str:
        response = served.client.get(
            "/api/v1/reports/scorecard",
            params={"department": department},
            headers=served.headers(role, scope, lang="en"),
        )
        assert response.status_code == 404
        return str(response.json()["detail"])

    assert detail("viewer", "province", "NJ-D2") == (
        "unknown department code NJ-D2; did you mean NJ-D1?"
    )
    assert detail("viewer", "department:JS-EDU", "NJ-D2") == "unknown department code NJ-D2"
    cli = invoke("--lang", "en", "report", "scorecard", "--department", "NJ-D2")
    assert cli[0] == 2 and "unknown department code NJ-D2; did you mean NJ-D1?" in cli[2]


def test_downloads_need_a_token(served: Served) -> None:
    for path in ("/api/v1/reports/html", "/api/v1/reports/xlsx", "/api/v1/reports/scorecard"):
        response = served.client.get(path, params={"department": "JS-EDU"})
        assert response.status_code == 401
