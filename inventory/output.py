"""Rendering rows for people (rich tables, Markdown) and for machines (JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from inventory.confidentiality import REDACTED
from inventory.reporting.i18n import text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


# Cells that a spreadsheet would execute as a formula (CSV/XLSX injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would evaluate, so it stays text.

    A cell that already looks guarded ("'=1", as typed) gets a guard of its own too, so that
    unescape_formula gives back exactly what was written (and a spreadsheet shows the "'").
    """
    if isinstance(value, str) and value.lstrip("'").startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def unescape_formula(text: str) -> str:
    """Undo escape_formula: a file yiyun exported reads back as what was exported."""
    if text.startswith("'") and text.lstrip("'").startswith(_FORMULA_PREFIXES):
        return text[1:]
    return text


# What a terminal or a Markdown viewer would obey instead of show: C0 and C1 controls and
# DEL (an ESC sequence from a name could clear the screen or retitle the window), the bidi
# overrides and isolates that reorder what follows them (Trojan Source), the Unicode line
# and paragraph separators, and lone surrogates (no output encoding can write them).
_OBEYED = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
# A tab is only whitespace to both, so it stays.
_HIDDEN = re.compile(f"[\x00-\x08\x0a-\x1f{_OBEYED}]")
_HIDDEN_BUT_NEWLINE = re.compile(f"[\x00-\x08\x0b-\x1f{_OBEYED}]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC, ␊ for LF
    if code == 0x7F:
        return "\u2421"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def echo(message: str, *, err: bool = False) -> None:
    """Print a plain line (no Rich) whose data may hold control characters: shown, never obeyed."""
    print(visible(message, newlines=True), file=sys.stderr if err else sys.stdout, flush=True)


def visible(value: str, *, newlines: bool = False) -> str:
    """`value` with every character a terminal would obey shown instead (ESC as ␛, LF as ␊,
    U+202E as \\u202e); `newlines` keeps line breaks, for messages that span lines."""
    return (_HIDDEN_BUT_NEWLINE if newlines else _HIDDEN).sub(_shown, value)


def as_text(value: object, style: str = "") -> Text:
    """One value from the register or a source, as Rich prints it: literally, never read as
    markup or emoji codes, never with a control character that the terminal would obey."""
    return Text(visible(str(value)), style=style)


def message_text(message: str, style: str = "") -> Text:
    """A message that carries data (TEXTS wording with names, paths, a source's error), for
    `console.print`: the same as `as_text` but its own line breaks are kept."""
    return Text(visible(message, newlines=True), style=style)


# Markdown that data must not trigger: inline HTML and entities (escaped as entities, which
# every viewer honours), a pipe ending the cell, code spans, emphasis, links, strikethrough.
_MARKDOWN = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "~": "\\~",
    }
)


def md_cell(value: object) -> str:
    """A value as one Markdown table cell that reads as the text it is: on one line (a line
    break shows as ␊), no HTML, no pipe, code span, emphasis or link of its own."""
    return visible(str(value)).translate(_MARKDOWN)


def md_row(cells: Iterable[object]) -> str:
    """One Markdown table row (a heading row too) of escaped cells, always on one line."""
    return "| " + " | ".join(md_cell(cell) for cell in cells) + " |"


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV text, one line each ending in LF, that every reader splits back the same.

    The writer quotes a field holding its own line terminator but not a lone CR, which every
    reader takes for a line end: a row with one has every field quoted.
    """
    buffer = io.StringIO()
    plain = csv.writer(buffer, lineterminator="\n")
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in str(cell) for cell in row) else plain).writerow(row)
    return buffer.getvalue()


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
    shown = str(jsonable(value))
    if lang is not None and REDACTED in shown:
        # JSON and CSV keep the marker as machines read it; people read it in their language.
        shown = shown.replace(REDACTED, text("classified_marker", lang))
    return shown


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
        cells = ([escape_formula(_cell(row.get(c))) for c in columns] for row in rows)
        print(csv_text([list(columns), *cells]), end="")
    elif fmt is Format.md:
        print(md_row(headings_for(columns, lang, headings)))
        print("|" + "---|" * len(columns))
        for row in rows:
            print(md_row(_cell(row.get(c), lang) for c in columns))
    else:
        # Every cell, heading and the title as Text: Rich would read a str as markup, and a
        # name like "系统[/bold]" would end the command with a MarkupError.
        table = Table(title=as_text(title, "table.title") if title is not None else None)
        for heading in headings_for(columns, lang, headings):
            table.add_column(as_text(heading))
        for row in rows:
            table.add_row(*[as_text(_cell(row.get(c), lang)) for c in columns])
        console.print(table)
