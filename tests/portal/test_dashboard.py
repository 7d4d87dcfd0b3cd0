"""The dashboard: its figures equal the API's for each reader, the drill, the department table,
the downloads and their refusals, and both languages."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, select

from inventory.models import Node
from inventory.reports import switches_from, take_snapshot
from tests.migrate.estate import add_resource
from tests.portal.conftest import Portal, PortalUser

NANJING = "南京市"
_ROW = re.compile(
    r'<tr data-key="([^"]+)" data-adopted="(\d+)" data-total="(\d+)" data-rate="([^"]*)"'
)
_KPI = re.compile(r'<p class="kpi" id="kpi-rate"([^>]*)>')


def page(user: PortalUser, path: str) -> str:
    answer: Any = user.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return str(answer.text)


def kpi(text: str) -> dict[str, str]:
    found = _KPI.search(text)
    assert found, "no #kpi-rate on the page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', found.group(1)))


def section_rows(text: str, table_id: str) -> dict[str, tuple[int, int, float | None]]:
    start = text.index(f'id="{table_id}"')
    body = text[start : text.index("</table>", start)]
    return {
        html.unescape(key): (int(adopted), int(total), float(rate) if rate else None)
        for key, adopted, total, rate in _ROW.findall(body)
    }


def api(portal: Portal, role: str, scope: str, by: str | None = None) -> dict[str, Any]:
    params = {"by": by} if by else {}
    answer = portal.served.client.get(
        "/api/v1/adoption", params=params, headers=portal.served.headers(role, scope)
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def groups(report: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {g["key"]: (g["numerator"], g["denominator"], g["rate"]) for g in report["groups"]}


def rate_attr(rate: float | None) -> str:
    return "" if rate is None else str(rate)


def test_province_figures_equal_the_api(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    text = page(user, "/dashboard")
    total = api(portal, "viewer", "province")
    shown = kpi(text)
    assert shown["rate"] == rate_attr(total["rate"])
    assert (int(shown["adopted"]), int(shown["total"])) == (
        total["numerator"],
        total["denominator"],
    )
    assert shown["policy"] == total["policy"] and shown["level"] == "province"
    assert section_rows(text, "city-rows") == groups(api(portal, "viewer", "province", "city"))
    by_department = groups(api(portal, "viewer", "province", "department"))
    assert section_rows(text, "department-rows") == by_department
    assert set(by_department) == {"JS-EDU", "JS-HEA", "NJ-D1"}
    counts = dict(re.findall(r'data-status="([a-z_]+)" data-count="(\d+)"', text))
    assert {k: int(v) for k, v in counts.items()} == total["counts"]


def test_a_policy_choice_moves_the_figure_as_the_api_does(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    for query in ("policy=evidence-v1", "exempt_in_denominator=false", "trust_declared=true"):
        text = page(user, f"/dashboard?{query}")
        answer = portal.served.client.get(
            f"/api/v1/adoption?{query}", headers=portal.served.headers("viewer", "province")
        )
        expected = answer.json()
        shown = kpi(text)
        assert shown["rate"] == rate_attr(expected["rate"]), query
        assert int(shown["total"]) == expected["denominator"], query
        # The drill keeps the choice.
        assert f'href="/dashboard?{query}&amp;city={quote(NANJING)}"' in text


def test_a_city_reader_sees_the_city_and_its_own_departments(portal: Portal) -> None:
    user = portal.login("viewer", f"city:{NANJING}")
    text = page(user, f"/dashboard?city={quote(NANJING)}")
    city = groups(api(portal, "viewer", f"city:{NANJING}", "city"))[NANJING]
    shown = kpi(text)
    assert (int(shown["adopted"]), int(shown["total"])) == city[:2]
    assert shown["rate"] == rate_attr(city[2]) and shown["key"] == NANJING
    departments = groups(api(portal, "viewer", f"city:{NANJING}", "department"))
    assert section_rows(text, "department-rows") == departments == {"NJ-D1": departments["NJ-D1"]}
    # Another city's total is an aggregate every reader may see; its departments are not.
    other = page(user, f"/dashboard?city={quote('省级')}")
    assert "JS-EDU" not in other and "省教育厅" not in other
    # The province reports are not theirs: no link, and the download is refused.
    assert "download-province-html" not in text


def test_a_department_reader_sees_its_department_and_nothing_else(portal: Portal) -> None:
    user = portal.login("department_it", "department:NJ-D1")
    text = page(user, "/dashboard?department=NJ-D1")
    mine = groups(api(portal, "department_it", "department:NJ-D1", "department"))
    assert list(mine) == ["NJ-D1"]
    shown = kpi(text)
    assert (int(shown["adopted"]), int(shown["total"])) == mine["NJ-D1"][:2]
    assert shown["rate"] == rate_attr(mine["NJ-D1"][2]) and shown["level"] == "department"
    assert 'href="/departments/NJ-D1"' in text
    assert 'id="download-scorecard-html"' in text and "download-province-xlsx" not in text
    # Their province view lists only their department; another's is refused, as unknown is.
    assert set(section_rows(page(user, "/dashboard"), "department-rows")) == {"NJ-D1"}
    for code in ("JS-EDU", "NO-SUCH"):
        refused: Any = user.get(f"/dashboard?department={code}")
        assert refused.status_code == 403
        assert "省教育厅" not in refused.text
    assert user.get(f"/dashboard?city={quote('火星市')}").status_code == 403  # type: ignore[attr-defined]


def test_the_drill_goes_province_city_department(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    province = page(user, "/dashboard")
    city_link = f'href="/dashboard?city={quote(NANJING)}"'
    assert city_link in province
    # The bars drill too: the chart's links name the same pages.
    assert f"/dashboard?city={quote(NANJING)}" in html.unescape(
        province.split('id="chart-cities"')[1]
    )
    city = page(user, f"/dashboard?city={quote(NANJING)}")
    assert 'href="/dashboard?department=NJ-D1"' in city
    assert 'href="/dashboard"' in city  # back up the breadcrumb
    department = page(user, "/dashboard?department=NJ-D1")
    assert city_link in department and 'href="/departments/NJ-D1"' in department
    # htmx asks for the body alone.
    fragment: Any = user.get("/dashboard", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith("<div") or "<html" not in fragment.text
    assert 'id="kpi-rate"' in fragment.text


def _table_keys(text: str) -> list[str]:
    return list(section_rows(text, "department-table"))


def test_the_department_table_sorts_and_pages_on_the_server(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    by_department = groups(api(portal, "viewer", "province", "department"))
    text = page(user, "/dashboard/departments?sort=code")
    assert _table_keys(text) == ["JS-EDU", "JS-HEA", "NJ-D1"]
    assert section_rows(text, "department-table") == by_department
    assert _table_keys(page(user, "/dashboard/departments?sort=-code")) == [
        "NJ-D1",
        "JS-HEA",
        "JS-EDU",
    ]
    by_rate = sorted(
        by_department, key=lambda k: (by_department[k][2] is None, by_department[k][2] or 0, k)
    )
    assert _table_keys(page(user, "/dashboard/departments?sort=rate")) == by_rate
    second = page(user, "/dashboard/departments?sort=code&limit=1&offset=1")
    assert _table_keys(second) == ["JS-HEA"]
    assert 'rel="prev"' in second and 'rel="next"' in second
    assert "offset=2" in second
    assert _table_keys(page(user, f"/dashboard/departments?city={quote(NANJING)}")) == ["NJ-D1"]
    too_many: Any = user.get("/dashboard/departments?limit=1000")
    assert too_many.status_code == 422
    # A department reader's table is their department alone.
    mine = portal.login("department_it", "department:NJ-D1")
    assert _table_keys(page(mine, "/dashboard/departments")) == ["NJ-D1"]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_downloads_for_a_province_reader(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    assert 'id="download-province-xlsx"' in page(user, "/dashboard")
    report: Any = user.get("/dashboard/downloads/province.html")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "attachment" in report.headers["content-disposition"]
    assert "<html" in report.text
    workbook: Any = user.get("/dashboard/downloads/province.xlsx?exempt_in_denominator=false")
    assert workbook.status_code == 200 and workbook.headers["content-type"] == XLSX
    assert workbook.content[:2] == b"PK"
    for fmt, media in (
        ("html", "text/html"),
        ("md", "text/markdown"),
        ("json", "application/json"),
    ):
        card: Any = user.get(f"/dashboard/downloads/scorecard/NJ-D1.{fmt}")
        assert card.status_code == 200, card.text
        assert card.headers["content-type"].startswith(media)
        assert "NJ-D1" in card.headers["content-disposition"]


def test_downloads_refused_where_the_api_refuses(portal: Portal) -> None:
    user = portal.login("department_it", "department:NJ-D1")
    headers = portal.served.headers("department_it", "department:NJ-D1")
    for path, api_path in (
        ("/dashboard/downloads/province.html", "/api/v1/reports/html"),
        ("/dashboard/downloads/province.xlsx", "/api/v1/reports/xlsx"),
    ):
        assert portal.served.client.get(api_path, headers=headers).status_code == 403
        refused: Any = user.get(path)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
    api_card = portal.served.client.get(
        "/api/v1/reports/scorecard", params={"department": "JS-EDU"}, headers=headers
    )
    assert api_card.status_code == 404
    # A page never confirms another department exists: refused like an unknown one.
    other: Any = user.get("/dashboard/downloads/scorecard/JS-EDU.html")
    assert other.status_code == 403 and "省教育厅" not in other.text
    own: Any = user.get("/dashboard/downloads/scorecard/NJ-D1.md")
    assert own.status_code == 200


def test_the_trend_and_a_classified_finding(portal: Portal) -> None:
    with Session(portal.engine) as session:
        settings = portal.settings
        snapshot = take_snapshot(
            session=session, settings=settings, switches=switches_from(settings)
        )
        rate = snapshot.rate
        node = session.exec(select(Node).where(col(Node.id) == "edu-dc")).one()
        node.frozen_since = date(2026, 1, 1)
        session.add(node)
        add_resource(
            session,
            "A05",
            "edu-dc",
            "vm",
            name="secret-vm",
            created_at_source=datetime(2026, 6, 1, tzinfo=UTC),
        )
        session.commit()
    user = portal.login("viewer", "province")
    text = page(user, "/dashboard")
    assert 'id="chart-trend"' in text
    assert (f"{rate * 100:.1f}%" if rate is not None else "—") in text
    findings = re.search(r'id="findings" data-total="(\d+)"', text)
    assert findings and int(findings.group(1)) >= 1
    assert "（涉密，不显示）" in text
    assert "secret-vm" not in text and "A05" not in text


_TOKEN = re.compile(r"[A-Za-z0-9_.\-]+")


def visible_main(text: str) -> str:
    main = text[text.index("<main") : text.index("</main>")]
    main = re.sub(r"<[^>]+>", " ", main)  # tags and their attributes (hooks, option data)
    return html.unescape(main)


def test_chinese_pages_have_no_english_words(portal: Portal) -> None:
    user = portal.login("viewer", "province")
    # Codes are not words: node ids, resource kinds, department and system codes.
    codes = {
        n["id"]
        for n in portal.served.client.get(
            "/api/v1/nodes", headers=portal.served.headers("viewer", "province")
        ).json()
    }
    codes |= {"vm", "volume", "bucket", "deployment", "namespace", "statefulset", "db_instance"}
    for path in (
        "/dashboard",
        f"/dashboard?city={quote(NANJING)}",
        "/dashboard?department=JS-EDU",
        "/dashboard/departments",
    ):
        # A token with a digit, a dash or an underscore (js-core, NJ-D1, evidence-v2) is a code.
        words = {
            w
            for w in _TOKEN.findall(visible_main(page(user, path)))
            if re.fullmatch(r"[A-Za-z]{2,}", w) and w not in codes and not w.isupper()
        }
        assert words == set(), (path, words)


def test_english_renders_every_view(portal: Portal) -> None:
    user = portal.login("viewer", "province", lang="en")
    for path in (
        "/dashboard",
        f"/dashboard?city={quote(NANJING)}",
        "/dashboard?department=NJ-D1",
        "/dashboard/departments?sort=-rate",
    ):
        text = page(user, path)
        assert '<html lang="en">' in text
        assert "Adoption" in text or "adoption" in text
        assert not re.search(r"portal_dashboard_\w+", visible_main(text))
    assert "上云率" not in visible_main(page(user, "/dashboard"))
