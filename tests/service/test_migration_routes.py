"""Dependencies and assessment over HTTP: the CLI's answers, in scope, audited, race-safe."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from inventory.models import AuditEntry
from migrate.models import Assessment, Dependency
from tests.migrate.conftest import invoke
from tests.service.conftest import Served

DEPS_FILE = "from,to,type\nA01,A02,calls\nA12,A01,data\nN01,N02,calls\nA01,A05,calls\n"


def audit_of(served: Served, action: str) -> list[AuditEntry]:
    with Session(served.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def edges(served: Served) -> set[tuple[str, str, str]]:
    with Session(served.engine) as session:
        rows = session.exec(select(Dependency))
        return {(d.from_system, d.to_system, d.origin) for d in rows}


def listed(served: Served, role: str, scope: str, query: str = "") -> list[tuple[str, str]]:
    response = served.client.get(
        f"/api/v1/dependencies{query}", headers=served.headers(role, scope)
    )
    assert response.status_code == 200, response.text
    return [(item["from"], item["to"]) for item in response.json()["items"]]


def declared_by_cli(tmp_path: Path, content: str = DEPS_FILE) -> None:
    (tmp_path / "deps.csv").write_text(content, encoding="utf-8")
    code, out, err = invoke("migrate", "deps", "import", str(tmp_path / "deps.csv"))
    assert code == 0, out + err


# ---------------------------------------------------------------- dependencies


def test_the_list_is_the_clis_for_the_province_and_either_end_in_scope_otherwise(
    served: Served, tmp_path: Path
) -> None:
    declared_by_cli(tmp_path)
    code, out, _ = invoke("migrate", "deps", "list", "--format", "json")
    assert code == 0
    cli = [(row["from"], row["to"], row["type"], row["origin"]) for row in json.loads(out)]

    response = served.client.get(
        "/api/v1/dependencies", headers=served.headers("viewer", "province")
    )

    assert response.status_code == 200
    api = [(i["from"], i["to"], i["type"], i["origin"]) for i in response.json()["items"]]
    assert api == cli
    # The classified end is never served, the inferred edge of the shared namespace is.
    assert {(a, b) for a, b, _, _ in api} == {
        ("A01", "A02"),
        ("A12", "A01"),
        ("A13", "A12"),
        ("N01", "N02"),
    }
    assert listed(served, "viewer", "department:NJ-D1") == [("N01", "N02")]
    # JS-HEA sees what depends on its systems and what they depend on, nothing else.
    assert listed(served, "viewer", "department:JS-HEA") == [("A12", "A01"), ("A13", "A12")]
    assert listed(served, "viewer", "province", "?system=A02") == [("A01", "A02")]
    assert listed(served, "viewer", "department:NJ-D1", "?system=A02") == []


def test_the_list_pages_in_a_stable_order(served: Served, tmp_path: Path) -> None:
    declared_by_cli(tmp_path)
    headers = served.headers("viewer", "province")
    whole = served.client.get("/api/v1/dependencies", headers=headers).json()
    pages = [
        served.client.get(f"/api/v1/dependencies?offset={n}&limit=1", headers=headers).json()
        for n in range(whole["total"])
    ]
    assert [p["items"][0]["id"] for p in pages] == [i["id"] for i in whole["items"]]
    assert {p["total"] for p in pages} == {4}
    too_many = served.client.get("/api/v1/dependencies?limit=501", headers=headers)
    assert too_many.status_code == 422


def test_department_it_declares_and_removes_its_own_dependency_audited(served: Served) -> None:
    headers = served.headers("department_it", "department:JS-EDU")
    created = served.client.post(
        "/api/v1/dependencies", json={"from": "A01", "to": "N01"}, headers=headers
    )
    assert created.status_code == 201, created.text
    edge = created.json()
    assert (edge["from"], edge["to"], edge["type"], edge["strength"]) == (
        "A01",
        "N01",
        "calls",
        "soft",
    )
    assert ("A01", "N01", "declared") in edges(served)
    (added,) = audit_of(served, "deps.add")
    assert added.principal == "department_it@department:JS-EDU"
    assert added.request_id == created.headers["x-request-id"]
    assert added.after is not None and added.after["id"] == edge["id"]

    removed = served.client.delete(f"/api/v1/dependencies/{edge['id']}", headers=headers)

    assert removed.status_code == 204
    assert ("A01", "N01", "declared") not in edges(served)
    (deleted,) = audit_of(served, "deps.delete")
    assert deleted.principal == "department_it@department:JS-EDU"
    assert deleted.before is not None and deleted.before["to"] == "N01"


def test_another_departments_system_is_unknown_and_a_viewer_is_forbidden(served: Served) -> None:
    body = {"from": "A01", "to": "A02"}
    other = served.client.post(
        "/api/v1/dependencies",
        json=body,
        headers=served.headers("department_it", "department:NJ-D1"),
    )
    classified = served.client.post(
        "/api/v1/dependencies",
        json={"from": "A05", "to": "A02"},
        headers=served.headers("admin", "province"),
    )
    viewer = served.client.post(
        "/api/v1/dependencies", json=body, headers=served.headers("viewer", "department:JS-EDU")
    )

    assert (other.status_code, other.json()["code"]) == (404, "mig_unknown_system")
    # A classified system reads exactly as one outside the caller's scope.
    assert classified.status_code == 404
    assert classified.json()["detail"] == other.json()["detail"].replace("A01", "A05")
    assert (viewer.status_code, viewer.json()["code"]) == (403, "access_denied")
    assert edges(served) == {("A13", "A12", "inferred")}
    assert audit_of(served, "deps.add") == []


def test_a_dependency_declared_twice_is_409_in_the_readers_language(served: Served) -> None:
    body = {"from": "A01", "to": "A02", "kind": "数据"}
    first = served.client.post(
        "/api/v1/dependencies", json=body, headers=served.headers("admin", "province")
    )
    zh = served.client.post(
        "/api/v1/dependencies", json=body, headers=served.headers("admin", "province")
    )
    en = served.client.post(
        "/api/v1/dependencies", json=body, headers=served.headers("admin", "province", lang="en")
    )

    assert first.status_code == 201 and first.json()["type"] == "data"
    assert zh.status_code == en.status_code == 409
    assert zh.headers["content-type"] == "application/problem+json"
    assert zh.json()["code"] == en.json()["code"] == "mig_dep_exists"
    assert zh.json()["detail"] == "A01 → A02（数据）已登记：请用 `yiyun migrate deps list` 查看"
    assert en.json()["detail"].startswith("A01 → A02 (data) is already declared")
    assert zh.json()["current"]["id"] == first.json()["id"]


def test_an_inferred_dependency_cannot_be_removed_and_an_unknown_one_is_404(
    served: Served,
) -> None:
    headers = served.headers("admin", "province", lang="en")
    inferred = served.client.get("/api/v1/dependencies", headers=headers).json()["items"][0]
    assert inferred["origin"] == "inferred"

    refused = served.client.delete(f"/api/v1/dependencies/{inferred['id']}", headers=headers)
    unknown = served.client.delete("/api/v1/dependencies/99999", headers=headers)
    hidden = served.client.delete(
        f"/api/v1/dependencies/{inferred['id']}",
        headers=served.headers("department_it", "department:NJ-D1"),
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "mig_dep_inferred")
    assert "namespace edu-dc/shared" in refused.json()["detail"]
    assert (unknown.status_code, unknown.json()["code"]) == (404, "mig_dep_unknown")
    # An edge the caller cannot see reads as one that does not exist.
    assert (hidden.status_code, hidden.json()["code"]) == (404, "mig_dep_unknown")
    assert edges(served) == {("A13", "A12", "inferred")}


def import_file(
    served: Served,
    content: bytes,
    headers: dict[str, str],
    *,
    name: str = "deps.csv",
    query: str = "",
) -> Any:
    return served.client.post(
        f"/api/v1/dependencies/import{query}",
        files={"file": (name, content, "text/csv")},
        headers=headers,
    )


def test_an_import_row_outside_the_scope_is_a_problem_and_nothing_is_written(
    served: Served,
) -> None:
    zh = import_file(
        served, DEPS_FILE.encode(), served.headers("department_it", "department:JS-EDU")
    )
    en = import_file(
        served, DEPS_FILE.encode(), served.headers("department_it", "department:JS-EDU", lang="en")
    )

    assert zh.status_code == en.status_code == 422
    assert zh.json()["code"] == "deps_problems"
    assert zh.json()["detail"] == "deps.csv：3 个问题；未导入任何内容"
    problems = {(p["row"], p["value"], p["reason"]) for p in en.json()["problems"]}
    assert problems == {
        (3, "A12", "outside the systems whose dependencies you may declare"),
        (4, "N01", "outside the systems whose dependencies you may declare"),
        # Classified: unknown to the caller, as any code not in the register.
        (5, "A05", "unknown system (not in the register)"),
    }
    assert "未知的系统编码" in {p["reason"][:7] for p in zh.json()["problems"]}
    assert edges(served) == {("A13", "A12", "inferred")}
    assert audit_of(served, "deps.import") == []


def test_an_import_applies_and_replace_spares_what_the_caller_could_not_declare(
    served: Served, tmp_path: Path
) -> None:
    declared_by_cli(tmp_path, "from,to,type\nN01,N02,calls\nA01,A07,calls\n")
    headers = served.headers("department_it", "department:JS-EDU")

    response = import_file(
        served, b"from,to,type\nA01,A02,calls\n", headers, name="edu.csv", query="?replace=true"
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "file": "edu.csv",
        "rows": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "removed": 1,
    }
    # A01 → A07 was JS-EDU's to replace; N01 → N02 is NJ-D1's and stays.
    assert edges(served) == {
        ("A01", "A02", "declared"),
        ("N01", "N02", "declared"),
        ("A13", "A12", "inferred"),
    }
    cli, entry = audit_of(served, "deps.import")
    assert (cli.principal_kind, entry.principal_kind) == ("local", "token")
    assert entry.principal == "department_it@department:JS-EDU"
    assert entry.target == "edu.csv"
    assert entry.after is not None and entry.after["removed"] == 1


def test_an_upload_over_the_limit_is_413_and_a_wrong_kind_is_the_clis_refusal(
    served: Served,
) -> None:
    headers = served.headers("admin", "province", lang="en")
    big = b"from,to,type\n" + b"A01,A02,calls\n" * (21 * 1024 * 1024 // 14)
    too_large = import_file(served, big, headers)
    wrong_kind = import_file(served, b"from,to,type\n", headers, name="deps.txt")

    assert (too_large.status_code, too_large.json()["code"]) == (413, "mig_upload_too_large")
    assert (
        too_large.json()["detail"] == "deps.csv is larger than the service accepts (20 MiB at most)"
    )
    assert (wrong_kind.status_code, wrong_kind.json()["code"]) == (422, "mig_sheet_wrong_kind")
    assert edges(served) == {("A13", "A12", "inferred")}


def test_the_cli_declares_and_removes_through_the_same_rules(served: Served) -> None:
    code, out, _ = invoke("migrate", "deps", "add", "A01", "A02", "--type", "data", "--by", "alice")
    assert code == 0, out
    headers = served.headers("viewer", "province")
    (edge,) = [
        i
        for i in served.client.get("/api/v1/dependencies", headers=headers).json()["items"]
        if i["origin"] == "declared"
    ]
    assert out.strip() == f"dependency #{edge['id']} declared: A01 depends on A02 (data, soft)"
    again = invoke("migrate", "deps", "add", "A01", "A02", "--type", "data", "--by", "alice")
    classified = invoke("migrate", "deps", "add", "A05", "A02", "--by", "alice")

    gone = invoke("migrate", "deps", "delete", str(edge["id"]), "--by", "alice")

    assert again[0] == 1 and "already declared" in again[2]
    assert classified[0] == 2 and "unknown system A05" in classified[2]
    assert gone[0] == 0
    assert gone[1].strip() == f"dependency #{edge['id']} removed: A01 no longer depends on A02"
    (entry,) = audit_of(served, "deps.add")
    assert (entry.principal_kind, entry.by) == ("local", "alice")
    assert edges(served) == {("A13", "A12", "inferred")}


# ---------------------------------------------------------------- assessment


def assessed_codes(served: Served) -> set[str]:
    with Session(served.engine) as session:
        return set(session.exec(select(Assessment.system_code).distinct()))


def test_a_city_planner_assesses_its_city_and_a_province_planner_everything(
    served: Served,
) -> None:
    city = served.client.post(
        "/api/v1/assessments/run", json={}, headers=served.headers("planner", "city:南京市")
    )
    assert city.status_code == 200, city.text
    assert city.json() == {
        "scope": "grants",
        "assessed": 2,
        "written": 2,
        "unchanged": 0,
        "classified": 0,
    }
    assert assessed_codes(served) == {"N01", "N02"}

    province = served.client.post(
        "/api/v1/assessments/run", json={}, headers=served.headers("planner", "province")
    )

    assert province.json()["scope"] == "province"
    assert (province.json()["written"], province.json()["unchanged"]) == (14, 2)
    # The classified system is assessed and counted, never listed.
    assert province.json()["classified"] == 1
    assert province.json()["assessed"] == 15
    runs = audit_of(served, "assessment.run")
    assert [e.principal for e in runs] == ["planner@city:南京市", "planner@province"]
    viewer = served.client.post(
        "/api/v1/assessments/run", json={}, headers=served.headers("viewer", "province")
    )
    assert (viewer.status_code, viewer.json()["code"]) == (403, "access_denied")


def test_the_assessments_in_force_are_the_clis_filtered_to_the_readers_scope(
    served: Served,
) -> None:
    assert invoke("migrate", "assess")[0] == 0
    code, out, _ = invoke("migrate", "assess", "list", "--format", "json")
    assert code == 0
    cli = [(r["system_code"], r["readiness"], r["strategy"]) for r in json.loads(out)]

    def api(scope: str, query: str = "") -> list[tuple[str, str, str | None]]:
        response = served.client.get(
            f"/api/v1/assessments{query}", headers=served.headers("viewer", scope)
        )
        assert response.status_code == 200, response.text
        return [(i["system_code"], i["readiness"], i["strategy"]) for i in response.json()["items"]]

    assert api("province") == cli
    assert "A05" not in {code for code, _, _ in cli}
    assert [c for c, _, _ in api("department:NJ-D1")] == ["N01", "N02"]
    blocked = [c for c, readiness, _ in cli if readiness == "blocked"]
    assert blocked and [c for c, _, _ in api("province", "?readiness=blocked")] == blocked
    assert api("department:NJ-D1", "?system=A01") == []
    bad = served.client.get(
        "/api/v1/assessments?readiness=nope", headers=served.headers("viewer", "province")
    )
    assert bad.status_code == 422


def override(
    served: Served, code: str, body: dict[str, Any], role: str, scope: str, lang: str = "zh"
) -> Any:
    return served.client.post(
        f"/api/v1/systems/{code}/override",
        json=body,
        headers=served.headers(role, scope, lang=lang),
    )


def test_a_planner_overrides_in_scope_signed_and_audited(served: Served) -> None:
    body = {"readiness": "needs_work", "reason": "接口改造未完成"}
    response = override(served, "A01", body, "planner", "department:JS-EDU")

    assert response.status_code == 201, response.text
    shown = response.json()
    assert (shown["readiness"], shown["assessed_readiness"]) == ("needs_work", "ready")
    assert shown["override_by"] == "planner@department:JS-EDU"
    assert shown["override_rationale"] == "接口改造未完成"
    (entry,) = audit_of(served, "assessment.override")
    assert entry.principal == "planner@department:JS-EDU"
    assert entry.before is None  # never assessed before: the rules' row was made with it
    assert entry.after is not None and entry.after["readiness"] == "needs_work"
    _, out, _ = invoke("migrate", "assess", "show", "A01", "--format", "json")
    assert json.loads(out)[-1]["override_by"] == "planner@department:JS-EDU"


def test_an_override_out_of_scope_or_classified_is_unknown_and_a_viewer_forbidden(
    served: Served,
) -> None:
    body = {"readiness": "ready", "reason": "x"}
    outside = override(served, "A01", body, "planner", "city:南京市", lang="en")
    classified = override(served, "A05", body, "admin", "province", lang="en")
    unknown = override(served, "NOPE", body, "admin", "province", lang="en")
    viewer = override(served, "A01", body, "viewer", "province")

    assert {r.status_code for r in (outside, classified, unknown)} == {404}
    assert {r.json()["code"] for r in (outside, classified, unknown)} == {
        "mig_override_unknown_system"
    }
    assert outside.json()["detail"].startswith("unknown system A01 (or outside migration)")
    assert (viewer.status_code, viewer.json()["code"]) == (403, "access_denied")
    assert assessed_codes(served) == set()


def test_an_override_the_rules_refuse_is_409_in_zh_and_en(served: Served) -> None:
    body = {"readiness": "ready", "reason": "领导要求"}
    zh = override(served, "A04", body, "planner", "province")
    en = override(served, "A04", body, "planner", "province", lang="en")

    assert zh.status_code == en.status_code == 409
    assert zh.json()["code"] == en.json()["code"] == "mig_r3_override"
    assert zh.json()["detail"].startswith("不能调整：R3 规定等保五级和涉密系统不上一朵云")
    assert en.json()["detail"].startswith("R3 cannot be overridden")
    assert audit_of(served, "assessment.override") == []


def test_two_overrides_at_once_one_wins_the_other_is_409_with_the_current_one(
    served: Served,
) -> None:
    assert invoke("migrate", "assess")[0] == 0
    headers = served.headers("planner", "province")
    seen = served.client.get("/api/v1/assessments?system=A07", headers=headers).json()["items"]
    expected = seen[0]["id"]

    def attempt(n: int) -> tuple[int, Any]:
        body = {"readiness": "needs_work", "reason": f"reason {n}", "expected_assessment": expected}
        response = served.client.post("/api/v1/systems/A07/override", json=body, headers=headers)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(attempt, range(8)))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 7, statuses
    (winner,) = [body for status, body in answers if status == 201]
    for status, body in answers:
        if status == 409:
            assert body["code"] == "mig_override_changed_meanwhile"
            assert body["current"]["assessment_id"] == winner["id"]
            assert body["current"]["override_by"] == "planner@province"
    with Session(served.engine) as session:
        current = session.exec(
            select(Assessment).where(
                col(Assessment.system_code) == "A07", col(Assessment.superseded_at).is_(None)
            )
        ).all()
    assert [row.id for row in current] == [winner["id"]]
    assert len(audit_of(served, "assessment.override")) == 1
