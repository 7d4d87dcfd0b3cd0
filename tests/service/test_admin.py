"""/access, /tokens and /audit: province admins only, the CLI's answers, an append-only log."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import AuditEntry
from tests.migrate.conftest import invoke
from tests.service.conftest import Served

ADMIN = ("admin", "province")


def audit_rows(served: Served) -> list[AuditEntry]:
    with Session(served.engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))


def test_grant_list_revoke_through_the_api_matches_the_cli(served: Served) -> None:
    headers = served.headers(*ADMIN)
    body = {"principal": "li.si", "role": "department_it", "scope": "department:NJ-D1"}

    granted = served.client.post("/api/v1/access", json=body, headers=headers)
    listed = served.client.get("/api/v1/access", params={"principal": "li.si"}, headers=headers)
    cli = json.loads(invoke("access", "list", "--principal", "li.si", "--format", "json")[1])

    assert granted.status_code == 201, granted.text
    assert granted.json()["granted_by"] == "admin@province"
    assert listed.json()["total"] == 1
    assert [
        {k: g[k] for k in ("principal", "role", "scope", "granted_by")}
        for g in listed.json()["items"]
    ] == [{k: g[k] for k in ("principal", "role", "scope", "granted_by")} for g in cli]
    revoked = served.client.delete("/api/v1/access", params=body, headers=headers)
    assert revoked.status_code == 204 and revoked.content == b""
    assert served.client.get("/api/v1/access", headers=headers).json()["total"] == 0


def test_a_token_made_through_the_api_works_once_and_is_never_listed_with_its_secret(
    served: Served,
) -> None:
    headers = served.headers(*ADMIN)
    made = served.client.post(
        "/api/v1/tokens",
        json={"principal": "ci", "role": "viewer", "scope": "city:南京市", "expires": "12h"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["token_id"]
    secret = token.split("_", 2)[2]

    listed = served.client.get("/api/v1/tokens", headers=headers)
    cli = json.loads(invoke("tokens", "list", "--format", "json")[1])

    assert secret not in listed.text and "secret_sha256" not in listed.text
    assert {"token", "secret_sha256"}.isdisjoint(listed.json()["items"][0])
    assert [(t["token_id"], t["status"]) for t in listed.json()["items"]] == [
        (t["token_id"], t["status"]) for t in cli
    ]
    # The new token is a viewer of 南京市: it reads, it may not manage access.
    mine = {"Authorization": f"Bearer {token}"}
    assert served.client.get("/api/v1/tokens", headers=mine).status_code == 403
    gone = served.client.delete(f"/api/v1/tokens/{token_id}", headers=headers)
    assert gone.status_code == 204
    assert served.client.get("/api/v1/tokens", headers=mine).status_code == 401
    unknown = served.client.delete(f"/api/v1/tokens/{token_id}0", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "token_unknown"


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("viewer", "province"),
        ("planner", "province"),
        ("department_it", "department:JS-EDU"),
        # Access is the province's: an admin of one city holds no part of it.
        ("admin", "city:南京市"),
    ],
)
def test_only_a_province_admin_manages_access_or_reads_the_audit(
    served: Served, role: str, scope: str
) -> None:
    headers = served.headers(role, scope)
    body = {"principal": "x", "role": "admin", "scope": "province"}
    before = audit_rows(served)

    answers = [
        served.client.get("/api/v1/access", headers=headers),
        served.client.post("/api/v1/access", json=body, headers=headers),
        served.client.delete("/api/v1/access", params=body, headers=headers),
        served.client.get("/api/v1/tokens", headers=headers),
        served.client.post("/api/v1/tokens", json=body, headers=headers),
        served.client.delete("/api/v1/tokens/abc", headers=headers),
        served.client.get("/api/v1/audit", headers=headers),
    ]

    assert [a.status_code for a in answers] == [403] * len(answers)
    assert {a.json()["code"] for a in answers} == {"access_denied"}
    assert len(audit_rows(served)) == len(before)


def test_a_refusal_is_the_clis_wording_in_zh_and_en(served: Served) -> None:
    body = {"principal": "li.si", "role": "boss", "scope": "province"}
    zh = served.client.post("/api/v1/access", json=body, headers=served.headers(*ADMIN))
    en = served.client.post("/api/v1/access", json=body, headers=served.headers(*ADMIN, lang="en"))
    cli_zh = invoke("--lang", "zh", "access", "grant", "li.si", "boss", "province", "--by", "王工")

    assert zh.status_code == en.status_code == 422
    assert zh.headers["content-type"] == "application/problem+json"
    assert zh.json()["code"] == en.json()["code"] == "access_bad_role"
    assert zh.json()["detail"] == "角色“boss”无效：可选 viewer, department_it, planner, admin"
    assert (
        en.json()["detail"]
        == "role 'boss' is not valid: one of viewer, department_it, planner, admin"
    )
    assert zh.json()["detail"] in cli_zh[2]


def test_every_write_through_the_api_is_audited_with_the_token_and_the_request_id(
    served: Served,
) -> None:
    headers = served.headers(*ADMIN)
    grant = {"principal": "li.si", "role": "viewer", "scope": "province"}
    writes = {
        "access.grant": served.client.post("/api/v1/access", json=grant, headers=headers),
        "access.revoke": served.client.delete("/api/v1/access", params=grant, headers=headers),
        "token.create": served.client.post("/api/v1/tokens", json=grant, headers=headers),
        "migration.advance": served.client.post(
            "/api/v1/systems/A01/advance", json={"to": "provisioning"}, headers=headers
        ),
    }
    token_id = writes["token.create"].json()["token_id"]
    writes["token.revoke"] = served.client.delete(f"/api/v1/tokens/{token_id}", headers=headers)

    assert all(r.status_code in (201, 204) for r in writes.values()), writes
    entries = {e.request_id: e for e in audit_rows(served)}
    for action, response in writes.items():
        entry = entries[response.headers["x-request-id"]]
        assert (entry.action, entry.principal, entry.principal_kind) == (
            action,
            "admin@province",
            "token",
        )


def test_the_audit_pages_newest_first_filters_and_matches_the_cli(served: Served) -> None:
    headers = served.headers(*ADMIN)
    for name in ("a", "b", "c", "d", "e"):
        grant = {"principal": name, "role": "viewer", "scope": "province"}
        assert served.client.post("/api/v1/access", json=grant, headers=headers).status_code == 201

    pages = [
        served.client.get("/api/v1/audit", params={"offset": o, "limit": 2}, headers=headers)
        for o in (0, 2, 4, 6)
    ]
    whole = served.client.get("/api/v1/audit", params={"limit": 500}, headers=headers).json()
    cli = json.loads(invoke("access", "audit", "--limit", "500", "--format", "json")[1])
    filtered = served.client.get(
        "/api/v1/audit", params={"action": "access.grant", "target": "c"}, headers=headers
    ).json()

    paged = [e["id"] for page in pages for e in page.json()["items"]]
    assert paged == [e["id"] for e in whole["items"]] == [e["id"] for e in cli]
    assert paged == sorted(paged, reverse=True) and len(paged) == whole["total"]
    assert [(e["action"], e["target"]) for e in filtered["items"]] == [("access.grant", "c")]
    assert filtered["total"] == 1
    too_many = served.client.get("/api/v1/audit", params={"limit": 501}, headers=headers)
    assert too_many.status_code == 422


def test_access_lists_page_in_a_stable_order(served: Served) -> None:
    headers = served.headers(*ADMIN)
    for name, scope in (("b", "province"), ("a", "city:南京市"), ("a", "province")):
        grant = {"principal": name, "role": "viewer", "scope": scope}
        assert served.client.post("/api/v1/access", json=grant, headers=headers).status_code == 201

    pages = [
        served.client.get("/api/v1/access", params={"offset": o, "limit": 1}, headers=headers)
        for o in range(3)
    ]

    seen = [(g["principal"], g["scope"]) for p in pages for g in p.json()["items"]]
    cli = json.loads(invoke("access", "list", "--format", "json")[1])
    assert seen == [(g["principal"], g["scope"]) for g in cli]
    assert len(set(seen)) == 3 and {p.json()["total"] for p in pages} == {3}


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET principal = 'x'", "DELETE FROM audit_log"]
)
def test_the_audit_log_refuses_update_and_delete_from_any_client(
    served: Served, statement: str
) -> None:
    invoke("access", "grant", "li.si", "viewer", "province", "--by", "王工")
    before = [(e.id, e.principal) for e in audit_rows(served)]
    assert before

    # A raw connection: no ORM event stands in the way, only the database's triggers.
    with (
        pytest.raises(sa.exc.DBAPIError, match="append-only"),
        served.engine.begin() as connection,
    ):
        connection.execute(sa.text(statement))

    assert [(e.id, e.principal) for e in audit_rows(served)] == before


def test_emptying_the_audit_log_at_once_is_refused(served: Served) -> None:
    # PostgreSQL's TRUNCATE skips row triggers (a statement trigger refuses it); SQLite's
    # form of it is an unqualified DELETE, which its truncate optimisation would run without
    # row triggers if the table had none.
    postgresql = served.engine.dialect.name == "postgresql"
    statement = "TRUNCATE audit_log" if postgresql else "DELETE FROM audit_log"
    invoke("access", "grant", "li.si", "viewer", "province", "--by", "王工")
    before = len(audit_rows(served))

    with (
        pytest.raises(sa.exc.DBAPIError, match="append-only"),
        served.engine.begin() as connection,
    ):
        connection.execute(sa.text(statement))

    assert len(audit_rows(served)) == before > 0


def test_the_audit_never_serves_a_system_the_register_made_classified(served: Served) -> None:
    headers = served.headers(*ADMIN)
    advanced = served.client.post(
        "/api/v1/systems/A01/advance",
        json={"to": "provisioning", "note": "系统A01 申请资源", "evidence": "A01-ticket"},
        headers=headers,
    )
    assert advanced.status_code == 201, advanced.text
    # The register reclassifies it (涉密) afterwards; the log keeps what was written then.
    with served.engine.begin() as connection:
        connection.execute(sa.text("UPDATE system SET classified = true WHERE code = 'A01'"))

    log = served.client.get("/api/v1/audit", headers=headers)
    asked = served.client.get("/api/v1/audit", params={"target": "A01"}, headers=headers)
    never = served.client.get("/api/v1/audit", params={"target": "NOPE"}, headers=headers)
    local = invoke("access", "audit", "--format", "json", "--include-classified")

    (entry,) = [e for e in log.json()["items"] if e["action"] == "migration.advance"]
    assert (entry["target"], entry["before"], entry["after"]) == ("(classified)", None, None)
    assert entry["request_id"] == advanced.headers["x-request-id"]
    assert "A01" not in log.text
    assert asked.json() == never.json() == {"items": [], "total": 0, "offset": 0, "limit": 50}
    # The local operator who asks for them at a terminal sees the entry as written.
    (shown,) = [e for e in json.loads(local[1]) if e["action"] == "migration.advance"]
    assert (shown["target"], shown["after"]["evidence"]) == ("A01", "A01-ticket")
