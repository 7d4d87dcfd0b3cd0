"""The system register: upload a CSV/XLSX register, see its diff (dry run), or apply it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, UploadFile
from pydantic import BaseModel, Field

from inventory.i18n import Wording, text
from inventory.registry import (
    CSV_SUFFIXES,
    XLSX_SUFFIXES,
    ImportReport,
    SystemDiff,
    register_import,
)
from service.context import CurrentActor, Lang, Ledger, needs
from service.problems import PROBLEM, problem

router = APIRouter(tags=["register"])
# Twenty thousand systems fill about 5 MiB of CSV: anything far beyond is not a register.
MAX_UPLOAD_MIB = 20
_CHUNK = 1 << 20


class RegisterUploadRefused(Wording):
    """An upload that is not a register yiyun reads (HTTP 422), checked by its name's suffix."""


class RegisterRejected(Wording):
    """A register with problems: nothing imported; every problem travels in the body (422)."""


class FieldChangePublic(BaseModel):
    field: str = Field(description="The system's column, as `registry list --format json`.")
    column: str = Field(description="The register's heading for it, in the reader's language.")
    before: Any
    after: Any


class SystemDiffPublic(BaseModel):
    code: str
    name: str
    department_code: str
    city: str
    changes: list[FieldChangePublic] = Field(description="Empty for a system the file adds.")


class RegisterDiffPublic(BaseModel):
    """What the register file adds and changes; classified systems are counted in `withheld`."""

    dry_run: bool
    file: str
    source: str
    rows: int
    added: list[SystemDiffPublic]
    changed: list[SystemDiffPublic]
    unchanged: int
    withheld: int
    departments_created: int
    departments_updated: int
    not_in_file: int = Field(description="Registered systems the file does not name (kept).")
    warnings: list[str]


def _saved_upload(upload: UploadFile, folder: Path) -> Path | None:
    """The upload in `folder` under its own suffix (the reader goes by it), or None when it
    is larger than MAX_UPLOAD_MIB."""
    name = Path(upload.filename or "register").name
    suffix = Path(name).suffix.lower()
    if suffix not in CSV_SUFFIXES + XLSX_SUFFIXES:
        raise RegisterUploadRefused("register_upload_kind", file=name)
    target = folder / f"register{suffix}"
    written = 0
    with target.open("wb") as stream:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > MAX_UPLOAD_MIB << 20:
                return None
            stream.write(chunk)
    return target


def _diff(system: SystemDiff, lang: str) -> SystemDiffPublic:
    from inventory.registry import COLUMNS_BY_FIELD

    changes = [
        FieldChangePublic(
            field=change.field,
            column=COLUMNS_BY_FIELD[change.field].label(lang == "zh"),
            before=change.before,
            after=change.after,
        )
        for change in system.changes
    ]
    return SystemDiffPublic(
        code=system.code,
        name=system.name,
        department_code=system.department_code,
        city=system.city,
        changes=changes,
    )


def _worded(note: str | Wording, lang: str) -> str:
    return note.render(lang) if isinstance(note, Wording) else note


def _rendered(report: ImportReport, name: str, lang: str) -> RegisterDiffPublic:
    """The diff in the reader's language, or the refusal with every problem of the file."""
    warnings = [_worded(w, lang) for w in report.warnings]
    if report.problems:
        rejected = RegisterRejected(
            "register_problems",
            file=name,
            source=report.source,
            count=len(report.problems),
            rows=report.rows,
        )
        rejected.problem_fields = {
            "problems": [
                {
                    "row": p.row,
                    "column": p.column,
                    "value": p.value,
                    "reason": _worded(p.reason, lang),
                    "message": p.render(lang),
                }
                for p in report.problems
            ],
            "warnings": warnings,
        }
        raise rejected
    return RegisterDiffPublic(
        dry_run=report.dry_run,
        file=name,
        source=report.source,
        rows=report.rows,
        added=[_diff(system, lang) for system in report.added],
        changed=[_diff(system, lang) for system in report.changed],
        unchanged=report.unchanged,
        withheld=report.withheld,
        departments_created=report.departments_created,
        departments_updated=report.departments_updated,
        not_in_file=report.not_in_file,
        warnings=warnings,
    )


@router.post(
    "/register/import",
    summary="Check a register file and show its diff (dry run, the default), or apply it.",
    response_model=RegisterDiffPublic,
    openapi_extra=needs("register"),
    responses={
        413: {"description": "Larger than the service accepts.", "content": {PROBLEM: {}}},
        422: {"description": "The file has problems: each one, by row.", "content": {PROBLEM: {}}},
    },
)
def import_register_file(
    file: UploadFile,
    request: Request,
    ledger: Ledger,
    actor: CurrentActor,
    lang: Lang,
    dry_run: Annotated[bool, Query(description="Only show the diff; write nothing.")] = True,
) -> Any:
    name = Path(file.filename or "register").name
    with tempfile.TemporaryDirectory(prefix="yiyun-register-") as folder:
        path = _saved_upload(file, Path(folder))
        if path is None:
            detail = text("register_upload_too_large", lang, file=name, limit=MAX_UPLOAD_MIB)
            return problem(request, 413, "register_upload_too_large", detail)
        with ledger.session() as session:
            report = register_import(
                session=session, actor=actor, path=path, dry_run=dry_run, file_name=name
            )
    return _rendered(report, name, lang)
