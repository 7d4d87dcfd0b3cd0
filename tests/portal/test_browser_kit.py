"""The browser kit against a real page behind the portal's CSP: axe passes and fails, the
vendored htmx and ECharts run with no console error or CSP violation, Chinese is drawn."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from exporters.reports.fonts import SHIPPED_FAMILY, cjk_font_path, sc_face_index
from tests.portal.browser import (  # noqa: F401  (fixtures, found by name)
    REPO,
    browser_context_args,
    browser_type_launch_args,
    check_accessibility,
    page_problems,
    screenshot,
    watch_problems,
)

VENDOR = REPO / "service" / "portal" / "static" / "vendor"
# The portal's policy: nothing inline, nothing from elsewhere.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HTMX_CONFIG = '{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'
CITIES = ["南京市", "苏州市", "无锡市"]

CLEAN = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>一云 · 迁移台账</title>
<link rel="stylesheet" href="/kit.css"></head>
<body><main><h1>迁移台账</h1><p>南京市大数据局</p>
<img src="/logo.svg" alt="一云标志" width="32" height="32">
<button type="button">导出</button></main></body></html>
"""
# The same page with an image without alt and a button without a name: both critical.
BAD = CLEAN.replace(' alt="一云标志"', "").replace(">导出</button>", "></button>")
CHART = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>一云 · 各市系统数</title>
<meta name="htmx-config" content='{HTMX_CONFIG}'>
<link rel="stylesheet" href="/kit.css">
<script src="/vendor/htmx.min.js" defer></script>
<script src="/vendor/echarts.min.js" defer></script>
<script src="/chart.js" defer></script></head>
<body data-tooltip="richText"><main><h1>各市系统数</h1>
<div id="chart" role="img" aria-label="各市系统数柱状图"></div>
<button type="button" hx-get="/fragment.html" hx-target="#fragment">加载明细</button>
<div id="fragment"></div></main></body></html>
"""
FRAGMENT = "<p>南京市大数据局：12 个系统</p>"
CHART_SCRIPT = f"""
// Canvas text is drawn once, with whatever face is ready then: load the shipped one first.
const face = '"{SHIPPED_FAMILY}"';
document.fonts.load(`12px ${{face}}`, '{"".join(CITIES)}系统数').then(() => {{
  const chart = echarts.init(document.getElementById('chart'));
  chart.on('finished', () => {{ document.body.dataset.chart = 'drawn'; }});
  chart.setOption({{
    animation: false,
    textStyle: {{fontFamily: face}},
    tooltip: {{
      trigger: 'axis',
      renderMode: document.body.dataset.tooltip,
      textStyle: {{fontFamily: face}},
    }},
    xAxis: {{type: 'category', data: {CITIES!r}}},
    yAxis: {{type: 'value', name: '系统数'}},
    series: [{{type: 'bar', name: '系统数', data: [12, 7, 9]}}],
  }});
}});
"""
STYLESHEET = f"""
@font-face {{ font-family: "{SHIPPED_FAMILY}"; src: url(/font.woff2) format("woff2");
  font-display: block; }}
body {{ font-family: "{SHIPPED_FAMILY}", sans-serif; margin: 1rem; }}
/* Chromium gives form controls the system font, not the body's: no CJK glyphs here. */
button {{ font: inherit; }}
#chart {{ width: 640px; height: 360px; }}
"""
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<circle cx="16" cy="16" r="14" fill="#1f5fa8"/></svg>'
)


def shipped_face(characters: str) -> bytes:
    """The shipped CJK face cut to `characters`, as WOFF2: the glyphs this machine's Chromium
    lacks (no Debian CJK font), served from 'self' as the portal will serve its own."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    face = TTFont(str(cjk_font_path()), fontNumber=sc_face_index(), lazy=True)
    options = subset.Options()
    options.layout_features = ["kern"]
    cutter = subset.Subsetter(options)
    cutter.populate(text=characters)
    cutter.subset(face)
    face.flavor = "woff2"
    buffer = io.BytesIO()
    face.save(buffer)
    return buffer.getvalue()


def site_files() -> dict[str, tuple[str, bytes]]:
    html = "text/html; charset=utf-8"
    pages = {
        "/clean.html": (html, CLEAN),
        "/bad.html": (html, BAD),
        "/chart.html": (html, CHART),
        "/chart-html-tooltip.html": (html, CHART.replace('"richText"', '"html"')),
        "/fragment.html": (html, FRAGMENT),
        "/chart.js": ("text/javascript; charset=utf-8", CHART_SCRIPT),
        "/kit.css": ("text/css; charset=utf-8", STYLESHEET),
        "/logo.svg": ("image/svg+xml", LOGO),
    }
    files = {path: (kind, text.encode()) for path, (kind, text) in pages.items()}
    characters = "".join(text for _, text in pages.values()) + "".join(map(chr, range(32, 127)))
    files["/font.woff2"] = ("font/woff2", shipped_face(characters))
    for asset in VENDOR.glob("*.js"):
        files[f"/vendor/{asset.name}"] = ("text/javascript; charset=utf-8", asset.read_bytes())
    return files


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The pages above on a loopback port, every response carrying the portal's CSP."""
    files = site_files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?")[0])
            # Chromium asks for /favicon.ico itself; a 404 would be a console error.
            status = 200 if found else 204 if self.path == "/favicon.ico" else 404
            self.send_response(status)
            self.send_header("Content-Security-Policy", POLICY)
            if found:
                self.send_header("Content-Type", found[0])
                self.send_header("Content-Length", str(len(found[1])))
            self.end_headers()
            if found:
                self.wfile.write(found[1])

        def log_message(self, format: str, *args: object) -> None:
            pass  # pytest shows failures; the access log is noise

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def draw_chart(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-chart=drawn]")
    # Over the middle bar: the axis tooltip opens.
    page.locator("#chart").hover(position={"x": 320, "y": 200})


def test_clean_page_passes(
    page: Page,
    page_problems: list[str],  # noqa: F811  (the kit's fixture, imported above)
    site: str,
) -> None:
    page.goto(f"{site}/clean.html")
    violations = check_accessibility(page, "clean")
    assert {v["impact"] for v in violations} <= {"minor", "moderate"}
    assert page_problems == []


def test_inaccessible_page_fails_naming_the_rules(page: Page, site: str) -> None:
    page.goto(f"{site}/bad.html")
    with pytest.raises(pytest.fail.Exception) as failed:
        check_accessibility(page, "bad")
    message = str(failed.value)
    assert message.startswith("bad: 2 serious/critical")
    assert "- image-alt (critical)" in message
    assert "- button-name (critical)" in message
    assert "-> button" in message  # the target selector, so the element can be found


def test_vendored_htmx_and_echarts_run_under_the_csp(page: Page, site: str) -> None:
    problems = watch_problems(page)
    draw_chart(page, f"{site}/chart.html")
    expect(page.locator("#chart canvas")).to_have_count(1)
    labels = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('chart')).getOption().xAxis[0].data"
    )
    assert labels == CITIES
    assert page.evaluate(f"document.fonts.check('12px \"{SHIPPED_FAMILY}\"', '南京市')")
    painted = page.evaluate(
        """() => {
          const canvas = document.querySelector('#chart canvas');
          const pixels = canvas.getContext('2d')
            .getImageData(0, 0, canvas.width, canvas.height).data;
          let painted = 0;
          for (let alpha = 3; alpha < pixels.length; alpha += 4) painted += pixels[alpha] > 0;
          return painted;
        }"""
    )
    assert painted > 10_000  # bars, axes and labels, not an empty canvas

    page.get_by_role("button", name="加载明细").click()
    expect(page.locator("#fragment")).to_have_text(
        FRAGMENT.removeprefix("<p>").removesuffix("</p>")
    )
    assert page.locator("style").count() == 0  # includeIndicatorStyles: false was read

    check_accessibility(page, "chart")
    assert screenshot(page, "browser-kit-chart").stat().st_size > 0
    assert problems == []


def test_problems_catch_a_csp_violation(page: Page, site: str) -> None:
    """ECharts' default HTML tooltip writes style attributes, which style-src 'self' blocks:
    why the portal draws tooltips with renderMode 'richText' (tools/portal/README.md)."""
    problems = watch_problems(page)
    with page.expect_console_message(lambda message: "style-src" in message.text):
        draw_chart(page, f"{site}/chart-html-tooltip.html")
    page.evaluate("1")  # one round trip, so the binding's reports have arrived
    assert any(problem.startswith("csp: style-src") for problem in problems), problems
    assert any(problem.startswith("console: ") for problem in problems)


def test_screenshot_goes_where_yiyun_screenshots_says(
    page: Page, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIYUN_SCREENSHOTS", str(tmp_path))
    page.goto(f"{site}/clean.html")
    path = screenshot(page, "迁移台账 clean/1")
    assert path.parent == tmp_path
    assert path.read_bytes().startswith(b"\x89PNG")
