"""Dependencies between systems: declared in a file, or inferred from shared inventory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.confidentiality import Disclosure
from inventory.i18n import Wording
from inventory.models import Resource, System
from migrate.models import Dependency
from migrate.planner import Edge
from migrate.sheets import Problem, read_sheet
from migrate.wording import Label

DECLARED = "declared"
INFERRED = "inferred"

# The stored value, then the words a department's spreadsheet may use for it.
_TYPE_WORDS = {
    "calls": ("calls", "call", "调用", "接口调用"),
    "data": ("data", "数据", "数据依赖", "数据共享"),
    "shared_infra": ("shared_infra", "shared-infra", "shared", "共享基础设施", "共享资源"),
}
_STRENGTH_WORDS = {
    "hard": ("hard", "强", "强依赖", "硬"),
    "soft": ("soft", "弱", "弱依赖", "软"),
}
_TYPE_LOOKUP = {w.lower(): key for key, words in _TYPE_WORDS.items() for w in words}
_STRENGTH_LOOKUP = {w.lower(): key for key, words in _STRENGTH_WORDS.items() for w in words}
HEADERS = {
    "from": ("from", "from_system", "依赖方", "调用方", "源系统编码"),
    "to": ("to", "to_system", "被依赖方", "被调用方", "目标系统编码"),
    "type": ("type", "依赖类型", "类型"),
    "strength": ("strength", "依赖强度", "强度"),
}


@dataclass(frozen=True)
class DeclaredDependency:
    row: int
    from_system: str
    to_system: str
    type: str
    strength: str


@dataclass
class DependencyImport:
    """The outcome of one `deps import`: what changed, or every problem and nothing changed."""

    path: Path
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_dependencies(
    path: Path | str, *, known_systems: set[str]
) -> tuple[list[DeclaredDependency], list[Problem]]:
    """Validate every row of a dependency file; nothing here writes."""
    sheet = read_sheet(path, aliases=HEADERS, required=("from", "to", "type"))
    problems = list(sheet.problems)
    rows: list[DeclaredDependency] = []
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    for number, values in sheet.rows:
        before = len(problems)
        source, target = values["from"], values["to"]
        for end, code in (("from", source), ("to", target)):
            if not code:
                problems.append(
                    Problem(number, sheet.headers[end], "", Wording("mig_row_code_required"))
                )
            elif code not in known_systems:
                problems.append(
                    Problem(number, sheet.headers[end], code, Wording("mig_dep_unknown_system"))
                )
        if source and source == target:
            problems.append(Problem(number, sheet.headers["to"], target, Wording("mig_dep_self")))
        kind = _TYPE_LOOKUP.get(values["type"].lower())
        if kind is None:
            problems.append(
                Problem(
                    number,
                    sheet.headers["type"],
                    values["type"],
                    Wording("mig_dep_bad_type"),
                )
            )
        strength_text = values.get("strength", "")
        # A shared resource means the systems cannot run apart: hard unless the file says so.
        default = "hard" if kind == "shared_infra" else "soft"
        strength = _STRENGTH_LOOKUP.get(strength_text.lower()) if strength_text else default
        if strength is None:
            problems.append(
                Problem(
                    number,
                    sheet.headers["strength"],
                    strength_text,
                    Wording("mig_dep_bad_strength"),
                )
            )
        if len(problems) > before or kind is None or strength is None:
            continue
        key = (source, target, kind)
        if key in seen:
            first, first_strength = seen[key]
            if first_strength != strength:
                problems.append(
                    Problem(
                        number,
                        sheet.headers.get("strength", ""),
                        strength,
                        Wording(
                            "mig_dep_conflict",
                            first=first,
                            strength=Label("mig_dep_strength", first_strength),
                        ),
                    )
                )
            continue
        seen[key] = (number, strength)
        rows.append(DeclaredDependency(number, source, target, kind, strength))
    return rows, problems


def import_dependencies(
    *, session: Session, path: Path | str, now: datetime, replace: bool = False
) -> DependencyImport:
    """Apply a dependency file atomically: all rows valid, or nothing written.

    Rows are upserted on (from, to, type); with `replace`, declared dependencies the file no
    longer lists are removed. Inferred dependencies are never touched here.
    """
    path = Path(path)
    report = DependencyImport(path=path)
    known = set(session.exec(select(System.code)))
    rows, problems = parse_dependencies(path, known_systems=known)
    report.rows = len(rows)
    if problems:
        report.problems = problems
        return report
    existing = {
        (d.from_system, d.to_system, d.type): d
        for d in session.exec(select(Dependency).where(col(Dependency.origin) == DECLARED))
    }
    wanted = set()
    for row in rows:
        key = (row.from_system, row.to_system, row.type)
        wanted.add(key)
        current = existing.get(key)
        if current is None:
            session.add(
                Dependency(
                    from_system=row.from_system,
                    to_system=row.to_system,
                    type=row.type,
                    strength=row.strength,
                    origin=DECLARED,
                    basis=path.name,
                    updated_at=now,
                )
            )
            report.created += 1
        elif current.strength != row.strength:
            current.strength = row.strength
            current.basis = path.name
            current.updated_at = now
            session.add(current)
            report.updated += 1
        else:
            report.unchanged += 1
    if replace:
        for key, dependency in existing.items():
            if key not in wanted:
                session.delete(dependency)
                report.removed += 1
    session.flush()
    return report


# ---------------------------------------------------------------- inference


def infer_dependencies(*, session: Session) -> list[tuple[str, str, str]]:
    """(from, to, basis) for systems the inventory shows sharing a Kubernetes namespace.

    Two systems with live resources in the same namespace of the same node share its quotas,
    network policies and service accounts: they cannot run apart, so they get a hard
    shared_infra dependency. Each later system (by code) points at the first one.
    """
    # A namespace row names the namespace itself; a namespaced row says which one it is in.
    space = sa.case(
        (col(Resource.kind) == "namespace", col(Resource.name)), else_=col(Resource.namespace)
    )
    query = (
        select(Resource.node_id, space, Resource.system_code)
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).is_not(None),
            sa.or_(col(Resource.namespace).is_not(None), col(Resource.kind) == "namespace"),
        )
        .distinct()
    )
    sharing: dict[tuple[str, str], set[str]] = defaultdict(set)
    for node_id, namespace, system_code in session.exec(query):
        if namespace and system_code:
            sharing[(node_id, namespace)].add(system_code)
    bases: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (node_id, namespace_name), codes in sorted(sharing.items()):
        if len(codes) < 2:
            continue
        first, *others = sorted(codes)
        for other in others:
            bases[(other, first)].append(f"namespace {node_id}/{namespace_name}")
    return [(a, b, ", ".join(basis)) for (a, b), basis in sorted(bases.items())]


def refresh_inferred(*, session: Session, now: datetime) -> tuple[int, int]:
    """Replace the inferred dependencies with what the inventory shows now: (added, removed)."""
    found = {(a, b): basis for a, b, basis in infer_dependencies(session=session)}
    stored = {
        (d.from_system, d.to_system): d
        for d in session.exec(select(Dependency).where(col(Dependency.origin) == INFERRED))
    }
    added = removed = 0
    for key, dependency in stored.items():
        if key not in found:
            session.delete(dependency)
            removed += 1
        elif dependency.basis != found[key]:
            dependency.basis = found[key]
            dependency.updated_at = now
            session.add(dependency)
    for (a, b), basis in found.items():
        if (a, b) not in stored:
            session.add(
                Dependency(
                    from_system=a,
                    to_system=b,
                    type="shared_infra",
                    strength="hard",
                    origin=INFERRED,
                    basis=basis,
                    updated_at=now,
                )
            )
            added += 1
    session.flush()
    return added, removed


def list_dependencies(*, session: Session) -> list[Dependency]:
    query = select(Dependency).order_by(
        col(Dependency.from_system),
        col(Dependency.to_system),
        col(Dependency.type),
        col(Dependency.origin),
    )
    return list(session.exec(query))


def dependency_rows(
    *, session: Session, disclosure: Disclosure | None = None
) -> list[dict[str, Any]]:
    """Every dependency as `deps list` shows it: one with a classified system at either end
    only when the disclosure includes it, and a classified namespace in a basis redacted."""
    disclosure = disclosure or Disclosure()
    return [
        {
            "from": d.from_system,
            "to": d.to_system,
            "type": d.type,
            "strength": d.strength,
            "origin": d.origin,
            "basis": disclosure.text(session, d.basis),
        }
        for d in list_dependencies(session=session)
        if disclosure.shows_system(session, d.from_system)
        and disclosure.shows_system(session, d.to_system)
    ]


def planner_edges(*, session: Session) -> list[Edge]:
    """Every dependency as the planner sees it (columns only: plans read tens of thousands)."""
    query = select(
        Dependency.from_system, Dependency.to_system, Dependency.type, Dependency.strength
    )
    return [Edge(*row) for row in session.exec(query)]
