"""Charts: Chinese labels are drawn with the shipped Noto Sans CJK SC face, never as tofu."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

from exporters.reports import charts
from exporters.reports.fonts import sc_face_index

LABELS = ["南京市", "江苏省教育厅", "非涉密系统上云率", "业务专网"]
ROOT = Path(__file__).resolve().parents[2]
# Run in a fresh interpreter whose matplotlib builds its font list anew, finding the
# stand-in system font the way it finds a desktop's (XDG_DATA_HOME/fonts, fontconfig).
ON_A_DESKTOP = """
import json, re, sys
from matplotlib import font_manager
from exporters.reports import charts

labels = json.loads(sys.argv[1])
system = font_manager.findfont(
    font_manager.FontProperties(family="Noto Sans CJK SC"), fallback_to_default=False
)
path, index, family = charts.chart_font("".join(labels))
svg = charts.rate_bars(
    [(label, 0.5) for label in labels], title="各部门上云率", axis_label="上云率",
    target_label="目标 100%",
)
glyphs = sorted({int(g, 16) for g in re.findall(r'<path id="[A-Za-z-]+-([0-9a-f]+)"', svg)})
print(json.dumps({"system": system, "chart": [path, index, family], "glyphs": glyphs}))
"""


def test_chinese_label_resolves_to_the_shipped_cjk_face() -> None:
    path, face_index, family = charts.chart_font("非涉密系统上云率 南京市")

    assert path == str(charts.cjk_font_path())
    assert path.endswith("NotoSansCJK-Regular.ttc")
    # The collection's SC face, not JP/KR (different glyph shapes) and not DejaVu.
    assert (face_index, family) == (2, "Noto Sans CJK SC")


def test_chart_svg_draws_every_glyph_from_the_cjk_font() -> None:
    with warnings.catch_warnings():
        # matplotlib warns "Glyph … missing from font(s)" when it would draw tofu.
        warnings.simplefilter("error")
        svg = charts.rate_bars(
            [(label, 0.5) for label in LABELS],
            title="各部门上云率",
            axis_label="上云率",
            target_label="目标 100%",
        )

    glyphs = re.findall(r'<path id="([A-Za-z-]+)-([0-9a-f]+)"', svg)
    fonts = {font for font, _ in glyphs}
    assert fonts == {"NotoSansCJKsc-Regular"}
    # Glyph 0 is .notdef: the tofu box.
    assert all(int(index, 16) != 0 for _, index in glyphs)
    for label in [*LABELS, "各部门上云率"]:
        assert f"<!-- {label} -->" in svg


def test_charts_are_deterministic_and_embeddable() -> None:
    first = charts.count_bars([("已上云", 3, charts.ON_TARGET)], title="状态", axis_label="系统数")
    second = charts.count_bars([("已上云", 3, charts.ON_TARGET)], title="状态", axis_label="系统数")

    assert first == second
    assert charts.data_uri(first).startswith("data:image/svg+xml;base64,")


def glyph_numbers(font: str, index: int, text: str) -> set[int]:
    from matplotlib import font_manager

    face = font_manager.get_font([font_manager.FontPath(font, index)])
    return {face.get_char_index(ord(ch)) for ch in text}


def test_a_system_noto_cjk_does_not_replace_the_shipped_face(
    system_noto_cjk: Path, tmp_path: Path
) -> None:
    """A desktop with fonts-noto-cjk has a "Noto Sans CJK SC" of its own, listed before any
    font yiyun adds: the charts must still draw with the shipped file."""
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(system_noto_cjk.parent),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }
    done = subprocess.run(
        [sys.executable, "-c", ON_A_DESKTOP, json.dumps(LABELS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])

    stand_in = str(system_noto_cjk / "NotoSansCJKsc-Regular.otf")
    # The simulation works: asking matplotlib for "Noto Sans CJK SC" gets the system's copy.
    assert seen["system"] == stand_in
    assert seen["chart"] == [str(charts.cjk_font_path()), sc_face_index(), "Noto Sans CJK SC"]
    text = "".join(LABELS) + "各部门上云率目标"
    shipped = glyph_numbers(str(charts.cjk_font_path()), sc_face_index(), text)
    system = glyph_numbers(stand_in, 0, text)
    assert shipped.isdisjoint(system)  # the two files number these glyphs differently
    assert shipped <= set(seen["glyphs"])
    assert system.isdisjoint(seen["glyphs"])
