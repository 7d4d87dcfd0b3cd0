"""The self-contained HTML report: one file, charts inside it, nothing fetched when it is opened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from exporters.reports import charts
from exporters.reports.content import PENDING_STATUSES, ReportContent
from exporters.reports.findings import finding_text
from exporters.reports.fonts import FONT_FACE_SLOT, embed_font
from inventory.i18n import (
    STATE_ORDER,
    node_level_label,
    readiness_label,
    state_label,
    status_label,
    text,
    zone_label,
)

TEMPLATES = Path(__file__).parent / "templates"
# More bars than this would be unreadable: the chart then shows the laggards, the table all.
DEPARTMENT_CHART_LIMIT = 40
NETWORK_CHART_LIMIT = 30


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f} %"


def local_time(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def day(value: date | None) -> str:
    return "—" if value is None else value.isoformat()


def aside(value: object, lang: str) -> str:
    """A value in brackets after what it qualifies: （…） in Chinese, " (…)" in English."""
    return text("term_aside", lang, value=value)


def in_lang(value: object, lang: str) -> str:
    """A value that words itself (a migration blocker's render(lang)) in `lang`, anything
    else as it is: inventory/ cannot import migrate/, so it asks the value."""
    render = getattr(value, "render", None)
    return str(render(lang) if callable(render) else value)


def blocker_list(blockers: Sequence[object], lang: str) -> str:
    """A system's blockers in the reader's language, one after another; "" for none."""
    return text("term_list_separator", lang).join(in_lang(b, lang) for b in blockers)


def stamp(content: ReportContent, lang: str) -> str:
    """The as-of time and policy that every section and printed page carries."""
    when = local_time(content.as_of, content.timezone)
    return (
        f"{text('as_of', lang)} {when}{aside(content.timezone, lang)} · "
        f"{text('policy', lang)} {content.policy}"
    )


def ranked(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups by rate, highest first; groups with nothing in the denominator last."""
    return sorted(groups, key=lambda g: (g["rate"] is None, -(g["rate"] or 0), g["key"]))


def build_charts(content: ReportContent, lang: str) -> dict[str, str]:
    """Every chart of the report as a data URI, keyed by section."""
    t = partial(text, lang=lang)
    target = t("target")
    drawn: dict[str, str] = {}

    zone = ZoneInfo(content.timezone)
    points = [
        (p.as_of.astimezone(zone).replace(tzinfo=None), p.rate)
        for p in content.trend
        if p.rate is not None
    ]
    drawn["trend"] = charts.trend_line(
        points,
        title=t("chart_trend"),
        axis_label=t("rate_axis"),
        target_label=target,
        current_label=t("current_point"),
    )
    counts = content.province_report["counts"]
    drawn["status"] = charts.count_bars(
        [(status_label(s, lang), n, charts.STATUS_COLOURS[s]) for s, n in counts.items()],
        title=t("chart_status"),
        axis_label=t("systems_axis"),
    )
    cities = [
        (g["key"], g["rate"])
        for g in ranked(content.city_report["groups"])
        if g["rate"] is not None
    ]
    drawn["city"] = charts.rate_bars(
        cities, title=t("chart_city"), axis_label=t("rate_axis"), target_label=target
    )
    departments = [
        (content.department_names.get(g["key"], g["key"]), g["rate"])
        for g in ranked(content.department_report["groups"])
        if g["rate"] is not None
    ]
    title = t("chart_department")
    if len(departments) > DEPARTMENT_CHART_LIMIT:
        title = t("chart_department_lowest", shown=DEPARTMENT_CHART_LIMIT, total=len(departments))
        departments = departments[-DEPARTMENT_CHART_LIMIT:]
    drawn["department"] = charts.rate_bars(
        departments, title=title, axis_label=t("rate_axis"), target_label=target
    )
    private = content.private_network_by_department()
    if private:
        title = t("chart_network")
        if len(private) > NETWORK_CHART_LIMIT:
            title = t("chart_network_top", shown=NETWORK_CHART_LIMIT, total=len(private))
        drawn["network"] = charts.count_bars(
            [
                (content.department_names.get(code, code), count, charts.FAR_BEHIND)
                for code, count, _ in private[:NETWORK_CHART_LIMIT]
            ],
            title=title,
            axis_label=t("systems_axis"),
        )
    return {name: charts.data_uri(svg) for name, svg in drawn.items()}


def wave_states(content: ReportContent) -> list[str]:
    """States present in any wave, in the order of the migration sequence."""
    present = {state for wave in content.waves for state in wave.states}
    known = [state for state in STATE_ORDER if state in present]
    return known + sorted(present - set(known))


def environment() -> Any:
    import jinja2

    loaded = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Every value from the register or the inventory is escaped: names are user data.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    loaded.filters.update(percent=percent, day=day, code_spans=code_spans)
    return loaded


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(value: str) -> Markup:
    """Text whose `commands` (as a terminal message quotes them) show as <code>, escaped
    first: the text is a person's own data as much as ours."""
    escaped = str(escape(value))
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


def render_html(content: ReportContent, lang: str) -> str:
    """The whole report as one HTML document in `lang`."""
    t = partial(text, lang=lang)
    template = environment().get_template("report.html.j2")
    page = template.render(
        c=content,
        lang=lang,
        html_lang="zh-CN" if lang == "zh" else "en",
        t=t,
        status_label=partial(status_label, lang=lang),
        state_label=partial(state_label, lang=lang),
        zone_label=partial(zone_label, lang=lang),
        readiness_label=partial(readiness_label, lang=lang),
        finding_text=partial(finding_text, lang=lang),
        node_level_label=partial(node_level_label, lang=lang),
        blocker_list=partial(blocker_list, lang=lang),
        aside=partial(aside, lang=lang),
        when=partial(local_time, timezone=content.timezone),
        stamp=stamp(content, lang),
        charts=build_charts(content, lang),
        cities=ranked(content.city_report["groups"]),
        departments=ranked(content.department_report["groups"]),
        pending=content.pending_by_department(),
        pending_statuses=PENDING_STATUSES,
        private=content.private_network_by_department(),
        zones_seen=sorted({z for zones in content.zones.values() for z in zones}),
        wave_states=wave_states(content),
        font_face=FONT_FACE_SLOT,  # fonts.embed_font puts the @font-face there
    )
    return embed_font(str(page))
