"""The Excel workbook of the report: one sheet per view, figures as numbers, user text as text."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from exporters.reports.content import ReportContent
from exporters.reports.findings import finding_text
from exporters.reports.html import blocker_list, ranked, stamp, wave_states
from inventory.adoption import STATUSES
from inventory.i18n import (
    lifecycle_label,
    node_level_label,
    readiness_label,
    state_label,
    status_label,
    text,
    zone_label,
)
from inventory.output import escape_formula

PERCENT = "0.00%"
# Whole numbers need no format (General shows them as they are), and an unstyled cell is
# cheap in openpyxl's streaming mode: a styled one is a new object per cell.
INTEGER = None
DAY = "yyyy-mm-dd"
MOMENT = "yyyy-mm-dd hh:mm"
HEADER_ROW = 2  # row 1 carries the sheet's title, as-of time and policy
MIN_WIDTH = 6
MAX_WIDTH = 60


@dataclass(frozen=True)
class Column:
    header: str
    number_format: str | None = None


@dataclass(frozen=True)
class Value:
    """A cell whose number format differs from its column's (the summary's mixed column)."""

    value: Any
    number_format: str | None


def display_width(value: Any) -> int:
    """Characters a cell needs; a Chinese character takes two columns."""
    if value is None:
        return 0
    if isinstance(value, Value):
        value = value.value
    if isinstance(value, float):
        return 9
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    shown = str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in shown)


class WorkbookWriter:
    """Sheets written in openpyxl's streaming mode, so 10,000 systems stay fast."""

    def __init__(self, caption: str, footer: str) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Font, PatternFill

        self.workbook = Workbook(write_only=True)
        self.caption = caption
        self.footer = footer
        self.bold = Font(bold=True)
        self.title_font = Font(bold=True, size=12)
        self.header_fill = PatternFill("solid", fgColor="ECEFF1")

    def sheet(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.utils import get_column_letter

        sheet = self.workbook.create_sheet(title=title[:31])
        for index, column in enumerate(columns, start=1):
            widest = max(
                [display_width(column.header), *(display_width(row[index - 1]) for row in rows)]
            )
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = min(max(widest + 2, MIN_WIDTH), MAX_WIDTH)
        sheet.freeze_panes = f"A{HEADER_ROW + 1}"
        last = get_column_letter(max(len(columns), 1))
        sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + max(len(rows), 1)}"
        sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
        # Every printed page carries the as-of time and policy, like the HTML report.
        sheet.oddHeader.center.text = self.caption
        sheet.oddFooter.center.text = self.footer

        caption = WriteOnlyCell(sheet, value=escape_formula(f"{title} · {self.caption}"))
        caption.font = self.title_font
        sheet.append([caption])
        headers = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=escape_formula(column.header))
            cell.font = self.bold
            cell.fill = self.header_fill
            headers.append(cell)
        sheet.append(headers)
        for row in rows:
            sheet.append(
                [
                    self._cell(sheet, value, column)
                    for value, column in zip(row, columns, strict=True)
                ]
            )

    def _cell(self, sheet: Any, value: Any, column: Column) -> Any:
        from openpyxl.cell import WriteOnlyCell

        number_format = column.number_format
        if isinstance(value, Value):
            value, number_format = value.value, value.number_format
        # Register names are user data: a leading = + - @ must stay text in Excel and after
        # a "save as CSV" round trip.
        value = escape_formula(value)
        if not number_format or value is None:
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = number_format
        return cell

    def save(self, target: Path | IO[bytes]) -> None:
        self.workbook.save(target)


def _local(moment: datetime | None, timezone: str) -> datetime | None:
    # Excel has no time zones: write the province's wall-clock time, as the caption says.
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def _group_columns(t: Callable[..., str], lang: str, first: list[Column]) -> list[Column]:
    return [
        *first,
        Column(t("rate"), PERCENT),
        Column(t("numerator"), INTEGER),
        Column(t("denominator"), INTEGER),
        *(Column(status_label(s, lang), INTEGER) for s in STATUSES),
    ]


def _group_values(group: dict[str, Any]) -> list[Any]:
    return [
        group["rate"],
        group["numerator"],
        group["denominator"],
        *(group["counts"][s] for s in STATUSES),
    ]


def build_workbook(content: ReportContent, lang: str) -> WorkbookWriter:
    """Summary, by city, by department, systems, violations, migration progress and more."""
    t = partial(text, lang=lang)
    yes_no = {True: t("yes"), False: t("no")}
    local = partial(_local, timezone=content.timezone)
    when = stamp(content, lang)
    writer = WorkbookWriter(caption=when, footer=f"{t('report_title')} · {content.province}")
    report = content.province_report

    summary: list[list[Any]] = [
        [t("kpi_name"), Value(report["rate"], PERCENT)],
        [t("numerator"), Value(report["numerator"], INTEGER)],
        [t("denominator"), Value(report["denominator"], INTEGER)],
        *([status_label(s, lang), Value(report["counts"][s], INTEGER)] for s in STATUSES),
        [t("policy"), content.policy],
        [t("as_of"), Value(local(content.as_of), MOMENT)],
        [t("timezone"), content.timezone],
        [t("exempt_in_denominator"), yes_no[content.switches.exempt_in_denominator]],
        [t("trust_declared"), yes_no[content.switches.trust_declared]],
        [t("stale_nodes"), ", ".join(content.stale_nodes) or "—"],
        [t("expired_scopes"), ", ".join(content.expired_scopes) or "—"],
        [t("freeze_violations"), Value(len(content.violations), INTEGER)],
        [t("pl_count"), Value(len(content.placement), INTEGER)],
        [t("unattributed_resources"), Value(sum(n for *_, n in content.unattributed), INTEGER)],
        [t("classified_count"), Value(content.classified_count, INTEGER)],
    ]
    writer.sheet(t("sheet_summary"), [Column(t("metric")), Column(t("value"))], summary)

    writer.sheet(
        t("sheet_city"),
        _group_columns(t, lang, [Column(t("city"))]),
        [[g["key"], *_group_values(g)] for g in ranked(content.city_report["groups"])],
    )
    writer.sheet(
        t("sheet_department"),
        _group_columns(t, lang, [Column(t("department_code")), Column(t("department_name"))]),
        [
            [g["key"], content.department_names.get(g["key"], g["key"]), *_group_values(g)]
            for g in ranked(content.department_report["groups"])
        ],
    )

    no_ledger = "—"
    systems = []
    for s in content.systems:
        p = s.placement
        systems.append(
            [
                s.code,
                s.name,
                s.department_code,
                content.department_names.get(s.department_code, s.department_code),
                s.city,
                status_label(s.status, lang),
                zone_label(s.network_zone, lang),
                s.mlps_level,
                lifecycle_label(s.lifecycle, lang),
                s.exemption_valid_until,
                p.plan if p else no_ledger,
                p.wave if p else None,
                p.wave_start if p else None,
                p.wave_end if p else None,
                state_label(p.state, lang) if p else no_ledger,
                readiness_label(s.readiness, lang),
                blocker_list(s.blockers, lang) or no_ledger,
                t("term_list_separator").join(finding_text(f, lang) for f in s.findings) or None,
            ]
        )
    writer.sheet(
        t("sheet_systems"),
        [
            Column(t("system_code")),
            Column(t("system_name")),
            Column(t("department_code")),
            Column(t("department_name")),
            Column(t("city")),
            Column(t("status")),
            Column(t("network_zone")),
            Column(t("mlps_level"), INTEGER),
            Column(t("lifecycle")),
            Column(t("exemption_valid_until"), DAY),
            Column(t("plan")),
            Column(t("wave"), INTEGER),
            Column(t("wave_start"), DAY),
            Column(t("wave_end"), DAY),
            Column(t("migration_state")),
            Column(t("readiness")),
            Column(t("blockers")),
            Column(t("pl_findings")),
        ],
        systems,
    )

    violations: list[list[Any]] = [
        [
            t("rule_freeze"),
            v.node_id,
            v.kind,
            t("redacted") if v.redacted else v.native_id,
            None if v.redacted else v.name,
            1,
            local(v.created),
            v.frozen_since,
            t("basis_source") if v.basis == "source creation time" else t("basis_first_seen"),
        ]
        for v in content.violations
    ]
    violations += [
        [t("rule_unattributed"), node, kind, None, None, count, None, None, None]
        for node, kind, count in content.unattributed
    ]
    violations += [
        [
            t("pl_rule"),
            f.node_id,
            t("pl_system"),
            t("redacted") if f.redacted else f.system_code,
            None if f.redacted else f.name,
            1,
            None,
            None,
            finding_text(f, lang),
        ]
        for f in content.placement
    ]
    writer.sheet(
        t("sheet_violations"),
        [
            Column(t("rule")),
            Column(t("node")),
            Column(t("kind")),
            Column(t("native_id")),
            Column(t("resource_name")),
            Column(t("count"), INTEGER),
            Column(t("created"), MOMENT),
            Column(t("frozen_since"), DAY),
            Column(t("basis")),
        ],
        violations,
    )

    states = wave_states(content)
    if content.migration_ledger:
        progress = [
            [w.plan, w.wave, w.start, w.end, w.systems, *(w.states.get(s, 0) for s in states)]
            for w in content.waves
        ]
    else:
        progress = [[no_ledger, None, None, None, None]]
    writer.sheet(
        t("sheet_migration"),
        [
            Column(t("plan")),
            Column(t("wave"), INTEGER),
            Column(t("wave_start"), DAY),
            Column(t("wave_end"), DAY),
            Column(t("systems"), INTEGER),
            *(Column(state_label(s, lang), INTEGER) for s in states),
        ],
        progress,
    )

    zones = sorted({z for counts in content.zones.values() for z in counts})
    network = [
        [
            code,
            content.department_names.get(code, code),
            *(content.zones[code][z] for z in zones),
            on_private / total,
        ]
        for code, on_private, total in content.private_network_by_department()
    ]
    writer.sheet(
        t("sheet_network"),
        [
            Column(t("department_code")),
            Column(t("department_name")),
            *(Column(zone_label(z, lang), INTEGER) for z in zones),
            Column(t("private_network_share"), PERCENT),
        ],
        network,
    )

    writer.sheet(
        t("sheet_nodes"),
        [
            Column(t("node")),
            Column(t("node_name")),
            Column(t("node_level")),
            Column(t("one_cloud")),
            Column(t("last_complete_scan"), MOMENT),
            Column(t("age_hours"), "0.0"),
            Column(t("fresh")),
        ],
        [
            [
                n.id,
                n.name,
                node_level_label(n.level, lang),
                yes_no[n.one_cloud],
                local(n.last_complete_scan),
                n.age_hours(content.as_of),
                t(f"fresh_{n.freshness}"),
            ]
            for n in content.nodes
        ],
    )

    writer.sheet(
        t("sheet_trend"),
        [
            Column(t("snapshot_at"), MOMENT),
            Column(t("rate"), PERCENT),
            Column(t("numerator"), INTEGER),
            Column(t("denominator"), INTEGER),
            Column(t("current")),
        ],
        [
            [local(p.as_of), p.rate, p.numerator, p.denominator, t("yes") if p.current else ""]
            for p in content.trend
        ],
    )
    return writer
