"""The dashboard in a real browser: charts drawn under the CSP, a bar drills down, axe passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import uvicorn
from playwright.sync_api import Page

from service.portal.web import SESSION_COOKIE
from tests.portal.browser import *  # noqa: F403  (the kit's fixtures)
from tests.portal.browser import check_accessibility
from tests.portal.conftest import Portal


@pytest.fixture
def site(portal: Portal) -> Iterator[str]:
    """The portal's app on a loopback port, as a browser reaches it."""
    config = uvicorn.Config(
        portal.served.client.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def logged_in(page: Page, portal: Portal, site: str, role: str, scope: str) -> None:
    user = portal.login(role, scope)
    sid = user.client.cookies.get(SESSION_COOKIE)
    assert sid
    page.context.add_cookies(
        [
            {"name": SESSION_COOKIE, "value": sid, "url": site},
            {"name": "yiyun_lang", "value": "zh", "url": site},
        ]
    )


def test_the_dashboard_draws_drills_and_passes_axe(
    page: Page,
    page_problems: list[str],
    portal: Portal,
    site: str,
) -> None:
    logged_in(page, portal, site, "viewer", "province")
    page.goto(f"{site}/dashboard")
    # ECharts drew each chart into a canvas (no inline script or style was needed).
    page.wait_for_selector("#chart-cities canvas")
    assert page.locator(".chart canvas").count() >= 3
    check_accessibility(page, "dashboard province")
    # The city table's link drills down (the bars carry the same links).
    page.locator("#city-rows a", has_text="南京市").click()
    page.wait_for_url(f"**/dashboard?city={quote('南京市')}")
    assert page.locator("#kpi-rate").get_attribute("data-key") == "南京市"
    check_accessibility(page, "dashboard city")
    # The policy form reloads the figures, and the drill keeps the choice.
    page.select_option("#dash-policy", "evidence-v1")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**policy=evidence-v1**")
    assert page.locator("#kpi-rate").get_attribute("data-policy") == "evidence-v1"
    page.goto(f"{site}/dashboard/departments?sort=-rate")
    check_accessibility(page, "dashboard departments")
    # The table's filter swaps the table through htmx and keeps the address in step.
    page.select_option("#table-city", "南京市")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url(f"**city={quote('南京市')}**")
    rows = page.locator("#department-table tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-key") == "NJ-D1"
    page.goto(f"{site}/dashboard?department=NJ-D1")
    check_accessibility(page, "dashboard department")
    assert page_problems == []
