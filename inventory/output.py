"""Rendering rows for people (rich tables, Markdown) and for machines (JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from inventory.reporting.i18n import text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


# Cells that a spreadsheet would execute as a formula (CSV/XLSX injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would evaluate, so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def unescape_formula(text: str) -> str:
    """Undo escape_formula: a file yiyun exported reads back as what was exported."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_PREFIXES):
        return text[1:]
    return text


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, indent=2)


def _cell(value: Any, lang: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        if lang is not None:
            return text("yes" if value else "no", lang)
        return "yes" if value else "no"
    if isinstance(value, float):
        # Plain decimals: a spreadsheet user must never see 1.2e+05 for a capacity.
        return f"{value:.4f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    return str(jsonable(value))


def headings_for(
    columns: Sequence[str], lang: str | None, headings: Mapping[str, str] | None = None
) -> list[str]:
    """What people see above each column: `headings` first, else the column's own wording
    in TEXTS (a column without one is a missing translation, not a silent English key)."""
    if lang is None:
        return [(headings or {}).get(c, c) for c in columns]
    return [(headings or {}).get(c) or text(c, lang) for c in columns]


def render_rows(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    console: Console | None = None,
    lang: str | None = None,
    headings: Mapping[str, str] | None = None,
) -> None:
    """Print rows in the chosen format; JSON and CSV keep every column's English key.

    With `lang`, the table and Markdown (which people read) show translated headings and
    yes/no; `headings` names columns whose wording is not their key's (already translated).
    """
    rows = list(rows)
    console = console or Console()
    if fmt is Format.json:
        print(dumps([{c: row.get(c) for c in columns} for row in rows]))
    elif fmt is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([escape_formula(_cell(row.get(c))) for c in columns])
        print(buffer.getvalue(), end="")
    elif fmt is Format.md:
        print("| " + " | ".join(headings_for(columns, lang, headings)) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            cells = [_cell(row.get(c), lang).replace("|", "\\|") for c in columns]
            print("| " + " | ".join(cells) + " |")
    else:
        table = Table(title=title)
        for heading in headings_for(columns, lang, headings):
            table.add_column(heading)
        for row in rows:
            table.add_row(*[_cell(row.get(c), lang) for c in columns])
        console.print(table)
