"""Queries that turn the ledger's live resources into evidence of where systems are deployed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import SystemFacts
from inventory.collectors.base import EVIDENCE_KINDS, REPLICATED_KINDS
from inventory.models import Node, Resource, ScanRun, ScopeResult, System


def evidence_clause() -> sa.ColumnElement[bool]:
    """SQL form of collectors.base.is_evidence, for live (non-tombstoned) rows."""
    return sa.and_(
        col(Resource.deleted_at).is_(None),
        col(Resource.system_code).is_not(None),
        sa.or_(
            col(Resource.kind).in_(sorted(EVIDENCE_KINDS)),
            sa.and_(
                col(Resource.kind).in_(sorted(REPLICATED_KINDS)),
                sa.func.coalesce(Resource.replicas, 0) >= 1,
            ),
            sa.and_(
                col(Resource.kind) == "cronjob",
                sa.func.coalesce(Resource.state, "") != "suspended",
            ),
        ),
    )


def evidence_nodes(*, session: Session) -> dict[str, set[str]]:
    """system code → nodes holding live evidence of it."""
    query = select(Resource.system_code, Resource.node_id).where(evidence_clause()).distinct()
    found: dict[str, set[str]] = defaultdict(set)
    for system_code, node_id in session.exec(query):
        found[system_code].add(node_id)  # type: ignore[index]
    return found


def system_facts(*, session: Session) -> list[SystemFacts]:
    """Every registered system with the evidence the inventory holds for it."""
    evidence = evidence_nodes(session=session)
    systems = session.exec(select(System).order_by(col(System.code))).all()
    return [
        SystemFacts(
            code=s.code,
            city=s.city,
            department_code=s.department_code,
            classified=s.classified,
            lifecycle=s.lifecycle,
            exemption_valid_until=s.exemption_valid_until,
            declared_node=s.declared_node,
            evidence_nodes=frozenset(evidence.get(s.code, ())),
        )
        for s in systems
    ]


def one_cloud_nodes(*, session: Session) -> frozenset[str]:
    rows = session.exec(select(Node.id).where(col(Node.one_cloud).is_(True)))
    return frozenset(rows)


def last_ok_scans(*, session: Session) -> dict[str, datetime]:
    """node → end of the latest scan run in which every scope of that node listed completely."""
    failed = sa.func.sum(sa.case((col(ScopeResult.status) != "ok", 1), else_=0))
    query = (
        select(ScopeResult.node_id, sa.func.max(ScopeResult.finished_at), failed)
        # A run that never finished (killed) recorded only the scopes done before it died:
        # its all-`ok` results say nothing about the scopes it never reached.
        .join(ScanRun, col(ScanRun.id) == col(ScopeResult.run_id))
        .where(col(ScanRun.finished_at).is_not(None))
        .group_by(col(ScopeResult.node_id), col(ScopeResult.run_id))
    )
    latest: dict[str, datetime] = {}
    for node_id, finished_at, failures in session.exec(query):
        # max() keeps the column's type, so finished_at comes back timezone-aware.
        if failures or finished_at is None:
            continue
        if node_id not in latest or finished_at > latest[node_id]:
            latest[node_id] = finished_at
    return latest


def stale_nodes(*, session: Session, now: datetime, freshness: timedelta) -> list[str]:
    """Nodes with sources whose last complete scan is older than the limit, or never happened."""
    latest = last_ok_scans(session=session)
    nodes = session.exec(select(Node).order_by(col(Node.id))).all()
    return [
        n.id for n in nodes if n.sources and (n.id not in latest or now - latest[n.id] > freshness)
    ]
