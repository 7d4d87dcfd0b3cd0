"""Policy violations the inventory can prove: new resources on frozen nodes (不再新建或外租),
and resources no system claims."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import Node, Resource, ScopeResult

FREEZE = "freeze"
UNATTRIBUTED = "unattributed"
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


def first_complete_scans(*, session: Session) -> dict[str, datetime]:
    """node → end of its first `ok` scope listing (what was there then predates yiyun)."""
    query = (
        select(ScopeResult.node_id, sa.func.min(ScopeResult.finished_at))
        .where(ScopeResult.status == "ok")
        .group_by(col(ScopeResult.node_id))
    )
    return {node: finished for node, finished in session.exec(query) if finished is not None}


def freeze_violations(*, session: Session, tz: ZoneInfo) -> list[Violation]:
    """Live resources on frozen non-one_cloud nodes created after the freeze date."""
    frozen = {
        n.id: n
        for n in session.exec(
            select(Node).where(col(Node.one_cloud).is_(False), col(Node.frozen_since).is_not(None))
        )
    }
    if not frozen:
        return []
    first_scan = first_complete_scans(session=session)
    query = (
        select(Resource)
        .where(col(Resource.node_id).in_(list(frozen)), col(Resource.deleted_at).is_(None))
        .order_by(col(Resource.node_id), col(Resource.kind), col(Resource.native_id))
    )
    found: list[Violation] = []
    for resource in session.exec(query):
        node = frozen[resource.node_id]
        assert node.frozen_since is not None
        if resource.created_at_source is not None:
            created, basis = resource.created_at_source, "source creation time"
        else:
            # No creation time from the API: only what appeared after the first complete
            # scan is known to be new.
            baseline = first_scan.get(resource.node_id)
            if baseline is None or resource.first_seen_at <= baseline:
                continue
            created, basis = resource.first_seen_at, "first seen after the first complete scan"
        if created.astimezone(tz).date() > node.frozen_since:
            found.append(
                Violation(
                    rule=FREEZE,
                    node_id=resource.node_id,
                    kind=resource.kind,
                    native_id=resource.native_id,
                    name=resource.name,
                    created=created,
                    basis=basis,
                    frozen_since=node.frozen_since,
                )
            )
    return found


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


def unattributed_resources(*, session: Session, limit: int = 1000) -> list[Resource]:
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
    return list(session.exec(query))


def violation_counts(*, session: Session, tz: ZoneInfo) -> Counter[tuple[str, str]]:
    """(rule, node) → number of violations, for the exporter."""
    counts: Counter[tuple[str, str]] = Counter()
    for violation in freeze_violations(session=session, tz=tz):
        counts[(FREEZE, violation.node_id)] += 1
    for (node, _kind), count in unattributed_counts(session=session).items():
        counts[(UNATTRIBUTED, node)] += count
    return counts
