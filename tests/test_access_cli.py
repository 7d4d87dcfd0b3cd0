"""`yiyun tokens` and `yiyun access`: a token shown once, kept as a hash, refused once revoked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from inventory.models import AccessGrant, ApiToken, AuditEntry
from inventory.settings import Settings
from service.app import create_app
from service.context import Service
from tests.migrate.conftest import invoke

CREATE = ("tokens", "create", "--principal", "ci-deploy", "--role", "admin", "--scope", "province")


@pytest.fixture
def api(settings: Settings, engine: sa.Engine) -> Iterator[TestClient]:
    """The service over the ledger the CLI writes to: one source of truth for both doors."""
    with TestClient(create_app(Service(engine=engine, settings=settings))) as client:
        yield client


def created(*extra: str) -> tuple[str, str]:
    """A token made by the CLI: (the token, what the CLI said about it on stderr)."""
    code, out, err = invoke(*CREATE, "--by", "王工", *extra)
    assert code == 0, out + err
    return out.strip(), err


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_prints_the_token_once_on_stdout_and_how_to_use_it_on_stderr(
    settings: Settings,
) -> None:
    token, said = created()
    token_id, secret = token.removeprefix("yiyun_").split("_", 1)
    assert token.startswith("yiyun_") and len(secret) >= 32
    # stdout is the token and nothing else, so TOKEN=$(yiyun tokens create …) works.
    code, out, _ = invoke(*CREATE, "--by", "王工")
    assert code == 0 and len(out.strip().splitlines()) == 1
    assert secret not in said
    assert token_id in said and "Authorization: Bearer" in said
    assert "shown only this once" in said


def test_only_the_hash_is_stored_and_list_never_shows_the_secret(
    settings: Settings, engine: sa.Engine
) -> None:
    token, _ = created()
    token_id, secret = token.removeprefix("yiyun_").split("_", 1)
    with Session(engine) as session:
        row = session.exec(select(ApiToken).where(col(ApiToken.token_id) == token_id)).one()
        stored = [str(value) for value in row.model_dump().values()]
        audit = session.exec(select(AuditEntry)).all()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in value for value in stored)
    assert not any(secret in json.dumps(entry.after) for entry in audit)
    for fmt in ("table", "json", "csv", "md"):
        code, out, err = invoke("tokens", "list", "--format", fmt)
        assert code == 0, err
        assert token_id in out
        assert secret not in out + err and row.secret_sha256 not in out + err
    listed = json.loads(invoke("tokens", "list", "--format", "json")[1])
    assert [(t["token_id"], t["principal"], t["status"]) for t in listed] == [
        (token_id, "ci-deploy", "active")
    ]
    assert listed[0]["created_by"] == "王工"


def test_revoke_stops_the_token_at_the_api(settings: Settings, api: TestClient) -> None:
    token, _ = created()
    token_id = token.split("_")[1]
    assert api.get("/api/v1/tokens", headers=bearer(token)).status_code == 200

    code, out, err = invoke("tokens", "revoke", token_id, "--by", "王工")

    assert code == 0, out + err
    refused = api.get("/api/v1/tokens", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["reason"] == "token"
    listed = json.loads(invoke("tokens", "list", "--format", "json")[1])
    assert (listed[0]["status"], listed[0]["revoked_by"]) == ("revoked", "王工")
    again = invoke("tokens", "revoke", token_id, "--by", "王工")
    assert again[0] == 2 and "already revoked" in again[2]


def test_revoke_takes_a_pasted_token_without_echoing_its_secret(
    settings: Settings, api: TestClient
) -> None:
    token, _ = created()

    code, out, err = invoke("tokens", "revoke", token, "--by", "王工")

    assert code == 0, out + err
    assert token.split("_", 2)[2] not in out + err
    assert api.get("/api/v1/tokens", headers=bearer(token)).status_code == 401


def test_an_expired_token_opens_nothing(
    settings: Settings, engine: sa.Engine, api: TestClient
) -> None:
    token, _ = created("--expires", "12h")
    token_id = token.split("_")[1]
    with Session(engine) as session:
        row = session.exec(select(ApiToken).where(col(ApiToken.token_id) == token_id)).one()
        assert row.expires_at is not None
        assert row.expires_at - row.created_at == timedelta(hours=12)
        # Its twelve hours are over: moved back in the ledger, as time would move it.
        row.expires_at = datetime.now(tz=UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()

    assert api.get("/api/v1/tokens", headers=bearer(token)).status_code == 401
    listed = json.loads(invoke("tokens", "list", "--format", "json")[1])
    assert listed[0]["status"] == "expired"


@pytest.mark.parametrize(
    ("args", "zh", "en"),
    [
        (("--role", "boss", "--scope", "province"), "角色“boss”无效", "role 'boss' is not valid"),
        (("--role", "admin", "--scope", "county:x"), "范围“county:x”无效", "scope 'county:x'"),
        (("--role", "admin", "--scope", "province", "--expires", "2y"), "有效期“2y”无效", "90d"),
        (("--role", "admin", "--scope", "province", "--expires", "400d"), "最长 366 天", "366"),
    ],
)
def test_a_token_that_cannot_be_is_exit_2_in_the_readers_language(
    settings: Settings, engine: sa.Engine, args: tuple[str, ...], zh: str, en: str
) -> None:
    base = ("tokens", "create", "--principal", "ci", "--by", "王工", *args)
    zh_code, zh_out, zh_err = invoke("--lang", "zh", *base)
    en_code, en_out, en_err = invoke("--lang", "en", *base)
    assert (zh_code, en_code) == (2, 2)
    assert zh_out == en_out == ""
    assert zh in zh_err and zh_err.startswith("错误：")
    assert en in en_err and en_err.startswith("error:")
    with Session(engine) as session:
        assert session.exec(select(ApiToken)).all() == []


def test_grant_list_revoke_and_each_write_is_audited_as_local(
    settings: Settings, engine: sa.Engine
) -> None:
    grant = ("li.si", "department_it", "department:JS-EDU", "--by", "王工")
    granted = invoke("access", "grant", *grant)
    again = invoke("access", "grant", *grant)
    listed = json.loads(invoke("access", "list", "--principal", "li.si", "--format", "json")[1])
    revoked = invoke("access", "revoke", *grant)
    gone = invoke("access", "revoke", *grant)

    assert granted[0] == 0 and "li.si now holds department_it@department:JS-EDU" in granted[1]
    assert again[0] == 2 and "already holds" in again[2]
    assert [(g["principal"], g["role"], g["scope"], g["granted_by"]) for g in listed] == [
        ("li.si", "department_it", "department:JS-EDU", "王工")
    ]
    assert revoked[0] == 0 and "no longer holds" in revoked[1]
    assert gone[0] == 2 and "does not hold" in gone[2]
    with Session(engine) as session:
        assert session.exec(select(AccessGrant)).all() == []
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    assert [(e.action, e.target, e.principal_kind, e.by) for e in entries] == [
        ("access.grant", "li.si", "local", "王工"),
        ("access.revoke", "li.si", "local", "王工"),
    ]
    audit = json.loads(invoke("access", "audit", "--format", "json")[1])
    assert [(a["id"], a["action"]) for a in audit] == [(e.id, e.action) for e in reversed(entries)]


def test_an_empty_by_signs_nothing(settings: Settings, engine: sa.Engine) -> None:
    zh = invoke("--lang", "zh", "access", "grant", "li.si", "viewer", "province", "--by", " ")
    en = invoke("--lang", "en", *CREATE, "--by", "")
    assert zh[0] == en[0] == 2
    assert "--by 不能为空" in zh[2] and "--by cannot be empty" in en[2]
    with Session(engine) as session:
        assert session.exec(select(AuditEntry)).all() == []
