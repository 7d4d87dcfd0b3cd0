"""POST /systems/{code}/advance: the CLI's rules, scoped to the actor, audited, race-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session, col, select

from inventory.models import AuditEntry
from migrate.models import SystemMigration
from tests.service.conftest import Served


def state_of(served: Served, code: str) -> str:
    with Session(served.engine) as session:
        row = session.exec(
            select(SystemMigration).where(col(SystemMigration.system_code) == code)
        ).first()
        assert row is not None
        return row.state


def test_department_it_advances_its_own_system_and_the_audit_names_it(served: Served) -> None:
    before = state_of(served, "A01")
    response = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning"},
        headers=served.headers("department_it", "department:JS-EDU"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["from_state"] == before
    assert response.json()["by"] == "department_it@department:JS-EDU"
    with Session(served.engine) as session:
        entry = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "migration.advance")
        ).one()
    assert entry.principal == "department_it@department:JS-EDU"
    assert entry.principal_kind == "token"
    assert entry.request_id == response.headers["x-request-id"]
    assert entry.before == {"state": before, "plan_id": response.json()["plan_id"]}
    assert entry.after is not None and entry.after["state"] == "provisioning"


def test_another_departments_system_reads_as_unknown(served: Served) -> None:
    response = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning"},
        headers=served.headers("department_it", "department:NJ-D1"),
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "mig_unknown_system"
    assert state_of(served, "A01") == "planned"


def test_a_viewer_in_scope_is_forbidden_to_advance(served: Served) -> None:
    response = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning"},
        headers=served.headers("viewer", "province", lang="en"),
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "access_denied"
    assert "may not 'advance'" in body["detail"]
    assert state_of(served, "A01") == "planned"


def test_a_refusal_is_the_clis_wording_in_the_readers_language(served: Served) -> None:
    headers = served.headers("admin", "province")
    zh = served.client.post("/api/v1/systems/A01/advance", json={"to": "accepted"}, headers=headers)
    headers["Accept-Language"] = "en-GB,en;q=0.9,zh;q=0.1"
    en = served.client.post("/api/v1/systems/A01/advance", json={"to": "accepted"}, headers=headers)
    assert zh.status_code == en.status_code == 409
    assert zh.json()["code"] == en.json()["code"] == "mig_not_allowed"
    assert "不允许" in zh.json()["detail"] or "不能" in zh.json()["detail"]
    assert "accepted" in en.json()["detail"]


def test_no_token_and_a_forged_token_are_401(served: Served) -> None:
    assert served.client.get("/api/v1/systems/A01/advance").status_code in (401, 405)
    missing = served.client.post("/api/v1/systems/A01/advance", json={"to": "provisioning"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    real = served.token("admin", "province")
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    response = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning"},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert response.status_code == 401
    assert state_of(served, "A01") == "planned"


def test_a_stale_expected_state_is_409_with_the_current_state(served: Served) -> None:
    headers = served.headers("admin", "province")
    first = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning", "expected_state": "planned"},
        headers=headers,
    )
    assert first.status_code == 201, first.text
    second = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning", "expected_state": "planned"},
        headers=headers,
    )
    assert second.status_code == 409
    assert second.json()["current"] == {"system": "A01", "state": "provisioning"}


def test_two_advances_at_once_one_wins_the_other_is_409(served: Served) -> None:
    headers = served.headers("admin", "province")

    def attempt(_: int) -> int:
        response = served.client.post(
            "/api/v1/systems/A01/advance", json={"to": "provisioning"}, headers=headers
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses.count(201) == 1, statuses
    assert set(statuses) == {201, 409}, statuses
    with Session(served.engine) as session:
        entries = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "migration.advance")
        ).all()
    assert len(entries) == 1
