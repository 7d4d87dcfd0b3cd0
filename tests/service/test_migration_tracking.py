"""Status, discrepancies and history over HTTP: the CLI's numbers, what names a system in scope."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from inventory.models import Resource, utcnow
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource
from tests.service.conftest import Served


def moved_without_saying(served: Served, *codes: str) -> None:
    """The inventory sees these systems wholly on the unified cloud while their plan still
    says planned: each is an `on_cloud_not_claimed` discrepancy."""
    with Session(served.engine) as session:
        for code in codes:
            for row in session.exec(select(Resource).where(col(Resource.system_code) == code)):
                row.deleted_at = utcnow()
                session.add(row)
            add_resource(session, code, "core", "vm", vcpu=1)
        session.commit()


def status(served: Served, role: str, scope: str, query: str = "") -> dict[str, Any]:
    response = served.client.get(
        f"/api/v1/migration/status{query}", headers=served.headers(role, scope)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_progress_is_the_clis_and_department_rows_are_filtered(served: Served) -> None:
    moved_without_saying(served, "A01", "N01")
    for by in ("wave", "department"):
        code, out, _ = invoke("migrate", "status", "--by", by, "--format", "json")
        assert code == 0
        assert status(served, "viewer", "province", f"?by={by}") == json.loads(out)

    nanjing = status(served, "viewer", "city:南京市", "?by=department")
    whole = status(served, "viewer", "province", "?by=department")

    # The plan's own progress is an aggregate: every reader sees all of it.
    assert nanjing["plans"] == whole["plans"]
    assert [g["department"] for g in nanjing["groups"]] == ["NJ-D1"]
    assert [d["system_code"] for d in nanjing["discrepancies"]] == ["N01"]
    by_wave = status(served, "viewer", "department:NJ-D1")
    assert by_wave["groups"] == status(served, "viewer", "province")["groups"]


def test_discrepancies_name_only_systems_in_scope(served: Served) -> None:
    moved_without_saying(served, "A01", "N01")
    code, out, _ = invoke("migrate", "status", "--format", "json")
    cli = json.loads(out)["discrepancies"]

    whole = served.client.get(
        "/api/v1/migration/discrepancies", headers=served.headers("viewer", "province")
    )
    department = served.client.get(
        "/api/v1/migration/discrepancies", headers=served.headers("viewer", "department:JS-EDU")
    )
    paged = served.client.get(
        "/api/v1/migration/discrepancies?offset=1&limit=1",
        headers=served.headers("viewer", "province"),
    )

    assert code == 0 and whole.status_code == 200
    assert whole.json()["items"] == cli
    assert [(d["system_code"], d["kind"]) for d in cli] == [
        ("A01", "on_cloud_not_claimed"),
        ("N01", "on_cloud_not_claimed"),
    ]
    assert [d["system_code"] for d in department.json()["items"]] == ["A01"]
    assert [d["system_code"] for d in paged.json()["items"]] == ["N01"]
    assert paged.json()["total"] == 2


def test_an_unknown_plan_in_status_is_404_as_the_cli_refuses_it(served: Served) -> None:
    response = served.client.get(
        "/api/v1/migration/status?plan=nope",
        headers=served.headers("viewer", "province", lang="en"),
    )
    code, _, err = invoke("migrate", "status", "--plan", "nope")

    assert (response.status_code, response.json()["code"]) == (404, "mig_unknown_plan")
    assert code == 2 and response.json()["detail"] in " ".join(err.split())


def test_history_is_the_clis_and_out_of_scope_reads_as_unknown(served: Served) -> None:
    advanced = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning", "note": "开通资源"},
        headers=served.headers("department_it", "department:JS-EDU"),
    )
    assert advanced.status_code == 201
    code, out, _ = invoke("migrate", "history", "A01", "--format", "json")
    cli = [(r["from_state"], r["to_state"], r["by"], r["note"]) for r in json.loads(out)]

    mine = served.client.get(
        "/api/v1/systems/A01/history", headers=served.headers("viewer", "department:JS-EDU")
    )

    assert code == 0 and mine.status_code == 200
    api = [(i["from_state"], i["to_state"], i["by"], i["note"]) for i in mine.json()["items"]]
    assert api == cli
    assert api[-1] == ("planned", "provisioning", "department_it@department:JS-EDU", "开通资源")
    answers = [
        served.client.get(
            f"/api/v1/systems/{system}/history", headers=served.headers(role, scope, lang="en")
        )
        for system, role, scope in (
            ("A01", "viewer", "department:NJ-D1"),
            ("A05", "admin", "province"),
            ("NOPE", "admin", "province"),
        )
    ]
    # Outside the scope, classified, unknown: the same 404, told apart by nothing but the code.
    assert {(r.status_code, r.json()["code"]) for r in answers} == {(404, "mig_unknown_system")}
    assert [r.json()["detail"].split(":")[0] for r in answers] == [
        "unknown system A01",
        "unknown system A05",
        "unknown system NOPE",
    ]
    zh = served.client.get(
        "/api/v1/systems/A05/history", headers=served.headers("admin", "province")
    )
    assert zh.json()["detail"].startswith("未知的系统编码 A05")
    # The CLI answers an unknown code as it always has: an empty history, exit 0.
    assert invoke("migrate", "history", "NOPE", "--format", "json")[:2] == (0, "[]\n")
