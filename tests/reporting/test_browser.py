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
from exporters.reports.charts import cjk_font_path
from exporters.reports.fonts import SHIPPED_FAMILY
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


# --- a desktop with DejaVu only: pixels, against the same page drawn by a system CJK font ---

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
FONT_FACE_RULE = re.compile(r"@font-face \{[^}]*\}")
# Share of a region's pixels that may differ between two drawings of the same glyphs: their
# antialiased edges shift by a shade (0.3 % seen), ink against paper does not.
SAME_GLYPHS = 0.02
# Tofu boxes against real ideographs: most of the inked area differs (20 % of the region seen).
TOFU = 0.10


def text_box(browser: Browser, selector: str) -> dict[str, float]:
    """Where the text of the first element matching `selector` is drawn (its line box)."""
    box: dict[str, float] = browser.evaluate(
        "(() => { const text = document.createRange();"
        f" text.selectNodeContents(document.querySelector({json.dumps(selector)}));"
        " const r = text.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )
    return box


def region_png(browser: Browser, box: dict[str, float]) -> bytes:
    """A screenshot of `box` on the open page."""
    import base64

    shot = browser.send("Page.captureScreenshot", page=True, format="png", clip={**box, "scale": 1})
    return base64.b64decode(shot["data"])


def differing_share(first: bytes, second: bytes) -> float:
    """Share of pixels that differ by more than half the grey range: ink against paper, not
    a shade of antialiasing."""
    import io

    from PIL import Image, ImageChops

    one = Image.open(io.BytesIO(first)).convert("L")
    two = Image.open(io.BytesIO(second)).convert("L")
    assert one.size == two.size, (one.size, two.size)
    counts = ImageChops.difference(one, two).histogram()
    return sum(counts[129:]) / (one.width * one.height)


def inked_share(png: bytes) -> float:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return sum(image.histogram()[:128]) / (image.width * image.height)


@pytest.mark.peers
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dejavu_only_desktop_draws_the_chinese_the_cjk_font_draws(
    report_estate: Settings, tmp_path: Path, chromium_binary: str
) -> None:
    """The scorecard's heading on a desktop whose fontconfig offers only DejaVu looks like the
    same heading on a desktop with the CJK font installed; without the page's @font-face the
    DejaVu desktop shows tofu instead (the control that proves the comparison can fail)."""
    if not DEJAVU.is_dir():
        pytest.skip(f"{DEJAVU} is missing")  # the Debian/Ubuntu fonts-dejavu-core location
    page = tmp_path / "scorecard.html"
    command = ["report", "scorecard", "--department", "JS-EDU", "--format", "html"]
    result = runner.invoke(app, [*command, "-o", str(page), "--lang", "zh"])
    assert result.exit_code == 0, result.output
    bare = tmp_path / "scorecard-without-face.html"
    embedded = page.read_text(encoding="utf-8")
    assert len(FONT_FACE_RULE.findall(embedded)) == 1
    bare.write_text(FONT_FACE_RULE.sub("", embedded), encoding="utf-8")
    with Browser(
        chromium_binary, tmp_path / "with-cjk", [DEJAVU, cjk_font_path().parent]
    ) as browser:
        browser.open(bare.as_uri())
        # The heading's text as the installed CJK font lays it out: the region compared.
        box = text_box(browser, "header h1")
        reference = region_png(browser, box)
    with Browser(chromium_binary, tmp_path / "dejavu", [DEJAVU]) as browser:
        browser.open(page.as_uri())
        assert "部门上云工作单" in browser.evaluate("document.querySelector('h1').innerText")
        shipped = region_png(browser, box)
        browser.open(bare.as_uri())
        # The control: DejaVu alone has no ideograph, so nothing draws them but the page.
        assert browser.evaluate("document.fonts.size") == 0
        tofu = region_png(browser, box)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, shot in (("embedded", shipped), ("system-font", reference), ("tofu", tofu)):
        (ARTIFACTS / f"scorecard-heading-{name}.png").write_bytes(shot)
    assert inked_share(reference) > 0.02  # the region holds drawn text, not blank page
    assert differing_share(shipped, reference) < SAME_GLYPHS
    assert differing_share(tofu, reference) > TOFU


# --- the scorecard's systems table: short columns keep one line ---------------------------

# Everything the table's short columns rely on; removing it is the control.
SHORT_COLUMN_RULES = re.compile(r"^\s*table\.systems[^\n]*\n", re.M)


def cell_lines(browser: Browser, selector: str) -> list[float]:
    """For each cell matching `selector`: how many lines its text takes (its text's height
    over the cell's line height)."""
    lines: list[float] = browser.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})].map(cell => {{"
        " const text = document.createRange(); text.selectNodeContents(cell);"
        " return text.getBoundingClientRect().height"
        " / parseFloat(getComputedStyle(cell).lineHeight); })"
    )
    return lines


@pytest.mark.peers
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("width", [600, 1280])
def test_scorecard_status_cells_take_one_line(
    report_estate: Settings, tmp_path: Path, chromium_binary: str, width: int
) -> None:
    page = tmp_path / "scorecard.html"
    command = ["report", "scorecard", "--department", "JS-EDU", "--format", "html"]
    result = runner.invoke(app, [*command, "-o", str(page), "--lang", "zh"])
    assert result.exit_code == 0, result.output
    squeezed = tmp_path / "scorecard-old-css.html"
    styled = page.read_text(encoding="utf-8")
    assert SHORT_COLUMN_RULES.search(styled)
    squeezed.write_text(SHORT_COLUMN_RULES.sub("", styled), encoding="utf-8")

    with Browser(chromium_binary, tmp_path / "chromium", [DEJAVU]) as browser:
        browser.open(page.as_uri(), width=width)
        status = cell_lines(browser, "table.systems td.status")
        headings = cell_lines(browser, "table.systems th")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(ARTIFACTS / f"scorecard-zh-{width}px.png")
        browser.open(squeezed.as_uri(), width=width)
        before = cell_lines(browser, "table.systems td.status")

    assert len(status) == 3 and len(headings) == 9
    assert all(lines == pytest.approx(1, abs=0.3) for lines in status), status
    assert all(lines == pytest.approx(1, abs=0.3) for lines in headings), headings
    if width == 600:
        # The control: without those rules a narrow window stacks the status a character a line.
        assert max(before) >= 2, before
