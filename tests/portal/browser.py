"""The portal's real-browser kit: Debian's Chromium under pytest-playwright, axe-core, screenshots.

Use it from a test module or a conftest.py by importing the fixtures, so they override
pytest-playwright's own (a fixture defined or imported in a module beats a plugin's):

    from tests.portal.browser import *  # noqa: F403  (the fixtures in __all__)
    from tests.portal.browser import check_accessibility, screenshot, watch_problems

then take pytest-playwright's `page` (a fresh context per test: zh-CN, 1366x900, Asia/Shanghai)
and `page_problems` (console errors, page errors, failed loads and CSP violations seen so far).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response

from tests.conftest import missing_peer

__all__ = [
    "browser_context_args",
    "browser_type_launch_args",
    "check_accessibility",
    "page_problems",
    "screenshot",
    "watch_problems",
]

REPO = Path(__file__).resolve().parents[2]
# Installed by tools/portal/install.sh (npm ci from the committed lockfile).
AXE_SCRIPT = REPO / "tools" / "portal" / "node_modules" / "axe-core" / "axe.min.js"
# A government desktop: a 1366-wide screen, Chinese locale, Beijing time.
VIEWPORT = {"width": 1366, "height": 900}
LOCALE = "zh-CN"
TIMEZONE = "Asia/Shanghai"
# axe's impacts that fail a page; moderate and minor ones are returned for the caller to judge.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})

# Reports each CSP violation to Python through a binding: both the init script and the
# binding go through the DevTools protocol, so the page's own CSP cannot block them.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.__yiyunCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || 'inline'}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`
    + (event.sample ? ` (${event.sample})` : ''));
});
"""


def chromium_path() -> str:
    """Debian's Chromium (`apt-get install chromium`), or YIYUN_CHROMIUM; never a downloaded one."""
    path = os.environ.get("YIYUN_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        missing_peer("Chromium not found: apt-get install chromium, or set YIYUN_CHROMIUM")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options (--headed, --slowmo) with Debian's Chromium.

    Session-scoped, so under xdist each worker launches one Chromium; a missing Chromium
    skips (or fails, with YIYUN_REQUIRE_PEERS=1) every browser test once."""
    return {**browser_type_launch_args, "executable_path": chromium_path()}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "locale": LOCALE,
        "timezone_id": TIMEZONE,
        "viewport": VIEWPORT,
    }


def watch_problems(page: Page) -> list[str]:
    """A list that fills with what went wrong on `page` from now on: console errors, uncaught
    errors, HTTP errors and CSP violations. Call it before page.goto; assert it is empty."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"http {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("response", on_response)
    page.expose_function("__yiyunCspViolation", lambda text: problems.append(f"csp: {text}"))
    page.add_init_script(_CSP_LISTENER)
    return problems


@pytest.fixture
def page_problems(page: Page) -> list[str]:
    """watch_problems on pytest-playwright's `page`, watching from before the first goto."""
    return watch_problems(page)


def _describe(violation: dict[str, Any]) -> str:
    targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"])
    return f"- {violation['id']} ({violation['impact']}): {violation['help']} -> {targets}"


def check_accessibility(page: Page, name: str) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; fail naming each serious or critical violation.

    axe goes in through page.evaluate, which the page's CSP does not apply to: under
    script-src 'self', page.add_script_tag (an inline <script>) is blocked, and bypass_csp
    would switch off the very policy the portal's tests must run under. Returns every
    violation (all impacts) for a caller that wants to be stricter."""
    if not AXE_SCRIPT.is_file():
        missing_peer(f"axe-core not installed ({AXE_SCRIPT}): run bash tools/portal/install.sh")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    if blocking:
        listed = "\n".join(_describe(violation) for violation in blocking)
        pytest.fail(
            f"{name}: {len(blocking)} serious/critical accessibility violation(s) at "
            f"{page.url}:\n{listed}",
            pytrace=False,
        )
    return violations


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG named `name` in YIYUN_SCREENSHOTS, else <repo>/.screenshots/."""
    folder = Path(os.environ.get("YIYUN_SCREENSHOTS") or REPO / ".screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^\w.-]+", "-", name).strip("-") + ".png")
    # caret="initial": Playwright otherwise leaves style="" on inputs, which an htmx swap
    # copies back and the CSP then refuses.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path
