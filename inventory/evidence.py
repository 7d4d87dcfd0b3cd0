"""Queries that turn the ledger's live resources into evidence of where systems are deployed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.adoption import SystemFacts
from inventory.collectors.base import EVIDENCE_KINDS, OK, REPLICATED_KINDS, RETIRED
from inventory.models import Node, Resource, ScanRun, ScopeResult, System
from inventory.runs import COMPLETED_RUNS


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


# The listing unit that owns a row, (node, source, kind, scope): only its complete (`ok`)
# listings prove that the row is still there.
ScopeKey = tuple[str, str, str, str]


def scope_label(key: ScopeKey) -> str:
    """The scope as reports and snapshots list it: "node/source/kind/scope"."""
    return "/".join(key)


def retired_nodes(*, session: Session) -> frozenset[str]:
    """Nodes taken out of the ledger (`yiyun nodes retire`): out of the KPI and freshness."""
    return frozenset(session.exec(select(Node.id).where(col(Node.retired_at).is_not(None))))


def evidence_nodes(
    *,
    session: Session,
    expired: Collection[ScopeKey] = (),
    retired: Collection[str] = (),
    codes: Collection[str] | None = None,
) -> dict[str, set[str]]:
    """system code → nodes holding live evidence of it, except rows of `expired` scopes and of
    `retired` nodes.

    The evidence query is the one answered from ix_resource_live_evidence alone, whatever
    has expired. Only when some scope has expired are two more queries asked, each reading
    few rows: which (system, node) pairs the expired scopes hold (through ix_resource_scope),
    and which of those pairs also have evidence outside them (through the system's rows). A
    pair with evidence only in expired scopes is taken out.
    """
    pairs = select(Resource.system_code, Resource.node_id).where(evidence_clause()).distinct()
    if codes is not None:
        # A page of systems (a department's twenty) reads their rows, not the province's.
        pairs = pairs.where(col(Resource.system_code).in_(sorted(codes)))
    query = pairs.where(col(Resource.node_id).not_in(sorted(retired))) if retired else pairs
    found: dict[str, set[str]] = defaultdict(set)
    for system_code, node_id in session.exec(query):
        found[system_code].add(node_id)  # type: ignore[index]
    set_aside = sorted(key for key in expired if key[0] not in retired)
    if not set_aside:
        return found
    in_expired = sa.or_(
        *(
            sa.and_(
                col(Resource.node_id) == node_id,
                col(Resource.source) == source,
                col(Resource.kind) == kind,
                col(Resource.scope) == scope,
            )
            for node_id, source, kind, scope in set_aside
        )
    )
    # evidence_clause() leaves out rows without a system code.
    suspect = {(str(code), node) for code, node in session.exec(pairs.where(in_expired))}
    if not suspect:
        return found
    elsewhere = pairs.where(
        col(Resource.system_code).in_(sorted({code for code, _ in suspect})),
        col(Resource.node_id).in_(sorted({node for _, node in suspect})),
        sa.not_(in_expired),
    )
    kept = {(str(code), node) for code, node in session.exec(elsewhere)}
    for code, node_id in suspect - kept:
        found[code].discard(node_id)
        if not found[code]:
            del found[code]
    return found


def system_facts(
    *,
    session: Session,
    expired: Collection[ScopeKey] = (),
    codes: Collection[str] | None = None,
) -> list[SystemFacts]:
    """Every registered system (or those of `codes`) with the evidence the inventory holds.

    Rows of `expired` scopes are left out (evidence-v2: see expired_scopes), and so are the
    rows of retired nodes under every policy: their rows are tombstoned when they retire, and
    a live one left behind proves nothing any more. A declaration of a retired node is void.
    """
    retired = retired_nodes(session=session)
    evidence = evidence_nodes(session=session, expired=expired, retired=retired, codes=codes)
    query = select(System).order_by(col(System.code))
    if codes is not None:
        query = query.where(col(System.code).in_(sorted(codes)))
    systems = session.exec(query).all()
    return [
        SystemFacts(
            code=s.code,
            city=s.city,
            department_code=s.department_code,
            classified=s.classified,
            lifecycle=s.lifecycle,
            exemption_valid_until=s.exemption_valid_until,
            declared_node=None if s.declared_node in retired else s.declared_node,
            evidence_nodes=frozenset(evidence.get(s.code, ())),
        )
        for s in systems
    ]


def one_cloud_nodes(*, session: Session) -> frozenset[str]:
    """The unified cloud's nodes that are not retired."""
    rows = session.exec(
        select(Node.id).where(col(Node.one_cloud).is_(True), col(Node.retired_at).is_(None))
    )
    return frozenset(rows)


def completed_run() -> sa.ColumnElement[bool]:
    """The scan runs whose results count, for freshness and for evidence age alike: those
    that finished having listed every scope they planned (ok or failed). A run that never
    finished (killed, interrupted, crashed, abandoned, or still running) recorded only the
    scopes done before it stopped: its all-`ok` results say nothing about the scopes it never
    reached."""
    return sa.and_(col(ScanRun.finished_at).is_not(None), col(ScanRun.status).in_(COMPLETED_RUNS))


def _complete_scans(*, session: Session) -> list[tuple[str, datetime]]:
    """(node, end) of every completed scan run in which every scope of that node listed
    completely; the end is the last of those scopes to finish."""
    # A retired scope is no longer planned: its result neither fails nor completes a scan.
    failed = sa.func.sum(sa.case((col(ScopeResult.status).not_in((OK, RETIRED)), 1), else_=0))
    listed = sa.func.sum(sa.case((col(ScopeResult.status) == OK, 1), else_=0))
    query = (
        select(ScopeResult.node_id, sa.func.max(ScopeResult.finished_at), failed, listed)
        .join(ScanRun, col(ScanRun.id) == col(ScopeResult.run_id))
        .where(completed_run())
        .group_by(col(ScopeResult.node_id), col(ScopeResult.run_id))
    )
    # max() keeps the column's type, so the end comes back timezone-aware.
    return [
        (node_id, end)
        for node_id, end, failures, oks in session.exec(query)
        if not failures and oks and end is not None
    ]


def last_ok_scans(*, session: Session) -> dict[str, datetime]:
    """node → end of the latest scan run in which every scope of that node listed completely."""
    latest: dict[str, datetime] = {}
    for node_id, end in _complete_scans(session=session):
        if node_id not in latest or end > latest[node_id]:
            latest[node_id] = end
    return latest


def first_complete_scans(*, session: Session) -> dict[str, datetime]:
    """node → end of its first scan run in which every scope of the node listed completely.
    A row first seen by then was there before yiyun looked (violations' freeze fallback)."""
    first: dict[str, datetime] = {}
    for node_id, end in _complete_scans(session=session):
        if node_id not in first or end < first[node_id]:
            first[node_id] = end
    return first


def stale_nodes(*, session: Session, now: datetime, freshness: timedelta) -> list[str]:
    """Nodes with sources whose last complete scan is older than the limit, or never happened;
    retired nodes are never stale."""
    latest = last_ok_scans(session=session)
    nodes = session.exec(
        select(Node).where(col(Node.retired_at).is_(None)).order_by(col(Node.id))
    ).all()
    return [
        n.id for n in nodes if n.sources and (n.id not in latest or now - latest[n.id] > freshness)
    ]


def expired_scopes(*, session: Session, now: datetime, max_age: timedelta) -> list[ScopeKey]:
    """Scopes whose live evidence rows no longer count under evidence-v2, sorted: no `ok`
    listing in a completed scan run (completed_run, as for stale_nodes) within `max_age`
    before `now`, or never one, while they still hold a live evidence row. Retired nodes have
    none.

    Candidates come from the scope results alone (one GROUP BY that usually returns nothing);
    only they are then probed for a live evidence row, through ix_resource_scope.
    """
    listed = sa.and_(col(ScopeResult.status) == OK, completed_run())
    last_ok = sa.func.max(sa.case((listed, col(ScopeResult.finished_at))))
    last_run = sa.func.max(col(ScopeResult.run_id))
    retired_run = sa.case((col(ScopeResult.status) == RETIRED, col(ScopeResult.run_id)))
    last_retired = sa.func.max(retired_run)
    query = (
        sa.select(
            col(ScopeResult.node_id),
            col(ScopeResult.source),
            col(ScopeResult.kind),
            col(ScopeResult.scope),
            last_run,
            last_retired,
        )
        .join(ScanRun, col(ScanRun.id) == col(ScopeResult.run_id))
        .group_by(
            col(ScopeResult.node_id),
            col(ScopeResult.source),
            col(ScopeResult.kind),
            col(ScopeResult.scope),
        )
        .having(sa.or_(last_ok.is_(None), last_ok < now - max_age))
    )
    candidates: set[ScopeKey] = set()
    for node_id, source, kind, scope, run, retired_in in session.execute(query):
        # A scope whose latest result retired it had its rows tombstoned then.
        if retired_in is None or retired_in != run:
            candidates.add((node_id, source, kind, scope))
    candidates |= _never_recorded(session=session)
    retired = retired_nodes(session=session)
    return sorted(
        key
        for key in candidates
        if key[0] not in retired and _holds_live_evidence(session=session, key=key)
    )


def _never_recorded(*, session: Session) -> set[ScopeKey]:
    """Scopes that a run planned but that have no result in any run: a first listing that an
    interrupted, crashed or killed run (or one still running) left without a result may
    already have written rows, and those were never proven by a complete listing."""
    planned: set[ScopeKey] = set()
    query = select(ScanRun.planned).where(
        col(ScanRun.status).not_in(COMPLETED_RUNS), col(ScanRun.planned).is_not(None)
    )
    for scopes in session.exec(query):
        for node_id, source, kind, scope in scopes or ():
            planned.add((node_id, source, kind, scope))
    if not planned:
        return set()
    nodes = sorted({key[0] for key in planned})
    recorded = session.exec(
        select(ScopeResult.node_id, ScopeResult.source, ScopeResult.kind, ScopeResult.scope)
        .where(col(ScopeResult.node_id).in_(nodes))
        .distinct()
    )
    return planned - set(recorded)


def _holds_live_evidence(*, session: Session, key: ScopeKey) -> bool:
    node_id, source, kind, scope = key
    query = (
        select(Resource.id)
        .where(
            col(Resource.node_id) == node_id,
            col(Resource.source) == source,
            col(Resource.kind) == kind,
            col(Resource.scope) == scope,
            evidence_clause(),
        )
        .limit(1)
    )
    return session.exec(query).first() is not None
