"""Policy violations the inventory can prove: new resources on frozen nodes (不再新建或外租),
resources no system claims, and systems placed on the unified cloud against the rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.confidentiality import REDACTED, Disclosure
from inventory.evidence import first_complete_scans
from inventory.models import Node, Resource

FREEZE = "freeze"
UNATTRIBUTED = "unattributed"
PLACEMENT = "placement"
# Kinds that run or hold something; a namespace or service without an owner is not worth a page.
ATTRIBUTABLE_KINDS = (
    "vm",
    "volume",
    "bucket",
    "db_instance",
    "deployment",
    "statefulset",
    "daemonset",
    "cronjob",
)


@dataclass(frozen=True)
class Violation:
    rule: str
    node_id: str
    kind: str
    native_id: str
    name: str | None
    created: datetime | None  # the source's creation time, else when a scan first saw it
    basis: str  # "source creation time" or "first seen after the first complete scan"
    frozen_since: date | None
    # A classified system's resource: still a violation, counted, but its id and name are
    # REDACTED (inventory/confidentiality.py).
    redacted: bool = False
    # The system the resource is attributed to, for the reader's scope (queries.policy_findings);
    # never shown: a classified system's code is in it too.
    system_code: str | None = None


@dataclass(frozen=True)
class UnattributedResource:
    """A live resource no system claims, as `report violations --details` lists it."""

    node_id: str
    kind: str
    native_id: str
    name: str | None
    created: datetime | None
    redacted: bool = False


def frozen_nodes(*, session: Session) -> list[Node]:
    """Nodes off the unified cloud that carry a freeze date (a retired node is no longer one)."""
    query = select(Node).where(
        col(Node.one_cloud).is_(False),
        col(Node.frozen_since).is_not(None),
        col(Node.retired_at).is_(None),
    )
    return list(session.exec(query.order_by(col(Node.id))))


def freeze_clause(node: Node, baseline: datetime | None, tz: ZoneInfo) -> sa.ColumnElement[bool]:
    """SQL for "created on a later calendar day (in tz) than the node's freeze date": by the
    source's creation time, else by first sight after the node's first complete scan.

    `baseline` is the end of that scan (evidence.first_complete_scans): the last of the node's
    scopes to finish in the first run that listed them all completely. A row first seen by
    then — in any listing of that run, or in an earlier failed or partial run — was there
    before yiyun could see the whole node, and is never new; without a complete scan yet,
    nothing is judged by first sight.
    """
    assert node.frozen_since is not None
    # A later local calendar day == at or after the next local midnight.
    after = datetime.combine(node.frozen_since + timedelta(days=1), time(), tzinfo=tz)
    by_source_time = col(Resource.created_at_source) >= after
    if baseline is None:
        return by_source_time
    return sa.or_(
        by_source_time,
        sa.and_(
            col(Resource.created_at_source).is_(None),
            col(Resource.first_seen_at) > baseline,
            col(Resource.first_seen_at) >= after,
        ),
    )


def freeze_violations(
    *, session: Session, tz: ZoneInfo, disclosure: Disclosure | None = None
) -> list[Violation]:
    """Live resources on frozen non-one_cloud nodes created after the freeze date; those of a
    classified system redacted unless the disclosure includes them."""
    found, _total = freeze_page(session=session, tz=tz, disclosure=disclosure)
    return found


def freeze_page(
    *,
    session: Session,
    tz: ZoneInfo,
    offset: int = 0,
    limit: int | None = None,
    systems: sa.Select[Any] | None = None,
    disclosure: Disclosure | None = None,
) -> tuple[list[Violation], int]:
    """freeze_violations from `offset` (at most `limit`), by node, kind and native id, and how
    many there are: counted and cut in SQL, so a page of a province's violations builds only
    its own rows. `systems` (a SELECT of system codes) keeps the unattributed resources and
    those of the systems it selects."""
    disclosure = disclosure or Disclosure()
    first_scan = first_complete_scans(session=session)
    nodes = {node.id: node for node in frozen_nodes(session=session)}
    if not nodes:
        return [], 0
    where = sa.and_(
        col(Resource.deleted_at).is_(None),
        sa.or_(
            *(
                sa.and_(
                    col(Resource.node_id) == node.id,
                    freeze_clause(node, first_scan.get(node.id), tz),
                )
                for node in nodes.values()
            )
        ),
    )
    if systems is not None:
        where = sa.and_(
            where,
            sa.or_(col(Resource.system_code).is_(None), col(Resource.system_code).in_(systems)),
        )
    query = (
        select(Resource)
        .where(where)
        .order_by(col(Resource.node_id), col(Resource.kind), col(Resource.native_id))
        .offset(offset)
        .limit(limit)
    )
    found: list[Violation] = []
    for resource in session.exec(query):
        node = nodes[resource.node_id]
        by_source = resource.created_at_source is not None
        shown = disclosure.shows_resource(session, resource)
        found.append(
            Violation(
                rule=FREEZE,
                node_id=node.id,
                kind=resource.kind,
                native_id=resource.native_id if shown else REDACTED,
                name=resource.name if shown else REDACTED,
                created=resource.created_at_source if by_source else resource.first_seen_at,
                basis="source creation time"
                if by_source
                else "first seen after the first complete scan",
                frozen_since=node.frozen_since,
                redacted=not shown,
                system_code=resource.system_code,
            )
        )
    if limit is None and offset == 0:
        return found, len(found)
    total = session.exec(select(sa.func.count()).select_from(Resource).where(where)).one()
    return found, int(total)


def freeze_counts(*, session: Session, tz: ZoneInfo) -> Counter[str]:
    """node → freeze-rule violations, counted in SQL (the exporter's path at province scale)."""
    first_scan = first_complete_scans(session=session)
    counts: Counter[str] = Counter()
    for node in frozen_nodes(session=session):
        query = select(sa.func.count()).where(
            col(Resource.node_id) == node.id,
            col(Resource.deleted_at).is_(None),
            freeze_clause(node, first_scan.get(node.id), tz),
        )
        counts[node.id] = session.exec(query).one()
    return counts


def unattributed_counts(*, session: Session) -> Counter[tuple[str, str]]:
    """(node, kind) → live resources that carry no system tag or label."""
    query = (
        select(Resource.node_id, Resource.kind, sa.func.count())
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).is_(None),
            col(Resource.kind).in_(ATTRIBUTABLE_KINDS),
        )
        .group_by(col(Resource.node_id), col(Resource.kind))
    )
    return Counter({(node, kind): count for node, kind, count in session.exec(query)})


def unattributed_resources(
    *, session: Session, limit: int = 1000, disclosure: Disclosure | None = None
) -> list[UnattributedResource]:
    """Live resources that run or hold something and carry no system label; one in a
    classified system's namespace is redacted unless the disclosure includes it."""
    disclosure = disclosure or Disclosure()
    query = (
        select(Resource)
        .where(
            col(Resource.deleted_at).is_(None),
            col(Resource.system_code).is_(None),
            col(Resource.kind).in_(ATTRIBUTABLE_KINDS),
        )
        .order_by(col(Resource.node_id), col(Resource.kind), col(Resource.native_id))
        .limit(limit)
    )
    found = []
    for resource in session.exec(query):
        shown = disclosure.shows_resource(session, resource)
        found.append(
            UnattributedResource(
                node_id=resource.node_id,
                kind=resource.kind,
                native_id=resource.native_id if shown else REDACTED,
                name=resource.name if shown else REDACTED,
                created=resource.created_at_source,
                redacted=not shown,
            )
        )
    return found


def violation_counts(*, session: Session, tz: ZoneInfo) -> Counter[tuple[str, str]]:
    """(rule, node) → number of violations, for the exporter."""
    counts: Counter[tuple[str, str]] = Counter()
    for node_id, count in freeze_counts(session=session, tz=tz).items():
        if count:
            counts[(FREEZE, node_id)] += count
    for (node, _kind), count in unattributed_counts(session=session).items():
        counts[(UNATTRIBUTED, node)] += count
    return counts


# ---------------------------------------------------------------- placement (合规问题)


@dataclass(frozen=True)
class RuleBreach:
    """One placement rule (R1–R6) a system breaks where it runs, and the facts it was decided
    on: the rule's own result (migrate/rules.py), kept in its stored shape."""

    rule: str
    outcome: str  # blocked / needs_work / out_of_scope
    reason: str  # the rule's English reason: the machine formats carry it
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlacementViolation:
    """A system already on the unified cloud whose node breaks placement rules: a compliance
    finding (部署不合规), never a blocker of a move. A classified system's is counted with its
    code, name and facts REDACTED unless the disclosure includes it."""

    node_id: str
    system_code: str
    name: str | None
    department_code: str | None
    breaches: tuple[RuleBreach, ...]
    redacted: bool = False

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(b.rule for b in self.breaches)


# The placement rules are migrate/'s (R1–R6), a layer above: whoever composes the layers
# (cli.py) installs the check, as it installs the reports' migration view.
PlacementCheck = Callable[..., list[PlacementViolation]]
_placement_check: PlacementCheck | None = None


def use_placement_check(check: PlacementCheck | None) -> None:
    """Install the placement check (migrate.placement.placement_violations): called as
    check(session=…, disclosure=…). inventory/ never imports migrate/."""
    global _placement_check
    _placement_check = check


def placement_violations(
    *, session: Session, disclosure: Disclosure | None = None
) -> list[PlacementViolation]:
    """Systems on the unified cloud placed against R1–R6, by node then system; none when no
    check is installed (inventory alone knows no placement rules)."""
    if _placement_check is None:
        return []
    return _placement_check(session=session, disclosure=disclosure or Disclosure())


# ---------------------------------------------------------------- all findings, as rows


@dataclass(frozen=True)
class Findings:
    """What `report violations` reports: freeze-rule violations, unattributed resources
    (counted per (node, kind), and listed one by one when `details`), placement findings."""

    frozen: list[Violation]
    unattributed: Counter[tuple[str, str]]
    listed: list[UnattributedResource]
    placed: list[PlacementViolation]
    details: bool = False
    # Every finding, when these are one page of them (queries.policy_findings).
    total: int | None = None

    def rows(self, placement_basis: Callable[[PlacementViolation], Any]) -> list[dict[str, Any]]:
        """One row per finding under the rule's code (freeze, placement, unattributed), as
        `report violations --format json` prints them; `placement_basis` words a placement
        finding (its rules' own reasons for machines, a sentence for people)."""
        rows: list[dict[str, Any]] = [
            {
                "rule": v.rule,
                "node": v.node_id,
                "kind": v.kind,
                "native_id": v.native_id,
                "name": v.name,
                "count": 1,
                "created": v.created,
                "frozen_since": v.frozen_since,
                "basis": v.basis,
            }
            for v in self.frozen
        ]
        rows += [
            {
                "rule": PLACEMENT,
                "node": p.node_id,
                "kind": "system",
                "native_id": p.system_code,
                "name": p.name,
                "count": 1,
                "basis": placement_basis(p),
            }
            for p in self.placed
        ]
        if self.details:
            rows += [
                {
                    "rule": UNATTRIBUTED,
                    "node": r.node_id,
                    "kind": r.kind,
                    "native_id": r.native_id,
                    "name": r.name,
                    "count": 1,
                    "created": r.created,
                }
                for r in self.listed
            ]
        else:
            rows += [
                {"rule": UNATTRIBUTED, "node": node, "kind": kind, "count": count}
                for (node, kind), count in sorted(self.unattributed.items())
            ]
        return rows
