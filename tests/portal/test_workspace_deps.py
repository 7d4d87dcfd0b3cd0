"""Dependencies from the workspace: declare, delete, import a file with its problems in place."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from inventory.i18n import text
from migrate.models import Dependency
from service.portal.web import CSRF_FIELD
from tests.portal.conftest import Portal

EDU = "department:JS-EDU"
DEPS = "/departments/JS-EDU/dependencies"


def edges(portal: Portal) -> set[tuple[str, str, str]]:
    with Session(portal.engine) as session:
        return {(d.from_system, d.to_system, d.type) for d in session.exec(select(Dependency))}


def api_edges(portal: Portal, role: str, scope: str) -> list[dict[str, Any]]:
    answer = portal.served.client.get(
        "/api/v1/dependencies?limit=100", headers=portal.served.headers(role, scope)
    )
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_declare_list_and_delete(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    added = user.post(DEPS, {"from_system": "A01", "to_system": "A10", "kind": "data"})
    assert added.status_code == 303
    assert ("A01", "A10", "data") in edges(portal)
    page = user.get(added.headers["location"]).text
    assert 'id="deps-done"' in page
    (edge,) = [e for e in api_edges(portal, "department_it", EDU) if e["from"] == "A01"]
    assert f'id="dep-{edge["id"]}"' in page and f'id="dep-delete-{edge["id"]}"' in page
    # Without JavaScript the delete button asks first, on a page of its own.
    confirm = user.get(f"{DEPS}/{edge['id']}/delete")
    assert confirm.status_code == 200 and 'id="dep-delete-confirm"' in confirm.text
    assert ("A01", "A10", "data") in edges(portal)
    gone = user.post(f"{DEPS}/{edge['id']}/delete")
    assert gone.status_code == 303
    assert ("A01", "A10", "data") not in edges(portal)


def test_a_bad_declaration_is_explained_in_place(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    before = edges(portal)
    unknown = user.post(DEPS, {"from_system": "A01", "to_system": "NOPE"})
    assert unknown.status_code == 422
    assert 'id="deps-error"' in unknown.text and "NOPE" in unknown.text
    assert 'value="NOPE"' in unknown.text  # the form keeps what was typed
    # Another department's system cannot be declared as the depending one.
    foreign = user.post(DEPS, {"from_system": "A12", "to_system": "A01"})
    assert foreign.status_code == 422
    twice = [user.post(DEPS, {"from_system": "A01", "to_system": "A02"}) for _ in range(2)]
    assert [t.status_code for t in twice] == [303, 409]
    assert edges(portal) == before | {("A01", "A02", "calls")}


def test_a_file_with_one_bad_row_shows_it_and_applies_nothing(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    before = edges(portal)
    content = "from,to,type\nA01,A10,calls\nA02,NOPE,calls\nA06,A07,数据\n".encode()
    answer = user.post(f"{DEPS}/import", files={"file": ("deps.csv", content, "text/csv")}, data={})
    assert answer.status_code == 422
    table = answer.text.split('id="deps-problems"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="bad">(.*?)</tr>', table, re.S)
    assert len(rows) == 1
    assert ">3<" in rows[0] and ">to<" in rows[0] and "NOPE" in rows[0]
    assert text("mig_dep_unknown_system", "zh") in rows[0]
    assert text("portal_workspace_deps_nothing_applied", "zh") in answer.text
    assert edges(portal) == before

    good = "from,to,type\nA01,A10,calls\nA06,A07,数据\n".encode()
    done = user.post(f"{DEPS}/import", files={"file": ("deps.csv", good, "text/csv")})
    assert done.status_code == 303
    assert edges(portal) == before | {("A01", "A10", "calls"), ("A06", "A07", "data")}
    shown = user.get(done.headers["location"]).text
    assert (
        text("portal_workspace_deps_imported", "zh", created=2, updated=0, unchanged=0, removed=0)
        in shown
    )


def test_a_row_for_another_departments_system_is_refused_by_row(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    before = edges(portal)
    content = b"from,to,type\nA01,A10,calls\nA12,A01,calls\n"
    answer = user.post(f"{DEPS}/import", files={"file": ("deps.csv", content, "text/csv")})
    assert answer.status_code == 422
    assert text("mig_dep_not_in_scope", "zh") in answer.text
    assert edges(portal) == before


def test_a_viewer_has_no_forms_and_cannot_write(portal: Portal) -> None:
    user = portal.login("viewer", EDU)
    page = user.get(DEPS).text
    assert 'id="deps-may-not"' in page and 'id="deps-add-form"' not in page
    before = edges(portal)
    refused = user.post(DEPS, {"from_system": "A01", "to_system": "A10"})
    assert refused.status_code == 403
    assert edges(portal) == before


def test_writes_without_the_csrf_token_are_403(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    before = edges(portal)
    bare = user.client.post(DEPS, data={"from_system": "A01", "to_system": "A10"})
    upload = user.client.post(
        f"{DEPS}/import",
        files={"file": ("deps.csv", b"from,to,type\nA01,A10,calls\n", "text/csv")},
        data={CSRF_FIELD: "forged"},
    )
    assert bare.status_code == upload.status_code == 403
    assert edges(portal) == before


def test_another_departments_dependencies_are_403(portal: Portal) -> None:
    user = portal.login("department_it", "department:NJ-D1")
    assert user.get(DEPS).status_code == 403
    assert user.post(DEPS, {"from_system": "A01", "to_system": "A10"}).status_code == 403


def test_htmx_swaps_the_panel_with_the_problems(portal: Portal) -> None:
    user = portal.login("department_it", EDU, lang="en")
    answer = user.client.post(
        f"{DEPS}/import",
        files={"file": ("deps.csv", b"from,to,type\nA01,NOPE,calls\n", "text/csv")},
        headers={"HX-Request": "true", "X-CSRF-Token": user.csrf},
    )
    # The file's problems are a 422 that htmx swaps in (base.html's responseHandling).
    assert answer.status_code == 422
    assert answer.text.lstrip().startswith('<div id="deps-panel"')
    assert 'id="deps-problems"' in answer.text and "Nothing in the file was imported" in answer.text
