"""The HTML report in headless Chromium: no console errors, charts load, Chinese is not tofu,
drawn with the face embedded in the page whether or not the desktop has a Chinese font."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from typer.testing import CliRunner

from cli import app
from inventory.reporting.charts import cjk_font_path
from inventory.reporting.fonts import SHIPPED_FAMILY
from inventory.settings import Settings
from tests.conftest import require_binary
from tests.reporting.devtools import Browser

runner = CliRunner()
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reporting"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
LABELS = ("非涉密系统上云率", "各设区市上云率", "业务专网")
SIZE = 32  # px: an ideograph of a CJK font advances exactly one em

# Test-only instrument, inserted before the page's own Content-Security-Policy so it may run;
# the report itself has no script. It writes what it saw into the DOM that --dump-dom prints.
PROBE = """<script>
window.__seen = [];
addEventListener("error", e => __seen.push("error: " + (e.message || e.target.outerHTML)), true);
addEventListener("securitypolicyviolation", e => __seen.push("csp: " + e.blockedURI));
addEventListener("load", () => {
  const family = getComputedStyle(document.querySelector("h1")).fontFamily;
  const draw = text => {
    const canvas = document.createElement("canvas");
    canvas.width = 40 * text.length; canvas.height = 60;
    const pen = canvas.getContext("2d");
    pen.font = "%(size)spx " + family;
    pen.fillText(text, 2, 44);
    return {width: pen.measureText(text).width, pixels: canvas.toDataURL()};
  };
  const glyphs = %(labels)s.map(label => {
    const drawn = draw(label), reversed = draw([...label].reverse().join(""));
    // Tofu draws every character as the same box, so a reversed label would look the same.
    return {label, width: drawn.width, same_as_reversed: drawn.pixels === reversed.pixels,
            found_in_page: document.body.innerText.includes(label)};
  });
  const images = [...document.images].map(i => ({
    alt: i.alt, loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth,
    data: i.src.startsWith("data:")}));
  const fetched = performance.getEntriesByType("resource").map(r => r.name);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({seen: __seen, glyphs, images, fetched, family});
  document.body.appendChild(out);
});
</script>""" % {"size": SIZE, "labels": json.dumps(list(LABELS))}  # noqa: UP031


def fontconfig(tmp_path: Path) -> Path:
    """A fontconfig file adding the Noto CJK font yiyun ships to the system's fonts.

    This machine has no Chinese system font, unlike the desktops that open the report;
    the check is that the page's font stack reaches a real CJK font and draws real glyphs.
    """
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{cjk_font_path().parent}</dir>\n"
        f"  <cachedir>{tmp_path / 'fontcache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8",
    )
    return conf


def chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "FONTCONFIG_FILE": str(fontconfig(tmp_path)),
        },
        check=False,
    )


def console_messages(stderr: str) -> list[str]:
    """Console output of the page (Chromium logs it as CONSOLE lines with --enable-logging)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def chromium_binary() -> str:
    return require_binary("chromium")


@pytest.mark.peers
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_renders_in_headless_chromium(
    report_estate: Settings, tmp_path: Path, chromium_binary: str, lang: str
) -> None:
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "html", "-o", str(report), "--lang", lang])
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"report-{lang}.png"
    screenshot.unlink(missing_ok=True)

    dumped = chromium(
        chromium_binary,
        tmp_path,
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        probed.as_uri(),
    )
    shot = chromium(
        chromium_binary,
        tmp_path,
        f"--screenshot={screenshot}",
        "--window-size=1280,6000",
        report.as_uri(),
    )

    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert console_messages(dumped.stderr) == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, dumped.stdout[-2000:]
    probe: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    assert probe["seen"] == []
    assert probe["fetched"] == []  # nothing requested from anywhere
    assert len(probe["images"]) == 5
    assert all(i["loaded"] and i["data"] and i["width"] > 300 for i in probe["images"])
    assert "Noto Sans CJK SC" in probe["family"]
    for glyph in probe["glyphs"]:
        # Real glyphs: each ideograph one em wide, and the characters differ from each other.
        assert glyph["width"] == pytest.approx(SIZE * len(glyph["label"]), abs=1), glyph
        assert not glyph["same_as_reversed"], glyph
    if lang == "zh":
        assert all(g["found_in_page"] for g in probe["glyphs"])
    # The screenshot is kept under artifacts/ for a person to look at.
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 50_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Elements whose own text the font check reads (CSS.getPlatformFontsForNode).
TEXT_ELEMENTS = "h1, h2, h3, p, li, th, td, dt, dd, div, span, strong, footer"
DESKTOPS = {"no-system-cjk": False, "system-noto-cjk": True}


def fonts_used(drawn: list[dict[str, Any]]) -> set[tuple[str, bool]]:
    return {(font["familyName"], font["isCustomFont"]) for d in drawn for font in d["fonts"]}


def system_draws(browser: Browser, family: str, sample: str) -> set[tuple[str, bool]]:
    """Which fonts the desktop itself gives `family`: a probe outside the page's @font-face."""
    browser.evaluate(
        "(() => { const probe = document.createElement('span'); probe.id = 'probe';"
        f" probe.style.fontFamily = {json.dumps(family)};"
        f" probe.textContent = {json.dumps(sample)}; document.body.append(probe);"
        " return probe.offsetWidth; })()"  # laid out now, so its fonts are known
    )
    drawn = browser.fonts_drawing("#probe")
    browser.evaluate("document.getElementById('probe').remove()")
    assert drawn, "the probe was drawn"
    return fonts_used(drawn)


@pytest.mark.peers
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("desktop", sorted(DESKTOPS))
def test_pages_draw_every_character_with_the_embedded_face(
    report_estate: Settings,
    tmp_path: Path,
    chromium_binary: str,
    system_noto_cjk: Path,
    desktop: str,
) -> None:
    """Without any Chinese system font, and with a desktop's own Noto Sans CJK SC, the report
    and the scorecard draw all their text with the face embedded in the page."""
    pages = {
        "report": ["report", "html"],
        "scorecard": ["report", "scorecard", "--department", "JS-EDU", "--format", "html"],
    }
    # matplotlib's bundled DejaVu stands for a desktop's Latin fonts on any machine.
    font_dirs = [Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    if DESKTOPS[desktop]:
        font_dirs.append(system_noto_cjk)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with Browser(chromium_binary, tmp_path / "chromium", font_dirs) as browser:
        for kind, command in pages.items():
            page = tmp_path / f"{kind}.html"
            result = runner.invoke(app, [*command, "-o", str(page), "--lang", "zh"])
            assert result.exit_code == 0, result.output
            browser.open(page.as_uri())

            # The desktop is what the test says: with or without its own Noto Sans CJK SC.
            system = system_draws(browser, "Noto Sans CJK SC", "非涉密系统上云率")
            assert (("Noto Sans CJK SC", False) in system) is DESKTOPS[desktop], system
            assert browser.evaluate("[...document.fonts].map(f => [f.family, f.status])") == [
                [SHIPPED_FAMILY, "loaded"]
            ]
            drawn = browser.fonts_drawing(TEXT_ELEMENTS)
            assert any("非涉密系统上云率" in d["html"] for d in drawn)
            assert any("江苏省教育厅" in d["html"] for d in drawn)
            # Every glyph of every element, Chinese or not, from the embedded face alone.
            assert fonts_used(drawn) == {("Noto Sans CJK SC", True)}
            screenshot = ARTIFACTS / f"{kind}-zh-{desktop}.png"
            browser.screenshot(screenshot)
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
