"""What the migration routes answer (XPublic models, never a table row) and the sheets they read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

from inventory.i18n import Wording
from inventory.models import System
from inventory.registry import Problem
from migrate.assess import effective
from migrate.models import Assessment, Dependency
from migrate.plans import PlanImport, PlanView, constraint_detail, plan_explanation, plan_version

# A plan export or a dependency file of a whole province stays far below this.
MAX_UPLOAD_MIB = 20
_CHUNK = 1 << 20
T = TypeVar("T")

Readiness = Literal["ready", "needs_work", "blocked", "exempt", "out_of_scope"]


class UploadTooLarge(Exception):
    """An upload over MAX_UPLOAD_MIB: answered 413 by the route, nothing read."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class FileRejected(Wording):
    """A file with problems: nothing written; each problem, worded for the reader, goes in the
    body by row (HTTP 422), as the command line lists them."""

    def __init__(self, key: str, problems: Sequence[Problem], lang: str, **fields: Any) -> None:
        super().__init__(key, **fields)
        self.problem_fields = {
            "problems": [
                {
                    "row": p.row,
                    "column": p.column,
                    "value": p.value,
                    "reason": p.reason.render(lang) if isinstance(p.reason, Wording) else p.reason,
                    "message": p.render(lang),
                }
                for p in problems
            ]
        }


@contextmanager
def saved_upload(upload: UploadFile) -> Iterator[Path]:
    """The upload as a file under its own name (the reader goes by its suffix, and a declared
    dependency keeps the file's name as its basis), removed afterwards."""
    import tempfile

    name = upload_name(upload.filename)
    with tempfile.TemporaryDirectory(prefix="yiyun-upload-") as folder:
        target = Path(folder) / name
        written = 0
        with target.open("wb") as stream:
            while chunk := upload.file.read(_CHUNK):
                written += len(chunk)
                if written > MAX_UPLOAD_MIB << 20:
                    raise UploadTooLarge(name)
                stream.write(chunk)
        yield target


def upload_name(given: str | None) -> str:
    """The file's own name as a file here may carry it: no folder, no control character, not
    "." or "..", at most 100 characters; else "upload" with the name's suffix, if any."""
    name = Path(given or "").name
    if name not in ("", ".", "..") and len(name) <= 100 and name.isprintable():
        return name
    suffix = Path(name).suffix
    return "upload" + (suffix if len(suffix) <= 10 and suffix.isprintable() else "")


def page_of(items: Sequence[T], offset: int, limit: int) -> list[T]:
    """One page of a list the use case already put in a stable order."""
    return list(items[offset : offset + limit])


# ---------------------------------------------------------------- dependencies


class DependencyRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_system: str = Field(alias="from", max_length=100, description="The system that depends.")
    to_system: str = Field(alias="to", max_length=100, description="The system it depends on.")
    kind: str = Field(default="calls", max_length=40, description="calls, data or shared_infra.")
    strength: str | None = Field(
        default=None, max_length=20, description="hard or soft (default: by kind, as a file)."
    )


class DependencyPublic(BaseModel):
    """One edge, as `deps list --format json` shows it, with the id to delete it by."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_system: str = Field(alias="from")
    to_system: str = Field(alias="to")
    type: str
    strength: str
    origin: str = Field(description="declared (a file or a person) or inferred (the inventory).")
    basis: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> DependencyPublic:
        return cls.model_validate(row)

    @classmethod
    def of_edge(cls, edge: Dependency) -> DependencyPublic:
        return cls.of(
            {
                "id": edge.id,
                "from": edge.from_system,
                "to": edge.to_system,
                "type": edge.type,
                "strength": edge.strength,
                "origin": edge.origin,
                "basis": edge.basis,
            }
        )


class DependencyImportPublic(BaseModel):
    file: str
    rows: int
    created: int
    updated: int
    unchanged: int
    removed: int


# ---------------------------------------------------------------- assessment


class AssessmentRunRequest(BaseModel):
    node: str | None = Field(
        default=None, max_length=200, description="Check placement on this node (default: best)."
    )


class AssessmentRunPublic(BaseModel):
    scope: Literal["province", "grants"] = Field(
        description="The whole province, or only the systems the caller's grants cover."
    )
    assessed: int = Field(description="Systems assessed that the caller may see.")
    written: int
    unchanged: int
    classified: int = Field(description="Classified systems assessed: counted, never named.")


class AssessmentPublic(BaseModel):
    """A system's assessment in force: the rules' verdict, and a person's override if any."""

    id: int
    system_code: str
    department_code: str
    readiness: str = Field(description="After the override, if any.")
    strategy: str | None
    assessed_readiness: str
    assessed_strategy: str | None
    node: str | None
    rules: list[dict[str, Any]]
    vcpu: float
    memory_gib: float
    storage_gib: float
    assessed_at: datetime
    override_by: str | None
    override_at: datetime | None
    override_rationale: str | None

    @classmethod
    def of(cls, system: System, row: Assessment) -> AssessmentPublic:
        readiness, strategy = effective(row)
        return cls(
            id=row.id or 0,
            system_code=system.code,
            department_code=system.department_code,
            readiness=readiness,
            strategy=strategy,
            assessed_readiness=row.readiness,
            assessed_strategy=row.strategy,
            node=row.node_id,
            rules=row.rules or [],
            vcpu=row.sizing_vcpu,
            memory_gib=row.sizing_memory_gib,
            storage_gib=row.sizing_storage_gib,
            assessed_at=row.assessed_at,
            override_by=row.override_by,
            override_at=row.override_at,
            override_rationale=row.override_rationale,
        )


class OverrideRequest(BaseModel):
    readiness: Readiness | None = None
    strategy: (
        Literal["rehost", "replatform", "refactor", "repurchase", "retire", "retain", "relocate"]
        | None
    ) = None
    reason: str = Field(max_length=2000, description="Why: kept with the override.")
    clear: bool = Field(default=False, description="Remove the override; back to the rules.")
    expected_assessment: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="The assessment id the caller last saw: 409 if another is in force now.",
    )


# ---------------------------------------------------------------- plans


class PlanSummaryPublic(BaseModel):
    """One plan as `plan list --format json` shows it."""

    name: str
    target_node: str
    source_nodes: str
    status: str
    waves: int
    systems: int
    placed: int
    created_by: str
    created_at: datetime


class PlanRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    sources: list[str] = Field(min_length=1, max_length=100, description="Source node ids.")
    target: str = Field(max_length=200, description="The unified-cloud node to move onto.")
    start: date | None = Field(
        default=None,
        ge=date(2000, 1, 1),
        le=date(2100, 12, 31),
        description="First wave starts (default: today).",
    )
    max_systems_per_wave: int = Field(default=20, ge=1, le=10_000)
    wave_days: int = Field(default=14, ge=1, le=366)
    strict_order: bool = Field(
        default=False, description="Dependency targets move in an earlier wave, never the same."
    )


class PlanCreatedPublic(BaseModel):
    name: str
    waves: int
    placed: int
    not_placed: int
    classified_outside: int = Field(description="Classified systems on the sources: not planned.")
    version: str | None


class WavePublic(BaseModel):
    number: int
    start: date
    end: date
    systems: int = Field(description="Systems of this wave the caller may see.")


class PlanSystemPublic(BaseModel):
    """One system's row of the plan, as the CSV export has it, explained in the reader's
    language."""

    wave: int | None
    wave_start: date | None
    wave_end: date | None
    system_code: str
    name: str
    department_code: str
    city: str
    environment: str | None
    criticality: str | None
    mlps_level: int
    readiness: str
    strategy: str | None
    move_group: str
    state: str
    vcpu: float
    memory_gib: float
    storage_gib: float
    risk: str
    explanation: str


class PlanDetailPublic(BaseModel):
    name: str
    target_node: str
    source_nodes: list[str]
    status: str
    parameters: dict[str, Any] | None
    created_by: str
    created_at: datetime
    version: str | None = Field(
        description="Hand it back as expected_version on import: 409 if the plan changed."
    )
    waves: list[WavePublic]
    constraints: list[dict[str, Any]] = Field(description="Unmet constraints of the plan.")
    cross_wave: list[dict[str, Any]] = Field(description="Dependencies that cross waves.")
    systems: list[PlanSystemPublic] = Field(description="This page of the plan's systems.")
    total: int = Field(description="The plan's systems the caller may see.")
    offset: int
    limit: int

    @classmethod
    def of(cls, view: PlanView, lang: str, offset: int, limit: int) -> PlanDetailPublic:
        """The plan as the reader may see it, its explanations worded in the reader's language."""
        review = view.review
        per_wave = Counter(row["wave"] for row in view.rows)
        systems = [
            PlanSystemPublic.model_validate(
                {**row, "explanation": plan_explanation(row, review, lang)}
            )
            for row in page_of(view.rows, offset, limit)
        ]
        return cls(
            name=view.plan.name,
            target_node=view.plan.target_node,
            source_nodes=view.plan.source_nodes,
            status=view.plan.status,
            parameters=view.plan.parameters,
            created_by=view.plan.created_by,
            created_at=view.plan.created_at,
            version=plan_version(view.plan),
            waves=[
                WavePublic(number=w.number, start=w.start, end=w.end, systems=per_wave[w.number])
                for w in view.waves
            ],
            constraints=[
                {
                    "kind": c.get("kind"),
                    "systems": c.get("systems", []),
                    "detail": constraint_detail(c, lang),
                }
                for c in review.get("constraints", [])
            ],
            cross_wave=list(review.get("cross_wave", [])),
            systems=systems,
            total=len(view.rows),
            offset=offset,
            limit=limit,
        )


class MovePublic(BaseModel):
    system_code: str
    from_wave: int | None
    to_wave: int | None


class PlanImportPublic(BaseModel):
    plan: str
    dry_run: bool
    moved: list[MovePublic]
    warnings: list[str]
    unmet_constraints: int = Field(description="As `plan import` counts them.")
    version: str | None = Field(description="The plan's version now: what a next edit expects.")

    @classmethod
    def of(cls, outcome: PlanImport, lang: str) -> PlanImportPublic:
        return cls(
            plan=outcome.plan,
            dry_run=outcome.dry_run,
            moved=[
                MovePublic(system_code=code, from_wave=old, to_wave=new)
                for code, old, new in outcome.moved
            ],
            warnings=[warning.render(lang) for warning in outcome.warnings],
            unmet_constraints=sum(
                1 for c in outcome.constraints if c["kind"] not in ("dependency_stays",)
            ),
            version=outcome.version,
        )


EXPORT_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def attachment(name: str, suffix: str) -> dict[str, str]:
    """The download's headers: the plan's own name as the file's (RFC 6266 with RFC 5987 for
    Chinese names), and a plain ASCII fallback for old clients."""
    from urllib.parse import quote

    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
    return {
        "Content-Disposition": f'attachment; filename="{fallback}.{suffix}"; '
        f"filename*=UTF-8''{quote(name + '.' + suffix, safe='')}"
    }


# ---------------------------------------------------------------- tracking


class ProgressPublic(BaseModel):
    plan: str
    wave: str | None = Field(default=None, description="With by=wave: the number, or none.")
    department: str | None = Field(default=None, description="With by=department.")
    systems: int
    accepted_or_done: int
    progress: float | None
    states: dict[str, int]


class DiscrepancyPublic(BaseModel):
    plan: str
    system_code: str
    department_code: str
    wave: int | None
    state: str
    evidence_status: str
    kind: str
    detail: str


class StatusPublic(BaseModel):
    """`migrate status --format json`: per plan, per group, and the discrepancies."""

    by: Literal["wave", "department"]
    plans: list[ProgressPublic]
    groups: list[ProgressPublic]
    discrepancies: list[DiscrepancyPublic]


class HistoryEntryPublic(BaseModel):
    at: datetime
    plan: str | None
    plan_id: int | None
    from_state: str | None
    to_state: str
    by: str
    note: str | None
    evidence: str | None
    checks: dict[str, Any] | None
