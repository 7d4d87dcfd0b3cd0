"""The system register (政务信息系统目录): read CSV or XLSX, validate every row, apply it."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.access import Actor
from inventory.audit import record
from inventory.confidentiality import Disclosure
from inventory.i18n import Wording, text
from inventory.models import Department, Node, System, utcnow
from inventory.output import escape_formula, unescape_formula

PROVINCIAL = "省级"
# The 13 prefecture-level cities, each with a city backbone node (DOMAIN.md, "1+13").
CITIES = (
    "南京市",
    "无锡市",
    "徐州市",
    "常州市",
    "苏州市",
    "南通市",
    "连云港市",
    "淮安市",
    "盐城市",
    "扬州市",
    "镇江市",
    "泰州市",
    "宿迁市",
)
CSV_SUFFIXES = (".csv",)
XLSX_SUFFIXES = (".xlsx", ".xlsm")


# One column of the register file as DESIGN.md's "Register file columns" defines it.
@dataclass(frozen=True)
class RegisterColumn:
    field: str  # the System column it fills (department_name fills Department.name)
    english: str
    chinese: str
    required: bool = False

    def label(self, chinese: bool) -> str:
        return self.chinese if chinese else self.english


COLUMNS = (
    RegisterColumn("code", "system_code", "系统编码", required=True),
    RegisterColumn("name", "name", "系统名称", required=True),
    RegisterColumn("department_code", "department_code", "部门编码", required=True),
    RegisterColumn("department_name", "department", "主管部门", required=True),
    RegisterColumn("city", "city", "地市", required=True),
    RegisterColumn("classified", "classified", "是否涉密", required=True),
    RegisterColumn("mlps_level", "mlps_level", "等保级别", required=True),
    RegisterColumn("network_zone", "network_zone", "网络区域"),
    RegisterColumn("data_level", "data_level", "数据级别"),
    RegisterColumn("lifecycle", "lifecycle", "生命周期"),
    RegisterColumn("declared_node", "declared_node", "部署节点"),
    RegisterColumn("environment", "environment", "环境"),
    RegisterColumn("criticality", "criticality", "重要程度"),
    RegisterColumn("crypto_assessed_on", "crypto_assessed_on", "密评日期"),
    RegisterColumn("contact", "contact", "联系人"),
    RegisterColumn("exemption_reason", "exemption", "豁免原因"),
    RegisterColumn("exemption_doc", "approval_doc", "批准文号"),
    RegisterColumn("exemption_valid_until", "valid_until", "有效期至"),
)
COLUMNS_BY_FIELD = {column.field: column for column in COLUMNS}
# System columns the register fills; everything but the department's name.
SYSTEM_FIELDS = tuple(column.field for column in COLUMNS if column.field != "department_name")

# Enumerations: the stored English value, then the Chinese words a register may use for it.
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "network_zone": {
        "extranet": ("政务外网", "电子政务外网"),
        "internet": ("互联网区", "互联网"),
        "private_network": ("业务专网",),
    },
    "data_level": {
        "general": ("一般", "一般数据"),
        "important": ("重要", "重要数据"),
        "core": ("核心", "核心数据"),
    },
    "lifecycle": {
        "active": ("在用",),
        "retiring": ("拟下线",),
        "retired": ("已下线",),
    },
    "environment": {
        "production": ("生产", "生产环境"),
        "test": ("测试", "测试环境"),
        "dev": ("开发", "开发环境"),
    },
    "criticality": {
        "high": ("高",),
        "medium": ("中",),
        "low": ("低",),
    },
}
_CHOICE_LOOKUP = {
    name: {key: english for english, words in options.items() for key in (english, *words)}
    for name, options in CHOICES.items()
}
_CHOICE_HELP = {
    name: ", ".join(f"{english}/{words[0]}" for english, words in options.items())
    for name, options in CHOICES.items()
}

_YES = frozenset({"是", "yes", "true", "1"})
_NO = frozenset({"否", "no", "false", "0"})
_CN_NUMERALS = {numeral: value for value, numeral in enumerate("〇一二三四五六七八九十")} | {
    "零": 0,
    "两": 2,
}
_MLPS_PATTERN = re.compile(r"^(?:等保)?\s*第?\s*(\d+|[零〇一二两三四五六七八九十])\s*级?$")
_DATE_PATTERNS = (
    # Excel writes a date cell into CSV as 2024/5/1 or 2024-05-01, sometimes with a midnight time.
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$"),
)
_NUL_REASON = Wording("rg_nul")
_CITY_LOOKUP = (
    {city: city for city in CITIES}
    | {city.removesuffix("市"): city for city in CITIES}
    | {PROVINCIAL: PROVINCIAL, "省本级": PROVINCIAL, "省直": PROVINCIAL}
)


# Core tables: the set-based paths below read and write rows, not ORM objects.
_SYSTEMS: sa.Table = System.__table__  # type: ignore[attr-defined]
_DEPARTMENTS: sa.Table = Department.__table__  # type: ignore[attr-defined]
_NODES: sa.Table = Node.__table__  # type: ignore[attr-defined]


class RegisterFileError(Exception):
    """The register cannot be read at all: no such file, or a kind of file yiyun does not read."""


class RegisterChanged(Wording):
    """The register changed in the ledger while a file was imported; nothing was written."""


# One problem in the register, located the way a spreadsheet user finds it.
@dataclass(frozen=True)
class Problem:
    row: int | None  # as the spreadsheet numbers it (header = 1); None for the whole file
    column: str  # the header as written in the file
    value: str
    reason: str | Wording  # a Wording is worded in the reader's language when shown

    def __str__(self) -> str:
        return self.render("en")

    def render(self, lang: str) -> str:
        """The problem as a line; the reason in `lang` when the catalog words it."""
        reason = self.reason.render(lang) if isinstance(self.reason, Wording) else self.reason
        where = (
            text("rg_where_file", lang)
            if self.row is None
            else text("rg_where_row", lang, row=self.row)
        )
        if self.column:
            where += text("rg_where_separator", lang) + self.column
        if self.value:
            where += f" {self.value!r}"
        return text("rg_problem", lang, where=where, reason=reason)


# One validated register row, with values normalised to what the ledger stores.
@dataclass(slots=True)
class RegisterRow:
    row: int
    code: str
    name: str
    department_code: str
    department_name: str
    city: str
    classified: bool
    mlps_level: int
    network_zone: str | None = None
    data_level: str = "general"
    lifecycle: str = "active"
    declared_node: str | None = None
    environment: str | None = None
    criticality: str | None = None
    crypto_assessed_on: date | None = None
    contact: str | None = None
    exemption_reason: str | None = None
    exemption_doc: str | None = None
    exemption_valid_until: date | None = None

    def system_values(self, fields: Iterable[str] = SYSTEM_FIELDS) -> dict[str, Any]:
        return {name: getattr(self, name) for name in fields}


# What parse_register found: the good rows, every problem, and notes that do not block.
@dataclass
class ParsedRegister:
    rows: list[RegisterRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str | Wording] = field(default_factory=list)
    # System fields whose columns the file has; an absent optional column leaves stored values.
    fields: frozenset[str] = frozenset()
    data_rows: int = 0
    source: str = ""


# One value of a registered system that the register file changes.
@dataclass(frozen=True)
class FieldChange:
    field: str  # the System column (as COLUMNS_BY_FIELD names it)
    before: Any
    after: Any


# A system the register file adds or changes, as the dry run's diff shows it.
@dataclass(frozen=True)
class SystemDiff:
    code: str
    name: str
    department_code: str
    city: str
    changes: tuple[FieldChange, ...] = ()  # empty for a system the file adds


# The outcome of one `registry import`.
@dataclass
class ImportReport:
    path: Path
    source: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    departments_created: int = 0
    departments_updated: int = 0
    not_in_file: int = 0  # registered systems this file does not mention (kept)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str | Wording] = field(default_factory=list)
    # The diff behind `created` and `updated`, classified systems left out (counted in
    # `withheld`): the diff names systems and stored values, the counts do not.
    added: list[SystemDiff] = field(default_factory=list)
    changed: list[SystemDiff] = field(default_factory=list)
    withheld: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------- values


def cell_text(raw: Any) -> str:
    """A cell as the text a person sees in it, trimmed (and without the ' guard our own
    CSV export puts before a leading =, +, - or @)."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return unescape_formula(raw.strip())
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime):
        return raw.date().isoformat() if raw.time() == datetime.min.time() else raw.isoformat(" ")
    if isinstance(raw, date):
        return raw.isoformat()
    return str(raw).strip()


def parse_classified(text: str) -> bool:
    key = text.strip().lower()
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise Wording("rg_yes_no")


def parse_mlps_level(text: str) -> int:
    match = _MLPS_PATTERN.match(text.strip())
    if match is None:
        raise Wording("rg_not_mlps")
    digits = match.group(1)
    level = int(digits) if digits.isdigit() else _CN_NUMERALS[digits]
    if not 1 <= level <= 5:
        raise Wording("rg_mlps_range")
    return level


def parse_choice(name: str, text: str) -> str:
    """The stored English value of an enumerated column (network_zone, lifecycle, …)."""
    key = text.strip()
    lookup = _CHOICE_LOOKUP[name]
    value = lookup.get(key) or lookup.get(key.lower().replace("-", "_").replace(" ", "_"))
    if value is None:
        raise Wording("rg_one_of", choices=_CHOICE_HELP[name])
    return value


def parse_date(raw: Any) -> date:
    """A date cell, or text as YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = cell_text(raw)
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return date(year, month, day)
            except ValueError:
                raise Wording("rg_not_real_date") from None
    raise Wording("rg_not_date")


def parse_city(text: str) -> str:
    """省级, or one of the 13 cities with or without 市 (stored with it: 南京 → 南京市)."""
    city = _CITY_LOOKUP.get(text.strip())
    if city is None:
        raise Wording("rg_unknown_city", provincial=PROVINCIAL, cities="、".join(CITIES))
    return city


def _choice_parser(name: str) -> Callable[[Any], str]:
    return lambda raw: parse_choice(name, cell_text(raw))


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "classified": lambda raw: parse_classified(cell_text(raw)),
    "mlps_level": lambda raw: parse_mlps_level(cell_text(raw)),
    "city": lambda raw: parse_city(cell_text(raw)),
    "crypto_assessed_on": parse_date,
    "exemption_valid_until": parse_date,
} | {name: _choice_parser(name) for name in CHOICES}


# ---------------------------------------------------------------- reading


def check_register_path(path: Path) -> str:
    """The kind of register at `path` ("csv" or "xlsx"), or a RegisterFileError saying why not."""
    if not path.exists():
        raise RegisterFileError(f"register file not found: {path}")
    if not path.is_file():
        raise RegisterFileError(f"not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    hint = " (save it from Excel as .xlsx or CSV)" if suffix in (".xls", ".et", ".ods") else ""
    raise RegisterFileError(
        f"cannot read {path.name}: a register must be a .csv or .xlsx file{hint}"
    )


class _Unreadable(Exception):
    """The file is of a supported kind but its content cannot be read."""


def _decode_csv(payload: bytes) -> tuple[str, str]:
    """The text and a description of its encoding: UTF-16 by its BOM (Excel's "Unicode Text"),
    else UTF-8 (with or without BOM), else GB18030."""
    if payload.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return payload.decode("utf-16"), "UTF-16 text"
        except UnicodeDecodeError as error:
            raise _Unreadable(Wording("err_register_utf16", offset=error.start)) from None
    try:
        text = payload.decode("utf-8-sig")
        return text, "UTF-8 CSV with BOM" if payload.startswith(b"\xef\xbb\xbf") else "UTF-8 CSV"
    except UnicodeDecodeError:
        pass
    # What Excel on a Chinese Windows desktop writes for plain "CSV".
    try:
        return payload.decode("gb18030"), "GB18030 CSV"
    except UnicodeDecodeError as error:
        raise _Unreadable(Wording("err_register_encoding", offset=error.start)) from None


def _read_csv(path: Path) -> tuple[Iterator[tuple[int, Sequence[Any]]], str]:
    text, source = _decode_csv(path.read_bytes())
    # Excel's "Unicode Text" separates cells with tabs; every other CSV with commas.
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise _Unreadable(f"not a readable CSV file: {error}") from None
    return enumerate(records, start=1), source


def _read_xlsx(path: Path) -> tuple[Iterator[tuple[int, Sequence[Any]]], str]:
    from zipfile import BadZipFile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # data_only: a formula cell counts as the value Excel last computed, not its formula text.
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, KeyError, OSError) as error:
        raise _Unreadable(f"not a readable XLSX workbook: {error}") from None
    except Exception as error:  # a damaged part fails deep in openpyxl (XML, values) in any way
        raise _Unreadable(
            f"not a readable XLSX workbook: {type(error).__name__}: {error}"
        ) from None
    try:
        if not workbook.worksheets:
            raise _Unreadable("the workbook has no sheets")
        sheet = workbook.worksheets[0]
        # Producers often write a wrong <dimension>; reading every cell is the safe default.
        sheet.reset_dimensions()
        # Empty rows come back as empty tuples, so counting from 1 gives the sheet's row numbers.
        records = [tuple(values) for values in sheet.iter_rows(values_only=True)]
        source = f"XLSX sheet {sheet.title!r}"
    except _Unreadable:
        raise
    except Exception as error:  # read-only sheets are parsed lazily: damage shows up here too
        raise _Unreadable(
            f"not a readable XLSX workbook: {type(error).__name__}: {error}"
        ) from None
    finally:
        workbook.close()
    return enumerate(records, start=1), source


def _is_blank(cells: Sequence[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _header_key(header: str) -> str:
    # Templates mark required columns with * and may pad headers with full-width spaces.
    return header.strip().strip("*＊").strip().lower().replace(" ", "_").replace("-", "_")


_HEADER_LOOKUP = {key: column for column in COLUMNS for key in (column.english, column.chinese)}


def parse_register(path: Path | str) -> ParsedRegister:
    """Read and validate a register file; nothing here touches the database.

    Raises RegisterFileError when the path is missing or not a CSV/XLSX file; everything wrong
    inside the file is returned as problems, all of them, not just the first.
    """
    path = Path(path)
    kind = check_register_path(path)
    try:
        records, source = _read_csv(path) if kind == "csv" else _read_xlsx(path)
    except _Unreadable as error:
        (reason,) = error.args
        return ParsedRegister(problems=[Problem(None, "", "", reason)])
    parsed = _validate(records)
    parsed.source = source
    return parsed


# How far down a title block above the headers may reach (non-blank rows).
_TITLE_ROWS_MAX = 10


def _known_headers(cells: Sequence[Any]) -> int:
    return sum(_header_key(cell_text(cell).lstrip("\ufeff")) in _HEADER_LOOKUP for cell in cells)


def _find_header(
    records: Iterator[tuple[int, Sequence[Any]]], parsed: ParsedRegister
) -> tuple[int | None, Sequence[Any] | None]:
    """The header row: the first non-blank one, unless title rows stand above it (a sheet's
    caption, a date line), which are skipped and named in a warning. Headerless: the first."""
    looked: list[tuple[int, Sequence[Any]]] = []
    for number, cells in records:
        if _is_blank(cells):
            continue
        filled = sum(not _is_blank([cell]) for cell in cells)
        # Two known headers (one for a one-column row) make a header row, not a title.
        if _known_headers(cells) >= min(2, filled):
            if looked:
                parsed.warnings.append(
                    Wording("err_register_title_rows", header=number, count=len(looked))
                )
            return number, cells
        looked.append((number, cells))
        if len(looked) >= _TITLE_ROWS_MAX:
            break
    return looked[0] if looked else (None, None)


def _validate(records: Iterator[tuple[int, Sequence[Any]]]) -> ParsedRegister:
    parsed = ParsedRegister()
    header_row, headers = _find_header(records, parsed)
    if header_row is None or headers is None:
        parsed.problems.append(Problem(None, "", "", Wording("rg_empty_file")))
        return parsed

    # Map the file's columns to register columns, keeping each header as written.
    mapped: list[tuple[RegisterColumn, int, str]] = []
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for index, raw_header in enumerate(headers):
        header = cell_text(raw_header).lstrip("\ufeff").strip()
        if not header:
            continue
        column = _HEADER_LOOKUP.get(_header_key(header))
        if column is None:
            unknown.append(header)
        elif column.field in seen:
            parsed.problems.append(
                Problem(
                    header_row,
                    header,
                    "",
                    Wording(
                        "rg_column_twice",
                        english=column.english,
                        chinese=column.chinese,
                        other=seen[column.field],
                    ),
                )
            )
        else:
            seen[column.field] = header
            mapped.append((column, index, header))
    if not mapped:
        expected = ", ".join(f"{c.chinese}/{c.english}" for c in COLUMNS if c.required)
        parsed.problems.append(
            Problem(
                header_row,
                "",
                "",
                Wording("rg_no_headers", row=header_row, expected=expected),
            )
        )
        return parsed
    # Name columns a file lacks in the language of the headers it has.
    chinese = sum(_header_key(h) == column.chinese for column, _, h in mapped) * 2 >= len(mapped)
    for column in COLUMNS:
        if column.required and column.field not in seen:
            parsed.problems.append(
                Problem(
                    header_row,
                    column.label(chinese),
                    "",
                    Wording("rg_column_missing", chinese=column.chinese, english=column.english),
                )
            )
    if unknown:
        parsed.warnings.append(Wording("rg_ignored_columns", columns=", ".join(unknown)))
    if parsed.problems:
        return parsed
    parsed.fields = frozenset(seen) - {"department_name"}

    def label(name: str) -> str:
        return seen.get(name) or COLUMNS_BY_FIELD[name].label(chinese)

    width = len(headers)
    code_rows: dict[str, int] = {}
    departments: dict[str, tuple[str, str, int]] = {}
    beyond_header: list[int] = []
    for number, cells in records:
        if _is_blank(cells):
            continue
        parsed.data_rows += 1
        if len(cells) > width and not _is_blank(cells[width:]):
            beyond_header.append(number)
        problems_before = len(parsed.problems)
        values: dict[str, Any] = {}
        failed: set[str] = set()
        for column, index, header in mapped:
            raw = cells[index] if index < len(cells) else None
            text = cell_text(raw)
            if "\x00" in text:
                # No one types it, and PostgreSQL cannot store it: a damaged or crafted file.
                failed.add(column.field)
                parsed.problems.append(
                    Problem(number, header, text.replace("\x00", "\u2400"), _NUL_REASON)
                )
                continue
            if not text:
                if column.required:
                    failed.add(column.field)
                    parsed.problems.append(Problem(number, header, "", Wording("rg_value_missing")))
                continue
            parser = _PARSERS.get(column.field)
            if parser is None:
                values[column.field] = text
                continue
            try:
                values[column.field] = parser(raw)
            except ValueError as error:
                failed.add(column.field)
                reason = error if isinstance(error, Wording) else str(error)
                parsed.problems.append(Problem(number, header, text, reason))

        code = values.get("code")
        if code is not None:
            first = code_rows.setdefault(code, number)
            if first != number:
                parsed.problems.append(
                    Problem(
                        number,
                        label("code"),
                        code,
                        Wording("rg_duplicate_code", first=first, row=number),
                    )
                )
        _check_exemption(parsed, number, values, failed, label)
        _check_department(parsed, number, values, departments, label)
        if len(parsed.problems) == problems_before:
            parsed.rows.append(RegisterRow(row=number, **_with_defaults(values)))
    if beyond_header:
        shown = ", ".join(str(number) for number in beyond_header[:5])
        more = f" and {len(beyond_header) - 5} more" if len(beyond_header) > 5 else ""
        parsed.warnings.append(f"ignored values in columns without a header in rows {shown}{more}")
    return parsed


def _with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    # An empty optional cell means the model's default, so a re-import compares like with like.
    values.setdefault("data_level", "general")
    values.setdefault("lifecycle", "active")
    return values


def _check_exemption(
    parsed: ParsedRegister,
    number: int,
    values: dict[str, Any],
    failed: set[str],
    label: Callable[[str], str],
) -> None:
    # An exemption is a reason with a validity date; a half-filled one would be read as none.
    reason = values.get("exemption_reason")
    valid_until = values.get("exemption_valid_until")
    if reason and valid_until is None and "exemption_valid_until" not in failed:
        parsed.problems.append(
            Problem(
                number,
                label("exemption_valid_until"),
                "",
                Wording("rg_exemption_needs_until", column=label("exemption_valid_until")),
            )
        )
    if valid_until is not None and not reason:
        parsed.problems.append(
            Problem(
                number,
                label("exemption_reason"),
                "",
                Wording("rg_without_reason", column=label("exemption_valid_until")),
            )
        )
    if values.get("exemption_doc") and not reason:
        parsed.problems.append(
            Problem(
                number,
                label("exemption_reason"),
                "",
                Wording("rg_without_reason", column=label("exemption_doc")),
            )
        )


def _check_department(
    parsed: ParsedRegister,
    number: int,
    values: dict[str, Any],
    departments: dict[str, tuple[str, str, int]],
    label: Callable[[str], str],
) -> None:
    code, name, city = (values.get(key) for key in ("department_code", "department_name", "city"))
    if code is None or name is None or city is None:
        return
    first = departments.setdefault(code, (name, city, number))
    if first[:2] == (name, city):
        return
    column = label("department_name") if first[0] != name else label("city")
    parsed.problems.append(
        Problem(
            number,
            column,
            name if first[0] != name else city,
            Wording(
                "rg_department_differs",
                code=code,
                first_name=first[0],
                first_city=first[1],
                first_row=first[2],
                name=name,
                city=city,
            ),
        )
    )


def write_problems(path: Path, problems: Iterable[Problem]) -> None:
    """The problems as CSV (row, column, value, reason), safe to open in a spreadsheet."""
    # utf-8-sig: Excel on a Chinese desktop only recognises UTF-8 CSV by its BOM.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "column", "value", "reason"])
        for problem in problems:
            writer.writerow(
                [
                    "" if problem.row is None else problem.row,
                    escape_formula(problem.column),
                    escape_formula(problem.value),
                    escape_formula(str(problem.reason)),
                ]
            )


# ---------------------------------------------------------------- applying


def import_register(
    *, session: Session, path: Path | str, dry_run: bool = False, now: datetime | None = None
) -> ImportReport:
    """Validate the register and upsert its departments and systems in the caller's transaction.

    A file with any problem writes nothing. Systems absent from the file are kept and counted.
    The caller commits (the CLI uses session_scope); `dry_run` only counts.
    """
    path = Path(path)
    parsed = parse_register(path)
    report = ImportReport(
        path=path,
        source=parsed.source,
        dry_run=dry_run,
        rows=parsed.data_rows,
        problems=parsed.problems,
        warnings=list(parsed.warnings),
    )
    if parsed.problems:
        return report
    now = now or utcnow()
    _apply_departments(session=session, rows=parsed.rows, report=report)
    _apply_systems(session=session, parsed=parsed, report=report, now=now)
    _warn_unknown_nodes(session=session, rows=parsed.rows, report=report)
    return report


def register_import(
    *,
    session: Session,
    actor: Actor,
    path: Path | str,
    dry_run: bool,
    now: datetime | None = None,
    file_name: str | None = None,
) -> ImportReport:
    """`registry import` for whoever acts: the register is the province's, so only a province
    grant with `register` may read its diff or change it. A dry run writes nothing (and so
    records nothing); an import that writes is audited with the file's name and digest.

    `file_name` is the name the person knows the file by (an upload lands in a temp file)."""
    actor.require("register")
    path = Path(path)
    try:
        report = import_register(session=session, path=path, dry_run=dry_run, now=now)
    except sa.exc.IntegrityError:
        # Another import inserted the same code or department meanwhile: nothing lands.
        raise RegisterChanged("register_changed") from None
    if report.ok and not dry_run:
        record(
            session=session,
            actor=actor,
            action="register.import",
            target=file_name or path.name,
            after={
                "file": file_name or path.name,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "departments_created": report.departments_created,
                "departments_updated": report.departments_updated,
                "not_in_file": report.not_in_file,
            },
            now=now,
        )
    return report


def diff_value(value: Any, lang: str) -> str:
    """A stored or imported value as the diff shows it: dates as ISO, nothing as (empty)."""
    if value is None or value == "":
        return text("register_diff_empty", lang)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def describe_diff(report: ImportReport, lang: str) -> list[str]:
    """The dry run's diff as lines: systems added, systems changed (column: before → after,
    under the register's own column names), and the classified ones counted, not named."""
    chinese = lang == "zh"
    lines = [
        text(
            "register_diff_added",
            lang,
            code=system.code,
            name=system.name,
            department=system.department_code,
            city=system.city,
        )
        for system in report.added
    ]
    for system in report.changed:
        changes = text("register_diff_join", lang).join(
            text(
                "register_diff_change",
                lang,
                field=COLUMNS_BY_FIELD[change.field].label(chinese),
                before=diff_value(change.before, lang),
                after=diff_value(change.after, lang),
            )
            for change in system.changes
        )
        lines.append(
            text("register_diff_changed", lang, code=system.code, name=system.name, changes=changes)
        )
    if report.withheld:
        lines.append(text("register_diff_withheld", lang, count=report.withheld))
    return lines


def _apply_departments(*, session: Session, rows: list[RegisterRow], report: ImportReport) -> None:
    existing = {row.code: row for row in session.connection().execute(sa.select(_DEPARTMENTS))}
    wanted = {row.department_code: (row.department_name, row.city) for row in rows}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for code, (name, city) in wanted.items():
        level = "province" if city == PROVINCIAL else "city"
        current = existing.get(code)
        if current is None:
            inserts.append({"code": code, "name": name, "level": level, "city": city})
            continue
        # The register cannot tell a county from its city; keep a county that was set elsewhere.
        if level == "city" and current.level == "county":
            level = "county"
        if (current.name, current.city, current.level) != (name, city, level):
            updates.append({"id": current.id, "name": name, "city": city, "level": level})
    report.departments_created = len(inserts)
    report.departments_updated = len(updates)
    if report.dry_run:
        return
    _write(session=session, table=_DEPARTMENTS, inserts=inserts, updates=updates)


def _apply_systems(
    *, session: Session, parsed: ParsedRegister, report: ImportReport, now: datetime
) -> None:
    existing = {row.code: row for row in session.connection().execute(sa.select(_SYSTEMS))}
    fields = [name for name in SYSTEM_FIELDS if name in parsed.fields]
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in parsed.rows:
        current = existing.get(row.code)
        if current is None:
            inserts.append(row.system_values() | {"created_at": now, "updated_at": now})
            _note_diff(report, row, classified=row.classified, changes=())
            continue
        values = row.system_values(fields)
        stored = current._mapping
        changes = tuple(
            FieldChange(name, stored[name], value)
            for name, value in values.items()
            if stored[name] != value
        )
        if changes:
            # Every update carries the same keys, so the driver runs them as one executemany.
            updates.append(values | {"id": current.id, "updated_at": now})
            classified = row.classified or bool(stored["classified"])
            _note_diff(report, row, classified=classified, changes=changes)
    report.created = len(inserts)
    report.updated = len(updates)
    report.unchanged = len(parsed.rows) - len(inserts) - len(updates)
    report.not_in_file = len(existing.keys() - {row.code for row in parsed.rows})
    if report.dry_run:
        return
    _write(session=session, table=_SYSTEMS, inserts=inserts, updates=updates)


def _note_diff(
    report: ImportReport,
    row: RegisterRow,
    *,
    classified: bool,
    changes: tuple[FieldChange, ...],
) -> None:
    # Classified before or after the import: counted, never named (inventory/confidentiality.py).
    if classified:
        report.withheld += 1
        return
    diff = SystemDiff(row.code, row.name, row.department_code, row.city, changes)
    (report.changed if changes else report.added).append(diff)


def _write(
    *,
    session: Session,
    table: sa.Table,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
) -> None:
    """One multi-row INSERT and one executemany UPDATE by id, on the session's transaction.

    Core statements, not ORM bulk ones: the ORM splits rows by which values are None, which
    turned 20,000 inserts into ~16,000 statements on PostgreSQL.
    """
    connection = session.connection()
    if inserts:
        connection.execute(sa.insert(table), inserts)
    if updates:
        # SET takes its columns from the parameter keys; the row's id travels as "_id" so it
        # is matched on in WHERE rather than set.
        statement = sa.update(table).where(table.c.id == sa.bindparam("_id"))
        connection.execute(statement, [_by_id(row) for row in updates])


def _by_id(row: dict[str, Any]) -> dict[str, Any]:
    values = dict(row)
    values["_id"] = values.pop("id")
    return values


def _warn_unknown_nodes(*, session: Session, rows: list[RegisterRow], report: ImportReport) -> None:
    declared = {row.declared_node for row in rows if row.declared_node}
    if not declared:
        return
    known = set(session.connection().execute(sa.select(_NODES.c.id)).scalars())
    unknown = sorted(declared - known)
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        report.warnings.append(
            f"{len(unknown)} declared node(s) are not defined yet (yiyun nodes apply): {shown}"
        )


# ---------------------------------------------------------------- listing

LIST_COLUMNS = (
    "code",
    "name",
    "department_code",
    "department",
    "city",
    "classified",
    "mlps_level",
    "data_level",
    "network_zone",
    "lifecycle",
    "declared_node",
    "exemption_valid_until",
)

TABLE_COLUMNS = (
    "code",
    "name",
    "department_code",
    "city",
    "classified",
    "mlps_level",
    "lifecycle",
)


def list_systems(
    *, session: Session, disclosure: Disclosure | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Registered systems sorted by code, and how many classified ones were left out.

    Classified systems are counted but never named unless the disclosure includes them.
    """
    disclosure = disclosure or Disclosure()
    systems = _SYSTEMS.c
    departments = _DEPARTMENTS.c
    query = sa.select(
        *(systems[name] for name in LIST_COLUMNS if name != "department"),
        departments.name.label("department"),
    ).select_from(_SYSTEMS.outerjoin(_DEPARTMENTS, departments.code == systems.department_code))
    found = [dict(row._mapping) for row in session.connection().execute(query)]
    shown = [
        r for r in found if disclosure.shows_system(session, r["code"], classified=r["classified"])
    ]
    # Sorted here, not in SQL: PostgreSQL's locale collation would order codes unlike SQLite's.
    return sorted(shown, key=lambda r: r["code"]), len(found) - len(shown)


def find_system(
    *, session: Session, code: str, disclosure: Disclosure | None = None
) -> System | None:
    """The registered system with this code, or None: also when the disclosure withholds it,
    so a classified code is refused exactly as an unknown one and never confirmed."""
    disclosure = disclosure or Disclosure()
    system = session.exec(select(System).where(col(System.code) == code)).first()
    if system is None or not disclosure.answers_about(session, code, classified=system.classified):
        return None
    return system
