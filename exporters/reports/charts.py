"""The reports' charts: matplotlib figures saved as SVG, Chinese set in the shipped CJK face."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from exporters.reports.fonts import SHIPPED_FAMILY, register_chart_font
from exporters.reports.fonts import cjk_font_path as cjk_font_path  # kept where it was

# Text becomes outlines inside the SVG, so a viewer needs no Chinese font for the charts.
# The family list names the shipped face first, then matplotlib's own bundled DejaVu for
# any glyph it lacks: no system font comes before the shipped one.
RC: dict[Any, Any] = {
    "font.family": [SHIPPED_FAMILY, "DejaVu Sans"],
    "svg.fonttype": "path",
    "svg.hashsalt": "yiyun",
    "axes.unicode_minus": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
}
TARGET_PERCENT = 100.0
ON_TARGET = "#2e7d32"
NEAR = "#1565c0"
BEHIND = "#ef6c00"
FAR_BEHIND = "#c62828"
TARGET_LINE = "#b71c1c"
STATUS_COLOURS = {
    "on_cloud": ON_TARGET,
    "exempt": "#8e24aa",
    "partial": NEAR,
    "off_cloud": FAR_BEHIND,
    "no_evidence": "#757575",
    "classified_excluded": "#37474f",
    "retired_excluded": "#bdbdbd",
}
LABEL_LIMIT = 18  # characters of a bar label before it is cut with "…"


def chart_font(sample: str) -> tuple[str, int, str]:
    """(file, face index, family) of the font the charts draw `sample` with: the first of
    the fallback chain that has every glyph, as matplotlib's own per-glyph fallback picks."""
    from matplotlib import font_manager, rc_context

    register_chart_font()
    with rc_context(RC):
        chain = [
            font_manager.findfont(
                font_manager.FontProperties(family=[family]), fallback_to_default=False
            )
            for family in RC["font.family"]
        ]
    for path in chain:
        face = font_manager.get_font([path])
        if all(face.get_char_index(ord(ch)) for ch in sample if not ch.isspace()):
            return str(path), getattr(path, "face_index", 0), face.family_name
    raise LookupError(f"no chart font has glyphs for {sample!r}")


def data_uri(svg: str) -> str:
    """An <img src> that carries the SVG itself: the report needs no network and no files."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    register_chart_font()
    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    # No date in the metadata, so the same ledger gives the same bytes.
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _short(label: str) -> str:
    return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"


def _rate_colour(percent: float) -> str:
    if percent >= TARGET_PERCENT:
        return ON_TARGET
    if percent >= 80:
        return NEAR
    if percent >= 50:
        return BEHIND
    return FAR_BEHIND


def rate_bars(
    groups: Sequence[tuple[str, float]], *, title: str, axis_label: str, target_label: str
) -> str:
    """Horizontal bars of adoption rates (0–1), in the order given, with the 100 % line."""
    from matplotlib import rc_context
    from matplotlib.ticker import PercentFormatter

    with rc_context(RC):
        figure = _figure(9, 1.4 + 0.3 * max(len(groups), 1))
        axes = figure.add_subplot()
        labels = [_short(label) for label, _ in groups]
        percents = [rate * 100 for _, rate in groups]
        bars = axes.barh(
            range(len(groups)), percents, color=[_rate_colour(p) for p in percents], height=0.7
        )
        axes.bar_label(bars, labels=[f"{p:.1f}%" for p in percents], padding=3, fontsize=8)
        axes.set_yticks(range(len(groups)), labels)
        # First group on top, half a bar of room at each end (not 5 % of a long list).
        axes.set_ylim(max(len(groups), 1) - 0.5, -0.5)
        axes.axvline(TARGET_PERCENT, color=TARGET_LINE, linestyle="--", label=target_label)
        axes.set_xlim(0, 112)
        axes.xaxis.set_major_formatter(PercentFormatter())
        axes.set_xlabel(axis_label)
        axes.set_title(title, loc="left", fontsize=11)
        # Above the plot, beside the title: inside it would cover the best bars' labels.
        axes.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=8, frameon=False)
        return _svg(figure)


def trend_line(
    points: Sequence[tuple[datetime, float]],
    *,
    title: str,
    axis_label: str,
    target_label: str,
    current_label: str,
) -> str:
    """The KPI over time (rates 0–1, times as the province's wall clock, naive); the last
    point is today's figure."""
    from matplotlib import dates as mdates
    from matplotlib import rc_context
    from matplotlib.ticker import PercentFormatter

    with rc_context(RC):
        figure = _figure(9, 3.2)
        axes = figure.add_subplot()
        moments = [moment for moment, _ in points]
        percents = [rate * 100 for _, rate in points]
        axes.plot(moments, percents, marker="o", color=NEAR, linewidth=2)
        axes.axhline(TARGET_PERCENT, color=TARGET_LINE, linestyle="--", label=target_label)
        if points:
            axes.annotate(
                f"{current_label} {percents[-1]:.1f}%",
                (mdates.date2num(moments[-1]), percents[-1]),
                textcoords="offset points",
                xytext=(-10, 10),
                ha="right",
            )
        axes.set_ylim(0, 108)
        axes.yaxis.set_major_formatter(PercentFormatter())
        axes.set_ylabel(axis_label)
        if moments and max(moments) - min(moments) < timedelta(days=1):
            # Snapshots minutes apart (a first day, a demo) would get ticks in seconds: show
            # at least the last day, so the axis reads in hours.
            axes.set_xlim(max(moments) - timedelta(days=1), max(moments) + timedelta(hours=1))
        locator = mdates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        # Numeric dates read the same in both languages (no English month names).
        axes.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(
                locator,
                formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%S"],
                zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
                offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
            )
        )
        axes.set_title(title, loc="left", fontsize=11)
        axes.legend(loc="lower right", fontsize=8)
        axes.grid(axis="y", alpha=0.3)
        return _svg(figure)


def count_bars(rows: Sequence[tuple[str, int, str]], *, title: str, axis_label: str) -> str:
    """Horizontal bars of counts: (label, count, colour) in the order given."""
    from matplotlib import rc_context
    from matplotlib.ticker import MaxNLocator

    with rc_context(RC):
        figure = _figure(9, 1.2 + 0.3 * max(len(rows), 1))
        axes = figure.add_subplot()
        bars = axes.barh(
            range(len(rows)), [c for _, c, _ in rows], color=[k for _, _, k in rows], height=0.7
        )
        axes.bar_label(bars, padding=3, fontsize=8)
        axes.set_yticks(range(len(rows)), [_short(label) for label, _, _ in rows])
        axes.set_ylim(max(len(rows), 1) - 0.5, -0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # systems come whole
        axes.set_xlabel(axis_label)
        axes.margins(x=0.12)
        axes.set_title(title, loc="left", fontsize=11)
        return _svg(figure)
