"""The admin pages: register upload → preview → apply, access grants, API tokens, refusals."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

import pytest
from sqlmodel import Session, col, select

from inventory.models import AccessGrant, ApiToken, AuditEntry, System
from service.portal.pages import admin as admin_page
from tests.portal.conftest import Portal, PortalUser

ADMIN = ("admin", "province")
HEADER = ["系统编码", "系统名称", "部门编码", "主管部门", "地市", "是否涉密", "等保级别"]
# A01 gets a new name; A02 is as registered; N99 is new.
ROWS = [
    ["A01", "教育门户（新）", "JS-EDU", "省教育厅", "省级", "否", "2"],
    ["A02", "系统A02", "JS-EDU", "省教育厅", "省级", "否", "3"],
    ["N99", "新系统N99", "NJ-D1", "南京市大数据局", "南京市", "否", "2"],
]


@pytest.fixture(autouse=True)
def uploads(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each test keeps its uploads in a folder of its own."""
    folder = tmp_path / "uploads"
    monkeypatch.setattr(admin_page, "UPLOADS", folder)
    return folder


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, *rows])
    return buffer.getvalue().encode("utf-8-sig")


def name_of(portal: Portal, code: str) -> str | None:
    with Session(portal.engine) as session:
        system = session.exec(select(System).where(col(System.code) == code)).first()
        return None if system is None else system.name


def audited(portal: Portal, action: str) -> list[AuditEntry]:
    with Session(portal.engine) as session:
        return list(session.exec(select(AuditEntry).where(col(AuditEntry.action) == action)))


def preview(user: PortalUser, payload: bytes, name: str = "目录.csv") -> Any:
    return user.client.post(
        "/admin/register/preview",
        data={"csrf_token": user.csrf},
        files={"file": (name, payload, "text/csv")},
    )


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return found.group(1)


def apply_form(page: str) -> dict[str, str]:
    return {name: hidden(page, name) for name in ("upload_id", "sha256", "diff")}


def test_a_department_user_is_refused_the_admin_pages(portal: Portal) -> None:
    user = portal.login("department_it", "department:JS-EDU")
    for path in ("/admin", "/admin/register", "/admin/access", "/admin/tokens"):
        assert user.get(path).status_code == 403, path
    assert preview(user, csv_bytes(ROWS)).status_code == 403
    assert user.post("/admin/access/grant", {"principal": "x", "role": "admin",
                                            "scope": "province"}).status_code == 403  # fmt: skip
    assert audited(portal, "access.grant") == []
    # A city admin holds no province-only right either.
    assert portal.login("admin", "city:南京市").get("/admin").status_code == 403


def test_preview_shows_the_change_and_the_ledger_waits_for_apply(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    before = name_of(portal, "A01")
    response = preview(user, csv_bytes(ROWS))
    assert response.status_code == 200, response.text[:400]
    page = response.text
    changed = page.split('id="register-changed"', 1)[1].split("</table>", 1)[0]
    assert "A01" in changed and "系统名称" in changed
    assert f"<del>{before}</del>" in changed and "<ins>教育门户（新）</ins>" in changed
    added = page.split('id="register-added"', 1)[1].split("</table>", 1)[0]
    assert "N99" in added and "A02" not in added
    assert 'id="register-apply"' in page
    # Previewed only: nothing written, nothing audited.
    assert name_of(portal, "A01") == before and name_of(portal, "N99") is None
    assert audited(portal, "register.import") == []

    form = apply_form(page)
    assert form["sha256"] == hashlib.sha256(csv_bytes(ROWS)).hexdigest()
    done = user.post("/admin/register/apply", form)
    assert done.status_code == 303 and done.headers["location"] == "/admin/register?done=applied"
    assert name_of(portal, "A01") == "教育门户（新）" and name_of(portal, "N99") == "新系统N99"
    [entry] = audited(portal, "register.import")
    assert entry.principal == "admin@province"
    assert entry.after is not None and entry.after["sha256"] == form["sha256"]
    # The kept file is gone: a second apply of the same preview changes nothing.
    again = user.post("/admin/register/apply", form)
    assert again.status_code == 409 and 'id="register-error"' in again.text
    assert len(audited(portal, "register.import")) == 1
    shown = user.get("/admin/register?done=applied").text
    assert 'id="register-done"' in shown and "目录.csv" in shown


def test_a_bad_row_is_shown_by_row_and_nothing_is_applied(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    broken = [*ROWS[:1], ["A03", "系统A03", "JS-EDU", "省教育厅", "省级", "否", "七"]]
    response = preview(user, csv_bytes(broken))
    assert response.status_code == 422
    problems = response.text.split('id="register-problems"', 1)[1].split("</table>", 1)[0]
    assert re.search(
        r'<th scope="row" class="num">3</th>\s*<td>等保级别</td>\s*<td>七</td>', problems
    )
    assert 'id="register-apply"' not in response.text
    assert name_of(portal, "A01") == "系统A01"
    assert audited(portal, "register.import") == []


def test_apply_needs_the_previewed_bytes_and_this_session(portal: Portal, uploads: Any) -> None:
    user = portal.login(*ADMIN)
    form = apply_form(preview(user, csv_bytes(ROWS)).text)
    # Another admin's session cannot apply this one's upload.
    other = portal.login(*ADMIN, principal="other-admin")
    assert other.post("/admin/register/apply", form).status_code == 409
    # Bytes changed on disk after the preview: refused.
    [kept] = list((uploads / form["upload_id"]).glob("register.csv"))
    kept.write_bytes(csv_bytes([["A01", "别的名字", "JS-EDU", "省教育厅", "省级", "否", "2"]]))
    assert user.post("/admin/register/apply", form).status_code == 409
    assert name_of(portal, "A01") == "系统A01" and audited(portal, "register.import") == []


def test_a_ledger_changed_since_the_preview_is_previewed_again(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    form = apply_form(preview(user, csv_bytes(ROWS)).text)
    with Session(portal.engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        system.mlps_level = 2
        session.add(system)
        session.commit()
    response = user.post("/admin/register/apply", form)
    assert response.status_code == 409 and 'id="register-note"' in response.text
    assert name_of(portal, "A01") == "系统A01"
    # The new preview's own form applies.
    assert user.post("/admin/register/apply", apply_form(response.text)).status_code == 303
    assert name_of(portal, "A01") == "教育门户（新）"


def test_a_file_of_another_kind_is_refused_in_place(portal: Portal) -> None:
    response = preview(portal.login(*ADMIN), b"\xd0\xcf\x11\xe0", name="目录.xls")
    assert response.status_code == 422 and 'id="register-error"' in response.text


def test_grant_and_revoke_are_written_and_audited(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    data = {"principal": "zhang@js", "role": "planner", "scope": "city:南京"}
    response = user.post("/admin/access/grant", data)
    assert response.status_code == 303
    page = user.get("/admin/access?principal=zhang@js").text
    assert "zhang@js" in page and "city:南京市" in page
    [entry] = audited(portal, "access.grant")
    assert entry.principal == "admin@province" and entry.target == "zhang@js"
    # The same grant again is refused in place, with the form kept.
    again = user.post("/admin/access/grant", data)
    assert again.status_code == 409 and 'id="grant-error"' in again.text
    assert 'value="zhang@js"' in again.text
    bad = user.post("/admin/access/grant", {**data, "scope": "planet:mars"})
    assert bad.status_code == 422 and 'id="grant-error"' in bad.text
    # Revoke through htmx: the row is swapped for a note.
    revoke = {"principal": "zhang@js", "role": "planner", "scope": "city:南京市"}
    gone = user.post("/admin/access/revoke", revoke, headers={"HX-Request": "true"})
    assert gone.status_code == 200 and "<html" not in gone.text
    with Session(portal.engine) as session:
        held = session.exec(select(AccessGrant).where(col(AccessGrant.principal) == "zhang@js"))
        assert list(held) == []
    assert len(audited(portal, "access.revoke")) == 1


def test_grants_list_is_paged(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    for n in range(3):
        user.post("/admin/access/grant", {"principal": f"p{n}", "role": "viewer",
                                          "scope": "province"})  # fmt: skip
    page = user.get("/admin/access?limit=2").text
    assert len(re.findall(r'<th scope="row">p\d</th>', page)) == 2 and 'rel="next"' in page


def test_a_token_is_shown_once_and_only_its_hash_is_kept(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    response = user.post(
        "/admin/tokens",
        {"principal": "etl@js", "role": "viewer", "scope": "province", "expires": "30d"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    token = re.search(r'id="issued-token" class="token" value="([^"]+)"', response.text)
    assert token and token.group(1).startswith("yiyun_") and 'id="token-once"' in response.text
    secret = token.group(1)
    with Session(portal.engine) as session:
        row = session.exec(select(ApiToken).where(col(ApiToken.principal) == "etl@js")).one()
        assert row.secret_sha256 == hashlib.sha256(secret.split("_", 2)[2].encode()).hexdigest()
        assert secret not in str(row.model_dump())
    # The token works on the API; the list never shows it again.
    api = portal.served.client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    listing = user.get("/admin/tokens").text
    assert secret not in listing and row.token_id in listing
    assert row.secret_sha256 not in listing
    entries = audited(portal, "token.create")
    assert len(entries) >= 1 and all(secret not in str(e.after) for e in entries)
    # Revoked: the API refuses it from then on.
    revoked = user.post(f"/admin/tokens/{row.token_id}/revoke")
    assert revoked.status_code == 303
    api = portal.served.client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401
    assert len(audited(portal, "token.revoke")) == 1


def test_a_bad_token_lifetime_is_refused_in_place(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    response = user.post(
        "/admin/tokens", {"principal": "x", "role": "viewer", "scope": "province", "expires": "9y"}
    )
    assert response.status_code == 422 and 'id="token-error"' in response.text


def test_writes_without_the_csrf_token_are_refused_and_change_nothing(portal: Portal) -> None:
    user = portal.login(*ADMIN)
    client = user.client
    grant = {"principal": "eve", "role": "admin", "scope": "province"}
    assert client.post("/admin/access/grant", data=grant).status_code == 403
    assert client.post("/admin/access/grant", data={**grant, "csrf_token": "x"}).status_code == 403
    made = client.post("/admin/tokens", data={**grant, "expires": "30d"})
    assert made.status_code == 403 and "yiyun_" not in made.text
    upload = client.post(
        "/admin/register/preview", files={"file": ("目录.csv", csv_bytes(ROWS), "text/csv")}
    )
    assert upload.status_code == 403
    with Session(portal.engine) as session:
        assert (
            list(session.exec(select(AccessGrant).where(col(AccessGrant.principal) == "eve"))) == []
        )
        assert list(session.exec(select(ApiToken).where(col(ApiToken.principal) == "eve"))) == []
    assert audited(portal, "access.grant") == [] and audited(portal, "token.create") == []


@pytest.mark.parametrize("path", ["/admin", "/admin/register", "/admin/access", "/admin/tokens"])
def test_english_renders(portal: Portal, path: str) -> None:
    page = portal.login(*ADMIN, lang="en").get(path)
    assert page.status_code == 200 and 'lang="en"' in page.text
    main = page.text.split('<main id="main">', 1)[1].split("</main>", 1)[0]
    assert not re.search(r"[\u4e00-\u9fff]", main), path


def test_english_preview_renders(portal: Portal) -> None:
    user = portal.login(*ADMIN, lang="en")
    page = preview(user, csv_bytes(ROWS)).text
    assert "Systems changed (1)" in page and "Apply" in page
