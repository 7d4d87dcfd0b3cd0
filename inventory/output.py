"""Rendering rows for people (rich tables, Markdown) and for machines (JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.containers import Lines
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from inventory.confidentiality import REDACTED
from inventory.i18n import text


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
    `console.print`: the same as `as_text` but its own line breaks are kept, and a terminal
    never breaks a `command` in it across lines (Prose)."""
    return Prose(visible(message, newlines=True), style=style)


# A command the reader may type, as the catalogs write it: between backticks.
_COMMAND = re.compile(r"`[^`\n]+`")
# Chinese line-breaking rules (GB/T 15834 practice): these never start a line, and the
# opening ones never end one; a break between any two other ideographs is fine.
_NO_LINE_START = frozenset("，。、；：！？）》」』】〉”’%,.;:!?)]}…—·")
_NO_LINE_END = frozenset("（《「『【〈“‘([{")


def _command_spans(plain: str) -> tuple[set[int], set[int]]:
    """The offsets inside a `command` and those at its two edges."""
    inside: set[int] = set()
    edges: set[int] = set()
    for command in _COMMAND.finditer(plain):
        inside.update(range(command.start() + 1, command.end()))
        edges.update((command.start(), command.end()))
    return inside, edges


def _breakable(plain: str, at: int, inside: set[int], edges: set[int]) -> bool:
    """Whether a line of message text may break before `plain[at]`."""
    before, after = plain[at - 1], plain[at]
    if at in inside or after.isspace():
        return False
    if before.isspace() or at in edges:
        # Either side of a command, even before a comma: better than breaking inside it.
        return True
    if after in _NO_LINE_START or before in _NO_LINE_END:
        return False
    return cell_len(before) == 2 or cell_len(after) == 2


def unbroken_width(plain: str) -> int:
    """The cells of the widest piece of `plain` that `line_breaks` never breaks (a word, a
    command, an ideograph with the punctuation bound to it): the narrowest width at which
    the text folds without cutting one."""
    inside, edges = _command_spans(plain)
    widest, start = 0, 0
    for at in range(1, len(plain) + 1):
        if at == len(plain) or plain[at] == "\n" or _breakable(plain, at, inside, edges):
            widest = max(widest, cell_len(plain[start:at].strip()))
            start = at
    return widest


def line_breaks(plain: str, width: int) -> list[int]:
    """Where to break one line of message text to fit `width` cells: between words, and
    between ideographs, but never inside a `command` (one that does not fit on what is left
    of a line moves whole to the next; only one wider than the terminal is broken, between
    its words), nor before a closing or after an opening punctuation mark."""
    inside, edges = _command_spans(plain)
    breaks: list[int] = []
    start, used, last, last_in_command = 0, 0, 0, 0
    for at, character in enumerate(plain):
        if at > start and _breakable(plain, at, inside, edges):
            last = at
        elif at in inside and plain[at - 1] == " " and character != " ":
            last_in_command = at
        cells = cell_len(character)
        if used + cells > width and at > start and not character.isspace():
            # A command wider than the whole line is the one thing broken, between its own
            # words; a word wider than the line (a long path) is folded, as Rich does.
            if last > start:
                cut = last
            elif last_in_command > start:
                cut = last_in_command
            else:
                cut = at
            breaks.append(cut)
            start, used = cut, cell_len(plain[cut:at])
        used += cells
    return breaks


class Prose(Text):
    """Text that wraps like a message should on a terminal: see `line_breaks`."""

    def __rich__(self) -> _LaidOut:
        # Console.print joins the Text objects it is given into a plain one, which would
        # wrap the plain way: handing it a renderable of our own keeps this wrap.
        return _LaidOut(self)

    def wrap(
        self,
        console: Console,
        width: int,
        *,
        justify: Any = None,
        overflow: Any = None,
        tab_size: int = 8,
        no_wrap: bool | None = None,
    ) -> Lines:
        if no_wrap or self.no_wrap or overflow == "ignore":
            return super().wrap(
                console,
                width,
                justify=justify,
                overflow=overflow,
                tab_size=tab_size,
                no_wrap=no_wrap,
            )
        lines = Lines()
        for line in self.split(allow_blank=True):
            if "\t" in line.plain:
                line.expand_tabs(tab_size)
            for part in line.divide(line_breaks(line.plain, width)):
                part.rstrip()
                lines.append(part)
        return lines


class _LaidOut:
    """A Prose for Console.print: rendered with Prose.wrap, measured as its text."""

    def __init__(self, prose: Prose) -> None:
        self.prose = prose

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from Text.__rich_console__(self.prose, console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.prose.__rich_measure__(console, options)


def _command_lines(command: str, width: int, indent: int) -> list[str]:
    """One command in lines of at most `width` cells where it can: broken only between its
    words, each line but the last ending in a shell continuation (" \\"), so that what is
    copied from the terminal runs as it is."""
    words = command.split(" ")
    lines: list[str] = []
    current = " " * indent + words[0]
    for word in words[1:]:
        if cell_len(current) + 1 + cell_len(word) + 2 > width:
            lines.append(current + " \\")
            current = " " * (indent + 4) + word
        else:
            current += " " + word
    return [*lines, current]


class Commands:
    """Commands to type, one to a line, each whole: a command too long for the terminal is
    continued on the next line with a backslash, never broken inside a word. A note goes
    after its command as a shell comment, or on the line below when it would not fit."""

    def __init__(self, commands: Sequence[tuple[str, str | None]], indent: int = 2) -> None:
        self.commands = [(visible(command), note and visible(note)) for command, note in commands]
        self.indent = indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for command, note in self.commands:
            lines = _command_lines(command, width, self.indent)
            if note:
                comment = f"  # {note}"
                if len(lines) == 1 and cell_len(lines[0] + comment) <= width:
                    lines[0] += comment
                else:
                    lines.append(" " * self.indent + f"# {note}")
            for line in lines:
                # Only a single word wider than the terminal (a long path) is ever folded.
                yield Text(line, overflow="fold")


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


# A column holding longer text is never folded narrower than this many cells: squeezed
# below it, a Chinese phrase reads one or two characters a line.
FOLD_FLOOR = 10
# A heading folds to no fewer than three ideographs a line ("已验收/或完成").
HEADING_FLOOR = 6
# A heading or value at most this wide (in cells) is shown whole when the table has room.
SHORT = 2 * FOLD_FLOOR
# What a Rich table with edges adds to its columns' widths: a space either side of each
# cell, a rule between columns and one at either edge.
_PER_COLUMN, _EDGES = 3, 1

# Renders rows that do not fit the terminal as a table, in a layout of its command's own
# (`report scans`: one line per scope); given the rows and the table width they need.
Narrow = Callable[[list[dict[str, Any]], Console, int], None]


def _cell_minimum(value: str, floor: int = FOLD_FLOOR) -> int:
    """How narrow a cell may fold: never inside a word or a command, never below `floor`
    unless the whole value is narrower."""
    return min(cell_len(value), max(unbroken_width(value), floor))


def column_widths(
    headings: Sequence[str], cells: Sequence[Sequence[str]], width: int
) -> tuple[list[int] | None, int]:
    """The width of each column of a table that fits `width` terminal cells with no value cut
    (headings whole, values folded between words only), and the table width needed.

    None when it cannot fit: the caller shows one record per block (or its own layout)
    instead of squeezing cells to "…". Every column at its natural width when that fits;
    otherwise each starts at its minimum and the room left goes to the columns that lose
    most by folding.
    """
    count = len(headings)
    room = width - _PER_COLUMN * count - _EDGES
    natural = [
        max([cell_len(headings[i]), *(cell_len(row[i]) for row in cells)]) for i in range(count)
    ]
    minimum = [
        max([_cell_minimum(headings[i], HEADING_FLOOR), *(_cell_minimum(row[i]) for row in cells)])
        for i in range(count)
    ]
    needed = sum(minimum) + _PER_COLUMN * count + _EDGES
    if sum(natural) <= room:
        return natural, needed
    if sum(minimum) > room:
        return None, needed
    # Headings whole first, where the room allows: a folded "等保级/别" reads worse than a
    # value folded between words.
    # So are short values (codes, dates, states) in a column that also holds long text: a
    # folded "JS-EDU-0/01" is harder to read than a long name folded between words. (A
    # heading that is data, a plan's name, may be long: it folds like a value.)
    whole = [
        max([m, min(cell_len(h), SHORT), *(w for row in cells if (w := cell_len(row[i])) <= SHORT)])
        for i, (m, h) in enumerate(zip(minimum, headings, strict=True))
    ]
    if sum(whole) <= room:
        minimum = whole
    spare = room - sum(minimum)
    slack = [n - m for n, m in zip(natural, minimum, strict=True)]
    widths = list(minimum)
    # Fold as few columns as possible: the columns that need least to show whole (codes,
    # dates, states) get it first; what is left goes to the long ones by how much they lack.
    folded = []
    for i in sorted(range(count), key=lambda i: slack[i]):
        if slack[i] <= spare:
            widths[i], spare = natural[i], spare - slack[i]
        else:
            folded.append(i)
    lacking = sum(slack[i] for i in folded)
    for i in folded:
        widths[i] += spare * slack[i] // lacking
    return widths, needed


def print_blocks(
    headings: Sequence[str], cells: Sequence[Sequence[str]], title: str | None, console: Console
) -> None:
    """One record per block, a field a line ("heading  value", the value folded beneath
    itself), blocks apart by a blank line: for rows too wide for the terminal as a table."""
    if title is not None:
        console.print(as_text(title, "table.title"))
    label_width = min(max(cell_len(h) for h in headings), max(console.width // 3, 1))
    for number, row in enumerate(cells):
        if number:
            console.print()
        block = Table.grid(padding=(0, 2))
        block.add_column(width=label_width, overflow="fold", style="bold")
        block.add_column(overflow="fold")
        for heading, value in zip(headings, row, strict=True):
            if value:  # an empty field says nothing in a block
                block.add_row(Prose(visible(heading)), Prose(visible(value)))
        console.print(block)


def render_rows(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    console: Console | None = None,
    lang: str | None = None,
    headings: Mapping[str, str] | None = None,
    narrow: Narrow | None = None,
) -> None:
    """Print rows in the chosen format; JSON and CSV keep every column's English key.

    With `lang`, the table and Markdown (which people read) show translated headings and
    yes/no; `headings` names columns whose wording is not their key's (already translated).
    A table that cannot fit the terminal without cutting a value folds its cells, or below
    that shows one record per block (`narrow`, when given, lays the rows out instead).
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
        names = [visible(h) for h in headings_for(columns, lang, headings)]
        shown = [[visible(_cell(row.get(c), lang)) for c in columns] for row in rows]
        widths, needed = column_widths(names, shown, console.width)
        if widths is None:
            if narrow is not None:
                narrow(rows, console, needed)
            else:
                print_blocks(names, shown, title, console)
            return
        # Every cell, heading and the title as Text: Rich would read a str as markup, and a
        # name like "系统[/bold]" would end the command with a MarkupError.
        table = Table(title=as_text(title, "table.title") if title is not None else None)
        for heading, width in zip(names, widths, strict=True):
            table.add_column(Prose(heading), width=width, overflow="fold")
        for values in shown:
            table.add_row(*[Prose(value) for value in values])
        console.print(table)
