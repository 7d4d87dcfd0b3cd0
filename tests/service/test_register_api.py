"""POST /register/import: the diff of a dry run, the import itself, and every problem by row."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlmodel import Session, col, select

from inventory.models import AuditEntry, System
from service.routes import register as register_route
from tests.migrate.conftest import invoke
from tests.service.conftest import Served

HEADER = ["系统编码", "系统名称", "部门编码", "主管部门", "地市", "是否涉密", "等保级别"]
# A01 moves from 等保 2 to 3; A02 is as registered; N99 is new; A05 (classified) changes and
# N98 (classified) is new: those two are counted, never named.
ROWS = [
    ["A01", "系统A01", "JS-EDU", "省教育厅", "省级", "否", "3"],
    ["A02", "系统A02", "JS-EDU", "省教育厅", "省级", "否", "三级"],
    ["A05", "系统A05", "JS-EDU", "省教育厅", "省级", "是", "3"],
    ["N99", "新系统N99", "NJ-D1", "南京市大数据局", "南京", "否", "2"],
    ["N98", "机要系统N98", "NJ-D1", "南京市大数据局", "南京市", "是", "2"],
]
ADMIN = ("admin", "province")


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, *rows])
    return buffer.getvalue().encode("utf-8-sig")


def upload(
    served: Served,
    payload: bytes,
    *,
    name: str = "目录.csv",
    dry_run: bool | None = None,
    who: tuple[str, str] = ADMIN,
    lang: str = "zh",
) -> Any:
    params = {} if dry_run is None else {"dry_run": str(dry_run).lower()}
    return served.client.post(
        "/api/v1/register/import",
        params=params,
        files={"file": (name, payload, "text/csv")},
        headers=served.headers(*who, lang=lang),
    )


def mlps_of(served: Served, code: str) -> int | None:
    with Session(served.engine) as session:
        system = session.exec(select(System).where(col(System.code) == code)).first()
        return None if system is None else system.mlps_level


def imports_audited(served: Served) -> list[AuditEntry]:
    with Session(served.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == "register.import")
        return list(session.exec(query))


def test_a_dry_run_is_the_default_and_answers_the_diff_without_writing(served: Served) -> None:
    response = upload(served, csv_bytes(ROWS))

    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["dry_run"] is True and diff["file"] == "目录.csv"
    assert [(s["code"], s["department_code"], s["city"]) for s in diff["added"]] == [
        ("N99", "NJ-D1", "南京市")
    ]
    assert [
        (s["code"], [(c["field"], c["column"], c["before"], c["after"]) for c in s["changes"]])
        for s in diff["changed"]
    ] == [("A01", [("mlps_level", "等保级别", 2, 3)])]
    assert (diff["unchanged"], diff["withheld"]) == (1, 2)
    # Classified systems are counted, never named: not their codes, not their names.
    assert "A05" not in response.text and "N98" not in response.text
    assert "机要系统" not in response.text
    assert (mlps_of(served, "A01"), mlps_of(served, "N99")) == (2, None)
    assert imports_audited(served) == []


def test_the_cli_dry_run_prints_the_same_diff(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "目录.csv"
    path.write_bytes(csv_bytes(ROWS))

    api = upload(served, path.read_bytes(), lang="en").json()
    code, out, err = invoke("--lang", "en", "registry", "import", str(path), "--dry-run")

    assert code == 0, out + err
    # The counts hold the two classified systems the diff withholds.
    assert "systems: 2 created, 2 updated, 1 unchanged" in out
    assert (len(api["added"]), len(api["changed"]), api["withheld"]) == (1, 1, 2)
    shown = re.findall(r"^(added|changed) (\S+)", out, flags=re.MULTILINE)
    assert shown == [("added", s["code"]) for s in api["added"]] + [
        ("changed", s["code"]) for s in api["changed"]
    ]
    assert "changed A01 系统A01: mlps_level 2 → 3" in out
    assert f"{api['withheld']} classified (涉密) system(s) in the diff" in out
    assert "A05" not in out and "N98" not in out


def test_applying_writes_and_is_audited_with_the_token_and_request_id(served: Served) -> None:
    response = upload(served, csv_bytes(ROWS), dry_run=False)

    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is False
    assert (mlps_of(served, "A01"), mlps_of(served, "N99"), mlps_of(served, "A05")) == (3, 2, 3)
    (entry,) = imports_audited(served)
    assert (entry.principal, entry.principal_kind) == ("admin@province", "token")
    assert entry.request_id == response.headers["x-request-id"]
    assert entry.target == "目录.csv"
    assert entry.after is not None
    assert (entry.after["created"], entry.after["updated"]) == (2, 2)
    again = upload(served, csv_bytes(ROWS)).json()
    assert (again["added"], again["changed"], again["unchanged"]) == ([], [], 5)


def test_an_xlsx_register_reads_as_the_csv_does(served: Served) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)

    from_xlsx = upload(served, buffer.getvalue(), name="目录.xlsx").json()
    from_csv = upload(served, csv_bytes(ROWS)).json()

    assert from_xlsx["source"].startswith("XLSX")
    ignored = {"source", "file"}
    assert {k: v for k, v in from_xlsx.items() if k not in ignored} == {
        k: v for k, v in from_csv.items() if k not in ignored
    }


def test_problems_come_back_by_row_in_the_readers_language(served: Served) -> None:
    broken = [*ROWS[:2], ["A03", "系统A03", "JS-EDU", "省教育厅", "省级", "否", "七"]]
    broken.append(["A04", "", "JS-EDU", "省教育厅", "省级", "也许", "2"])

    zh = upload(served, csv_bytes(broken), dry_run=False)
    en = upload(served, csv_bytes(broken), dry_run=False, lang="en")

    assert zh.status_code == en.status_code == 422
    assert zh.headers["content-type"] == "application/problem+json"
    assert zh.json()["code"] == en.json()["code"] == "register_problems"
    assert [(p["row"], p["column"], p["value"]) for p in zh.json()["problems"]] == [
        (4, "等保级别", "七"),
        (5, "系统名称", ""),
        (5, "是否涉密", "也许"),
    ]
    assert [p["row"] for p in en.json()["problems"]] == [4, 5, 5]
    assert "3 problem(s) in 4 row(s)" in en.json()["detail"]
    assert zh.json()["problems"][0]["reason"] != en.json()["problems"][0]["reason"]
    assert re.search(r"[\u4e00-\u9fff]", zh.json()["problems"][0]["reason"])
    assert mlps_of(served, "A01") == 2 and imports_audited(served) == []


def test_a_file_that_is_no_register_is_refused_by_its_kind(served: Served) -> None:
    zh = upload(served, b"\xd0\xcf\x11\xe0", name="目录.xls")
    en = upload(served, b"\xd0\xcf\x11\xe0", name="目录.xls", lang="en")

    assert zh.status_code == en.status_code == 422
    assert zh.json()["code"] == "register_upload_kind"
    assert "目录.xls" in zh.json()["detail"] and "另存为" in zh.json()["detail"]
    assert "save it from Excel" in en.json()["detail"]


def test_an_upload_past_the_cap_is_413_and_writes_nothing(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cap at 1 MiB so the test need not send 20: the same code path, a smaller file.
    monkeypatch.setattr(register_route, "MAX_UPLOAD_MIB", 1)
    rows = [
        [f"Z{i:05d}", f"系统{i}", "JS-EDU", "省教育厅", "省级", "否", "2"] for i in range(40_000)
    ]
    payload = csv_bytes(rows)
    assert len(payload) > 1 << 20

    response = upload(served, payload, dry_run=False, lang="en")

    assert response.status_code == 413
    assert response.json()["code"] == "register_upload_too_large"
    assert "larger than 1 MiB" in response.json()["detail"]
    assert mlps_of(served, "Z00000") is None


@pytest.mark.parametrize(
    "who", [("planner", "province"), ("viewer", "province"), ("admin", "city:南京市")]
)
def test_only_a_province_admin_may_see_or_change_the_register(
    served: Served, who: tuple[str, str]
) -> None:
    for dry_run in (True, False):
        response = upload(served, csv_bytes(ROWS), dry_run=dry_run, who=who, lang="en")
        assert response.status_code == 403
        assert response.json()["code"] == "access_denied"
        assert "may not 'register'" in response.json()["detail"]
    assert mlps_of(served, "N99") is None and imports_audited(served) == []
