"""The workspace pages: a department's systems in scope only, its KPI row, paging, zh and en."""

from __future__ import annotations

import re
from typing import Any

from inventory.i18n import text
from service.portal.web import percent
from tests.portal.conftest import Portal

EDU = "department:JS-EDU"
_SYSTEM_LINK = re.compile(r'<th scope="row"><a href="/systems/([^"#]+)">')


def system_codes(page: str) -> list[str]:
    """The systems a department page lists, in its order."""
    table = page.split('id="systems-table"', 1)[-1] if 'id="systems-table"' in page else ""
    return _SYSTEM_LINK.findall(table)


def api(portal: Portal, path: str, role: str, scope: str) -> Any:
    response = portal.served.client.get(path, headers=portal.served.headers(role, scope))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_department_user_goes_straight_to_their_department(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    answer = user.get("/workspace")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/departments/JS-EDU"


def test_the_department_page_lists_only_its_systems_as_the_api_does(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    page = user.get("/departments/JS-EDU?limit=100")
    assert page.status_code == 200
    listed = api(portal, "/api/v1/systems?limit=100", "department_it", EDU)
    assert system_codes(page.text) == [s["code"] for s in listed["items"]]
    assert {s["department_code"] for s in listed["items"]} == {"JS-EDU"}
    # Neither the other department's systems nor another city's leak into the page.
    for other in ("A12", "A13", "N01", "N02", "系统A12", "南京市大数据局"):
        assert other not in page.text
    # Classified A05 is never listed.
    assert "A05" not in system_codes(page.text)


def test_the_scorecard_figures_are_the_kpis_department_row(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    page = user.get("/departments/JS-EDU").text
    kpi = api(portal, "/api/v1/adoption?by=department", "department_it", EDU)
    (row,) = [g for g in kpi["groups"] if g["key"] == "JS-EDU"]
    assert f'id="department-rate">{percent(row["rate"])}<' in page
    meta = text(
        "portal_workspace_rate_meta",
        "zh",
        numerator=row["numerator"],
        denominator=row["denominator"],
    )
    assert meta in page
    assert 'href="/dashboard/downloads/scorecard/JS-EDU"' in page


def test_out_of_scope_departments_and_systems_are_403_without_data(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    for path, secret in (
        ("/systems/A12", "系统A12"),
        ("/departments/NJ-D1", "南京市大数据局"),
        ("/departments/JS-HEA", "省卫健委"),
        ("/departments/JS-HEA/dependencies", "省卫健委"),
        ("/systems/A05", "系统A05"),  # classified: unknown to every page
        ("/systems/NOPE", "NOPE-never"),
    ):
        answer = user.get(path)
        assert answer.status_code == 403, path
        assert secret not in answer.text
        assert 'id="systems-table"' not in answer.text and 'id="step-panel"' not in answer.text


def test_paging_filters_and_sorting_follow_the_api(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    page = user.get("/departments/JS-EDU?limit=3&offset=3&sort=-name").text
    listed = api(
        portal,
        "/api/v1/systems?department=JS-EDU&limit=3&offset=3&sort=-name",
        "viewer",
        "province",
    )
    assert system_codes(page) == [s["code"] for s in listed["items"]]
    assert text("portal_pager_range", "zh", first=4, last=6, total=listed["total"]) in page
    on_cloud = user.get("/departments/JS-EDU?status=on_cloud").text
    assert system_codes(on_cloud) == ["A10"]
    # A filter form sends "" for "any": every system, as with no filter at all.
    empty = user.get("/departments/JS-EDU?q=&status=&state=&sort=code&limit=100")
    assert empty.status_code == 200
    assert system_codes(empty.text) == system_codes(user.get("/departments/JS-EDU?limit=100").text)
    searched = user.get("/departments/JS-EDU?q=a0").text
    assert set(system_codes(searched)) <= {f"A0{n}" for n in range(10)}


def test_the_state_filter_keeps_the_plans_state(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    planned = system_codes(user.get("/departments/JS-EDU?state=planned&limit=100").text)
    assessed = system_codes(user.get("/departments/JS-EDU?state=assessed&limit=100").text)
    assert planned == ["A01", "A02", "A07", "A14"]
    assert set(assessed) == {"A03", "A04", "A06", "A08", "A11"}
    paged = user.get("/departments/JS-EDU?state=planned&limit=2&offset=2").text
    assert system_codes(paged) == ["A07", "A14"]


def test_the_department_list_is_the_readers_departments(portal: Portal) -> None:
    user = portal.login("viewer", "city:省级")
    page = user.get("/workspace")
    assert page.status_code == 200
    assert "/departments/JS-EDU" in page.text and "/departments/JS-HEA" in page.text
    assert "NJ-D1" not in page.text
    found = user.get("/workspace?q=卫健").text
    assert "/departments/JS-HEA" in found and "/departments/JS-EDU" not in found
    first = user.get("/workspace?sort=-code&limit=1").text
    assert "/departments/JS-HEA" in first and "/departments/JS-EDU" not in first
    assert 'rel="next"' in first


def test_a_system_page_shows_evidence_blockers_and_the_step_in_words(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    blocked = user.get("/systems/A03").text
    assert "R1" in blocked and "R2" in blocked and 'id="blockers-table"' in blocked
    # No advance is possible: the fix is the decided step (an override for the planners).
    assert 'id="advance-button"' not in blocked
    a01 = user.get("/systems/A01").text
    assert "edu-dc" in a01  # the evidence node
    detail = api(portal, "/api/v1/systems/A01", "department_it", EDU)
    for node in detail["evidence"]:
        for resource in node["resources"]:
            assert resource["native_id"] in a01 or (resource["name"] or "") in a01
    # The step is a portal action: a button, never the command line.
    assert 'id="advance-button"' in a01 and "yiyun migrate advance" not in a01
    assert 'name="to" value="provisioning"' in a01
    assert 'name="expected_state" value="planned"' in a01


def test_htmx_gets_the_fragment_only(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    answer = user.get("/departments/JS-EDU?status=on_cloud", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="systems-panel"')
    assert "<html" not in answer.text


def test_english_renders_every_page(portal: Portal) -> None:
    user = portal.login("admin", "province", lang="en")
    for path, words in (
        ("/workspace", "Department workspace"),
        ("/departments/JS-EDU", "Department scorecard"),
        ("/departments/JS-EDU?state=planned", "Cloud-adoption rate"),
        ("/systems/A01", "Next step"),
        ("/systems/A03", "Readiness and blockers"),
        ("/departments/JS-EDU/dependencies", "Declare a dependency"),
    ):
        answer = user.get(path)
        assert answer.status_code == 200, path
        assert '<html lang="en">' in answer.text
        assert words in answer.text
        assert "下一步" not in answer.text and "部门工作台" not in answer.text
