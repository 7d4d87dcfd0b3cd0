"""Journeys through the portal in a real browser: people of the province log in at the real
provider, and every page they see is screenshotted, checked by axe and watched for errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect
from sqlmodel import Session, col, select

from inventory.i18n import state_label, status_label
from inventory.models import AuditEntry, System
from migrate.models import Dependency, SystemMigration
from service.portal.web import CSRF_FIELD
from tests.portal.browser import check_accessibility, screenshot
from tests.portal.live import (  # noqa: F401  (fixtures)
    CloudNode,
    LivePortal,
    cloud_node_fixture,
    estate_provider,
    live_fixture,
    oidc_keys,
)

# Each journey names the engines it runs on; the department journey runs on both.
BOTH = pytest.mark.parametrize("live", ["sqlite", "postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("live", ["sqlite"], indirect=True)
CJK = re.compile(r"[\u4e00-\u9fff]")
WAIT_MS = 10_000
UNSTYLE = "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"


class Visit:
    """What a person sees on each page: a screenshot, axe's verdict, and no errors.

    Problems are gathered page by page and asserted at the end (`done`), so one broken page
    does not hide what the rest of the journey would have shown."""

    def __init__(self, page: Page, problems: list[str], live: LivePortal, journey: str) -> None:
        self.page, self.problems, self.live, self.journey = page, problems, live, journey
        self.shots: list[Path] = []
        self.found: list[str] = []

    def look(self, name: str, *, expected: Iterable[str] = ()) -> Path:
        """Screenshot and axe on the page as it is; `expected` are problems that are the point
        (e.g. "403"), matched as substrings."""
        page = self.page
        page.wait_for_load_state("load")
        shot = screenshot(page, f"journey-{self.live.engine_name}-{self.journey}-{name}")
        # Hiding the caret for the screenshot leaves style="" on inputs; htmx later copies it
        # with setAttribute, which the CSP blocks: take back what the tool left, not the page.
        page.evaluate(
            "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
        )
        self.shots.append(shot)
        try:
            check_accessibility(page, f"{self.journey}/{name}")
        except pytest.fail.Exception as failed:
            self.found.append(str(failed))
        self.take_problems(name, expected)
        return shot

    def take_problems(self, name: str, expected: Iterable[str] = ()) -> None:
        allowed = tuple(expected)
        # The provider's own page asks for a favicon it does not have: not the portal's.
        issuer = self.live.provider.issuer
        found = [p for p in self.problems if issuer not in p and not any(a in p for a in allowed)]
        self.found.extend(f"{self.journey}/{name} {self.page.url}: {p}" for p in found)
        self.problems.clear()

    def expect_equal(self, what: str, shown: object, expected: object) -> None:
        """A figure on the page against the CLI's, noted (not raised) when they differ."""
        if shown != expected:
            self.found.append(
                f"{self.journey} {self.page.url}: {what}: page {shown} != CLI {expected}"
            )

    def done(self) -> None:
        self.take_problems("end")
        assert not self.found, "\n".join(self.found)


def path_of(page: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def codes_in(page: Page, rows: str) -> list[str]:
    return page.locator(rows).all_inner_texts()


def system_state(live: LivePortal, code: str) -> str:
    with Session(live.engine) as session:
        row = session.exec(
            select(SystemMigration.state).where(col(SystemMigration.system_code) == code)
        ).first()
    assert row is not None
    return row


def department_systems(live: LivePortal, department: str) -> dict[str, bool]:
    """code → classified, of a department's registered systems."""
    with Session(live.engine) as session:
        rows = session.exec(
            select(System.code, System.classified).where(col(System.department_code) == department)
        ).all()
    return dict(rows)


# ------------------------------------------------------------------- 1. department scope


@BOTH
def test_department_it_sees_only_its_own_department(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "scope")
    live.login_as(page, "zhangmin")
    # Department staff land in their workspace: with one department, straight on its page.
    assert path_of(page) == "/departments/JS-EDU", page.url
    visit.look("department")
    listed = set(codes_in(page, "#systems-table tbody th[scope=row]"))
    own = department_systems(live, "JS-EDU")
    assert listed <= set(own), f"other departments' systems listed: {listed - set(own)}"
    assert {c for c, classified in own.items() if not classified} <= listed
    body = page.locator("main").inner_text()
    for foreign in ("JS-HEA", "省卫健委", "NJ-D1", "南京市大数据局", "A12", "A13", "N01"):
        assert foreign not in body, foreign

    page.goto(live.url("/workspace"))
    visit.look("workspace")
    assert "JS-HEA" not in page.locator("main").inner_text()

    # The code typed may be echoed back (it is in the address bar); nothing else about it.
    forbidden = {
        "/systems/A12": ("系统A12", "省卫健委", "JS-HEA"),
        "/departments/JS-HEA": ("省卫健委",),
    }
    for path, secrets in forbidden.items():
        response = page.goto(live.url(path))
        assert response is not None and response.status == 403, (path, response and response.status)
        visit.look(path.strip("/").replace("/", "-") + "-403", expected=["403"])
        shown = page.content()
        assert not [s for s in secrets if s in shown], (path, [s for s in secrets if s in shown])
    visit.done()


# ------------------------------------------------------------------- 2. advancing a system

SYSTEM = "A14"  # JS-EDU, MLPS 2, wave 4 of p1, no resource anywhere yet (declared on room)
STEPS = ("provisioning", "migrating", "testing", "cutover", "trial_run")


def submit_advance(page: Page, code: str, to: str, expected_state: str) -> Any:
    """POST the advance form with a state the page does not offer, as a stale or hand-made
    form would: the server must refuse it and say why."""
    token = page.locator(f"input[name={CSRF_FIELD}]").first.get_attribute("value")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """([code, fields]) => {
                 const form = document.createElement('form');
                 form.method = 'post';
                 form.action = `/systems/${code}/advance`;
                 for (const [name, value] of Object.entries(fields)) {
                   const input = document.createElement('input');
                   input.type = 'hidden'; input.name = name; input.value = value;
                   form.appendChild(input);
                 }
                 document.body.appendChild(form);
                 form.submit();
               }""",
            [code, {CSRF_FIELD: token, "to": to, "expected_state": expected_state}],
        )
    return navigation.value


@SQLITE
def test_a_system_is_accepted_only_once_a_real_scan_sees_it_on_the_unified_cloud(
    live: LivePortal, cloud_node: CloudNode, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "advance")
    live.login_as(page, "zhangmin")
    page.goto(live.url(f"/systems/{SYSTEM}"))
    visit.look("planned")
    state = page.locator("#system-state")
    for step in STEPS:
        button = page.locator("#advance-button")
        expect(button).to_have_attribute("data-to", step, timeout=WAIT_MS)
        button.click()
        expect(state).to_have_text(state_label(step, "zh"), timeout=WAIT_MS)
        expect(page.locator("#advance-verdict")).to_be_visible()
    assert system_state(live, SYSTEM) == "trial_run"
    visit.look("trial-run")

    # Before the move: no button to accept, and the page says a scan must show it on the cloud.
    expect(page.locator("#advance-button")).to_have_count(0)
    expect(page.locator("#system-status")).to_have_text(status_label("no_evidence", "zh"))
    assert "scan" in page.locator("#next-step").inner_text()
    refused = submit_advance(page, SYSTEM, "accepted", "trial_run")
    assert refused.status == 409, refused.status
    expect(page.locator("#advance-refusal")).to_be_visible()
    assert status_label("no_evidence", "zh") in page.locator("#advance-refusal").inner_text()
    visit.look("refused", expected=["409"])
    assert system_state(live, SYSTEM) == "trial_run"

    # The move: its VM now runs on a unified-cloud node, and a real scan records it there.
    cloud_node.move_onto(live, SYSTEM)
    page.goto(live.url(f"/systems/{SYSTEM}"))
    expect(page.locator("#system-status")).to_have_text(status_label("on_cloud", "zh"))
    assert cloud_node.node_id in page.locator("#system-facts").inner_text()
    visit.look("on-cloud")
    button = page.locator("#advance-button")
    expect(button).to_have_attribute("data-to", "accepted")
    button.click()
    expect(state).to_have_text(state_label("accepted", "zh"), timeout=WAIT_MS)
    visit.look("accepted")
    assert system_state(live, SYSTEM) == "accepted"
    page.reload()
    expect(state).to_have_text(state_label("accepted", "zh"))
    history = page.locator("main").inner_text()
    assert "zhangmin" in history or "张敏" in history
    visit.done()


# ------------------------------------------------------------------- 3. a bad deps file

DEPS_FILE = "from,to,type,strength\nA01,A02,calls,hard\nA01,A07,telepathy,soft\n"


@SQLITE
def test_a_bad_row_of_a_dependency_file_is_shown_in_place(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "deps")
    live.login_as(page, "zhangmin")
    page.locator("#dependencies-link").click()
    page.wait_for_url(re.compile(r"/departments/JS-EDU/dependencies$"))
    visit.look("before")
    with Session(live.engine) as session:
        before = len(session.exec(select(Dependency)).all())
    upload: FilePayload = {"name": "依赖.csv", "mimeType": "text/csv", "buffer": DEPS_FILE.encode()}
    page.locator("#deps-file").set_input_files(files=upload)
    page.locator("#deps-upload-button").click()
    problems = page.locator("#deps-problems tbody tr")
    expect(problems).to_have_count(1, timeout=WAIT_MS)
    cells = problems.first.locator("th, td").all_inner_texts()
    assert cells[0] == "3", cells  # the file's third line: the header is line 1
    assert cells[1] == "type" and cells[2] == "telepathy", cells
    assert cells[3].strip(), cells
    expect(page.locator("#deps-error")).to_be_visible()
    # The file's problems answer 422 (htmx swaps them in): that status is the point here.
    visit.look("bad-row", expected=["422"])
    with Session(live.engine) as session:
        assert len(session.exec(select(Dependency)).all()) == before, "a bad file wrote rows"
    visit.done()


# ------------------------------------------------------------------- 4. a manager drills down


def kpi_of(page: Page) -> dict[str, str | None]:
    kpi = page.locator("#kpi-rate")
    return {
        name: kpi.get_attribute(f"data-{name}")
        for name in ("rate", "adopted", "total", "level", "key", "policy")
    }


def rows_of(page: Page, table: str) -> dict[str, tuple[int, int, float | None]]:
    found: dict[str, tuple[int, int, float | None]] = {}
    for row in page.locator(f"{table} tr[data-key]").all():
        rate = row.get_attribute("data-rate") or None
        found[str(row.get_attribute("data-key"))] = (
            int(str(row.get_attribute("data-adopted"))),
            int(str(row.get_attribute("data-total"))),
            float(rate) if rate is not None else None,
        )
    return found


def figures(group: dict[str, Any]) -> tuple[int, int, float | None]:
    return (group["numerator"], group["denominator"], group["rate"])


def compare_kpi(visit: Visit, expected: dict[str, Any]) -> None:
    kpi = kpi_of(visit.page)
    rate = float(kpi["rate"]) if kpi["rate"] else None
    shown = (int(str(kpi["adopted"])), int(str(kpi["total"])), rate)
    visit.expect_equal(
        f"#kpi-rate (adopted, total, rate) of {kpi['key']}", shown, figures(expected)
    )


@SQLITE
def test_a_manager_drills_down_and_every_figure_is_the_clis(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "drill")
    live.login_as(page, "liuyang")
    assert path_of(page) == "/dashboard", page.url
    visit.look("province")
    province, cities, departments = live.adoptions(None, "city", "department")
    by_city = {g["key"]: g for g in cities["groups"]}
    by_department = {g["key"]: g for g in departments["groups"]}
    assert kpi_of(page)["level"] == "province"
    assert kpi_of(page)["policy"] == province["policy"]
    compare_kpi(visit, province)
    expected = {k: figures(g) for k, g in by_city.items()}
    visit.expect_equal("#city-rows", rows_of(page, "#city-rows"), expected)
    for key, shown in rows_of(page, "#department-rows").items():
        visit.expect_equal(f"#department-rows {key}", shown, figures(by_department[key]))

    page.locator("#city-rows a", has_text="省级").click()
    page.wait_for_url(re.compile(r"city="))
    visit.look("city")
    assert (kpi_of(page)["level"], kpi_of(page)["key"]) == ("city", "省级")
    compare_kpi(visit, by_city["省级"])
    shown_departments = rows_of(page, "#department-rows")
    assert set(shown_departments) == {"JS-EDU", "JS-HEA"}, shown_departments
    for key, shown in shown_departments.items():
        visit.expect_equal(f"#department-rows {key}", shown, figures(by_department[key]))

    page.locator("#department-rows a").filter(has_text="省教育厅").click()
    page.wait_for_url(re.compile(r"department=JS-EDU"))
    visit.look("department")
    assert (kpi_of(page)["level"], kpi_of(page)["key"]) == ("department", "JS-EDU")
    compare_kpi(visit, by_department["JS-EDU"])
    visit.done()


# ------------------------------------------------------------------- 5. an admin's register change

NEW_NAME = "教育资源公共服务平台"


def register_file(code: str, name: str) -> bytes:
    header = "system_code,name,department_code,department,city,classified,mlps_level\n"
    return (header + f"{code},{name},JS-EDU,省教育厅,省级,否,2\n").encode()


def name_of(live: LivePortal, code: str) -> str:
    with Session(live.engine) as session:
        found = session.exec(select(System.name).where(col(System.code) == code)).first()
    assert found is not None
    return found


def register_audits(live: LivePortal) -> list[AuditEntry]:
    with Session(live.engine) as session:
        return list(
            session.exec(select(AuditEntry).where(col(AuditEntry.action) == "register.import"))
        )


@SQLITE
def test_an_admin_previews_a_register_change_then_applies_it(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "register")
    code = "A10"
    old_name = name_of(live, code)
    audits = len(register_audits(live))
    live.login_as(page, "wangfang")
    page.goto(live.url("/admin/register"))
    visit.look("upload")
    upload: FilePayload = {
        "name": "目录.csv",
        "mimeType": "text/csv",
        "buffer": register_file(code, NEW_NAME),
    }
    page.locator("#register-file").set_input_files(files=upload)
    page.locator("#register-preview").click()
    changed = page.locator("#register-changed tbody tr")
    expect(changed).to_have_count(1, timeout=WAIT_MS)
    cells = changed.first.locator("th, td").all_inner_texts()
    assert cells[0] == code and old_name in cells and NEW_NAME in cells, cells
    visit.look("preview")
    assert name_of(live, code) == old_name, "the preview changed the ledger"
    assert len(register_audits(live)) == audits, "the preview was audited as an import"

    page.locator("#register-apply").click()
    page.wait_for_url(re.compile(r"/admin/register\?done=applied$"))
    expect(page.locator("#register-done")).to_be_visible()
    visit.look("applied")
    assert name_of(live, code) == NEW_NAME
    entries = register_audits(live)
    assert len(entries) == audits + 1, [(e.action, e.target) for e in entries]
    assert entries[-1].action == "register.import", entries[-1].action
    assert entries[-1].principal == "wangfang", entries[-1].principal
    # The page shows the import it has just recorded.
    expect(page.locator("#register-recent tbody tr")).to_have_count(audits + 1)
    page.goto(live.url(f"/systems/{code}"))
    expect(page.locator("h1")).to_contain_text(NEW_NAME)
    visit.look("system-renamed")
    visit.done()


# ------------------------------------------------------------------- 6. logging out


@SQLITE
def test_logout_ends_the_session_even_for_the_back_button(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "logout")
    live.login_as(page, "chenjing")
    page.goto(live.url("/dashboard?city=南京市"))
    visit.look("dashboard")
    page.locator("form[action='/logout'] button").click()
    page.wait_for_url(re.compile(r"/login\?bye=1$"))
    visit.look("bye")
    page.go_back()
    page.wait_for_load_state("load")
    assert path_of(page).startswith("/login"), f"back after logout shows {page.url}"
    assert page.locator("#kpi-rate").count() == 0, "the back button still shows the figures"
    page.goto(live.url("/dashboard?city=南京市"))
    assert path_of(page).startswith("/login?next="), page.url
    visit.look("again")
    visit.done()


# ------------------------------------------------------------------- 7. English, remembered


@SQLITE
def test_english_after_the_switch_is_remembered_across_pages(
    live: LivePortal, page: Page, page_problems: list[str]
) -> None:
    visit = Visit(page, page_problems, live, "english")
    live.login_as(page, "liuyang")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.locator("a.lang").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert path_of(page).startswith("/dashboard"), page.url
    visit.look("dashboard")
    nav = page.locator("header nav")
    for link in ("/workspace", "/platform"):
        nav.locator(f"a[href='{link}']").click()
        page.wait_for_url(re.compile(re.escape(link)))
        expect(page.locator("html")).to_have_attribute("lang", "en")
        chrome = page.locator("header nav").inner_text() + page.locator("h1").inner_text()
        chrome += page.locator("form[action='/logout']").inner_text()
        assert not CJK.search(chrome.replace("刘洋", "")), (link, chrome)
        visit.look(link.strip("/"))
    page.goto(live.url("/dashboard?city=省级"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    heading = page.locator("h1").inner_text()
    assert not CJK.search(heading.replace("省级", "")), heading
    visit.look("city")
    visit.done()


# ------------------------------------------------------------------- 8. every page, looked at

# Every page of the portal an admin of the province can open, with its filters and sorts, in
# both languages: each one screenshotted, scanned by axe and watched for errors and CSP reports.
EVERY_PAGE = [
    "/login",
    "/dashboard",
    "/dashboard?city=南京市",
    "/dashboard?department=JS-EDU",
    "/dashboard/departments?sort=-rate",
    "/workspace",
    "/departments/JS-EDU",
    "/departments/JS-EDU?status=off_cloud&sort=-name",
    "/departments/JS-EDU/dependencies",
    "/systems/A01",
    "/systems/A01/step",
    "/platform",
    "/platform/nodes",
    "/platform/scans",
    "/platform/held",
    "/platform/violations",
    "/platform/specs",
    "/admin",
    "/admin/register",
    "/admin/access",
    "/admin/tokens",
]


@SQLITE
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_is_accessible_and_clean_in_both_languages(
    live: LivePortal, page: Page, page_problems: list[str], lang: str
) -> None:
    visit = Visit(page, page_problems, live, f"every-{lang}")
    live.login_as(page, "wangfang")
    if lang == "en":
        page.goto(live.url("/lang/en?next=/dashboard"))
    for path in EVERY_PAGE:
        answer = page.goto(live.url(path))
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh" else "en")
        assert page.locator("h1").count() == 1, path
        name = re.sub(r"[^A-Za-z0-9]+", "-", path.strip("/")) or "home"
        visit.look(name)
    # The page for a mistake, with the reader's menu kept.
    answer = page.goto(live.url("/no/such/page"))
    assert answer is not None and answer.status == 404
    assert page.locator("header nav a[href='/dashboard']").count() == 1
    visit.look("not-found", expected=["404"])
    visit.done()
