"""Dependencies between systems: declared in a file, or inferred from shared inventory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.access import Actor
from inventory.audit import record
from inventory.confidentiality import Disclosure
from inventory.i18n import Wording
from inventory.models import Resource, System
from inventory.registry import find_system
from migrate.assess import acting_scope, reading_scope
from migrate.messages import Refusal
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


class DependencyError(Wording):
    """A dependency asked for that cannot be (unknown system or edge, bad type): 404 or 422."""


class DependencyRefused(Refusal):
    """A dependency change the ledger's state refuses (already declared, inferred): 409."""


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
    path: Path | str,
    *,
    known_systems: set[str],
    may_declare: Callable[[str], bool] | None = None,
) -> tuple[list[DeclaredDependency], list[Problem]]:
    """Validate every row of a dependency file; nothing here writes. With `may_declare`, a row
    whose `from` system fails it is a problem: its dependencies are not the reader's to say."""
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
        if source in known_systems and may_declare is not None and not may_declare(source):
            problems.append(
                Problem(number, sheet.headers["from"], source, Wording("mig_dep_not_in_scope"))
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
    *,
    session: Session,
    path: Path | str,
    now: datetime,
    replace: bool = False,
    known_systems: set[str] | None = None,
    may_declare: Callable[[str], bool] | None = None,
) -> DependencyImport:
    """Apply a dependency file atomically: all rows valid, or nothing written.

    Rows are upserted on (from, to, type); with `replace`, declared dependencies the file no
    longer lists are removed (only those `may_declare` allows, when given). Inferred
    dependencies are never touched here. `known_systems` defaults to the whole register.
    """
    path = Path(path)
    report = DependencyImport(path=path)
    known = set(session.exec(select(System.code))) if known_systems is None else known_systems
    rows, problems = parse_dependencies(path, known_systems=known, may_declare=may_declare)
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
            if may_declare is not None and not may_declare(dependency.from_system):
                continue
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
        col(Dependency.id),
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
            "id": d.id,
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


# ---------------------------------------------------------------- use cases (session=, actor=)


def dependencies_in_scope(
    *,
    session: Session,
    actor: Actor,
    system: str | None = None,
    disclosure: Disclosure | None = None,
) -> list[dict[str, Any]]:
    """`deps list` for whoever reads, in a stable order (from, to, type, origin, id): an edge
    shows when the actor may read either end, since a department must see what its systems
    depend on and what depends on them; one with a classified end only when the disclosure
    includes it. With `system`, only the edges at that system."""
    within = reading_scope(actor)
    rows = dependency_rows(session=session, disclosure=disclosure)
    if system is not None:
        rows = [r for r in rows if system in (r["from"], r["to"])]
    if within is None:
        return rows
    ends = {r["from"] for r in rows} | {r["to"] for r in rows}
    readable = {
        s.code
        for s in session.exec(select(System).where(col(System.code).in_(sorted(ends))))
        if within(s)
    }
    return [r for r in rows if r["from"] in readable or r["to"] in readable]


def declare_dependency(
    *,
    session: Session,
    actor: Actor,
    from_system: str,
    to_system: str,
    now: datetime,
    kind: str = "calls",
    strength: str | None = None,
) -> Dependency:
    """`deps add`: declare that `from_system` depends on `to_system`. The actor must hold
    `deps` over the depending system's department; the other end may be any registered
    system (departments call each other's). Audited; an edge declared twice is refused."""
    if not actor.signature.strip():
        raise DependencyError("mig_by_required")
    if actor.require_system(session, "deps", from_system) is None:
        raise DependencyError("mig_unknown_system", code=from_system)
    if find_system(session=session, code=to_system) is None:
        raise DependencyError("mig_unknown_system", code=to_system)
    if from_system == to_system:
        raise DependencyError("mig_dep_self")
    kind_code = _TYPE_LOOKUP.get(kind.strip().lower())
    if kind_code is None:
        raise DependencyError("mig_dep_bad_type")
    # As in a file: a shared resource means the systems cannot run apart.
    strength_code = (
        _STRENGTH_LOOKUP.get(strength.strip().lower())
        if strength
        else ("hard" if kind_code == "shared_infra" else "soft")
    )
    if strength_code is None:
        raise DependencyError("mig_dep_bad_strength")
    edge = Dependency(
        from_system=from_system,
        to_system=to_system,
        type=kind_code,
        strength=strength_code,
        origin=DECLARED,
        updated_at=now,
    )
    held = session.exec(
        select(Dependency).where(
            col(Dependency.from_system) == from_system,
            col(Dependency.to_system) == to_system,
            col(Dependency.type) == kind_code,
            col(Dependency.origin) == DECLARED,
        )
    ).first()
    if held is not None:
        raise _declared_already(edge, held)
    session.add(edge)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # Declared by someone else since the check above: the unique edge constraint decides.
        raise _declared_already(edge, None) from None
    record(
        session=session,
        actor=actor,
        action="deps.add",
        target=f"{from_system}->{to_system}",
        after=_edge_facts(edge),
        now=now,
    )
    return edge


def _edge_facts(edge: Dependency) -> dict[str, Any]:
    return {
        "id": edge.id,
        "from": edge.from_system,
        "to": edge.to_system,
        "type": edge.type,
        "strength": edge.strength,
        "origin": edge.origin,
    }


def _declared_already(edge: Dependency, held: Dependency | None) -> DependencyRefused:
    refusal = DependencyRefused(
        "mig_dep_exists",
        source=edge.from_system,
        target=edge.to_system,
        type=Label("mig_dep_type", edge.type),
    )
    if held is not None:
        refusal.problem_fields = {"current": _edge_facts(held)}
    return refusal


def remove_dependency(
    *, session: Session, actor: Actor, dependency_id: int, now: datetime
) -> Dependency:
    """`deps delete`: remove a declared dependency. The actor must hold `deps` over the
    depending system's department; an edge the actor cannot see reads as unknown, and an
    inferred one is refused (the inventory puts it back: it goes when the sharing ends)."""
    if not actor.signature.strip():
        raise DependencyError("mig_by_required")
    edge = session.get(Dependency, dependency_id)
    shown = edge is not None and any(
        r["id"] == dependency_id
        for r in dependencies_in_scope(session=session, actor=actor, system=edge.from_system)
    )
    if edge is None or not shown:
        raise DependencyError("mig_dep_unknown", id=dependency_id)
    source = find_system(session=session, code=edge.from_system)
    if source is None:  # a system gone from the register: only the province may tidy up
        actor.require("deps")
    else:
        actor.require("deps", department=source.department_code, city=source.city)
    if edge.origin != DECLARED:
        raise DependencyRefused("mig_dep_inferred", id=dependency_id, basis=edge.basis or "-")
    before = _edge_facts(edge)
    # Conditional on the row still being there: of two deletes at once, the second is told
    # the edge is unknown, never that a delete matched nothing.
    gone = session.execute(
        sa.delete(Dependency)
        .where(col(Dependency.id) == dependency_id)
        .execution_options(synchronize_session=False)
    )
    if gone.rowcount != 1:  # type: ignore[attr-defined]
        raise DependencyError("mig_dep_unknown", id=dependency_id)
    session.expunge(edge)
    record(
        session=session,
        actor=actor,
        action="deps.delete",
        target=f"{before['from']}->{before['to']}",
        before=before,
        now=now,
    )
    return edge


def import_dependency_file(
    *,
    session: Session,
    actor: Actor,
    path: Path | str,
    now: datetime,
    replace: bool = False,
) -> DependencyImport:
    """`deps import` for whoever acts: every row's depending system must be one the actor
    holds `deps` over, else that row is a problem and nothing is written; `replace` removes
    only edges the actor could have declared. Audited when something was applied.

    The local operator (the CLI, which holds the ledger's URL) may name classified systems as
    before; to anyone else they are unknown codes, so no row confirms one exists."""
    within = acting_scope(actor, "deps")
    systems = list(session.exec(select(System)))
    known = {s.code for s in systems if actor.kind == "local" or not s.classified}
    may_declare = None
    if within is not None:
        allowed = {s.code for s in systems if within(s)}
        may_declare = allowed.__contains__
    report = import_dependencies(
        session=session,
        path=path,
        now=now,
        replace=replace,
        known_systems=known,
        may_declare=may_declare,
    )
    if report.ok:
        record(
            session=session,
            actor=actor,
            action="deps.import",
            target=Path(path).name,
            after={
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "removed": report.removed,
                "replace": replace,
            },
            now=now,
        )
    return report
