"""`yiyun migrate deps` on both databases: declared files, validation, inference."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import Resource, utcnow
from inventory.settings import Settings
from migrate.models import Dependency
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource

DATA = Path(__file__).parent.parent / "data" / "migrate"


def edges(engine: sa.Engine) -> set[tuple[str, str, str, str, str]]:
    with Session(engine) as session:
        return {
            (d.from_system, d.to_system, d.type, d.strength, d.origin)
            for d in session.exec(select(Dependency))
        }


def test_import_reads_chinese_headers_and_words(estate: Settings, engine: sa.Engine) -> None:
    code, out, err = invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))

    assert code == 0, out + err
    assert "4 created" in out
    assert edges(engine) == {
        ("A01", "A02", "calls", "soft", "declared"),
        ("A02", "A07", "data", "hard", "declared"),
        ("A12", "A01", "calls", "soft", "declared"),
        ("A07", "A02", "calls", "soft", "declared"),
    }


def test_reimporting_the_same_file_changes_nothing(estate: Settings, engine: sa.Engine) -> None:
    invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))

    code, out, _ = invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))

    assert code == 0
    assert "0 created, 0 updated, 4 unchanged" in out
    assert len(edges(engine)) == 4


def test_a_bad_file_reports_every_problem_and_imports_nothing(
    estate: Settings, engine: sa.Engine
) -> None:
    code, _, err = invoke("migrate", "deps", "import", str(DATA / "dependencies_bad.csv"))

    assert code == 1
    assert "nothing imported" in err
    for expected in (
        "row 3, to 'NOPE': unknown system (not in the register)",
        "row 4, to 'A02': a system cannot depend on itself",
        "row 5, type 'telepathy': type must be",
        "row 6, strength 'hard': row 2 gives the same dependency as soft",
        "row 7, strength 'maybe': strength must be",
        "row 8, from: a system code is required",
    ):
        assert expected in err
    assert edges(engine) == set()


def test_gb18030_file_and_shared_infra_defaults_to_hard(
    estate: Settings, engine: sa.Engine
) -> None:
    code, out, err = invoke("migrate", "deps", "import", str(DATA / "dependencies_gb18030.csv"))

    assert code == 0, out + err
    assert edges(engine) == {("A13", "A12", "shared_infra", "hard", "declared")}


def test_xlsx_file(estate: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["from", "to", "type", "strength"])
    sheet.append(["A01", "A07", "data", "hard"])
    workbook.save(tmp_path / "deps.xlsx")

    code, out, err = invoke("migrate", "deps", "import", str(tmp_path / "deps.xlsx"))

    assert code == 0, out + err
    assert edges(engine) == {("A01", "A07", "data", "hard", "declared")}


def test_missing_column_and_wrong_kind_of_file(estate: Settings, tmp_path: Path) -> None:
    (tmp_path / "deps.csv").write_text("from,type\nA01,calls\n", encoding="utf-8")
    (tmp_path / "deps.xls").write_bytes(b"\xd0\xcf\x11\xe0")

    missing = invoke("migrate", "deps", "import", str(tmp_path / "deps.csv"))
    wrong = invoke("migrate", "deps", "import", str(tmp_path / "deps.xls"))

    assert missing[0] == 1 and "missing column to / to_system" in missing[2]
    assert wrong[0] == 2 and "expected a .csv or .xlsx file" in wrong[2]


def test_replace_removes_declared_edges_the_file_dropped(
    estate: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))
    invoke("migrate", "deps", "infer")
    (tmp_path / "less.csv").write_text("from,to,type\nA01,A02,calls\n", encoding="utf-8")

    code, out, _ = invoke("migrate", "deps", "import", str(tmp_path / "less.csv"), "--replace")

    assert code == 0
    assert "3 removed" in out
    assert edges(engine) == {
        ("A01", "A02", "calls", "soft", "declared"),
        ("A13", "A12", "shared_infra", "hard", "inferred"),
    }


def test_systems_sharing_a_namespace_are_inferred_to_move_together(
    estate: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        # The namespace row itself, attributed to a third system, also counts as sharing.
        add_resource(session, "A01", "edu-dc", "namespace", name="shared")
        # Same namespace name on another node is another namespace.
        add_resource(session, "A07", "room", "deployment", namespace="shared", replicas=1)
        session.commit()

    code, out, _ = invoke("migrate", "deps", "infer")
    _, listed, _ = invoke("migrate", "deps", "list", "--format", "json")

    assert (code, out.strip()) == (0, "inferred dependencies: 2 added, 0 removed")
    assert edges(engine) == {
        ("A12", "A01", "shared_infra", "hard", "inferred"),
        ("A13", "A01", "shared_infra", "hard", "inferred"),
    }
    assert {row["basis"] for row in json.loads(listed)} == {"namespace edu-dc/shared"}


def test_inferred_edges_go_when_the_sharing_ends(estate: Settings, engine: sa.Engine) -> None:
    invoke("migrate", "deps", "infer")
    with Session(engine) as session:
        for row in session.exec(select(Resource).where(col(Resource.system_code) == "A13")):
            row.deleted_at = utcnow()
            session.add(row)
        session.commit()

    code, out, _ = invoke("migrate", "deps", "infer")

    assert (code, out.strip()) == (0, "inferred dependencies: 0 added, 1 removed")
    assert edges(engine) == set()


def test_dependencies_on_classified_systems_are_not_named(estate: Settings, tmp_path: Path) -> None:
    (tmp_path / "deps.csv").write_text(
        "from,to,type\nA01,A05,calls\nA01,A02,calls\n", encoding="utf-8"
    )
    invoke("migrate", "deps", "import", str(tmp_path / "deps.csv"))

    code, out, _ = invoke("migrate", "deps", "list", "--format", "csv")

    assert code == 0
    assert "A05" not in out
    assert "A01,A02,calls,soft,declared" in out
