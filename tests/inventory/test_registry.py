"""Tests for the system register: value parsing, file reading, validation, import and listing."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from cli import app
from inventory.models import Department, System
from inventory.output import escape_formula
from inventory.registry import (
    ImportReport,
    Problem,
    RegisterFileError,
    cell_text,
    import_register,
    parse_choice,
    parse_city,
    parse_classified,
    parse_date,
    parse_mlps_level,
    parse_register,
)
from inventory.settings import Settings

DATA = Path(__file__).parent.parent / "data" / "register"
T1 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

# English header -> Chinese header, as DESIGN.md's "Register file columns" lists them.
HEADERS = {
    "system_code": "系统编码",
    "name": "系统名称",
    "department_code": "部门编码",
    "department": "主管部门",
    "city": "地市",
    "classified": "是否涉密",
    "mlps_level": "等保级别",
    "network_zone": "网络区域",
    "data_level": "数据级别",
    "lifecycle": "生命周期",
    "declared_node": "部署节点",
    "environment": "环境",
    "criticality": "重要程度",
    "crypto_assessed_on": "密评日期",
    "contact": "联系人",
    "exemption": "豁免原因",
    "approval_doc": "批准文号",
    "valid_until": "有效期至",
}
DEPARTMENTS = [
    ("JS-EDU", "江苏省教育厅", "省级"),
    ("JS-HEALTH", "江苏省卫生健康委员会", "省级"),
    ("JS-DRC", "江苏省发展和改革委员会", "省级"),
    ("NJ-EDU", "南京市教育局", "南京"),
    ("WX-GOV", "无锡市政务服务管理办公室", "无锡市"),
    ("SZ-HEALTH", "苏州市卫生健康委员会", "苏州"),
    ("LYG-PS", "连云港市公安局", "连云港市"),
    ("SQ-AGRI", "宿迁市农业农村局", "宿迁"),
]
MLPS_SPELLINGS = ["3", "三级", "第三级", "2", "二级", "3级", "第二级", "1"]
ZONES = ["政务外网", "互联网区", "业务专网", ""]


def register(count: int) -> list[dict[str, str]]:
    """A deterministic register of `count` systems, keyed by English header, as text cells."""
    rows = []
    for i in range(count):
        department_code, department, city = DEPARTMENTS[i % len(DEPARTMENTS)]
        row = dict.fromkeys(HEADERS, "")
        row |= {
            "system_code": f"{department_code}-{i:04d}",
            "name": f"{department}业务系统{i}",
            "department_code": department_code,
            "department": department,
            "city": city,
            "classified": "是" if i % 17 == 5 else "否",
            "mlps_level": MLPS_SPELLINGS[i % len(MLPS_SPELLINGS)],
            "network_zone": ZONES[i % len(ZONES)],
            "data_level": ["一般", "重要", "一般", "核心"][i % 4],
            "lifecycle": ["在用", "在用", "在用", "拟下线", "已下线"][i % 5],
            "environment": ["生产", "测试", "开发"][i % 3],
            "criticality": ["高", "中", "低"][i % 3],
            "contact": f"联系人{i % 50}",
        }
        if i % 7 == 0:
            row["crypto_assessed_on"] = ["2024-03-15", "2024/3/15", "2024年3月15日"][i % 3]
        if i % 25 == 3:
            row["exemption"] = "待新平台验收"
            row["approval_doc"] = f"苏政办〔2025〕{i}号"
            row["valid_until"] = "2027年6月30日"
        rows.append(row)
    return rows


def table(rows: list[dict[str, str]], *, chinese: bool = True) -> list[list[str]]:
    """Header plus cells, columns in an order unlike DESIGN.md's (any order is allowed)."""
    keys = list(reversed(HEADERS))
    header = [HEADERS[key] if chinese else key for key in keys]
    return [header] + [[row[key] for key in keys] for row in rows]


def write_csv(path: Path, cells: Sequence[Sequence[object]], encoding: str = "gb18030") -> Path:
    # Excel writes CRLF line ends, whatever the encoding.
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(cells)
    return path


def write_xlsx(path: Path, cells: Sequence[Sequence[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in cells:
        sheet.append(list(row))
    workbook.save(path)
    return path


def run(settings: Settings, *args: str) -> Result:
    # The root callback resets settings from its own options, so the test DB goes in as --db.
    # A wide terminal keeps rich from wrapping or truncating what the tests look for.
    return CliRunner().invoke(app, ["--db", settings.database_url, *args], env={"COLUMNS": "200"})


def stored_systems(engine: sa.Engine) -> dict[str, System]:
    with Session(engine) as session:
        return {system.code: system for system in session.exec(select(System))}


def stored_departments(engine: sa.Engine) -> dict[str, Department]:
    with Session(engine) as session:
        return {department.code: department for department in session.exec(select(Department))}


def do_import(
    engine: sa.Engine, path: Path, *, now: datetime, dry_run: bool = False
) -> ImportReport:
    with Session(engine) as session:
        report = import_register(session=session, path=path, dry_run=dry_run, now=now)
        session.commit()
    return report


# ---------------------------------------------------------------- value parsing (pure)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True),
        ("否", False),
        ("yes", True),
        ("No", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
    ],
)
def test_classified_values(text: str, expected: bool) -> None:
    assert parse_classified(text) is expected


def test_classified_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="是/否"):
        parse_classified("保密")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("5", 5),
        ("一级", 1),
        ("二级", 2),
        ("三级", 3),
        ("四级", 4),
        ("五级", 5),
        ("第三级", 3),
        ("3级", 3),
        ("第 2 级", 2),
        (" 第四级 ", 4),
    ],
)
def test_mlps_level_values(text: str, expected: int) -> None:
    assert parse_mlps_level(text) == expected


@pytest.mark.parametrize("text", ["六级", "0", "7", "第六级", "零级"])
def test_mlps_level_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="1–5"):
        parse_mlps_level(text)


@pytest.mark.parametrize("text", ["高", "level three", "3.5", ""])
def test_mlps_level_not_a_level(text: str) -> None:
    with pytest.raises(ValueError, match="not an MLPS level"):
        parse_mlps_level(text)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("network_zone", "extranet", "extranet"),
        ("network_zone", "政务外网", "extranet"),
        ("network_zone", "internet", "internet"),
        ("network_zone", "互联网区", "internet"),
        ("network_zone", "private_network", "private_network"),
        ("network_zone", "Private-Network", "private_network"),
        ("network_zone", "业务专网", "private_network"),
        ("data_level", "general", "general"),
        ("data_level", "一般", "general"),
        ("data_level", "important", "important"),
        ("data_level", "重要", "important"),
        ("data_level", "core", "core"),
        ("data_level", "核心", "core"),
        ("lifecycle", "active", "active"),
        ("lifecycle", "在用", "active"),
        ("lifecycle", "retiring", "retiring"),
        ("lifecycle", "拟下线", "retiring"),
        ("lifecycle", "retired", "retired"),
        ("lifecycle", "已下线", "retired"),
        ("environment", "production", "production"),
        ("environment", "生产", "production"),
        ("environment", "test", "test"),
        ("environment", "测试", "test"),
        ("environment", "dev", "dev"),
        ("environment", "开发", "dev"),
        ("criticality", "high", "high"),
        ("criticality", "高", "high"),
        ("criticality", "medium", "medium"),
        ("criticality", "中", "medium"),
        ("criticality", "low", "low"),
        ("criticality", "低", "low"),
    ],
)
def test_choice_values(name: str, text: str, expected: str) -> None:
    assert parse_choice(name, text) == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("network_zone", "政务内网"),
        ("data_level", "秘密"),
        ("lifecycle", "停用"),
        ("environment", "预发"),
        ("criticality", "极高"),
    ],
)
def test_choice_rejects_unknown_values(name: str, text: str) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        parse_choice(name, text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-15", date(2024, 3, 15)),
        ("2024/03/15", date(2024, 3, 15)),
        ("2024/3/5", date(2024, 3, 5)),
        ("2024年3月5日", date(2024, 3, 5)),
        ("2024/3/5 0:00", date(2024, 3, 5)),
        (datetime(2024, 3, 5, 0, 0), date(2024, 3, 5)),  # an Excel date cell
        (date(2024, 3, 5), date(2024, 3, 5)),
    ],
)
def test_date_values(raw: object, expected: date) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("2024-02-30", "real calendar date"), ("15/03/2024", "not a date"), ("明年", "not a date")],
)
def test_date_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_date(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("省级", "省级"),
        ("南京", "南京市"),
        ("南京市", "南京市"),
        ("连云港", "连云港市"),
        ("宿迁市", "宿迁市"),
    ],
)
def test_city_values(text: str, expected: str) -> None:
    assert parse_city(text) == expected


@pytest.mark.parametrize("text", ["上海市", "江宁区", "Nanjing"])
def test_city_rejects_unknown(text: str) -> None:
    with pytest.raises(ValueError, match="unknown city"):
        parse_city(text)


def test_cell_text_reads_spreadsheet_cells_as_people_see_them() -> None:
    assert cell_text(None) == ""
    assert cell_text("  JS-001\u3000") == "JS-001"
    assert cell_text(3.0) == "3"
    assert cell_text(True) == "true"
    assert cell_text(datetime(2024, 3, 5)) == "2024-03-05"
    # The ' guard yiyun's own CSV export puts before a formula-like value reads back off,
    # so an exported file re-imports unchanged; an apostrophe anywhere else stays.
    for value in ("=1+2", "-测试系统", "+86", "@home"):
        assert cell_text(escape_formula(value)) == value
    assert cell_text("'s Gravenhage") == "'s Gravenhage"


# ---------------------------------------------------------------- reading and validation (pure)


def test_checked_in_gb18030_sample_parses() -> None:
    parsed = parse_register(DATA / "systems_gb18030.csv")

    assert parsed.problems == []
    assert parsed.source == "GB18030 CSV"
    assert parsed.data_rows == 5  # the two trailing empty rows are ignored
    by_code = {row.code: row for row in parsed.rows}
    edu = by_code["JS-EDU-001"]
    assert (edu.name, edu.mlps_level, edu.network_zone, edu.data_level) == (
        "江苏省教育考试报名系统",
        3,
        "extranet",
        "important",
    )
    assert (edu.crypto_assessed_on, edu.declared_node, edu.criticality) == (
        date(2024, 3, 15),
        "edu-dc",
        "high",
    )
    health = by_code["NJ-HEALTH-001"]
    assert (health.city, health.lifecycle, health.exemption_valid_until) == (
        "南京市",
        "retiring",
        date(2027, 6, 30),
    )
    assert health.exemption_doc == "宁政办〔2024〕12号"
    assert by_code["JS-PS-001"].classified is True
    assert by_code["SZ-GOV-001"].environment == "test"


def test_english_headers_in_any_order_with_whitespace_and_an_extra_column(tmp_path: Path) -> None:
    cells = [
        [
            " mlps_level ",
            "name",
            "Remarks",
            "system_code",
            "department_code",
            "department",
            "city\t",
            "classified",
        ],
        ["3", "System A", "note", "A-1", "D1", "省教育厅", "省级", "no"],
    ]
    parsed = parse_register(write_csv(tmp_path / "r.csv", cells, "utf-8"))

    assert parsed.problems == []
    assert [(row.code, row.name, row.mlps_level, row.classified) for row in parsed.rows] == [
        ("A-1", "System A", 3, False)
    ]
    assert any("Remarks" in str(warning) for warning in parsed.warnings)


def test_missing_required_column_is_one_error_naming_it(tmp_path: Path) -> None:
    cells = table(register(3))
    drop = cells[0].index("等保级别")
    cells = [[cell for i, cell in enumerate(row) if i != drop] for row in cells]

    parsed = parse_register(write_csv(tmp_path / "r.csv", cells))

    assert len(parsed.problems) == 1
    problem = parsed.problems[0]
    assert (problem.row, problem.column) == (1, "等保级别")
    assert "等保级别" in str(problem.reason) and "mlps_level" in str(problem.reason)
    assert parsed.rows == []


def test_a_header_row_that_names_no_register_column(tmp_path: Path) -> None:
    parsed = parse_register(write_csv(tmp_path / "r.csv", [["a", "b"], ["1", "2"]], "utf-8"))

    assert len(parsed.problems) == 1
    assert "none of the register's headers" in str(parsed.problems[0].reason)


def test_repeated_column_is_an_error(tmp_path: Path) -> None:
    cells = table(register(2))
    cells = [[*row, row[cells[0].index("系统名称")]] for row in cells]
    cells[0][-1] = "name"

    parsed = parse_register(write_csv(tmp_path / "r.csv", cells))

    assert [(p.row, p.column) for p in parsed.problems] == [(1, "name")]


def test_utf8_bom_and_utf8_are_told_apart_from_gb18030(tmp_path: Path) -> None:
    cells = table(register(4))
    for encoding, source in [
        ("utf-8-sig", "UTF-8 CSV with BOM"),
        ("utf-8", "UTF-8 CSV"),
        ("gb18030", "GB18030 CSV"),
    ]:
        parsed = parse_register(write_csv(tmp_path / f"{encoding}.csv", cells, encoding))
        assert (parsed.source, parsed.problems, len(parsed.rows)) == (source, [], 4)
        assert parsed.rows[0].department_name == "江苏省教育厅"


def test_undecodable_csv_is_reported_clearly(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("系统编码,".encode("gb18030") + b"\x80\xff\x80")

    parsed = parse_register(path)

    assert len(parsed.problems) == 1
    assert parsed.problems[0].row is None
    assert "tried UTF-8 and GB18030" in str(parsed.problems[0].reason)


def test_utf16_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("系统编码,系统名称\r\n".encode("utf-16"))

    parsed = parse_register(path)
    # Read as UTF-16: what is wrong is the columns it lacks, not its encoding.
    assert parsed.source == "UTF-16 text"
    assert all("required column" in str(problem.reason) for problem in parsed.problems)


def test_missing_file_and_unsupported_kinds_raise(tmp_path: Path) -> None:
    with pytest.raises(RegisterFileError, match="not found"):
        parse_register(tmp_path / "absent.csv")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(RegisterFileError, match=r"\.csv or \.xlsx"):
        parse_register(tmp_path / "old.xls")


def test_corrupt_xlsx_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"not a zip")

    parsed = parse_register(path)

    assert "not a readable XLSX" in str(parsed.problems[0].reason)


def test_every_problem_is_collected_with_spreadsheet_row_numbers(tmp_path: Path) -> None:
    rows = register(12)
    rows[0]["mlps_level"] = "六级"  # row 2
    rows[1]["classified"] = "可能"  # row 3
    rows[1]["city"] = "上海"  # row 3, a second problem in the same row
    rows[4]["system_code"] = rows[2]["system_code"]  # row 6 repeats row 4
    rows[5]["name"] = ""  # row 7
    rows[6]["exemption"] = "理由"  # row 8: a reason without valid_until
    rows[7]["valid_until"] = "2030-01-01"  # row 9: valid_until without a reason
    rows[8]["department"] = "另一个名字"  # row 10: department code with a second name
    rows[9]["crypto_assessed_on"] = "2024-13-01"  # row 11
    rows[10]["network_zone"] = "政务内网"  # row 12

    parsed = parse_register(write_csv(tmp_path / "r.csv", table(rows)))

    assert {(p.row, p.column) for p in parsed.problems} == {
        (2, "等保级别"),
        (3, "是否涉密"),
        (3, "地市"),
        (6, "系统编码"),
        (7, "系统名称"),
        (8, "有效期至"),
        (9, "豁免原因"),
        (10, "主管部门"),
        (11, "密评日期"),
        (12, "网络区域"),
    }
    duplicate = next(p for p in parsed.problems if p.row == 6)
    assert "rows 4 and 6" in str(duplicate.reason)
    department = next(p for p in parsed.problems if p.row == 10)
    assert "row 2" in str(department.reason) and "江苏省教育厅" in str(department.reason)
    assert [row.row for row in parsed.rows] == [4, 5, 13]


def test_same_department_with_city_written_two_ways_is_consistent(tmp_path: Path) -> None:
    rows = register(16)
    nanjing = [row for row in rows if row["department_code"] == "NJ-EDU"]
    nanjing[1]["city"] = "南京市"  # the other NJ-EDU row says 南京

    parsed = parse_register(write_csv(tmp_path / "r.csv", table(rows)))

    assert parsed.problems == []
    assert {row.city for row in parsed.rows if row.department_code == "NJ-EDU"} == {"南京市"}


def test_xlsx_with_typed_cells_blank_rows_and_row_numbers(tmp_path: Path) -> None:
    header = [
        "系统编码",
        "系统名称",
        "部门编码",
        "主管部门",
        "地市",
        "是否涉密",
        "等保级别",
        "密评日期",
    ]
    cells: list[list[object]] = [
        header,
        [1001, "甲系统", "D1", "省教育厅", "省级", False, 3, date(2024, 5, 1)],
        [None] * 8,  # a blank row in the middle keeps the sheet's numbering
        [1002, "乙系统", "D1", "省教育厅", "省级", True, 6, None],
        [None] * 8,
    ]

    parsed = parse_register(write_xlsx(tmp_path / "r.xlsx", cells))

    assert [(p.row, p.column, p.value) for p in parsed.problems] == [(4, "等保级别", "6")]
    assert [(r.code, r.classified, r.crypto_assessed_on) for r in parsed.rows] == [
        ("1001", False, date(2024, 5, 1))
    ]


# ---------------------------------------------------------------- import (SQLite and PostgreSQL)


def test_gb18030_register_of_a_few_hundred_systems_imports_fully(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = register(300)
    path = write_csv(tmp_path / "register.csv", table(rows))

    report = do_import(engine, path, now=T1)

    assert report.problems == []
    assert (report.created, report.updated, report.unchanged, report.rows) == (300, 0, 0, 300)
    systems = stored_systems(engine)
    assert set(systems) == {row["system_code"] for row in rows}
    first = systems["JS-EDU-0000"]
    assert (first.city, first.mlps_level, first.network_zone, first.data_level) == (
        "省级",
        3,
        "extranet",
        "general",
    )
    assert (first.lifecycle, first.environment, first.crypto_assessed_on) == (
        "active",
        "production",
        date(2024, 3, 15),
    )
    assert systems["NJ-EDU-0003"].city == "南京市"
    assert systems["NJ-EDU-0003"].exemption_valid_until == date(2027, 6, 30)
    assert sum(system.classified for system in systems.values()) == sum(
        row["classified"] == "是" for row in rows
    )
    assert {s.network_zone for s in systems.values()} == {
        "extranet",
        "internet",
        "private_network",
        None,
    }
    assert {s.created_at for s in systems.values()} == {T1}
    departments = stored_departments(engine)
    assert {(d.code, d.name, d.city, d.level) for d in departments.values()} == {
        (
            code,
            name,
            "省级" if city == "省级" else city.removesuffix("市") + "市",
            "province" if city == "省级" else "city",
        )
        for code, name, city in DEPARTMENTS
    }


def test_reimport_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "register.csv", table(register(120)))
    do_import(engine, path, now=T1)

    report = do_import(engine, path, now=T2)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 120)
    assert (report.departments_created, report.departments_updated) == (0, 0)
    assert {s.updated_at for s in stored_systems(engine).values()} == {T1}


def test_a_changed_row_updates_its_system_only(engine: sa.Engine, tmp_path: Path) -> None:
    rows = register(50)
    do_import(engine, write_csv(tmp_path / "v1.csv", table(rows)), now=T1)
    rows[10]["mlps_level"] = "四级"
    rows[10]["exemption"] = ""
    rows[11]["contact"] = ""

    report = do_import(engine, write_csv(tmp_path / "v2.csv", table(rows)), now=T2)

    assert (report.created, report.updated, report.unchanged) == (0, 2, 48)
    systems = stored_systems(engine)
    changed = systems[rows[10]["system_code"]]
    assert (changed.mlps_level, changed.created_at, changed.updated_at) == (4, T1, T2)
    assert systems[rows[11]["system_code"]].contact is None
    assert {code for code, s in systems.items() if s.updated_at == T2} == {
        rows[10]["system_code"],
        rows[11]["system_code"],
    }


def test_systems_absent_from_the_file_are_kept_and_counted(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = register(10)
    do_import(engine, write_csv(tmp_path / "all.csv", table(rows)), now=T1)

    report = do_import(engine, write_csv(tmp_path / "some.csv", table(rows[:7])), now=T2)

    assert (report.unchanged, report.not_in_file) == (7, 3)
    assert len(stored_systems(engine)) == 10


def test_a_column_absent_from_the_file_leaves_stored_values(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = register(5)
    do_import(engine, write_csv(tmp_path / "full.csv", table(rows)), now=T1)
    cells = table(rows)
    drop = cells[0].index("联系人")
    cells = [[cell for i, cell in enumerate(row) if i != drop] for row in cells]

    report = do_import(engine, write_csv(tmp_path / "partial.csv", cells), now=T2)

    assert (report.updated, report.unchanged) == (0, 5)
    assert stored_systems(engine)["JS-EDU-0000"].contact == "联系人0"


def test_department_renamed_in_the_register_is_updated(engine: sa.Engine, tmp_path: Path) -> None:
    rows = register(8)
    do_import(engine, write_csv(tmp_path / "v1.csv", table(rows)), now=T1)
    rows[0]["department"] = "江苏省教育厅（省语委）"

    report = do_import(engine, write_csv(tmp_path / "v2.csv", table(rows)), now=T2)

    assert (report.departments_created, report.departments_updated, report.updated) == (0, 1, 0)
    assert stored_departments(engine)["JS-EDU"].name == "江苏省教育厅（省语委）"


def test_dry_run_counts_and_writes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "register.csv", table(register(40)))

    report = do_import(engine, path, now=T1, dry_run=True)

    assert (report.created, report.departments_created) == (40, len(DEPARTMENTS))
    assert stored_systems(engine) == {} and stored_departments(engine) == {}


# ---------------------------------------------------------------- the command


def test_cli_imports_gb18030_and_reimport_says_nothing_changed(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "register.csv", table(register(200)))

    first = run(settings, "registry", "import", str(path))
    updated_at = {code: s.updated_at for code, s in stored_systems(engine).items()}
    second = run(settings, "registry", "import", str(path))

    assert first.exit_code == 0, first.output
    assert "200 created, 0 updated, 0 unchanged" in first.output
    assert "GB18030" in first.output
    assert second.exit_code == 0, second.output
    assert "0 created, 0 updated, 200 unchanged" in second.output
    assert {code: s.updated_at for code, s in stored_systems(engine).items()} == updated_at


def test_cli_imports_utf8_bom_with_english_headers(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "r.csv", table(register(30), chinese=False), "utf-8-sig")

    result = run(settings, "registry", "import", str(path))

    assert result.exit_code == 0, result.output
    assert "30 created" in result.output
    assert len(stored_systems(engine)) == 30


def test_cli_imports_xlsx(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    cells: list[list[object]] = [list(row) for row in table(register(25))]
    dates = cells[0].index("密评日期")
    cells[1][dates] = datetime(2025, 1, 2)  # a real date cell, as Excel stores one
    cells += [[None] * len(cells[0])] * 3  # formatted but empty trailing rows

    result = run(settings, "registry", "import", str(write_xlsx(tmp_path / "r.xlsx", cells)))

    assert result.exit_code == 0, result.output
    assert "25 created" in result.output
    systems = stored_systems(engine)
    assert len(systems) == 25
    code = cells[1][cells[0].index("系统编码")]
    assert systems[str(code)].crypto_assessed_on == date(2025, 1, 2)


def test_cli_bad_file_imports_nothing_and_names_every_row(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    rows = register(300)
    run(settings, "registry", "import", str(write_csv(tmp_path / "good.csv", table(rows))))
    before = {
        code: (s.mlps_level, s.name, s.updated_at) for code, s in stored_systems(engine).items()
    }
    rows[10]["mlps_level"] = "六级"  # row 12
    rows[20]["system_code"] = rows[3]["system_code"]  # row 22 repeats row 5
    rows[30]["name"] = ""  # row 32
    rows.append(register(301)[300])  # a new system that must not be created either

    result = run(settings, "registry", "import", str(write_csv(tmp_path / "bad.csv", table(rows))))

    assert result.exit_code == 1
    assert "3 problem(s)" in result.output
    for expected in (
        "row 12, 等保级别 '六级'",
        "row 22, 系统编码",
        "rows 5 and 22",
        "row 32, 系统名称",
    ):
        assert expected in result.output
    assert "Traceback" not in result.output
    after = {
        code: (s.mlps_level, s.name, s.updated_at) for code, s in stored_systems(engine).items()
    }
    assert after == before


def test_cli_errors_out_lists_problems_escaped_against_formulas(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    rows = register(6)
    rows[0]["mlps_level"] = "=1+2"
    rows[2]["city"] = "@SUM(A1)"
    rows[3]["name"] = ""
    errors = tmp_path / "errors.csv"

    result = run(
        settings,
        "registry",
        "import",
        str(write_csv(tmp_path / "r.csv", table(rows))),
        "--errors-out",
        str(errors),
    )

    assert result.exit_code == 1
    with errors.open(encoding="utf-8-sig", newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["row", "column", "value", "reason"]
    assert {(row[0], row[1], row[2]) for row in written[1:]} == {
        ("2", "等保级别", "'=1+2"),
        ("4", "地市", "'@SUM(A1)"),
        ("5", "系统名称", ""),
    }
    assert all(row[3] for row in written[1:])
    assert stored_systems(engine) == {}


def test_cli_errors_out_of_a_good_file_has_only_the_header(
    settings: Settings, tmp_path: Path
) -> None:
    errors = tmp_path / "errors.csv"
    path = write_csv(tmp_path / "r.csv", table(register(3)))

    result = run(settings, "registry", "import", str(path), "--errors-out", str(errors))

    assert result.exit_code == 0, result.output
    assert errors.read_text(encoding="utf-8-sig").splitlines() == ["row,column,value,reason"]


def test_cli_dry_run_writes_nothing(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", table(register(20)))

    result = run(settings, "registry", "import", str(path), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "20 created, 0 updated, 0 unchanged" in result.output
    assert stored_systems(engine) == {} and stored_departments(engine) == {}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("absent.csv", None, "not found"), ("old.xls", b"\xd0\xcf", "save it from Excel")],
)
def test_cli_usage_errors_exit_2_without_a_traceback(
    settings: Settings, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    result = run(settings, "registry", "import", str(path))

    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_list_json_hides_classified_systems_unless_asked(
    settings: Settings, tmp_path: Path
) -> None:
    rows = register(40)
    run(settings, "registry", "import", str(write_csv(tmp_path / "r.csv", table(rows))))
    classified = {row["system_code"] for row in rows if row["classified"] == "是"}
    assert classified

    shown = json.loads(run(settings, "registry", "list", "--format", "json").stdout)
    everything = json.loads(
        run(settings, "registry", "list", "--format", "json", "--include-classified").stdout
    )

    required = {"code", "name", "department_code", "city", "classified", "mlps_level", "lifecycle"}
    assert all(required <= set(item) for item in everything)
    assert {item["code"] for item in shown} == {row["system_code"] for row in rows} - classified
    assert not any(item["classified"] for item in shown)
    assert {item["code"] for item in everything} == {row["system_code"] for row in rows}
    assert [item["code"] for item in everything] == sorted(item["code"] for item in everything)
    first = next(item for item in everything if item["code"] == "JS-EDU-0000")
    assert (first["city"], first["mlps_level"], first["lifecycle"], first["classified"]) == (
        "省级",
        3,
        "active",
        False,
    )


def test_cli_list_csv_and_table(settings: Settings, tmp_path: Path) -> None:
    rows = register(8)
    run(settings, "registry", "import", str(write_csv(tmp_path / "r.csv", table(rows))))

    as_csv = run(settings, "registry", "list", "--format", "csv")
    as_table = run(settings, "registry", "list")

    assert as_csv.exit_code == 0 and as_table.exit_code == 0
    lines = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert [line["code"] for line in lines] == sorted(
        row["system_code"] for row in rows if row["classified"] == "否"
    )
    assert "JS-EDU-0000" in as_table.stdout


def test_problem_reads_like_a_spreadsheet_location() -> None:
    assert str(Problem(12, "等保级别", "六级", "MLPS level must be 1–5")) == (
        "row 12, 等保级别 '六级': MLPS level must be 1–5"
    )
