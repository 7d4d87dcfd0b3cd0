"""Reading the CSV and XLSX files people edit by hand: encodings, header names, row numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from inventory.i18n import Wording
from inventory.output import unescape_formula
from inventory.registry import Problem


class SheetError(Wording):
    """The file cannot be read at all (missing, wrong kind, undecodable): a catalog key and its
    fields, worded by render(lang)."""


@dataclass
class Sheet:
    """Data rows keyed by field name, each with its row number, plus what was wrong."""

    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # field name → the header as written in the file, for messages.
    headers: dict[str, str] = field(default_factory=dict)


def cell_text(raw: Any) -> str:
    """A cell as the text a person sees in it, trimmed."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    text = str(raw).strip()
    # A cell this tool escaped on export (escape_formula) comes back without the guard.
    return unescape_formula(text)


def _decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # What Excel on a Chinese Windows desktop writes for plain "CSV".
    try:
        return payload.decode("gb18030")
    except UnicodeDecodeError as error:
        raise SheetError("mig_sheet_not_text", offset=error.start) from None


def _records(path: Path) -> list[Sequence[Any]]:
    if not path.is_file():
        raise SheetError("mig_sheet_not_found", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return list(csv.reader(io.StringIO(_decode(path.read_bytes()), newline="")))
        except csv.Error as error:
            raise SheetError("mig_sheet_bad_csv", error=str(error)) from None
    if suffix in (".xlsx", ".xlsm"):
        from zipfile import BadZipFile

        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (BadZipFile, InvalidFileException, KeyError, OSError) as error:
            raise SheetError("mig_sheet_bad_xlsx", error=str(error)) from None
        except Exception as error:  # a damaged part fails deep in openpyxl in any way
            raise SheetError(
                "mig_sheet_bad_xlsx", error=f"{type(error).__name__}: {error}"
            ) from None
        try:
            if not workbook.worksheets:
                raise SheetError("mig_sheet_no_sheets")
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()
            return [tuple(values) for values in sheet.iter_rows(values_only=True)]
        except SheetError:
            raise
        except Exception as error:  # read-only sheets are parsed lazily: damage shows up here too
            raise SheetError(
                "mig_sheet_bad_xlsx", error=f"{type(error).__name__}: {error}"
            ) from None
        finally:
            workbook.close()
    raise SheetError("mig_sheet_wrong_kind", name=path.name)


def _header_key(header: str) -> str:
    return header.strip().strip("*＊").strip().lower().replace(" ", "_").replace("-", "_")


def read_sheet(
    path: Path | str, *, aliases: Mapping[str, Sequence[str]], required: Sequence[str]
) -> Sheet:
    """Rows of the first sheet, columns found by any of their names (English or Chinese).

    Columns the file has but `aliases` does not name are ignored, so an export with extra
    read-only columns can be edited and brought back as it is.
    """
    records = _records(Path(path))
    lookup = {_header_key(name): key for key, names in aliases.items() for name in names}
    sheet = Sheet()
    numbered = [(n, r) for n, r in enumerate(records, start=1) if any(cell_text(c) for c in r)]
    if not numbered:
        sheet.problems.append(Problem(None, "", "", Wording("mig_sheet_empty")))
        return sheet
    header_row, header = numbered[0]
    positions: dict[str, int] = {}
    for position, raw in enumerate(header):
        text = cell_text(raw)
        key = lookup.get(_header_key(text))
        if key is None:
            continue
        if key in positions:
            sheet.problems.append(
                Problem(header_row, text, "", Wording("mig_sheet_second_column", key=key))
            )
            continue
        positions[key] = position
        sheet.headers[key] = text
    for key in required:
        if key not in positions:
            names = " / ".join(aliases[key][:2])
            sheet.problems.append(
                Problem(header_row, "", "", Wording("mig_sheet_missing_column", names=names))
            )
    if sheet.problems:
        return sheet
    for number, record in numbered[1:]:
        values = {
            key: cell_text(record[position]) if position < len(record) else ""
            for key, position in positions.items()
        }
        sheet.rows.append((number, values))
    return sheet
