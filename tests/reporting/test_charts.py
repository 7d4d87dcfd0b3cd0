"""Charts: Chinese labels are drawn with the shipped Noto Sans CJK SC face, never as tofu."""

from __future__ import annotations

import re
import warnings

from inventory.reporting import charts

LABELS = ["南京市", "江苏省教育厅", "非涉密系统上云率", "业务专网"]


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
