"""Plans over HTTP: the CLI's plans and files, the reader's scope on systems, edits race-safe."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
from sqlmodel import Session, col, select

from inventory.access import Actor, Grant
from inventory.models import AuditEntry
from migrate.models import Plan, SystemMigration
from migrate.plans import import_plan_edits
from tests.migrate.conftest import invoke
from tests.service.conftest import Served


def audit_of(served: Served, action: str) -> list[AuditEntry]:
    with Session(served.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def waves(served: Served, plan: str = "p1") -> dict[str, int | None]:
    with Session(served.engine) as session:
        query = (
            select(SystemMigration.system_code, SystemMigration.wave)
            .join(Plan, col(Plan.id) == col(SystemMigration.plan_id))
            .where(col(Plan.name) == plan)
        )
        return dict(session.exec(query).all())


def export_csv(served: Served, role: str = "admin", scope: str = "province") -> str:
    response = served.client.get(
        "/api/v1/plans/p1/export?format=csv", headers=served.headers(role, scope)
    )
    assert response.status_code == 200, response.text
    return response.content.decode("utf-8-sig")


def edited(export: str, moves: dict[str, str]) -> bytes:
    """The export with the wave column of some systems changed, as a person edits it."""
    rows = list(csv.reader(io.StringIO(export)))
    header = rows[0]
    for row in rows[1:]:
        code = row[header.index("system_code")]
        if code in moves:
            row[header.index("wave")] = moves[code]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def upload(served: Served, content: bytes, headers: dict[str, str], query: str = "") -> Any:
    return served.client.post(
        f"/api/v1/plans/p1/import{query}",
        files={"file": ("p1.csv", content, "text/csv")},
        headers=headers,
    )


def test_the_plan_list_is_the_clis_for_every_reader(served: Served) -> None:
    code, out, _ = invoke("migrate", "plan", "list", "--format", "json")
    assert code == 0
    cli = [(r["name"], r["systems"], r["placed"], r["waves"]) for r in json.loads(out)]

    response = served.client.get(
        "/api/v1/plans", headers=served.headers("viewer", "department:NJ-D1")
    )

    assert response.status_code == 200
    items = response.json()["items"]
    # A plan's size is an aggregate: a department reads the whole plan's counts.
    assert [(i["name"], i["systems"], i["placed"], i["waves"]) for i in items] == cli
    assert items[0]["created_by"] == "planner"


def test_a_plans_systems_are_the_clis_and_a_department_sees_only_its_own(served: Served) -> None:
    code, out, _ = invoke("migrate", "plan", "show", "p1", "--format", "json")
    assert code == 0
    cli = [(r["system_code"], r["wave"], r["state"]) for r in json.loads(out)["systems"]]

    whole = served.client.get(
        "/api/v1/plans/p1?limit=500", headers=served.headers("viewer", "province")
    )
    department = served.client.get(
        "/api/v1/plans/p1", headers=served.headers("viewer", "department:JS-HEA", lang="en")
    )

    assert whole.status_code == department.status_code == 200
    assert [(s["system_code"], s["wave"], s["state"]) for s in whole.json()["systems"]] == cli
    assert "A05" not in {code for code, _, _ in cli}
    seen = department.json()
    assert [s["system_code"] for s in seen["systems"]] == ["A12", "A13"]
    assert seen["total"] == 2
    # Every wave stays (the plan's shape is no secret); each counts only what the reader sees.
    assert [(w["number"], w["systems"]) for w in seen["waves"]] == [
        (1, 0),
        (2, 2),
        (3, 0),
        (4, 0),
        (5, 0),
    ]
    assert seen["systems"][0]["explanation"].startswith("wave 2 (dev/test wave)")
    zh = served.client.get("/api/v1/plans/p1?limit=1", headers=served.headers("viewer", "province"))
    assert zh.json()["systems"][0]["explanation"].startswith("第 1 批")
    assert (zh.json()["total"], len(zh.json()["systems"])) == (len(cli), 1)


def test_an_unknown_plan_is_404_in_the_readers_language(served: Served) -> None:
    zh = served.client.get("/api/v1/plans/nope", headers=served.headers("viewer", "province"))
    en = served.client.get(
        "/api/v1/plans/nope", headers=served.headers("viewer", "province", lang="en")
    )

    assert zh.status_code == en.status_code == 404
    assert zh.json()["code"] == en.json()["code"] == "mig_unknown_plan"
    assert zh.json()["detail"].startswith("没有名为 nope 的迁移计划")
    assert en.json()["detail"].startswith("no plan named nope")


def test_the_export_is_the_bytes_the_cli_writes(served: Served, tmp_path: Path) -> None:
    headers = served.headers("viewer", "province")
    for fmt in ("csv", "json", "xlsx"):
        target = tmp_path / f"p1.{fmt}"
        code, out, err = invoke("migrate", "plan", "export", "p1", "-f", fmt, "-o", str(target))
        assert code == 0, out + err

        response = served.client.get(f"/api/v1/plans/p1/export?format={fmt}", headers=headers)

        assert response.status_code == 200
        assert f'filename="p1.{fmt}"' in response.headers["content-disposition"]
        if fmt == "xlsx":
            # A workbook carries its own write time: the same cells are the same file.
            assert sheet_cells(response.content) == sheet_cells(target.read_bytes())
        else:
            assert response.content == target.read_bytes()
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    csv_rows = list(csv.reader(io.StringIO((tmp_path / "p1.csv").read_text("utf-8-sig"))))
    assert [
        [str(c) if c is not None else "" for c in row] for row in sheet_cells(response.content)
    ] == csv_rows


def sheet_cells(content: bytes) -> list[list[Any]]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    workbook.close()
    return rows


def test_a_departments_export_holds_its_systems_only_and_imports_back_unchanged(
    served: Served,
) -> None:
    export = export_csv(served, "department_it", "department:NJ-D1")
    codes = [row["system_code"] for row in csv.DictReader(io.StringIO(export))]
    assert codes == ["N01", "N02"]
    xlsx = served.client.get(
        "/api/v1/plans/p1/export?format=xlsx",
        headers=served.headers("department_it", "department:NJ-D1"),
    )
    before = waves(served)

    response = served.client.post(
        "/api/v1/plans/p1/import",
        files={"file": ("p1.xlsx", xlsx.content, "application/octet-stream")},
        headers=served.headers("department_it", "department:NJ-D1", lang="en"),
    )

    assert response.status_code == 200, response.text
    # Nothing moved, and no warning names the other departments' systems as missing.
    assert (response.json()["moved"], response.json()["warnings"]) == ([], [])
    assert waves(served) == before


def test_department_it_moves_its_own_systems_from_its_own_export(served: Served) -> None:
    export = export_csv(served, "department_it", "department:JS-EDU")
    headers = served.headers("department_it", "department:JS-EDU", lang="en")

    applied = upload(served, edited(export, {"A01": ""}), headers)

    assert applied.status_code == 200, applied.text
    assert applied.json()["moved"] == [{"system_code": "A01", "from_wave": 1, "to_wave": None}]
    assert waves(served)["A01"] is None
    (entry,) = audit_of(served, "plan.import")
    assert entry.principal == "department_it@department:JS-EDU"
    assert (entry.before, entry.after) == ({"A01": 1}, {"A01": None})
    _, out, _ = invoke("migrate", "history", "A01", "--format", "json")
    assert json.loads(out)[-1]["by"] == "department_it@department:JS-EDU"


def test_a_system_the_actor_reads_but_may_not_edit_is_not_moved(
    served: Served, tmp_path: Path
) -> None:
    """A person who reads the province and edits one department's plans (two grants, as an
    OIDC claim and a ledger grant give): moving another department's system is a problem."""
    reader_and_editor = Actor(
        principal="alice",
        kind="oidc",
        grants=(
            Grant.parse("viewer", "province"),
            Grant.parse("department_it", "department:JS-EDU"),
        ),
        by="alice",
    )
    sheet = tmp_path / "p1.csv"
    sheet.write_bytes(edited(export_csv(served), {"A01": "", "N01": ""}))
    with Session(served.engine) as session:
        outcome = import_plan_edits(
            session=session,
            actor=reader_and_editor,
            name="p1",
            path=sheet,
            now=datetime.now(tz=UTC),
        )
        session.commit()

    assert [(p.row, p.value, p.render("en")) for p in outcome.problems] == [
        (
            8,
            "",
            "row 8, wave: you may not move N01: it is outside the departments whose plans "
            "you may edit",
        )
    ]
    assert (waves(served)["A01"], waves(served)["N01"]) == (1, 4)


def test_a_viewer_may_not_import_and_an_outsiders_code_is_unknown(served: Served) -> None:
    export = export_csv(served)
    viewer = upload(served, edited(export, {"A01": ""}), served.headers("viewer", "province"))
    outsider = upload(
        served,
        edited(export, {}),
        served.headers("department_it", "department:NJ-D1", lang="en"),
    )

    assert (viewer.status_code, viewer.json()["code"]) == (403, "access_denied")
    # A full export names other departments' systems: to NJ-D1 they are codes it cannot know.
    assert outsider.status_code == 422
    reasons = {(p["value"], p["reason"]) for p in outsider.json()["problems"]}
    assert ("A01", "unknown system") in reasons
    assert not any(value in ("N01", "N02") for value, _ in reasons)


def test_a_stale_version_is_409_with_the_current_state(served: Served) -> None:
    headers = served.headers("planner", "province", lang="en")
    version = served.client.get("/api/v1/plans/p1", headers=headers).json()["version"]
    export = export_csv(served)
    first = upload(served, edited(export, {"A01": ""}), headers, f"?expected_version={version}")
    assert first.status_code == 200, first.text

    second = upload(served, edited(export, {"A01": "5"}), headers, f"?expected_version={version}")

    assert second.status_code == 409
    assert second.json()["code"] == "mig_plan_changed_meanwhile"
    assert second.json()["current"]["version"] == first.json()["version"] != version
    assert waves(served)["A01"] is None


def test_two_imports_at_once_one_wins_the_other_is_409(served: Served) -> None:
    headers = served.headers("planner", "province")
    version = served.client.get("/api/v1/plans/p1", headers=headers).json()["version"]
    export = export_csv(served)

    def attempt(wave: str) -> tuple[int, Any]:
        response = upload(
            served, edited(export, {"A01": wave}), headers, f"?expected_version={version}"
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, ["", "5", "", "5", "", "5"]))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * 5, statuses
    (winner,) = [body for status, body in answers if status == 200]
    landed = winner["moved"][0]["to_wave"]
    assert waves(served)["A01"] == landed
    for status, body in answers:
        if status == 409:
            assert body["current"]["version"] == winner["version"]
    assert len(audit_of(served, "plan.import")) == 1


def test_a_city_planner_plans_only_its_citys_systems(served: Served) -> None:
    body = {"name": "p-nj", "sources": ["edu-dc", "room"], "target": "core", "start": "2027-03-01"}

    created = served.client.post(
        "/api/v1/plans", json=body, headers=served.headers("planner", "city:南京市")
    )

    assert created.status_code == 201, created.text
    assert created.json()["placed"] + created.json()["not_placed"] == 2
    assert set(waves(served, "p-nj")) == {"N01", "N02"}
    cli, entry = audit_of(served, "plan.create")
    assert (cli.principal_kind, cli.by, cli.target) == ("local", "planner", "p1")
    assert entry.principal == "planner@city:南京市"
    assert entry.after is not None and entry.after["scope"] == "grants"
    _, out, _ = invoke("migrate", "plan", "show", "p-nj", "--format", "json")
    assert json.loads(out)["created_by"] == "planner@city:南京市"
    viewer = served.client.post(
        "/api/v1/plans", json={**body, "name": "p-v"}, headers=served.headers("viewer", "province")
    )
    assert (viewer.status_code, viewer.json()["code"]) == (403, "access_denied")
    taken = served.client.post(
        "/api/v1/plans", json=body, headers=served.headers("planner", "province", lang="en")
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "mig_plan_name_taken")


def test_archiving_needs_the_plan_right_over_every_system_it_holds(served: Served) -> None:
    narrow = served.client.delete(
        "/api/v1/plans/p1", headers=served.headers("planner", "department:JS-EDU")
    )
    assert (narrow.status_code, narrow.json()["code"]) == (403, "access_denied")

    archived = served.client.delete(
        "/api/v1/plans/p1", headers=served.headers("planner", "province")
    )
    again = served.client.delete(
        "/api/v1/plans/p1", headers=served.headers("planner", "province", lang="en")
    )

    assert archived.status_code == 204 and archived.content == b""
    assert (again.status_code, again.json()["code"]) == (409, "mig_plan_already_archived")
    assert again.json()["detail"] == "plan p1 is already archived"
    (entry,) = audit_of(served, "plan.archive")
    assert (entry.principal, entry.before, entry.after) == (
        "planner@province",
        {"status": "draft"},
        {"status": "archived"},
    )
