"""Read use cases the CLI and the API share: the KPI, systems, nodes, scans, findings, trend."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.access import AccessDenied, Actor, system_filter
from inventory.adoption import (
    EVIDENCE_V2,
    STATUSES,
    AdoptionResult,
    PolicySwitches,
    compute_adoption,
)
from inventory.allocation import ALLOCATION_KINDS, node_allocation
from inventory.collectors.base import OK
from inventory.confidentiality import REDACTED, ClassifiedLedger, Disclosure, read_classified
from inventory.evidence import (
    ScopeKey,
    completed_run,
    evidence_clause,
    last_ok_scans,
    one_cloud_nodes,
    retired_nodes,
)
from inventory.i18n import Wording
from inventory.models import (
    AdoptionSnapshot,
    Department,
    Node,
    Resource,
    ScanRun,
    ScopeResult,
    System,
)
from inventory.nodes import list_nodes
from inventory.reports import Evidence, as_contract, gather_evidence, policy_from, snapshot_rows
from inventory.runs import scope_rows
from inventory.settings import Settings
from inventory.violations import (
    Findings,
    Violation,
    freeze_page,
    placement_violations,
    unattributed_counts,
    unattributed_resources,
)


class UnknownToReader(Wording):
    """Nothing by that name that the reader may see: an unknown, a classified and an
    out-of-scope system read alike (HTTP 404 by the key's `_unknown` ending)."""


def require_reader(actor: Actor) -> None:
    """Every role reads within its scope; only an actor without any grant reads nothing."""
    if not any(grant.allows("read") for grant in actor.grants):
        raise AccessDenied(
            "access_denied", principal=actor.principal, action="read", target="province"
        )


# --- the ledger's mark, and what is kept while it stands ---------------------------------------


@dataclass(frozen=True)
class LedgerMark:
    """A few aggregates, each answered from a primary key or a small table, that move whenever
    what the reads compute from moves: the register (a new or a changed system), the nodes
    (applied, retired, revived), and the inventory (a new or finished scan run, a scope's
    recorded result, which commits with the rows it swept, and any new resource row).

    Rows a scope writes in batches before its result is recorded show once it is: a page
    reads the ledger as of the last scope that finished."""

    register: tuple[Any, ...]
    estate: tuple[Any, ...]


def _scalar(column: Any, table: Any) -> Any:
    return sa.select(column).select_from(table).scalar_subquery()


_MARK = sa.select(
    _scalar(sa.func.max(System.id), System),
    _scalar(sa.func.max(System.updated_at), System),
    _scalar(sa.func.count(), Node),
    _scalar(sa.func.max(Node.updated_at), Node),
    _scalar(sa.func.count(col(Node.retired_at)), Node),
    _scalar(sa.func.max(Node.retired_at), Node),
    _scalar(sa.func.max(ScanRun.id), ScanRun),
    _scalar(sa.func.count(col(ScanRun.finished_at)), ScanRun),
    _scalar(sa.func.max(ScopeResult.id), ScopeResult),
    _scalar(sa.func.max(Resource.id), Resource),
)
# The statement as each dialect writes it, compiled once: it runs on every read request.
_MARK_SQL: dict[str, str] = {}


def ledger_mark(session: Session) -> LedgerMark:
    """One round trip; none of it reads a resource row (max(id) is the primary key's end).

    The register is never deleted from (an import keeps the systems it no longer lists), so a
    new system moves max(id) and a changed one max(updated_at), which every writer sets. The
    values are compared, never read: they come back as the driver gives them."""
    kept = session.info.get(_MARK_KEPT)
    if isinstance(kept, LedgerMark):
        return kept
    connection = session.connection()
    dialect = connection.dialect
    sql = _MARK_SQL.get(dialect.name)
    if sql is None:
        sql = _MARK_SQL[dialect.name] = str(_MARK.compile(dialect=dialect))
    values = tuple(connection.exec_driver_sql(sql).one())
    mark = LedgerMark(register=values[:2], estate=values)
    session.info[_MARK_KEPT] = mark
    return mark


# A page asks several kept reads (the KPI three ways, the findings…), each for the mark: it is
# read once per unit of work, and forgotten as soon as the session writes or ends.
_MARK_KEPT = "yiyun.ledger_mark"


@sa.event.listens_for(Session, "after_flush")
@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_rollback")
@sa.event.listens_for(Session, "after_soft_rollback")
def _forget_mark(session: Session, *_args: Any) -> None:
    session.info.pop(_MARK_KEPT, None)


@sa.event.listens_for(Session, "do_orm_execute")
def _forget_mark_on_write(state: Any) -> None:
    if not state.is_select:
        state.session.info.pop(_MARK_KEPT, None)


T = TypeVar("T")


@dataclass
class _Kept(Generic[T]):
    stamp: tuple[Any, ...]
    value: T
    # The moment the value stops being true without any write (evidence ageing out under
    # evidence-v2); None: only a write ends it.
    valid_until: datetime | None


class _Memo:
    """Values computed from the ledger, kept while the stamp they were computed under stands.

    One lock per key: concurrent readers of a stale value wait for the one that recomputes it
    rather than each computing it again. Few keys are alive at once (one ledger per process
    outside tests); the least recently used beyond that are dropped."""

    def __init__(self, size: int = 32) -> None:
        self._kept: OrderedDict[tuple[Any, ...], _Kept[Any]] = OrderedDict()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()
        self._size = size

    def get(
        self,
        key: tuple[Any, ...],
        stamp: tuple[Any, ...],
        now: datetime,
        build: Callable[[], tuple[T, datetime | None]],
    ) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            kept = self._kept.get(key)
            if (
                kept is None
                or kept.stamp != stamp
                or (kept.valid_until is not None and now >= kept.valid_until)
            ):
                value, valid_until = build()
                kept = _Kept(stamp, value, valid_until)
            with self._guard:
                self._kept[key] = kept
                self._kept.move_to_end(key)
                while len(self._kept) > self._size:
                    dropped, _ = self._kept.popitem(last=False)
                    self._locks.pop(dropped, None)
            return kept.value


_memo = _Memo(size=128)


def kept_while(
    session: Session, key: tuple[Any, ...], stamp: tuple[Any, ...], build: Callable[[], T]
) -> T:
    """`build()`'s value, kept while the ledger's mark and the caller's own `stamp` (what the
    value reads beyond the register, the nodes and the inventory) both stand."""
    mark = ledger_mark(session)
    return _memo.get(
        (key[0], _ledger_key(session), *key[1:]),
        (*mark.estate, *stamp),
        datetime.now(tz=UTC),
        lambda: (build(), None),
    )


def _ledger_key(session: Session) -> str:
    # The URL names the database (and, on PostgreSQL, the schema through its options).
    return str(session.get_bind().engine.url)


# --- the KPI ----------------------------------------------------------------------------------


@dataclass
class KpiView:
    """The evidence one policy counts at one moment, and what is computed from it on demand:
    the KPI per switches and grouping, and its report contract less the per-request fields."""

    evidence: Evidence
    one_cloud: frozenset[str]
    today: date
    province: str
    _results: dict[tuple[PolicySwitches, str | None], AdoptionResult] = field(default_factory=dict)
    _contracts: dict[tuple[PolicySwitches, str | None], dict[str, Any]] = field(
        default_factory=dict
    )
    _nodes: dict[str, tuple[str, ...]] | None = None
    _expired_labels: list[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def result(self, switches: PolicySwitches, by: str | None) -> AdoptionResult:
        with self._lock:
            found = self._results.get((switches, by))
            if found is None:
                found = compute_adoption(
                    self.evidence.facts,
                    one_cloud_nodes=self.one_cloud,
                    today=self.today,
                    switches=switches,
                    by=by,
                    province=self.province,
                    policy=self.evidence.policy,
                )
                self._results[(switches, by)] = found
            return found

    def contract(self, switches: PolicySwitches, by: str | None) -> dict[str, Any]:
        """as_contract's figures (as_of, stale_nodes and expired_scopes are the caller's)."""
        result = self.result(switches, by)
        with self._lock:
            found = self._contracts.get((switches, by))
            if found is None:
                found = as_contract(result, as_of=datetime.now(tz=UTC), by=by, stale=[], expired=[])
                self._contracts[(switches, by)] = found
            return found

    def evidence_nodes(self) -> dict[str, tuple[str, ...]]:
        """code → the nodes holding its counted evidence, sorted."""
        with self._lock:
            if self._nodes is None:
                self._nodes = {
                    fact.code: tuple(sorted(fact.evidence_nodes))
                    for fact in self.evidence.facts
                    if fact.evidence_nodes
                }
            return self._nodes

    def expired_scopes(self, session: Session, disclosure: Disclosure | None) -> list[str]:
        """The scopes set aside, as the disclosure may name them; under the default one (which
        reads the classified ledger to redact), worked out once."""
        if disclosure is not None:
            return self.evidence.disclosed_scopes(session, disclosure)
        with self._lock:
            if self._expired_labels is None:
                self._expired_labels = self.evidence.disclosed_scopes(session, Disclosure())
            return list(self._expired_labels)


def _evidence_ages_out(*, session: Session, now: datetime, max_age: timedelta) -> datetime | None:
    """When evidence-v2 would set aside a scope's rows that it counts now: the oldest `ok`
    listing still within the maximum age, plus that age. Until then only a write changes it."""
    listed = sa.and_(col(ScopeResult.status) == OK, completed_run())
    last_ok = sa.func.max(sa.case((listed, col(ScopeResult.finished_at)))).label("last_ok")
    per_scope = (
        sa.select(last_ok)
        .select_from(ScopeResult)
        .join(ScanRun, col(ScanRun.id) == col(ScopeResult.run_id))
        .group_by(
            col(ScopeResult.node_id),
            col(ScopeResult.source),
            col(ScopeResult.kind),
            col(ScopeResult.scope),
        )
        .subquery()
    )
    oldest = session.execute(
        sa.select(sa.func.min(per_scope.c.last_ok)).where(per_scope.c.last_ok >= now - max_age)
    ).scalar()
    if oldest is None:
        return None
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return oldest + max_age


def kpi_view(
    *, session: Session, settings: Settings, policy: str, now: datetime, mark: LedgerMark
) -> KpiView:
    """The KPI's evidence under `policy`, read once per ledger change and calendar day."""
    today = settings.today(now)
    max_age = timedelta(hours=settings.evidence_max_age_hours)
    key = ("kpi", _ledger_key(session), policy, max_age, settings.province)

    def build() -> tuple[KpiView, datetime | None]:
        evidence = gather_evidence(session=session, settings=settings, policy=policy, now=now)
        view = KpiView(
            evidence=evidence,
            one_cloud=one_cloud_nodes(session=session),
            today=today,
            province=settings.province,
        )
        ages_out = None
        if evidence.policy == EVIDENCE_V2:
            ages_out = _evidence_ages_out(session=session, now=now, max_age=max_age)
        return view, ages_out

    return _memo.get(key, (mark.estate, today), now, build)


@dataclass(frozen=True)
class ScanEnds:
    """The live nodes that have sources, and the end of each node's last complete scan."""

    scanned: tuple[str, ...]
    last_ok: dict[str, datetime]

    def stale(self, now: datetime, freshness: timedelta) -> list[str]:
        """evidence.stale_nodes over what is kept: live nodes with sources whose last complete
        scan is older than `freshness`, or never happened."""
        return [
            node
            for node in self.scanned
            if node not in self.last_ok or now - self.last_ok[node] > freshness
        ]


def _scan_ends(session: Session, mark: LedgerMark, now: datetime) -> ScanEnds:
    def build() -> tuple[ScanEnds, None]:
        query = sa.select(col(Node.id), col(Node.sources)).where(col(Node.retired_at).is_(None))
        scanned = sorted(node for node, sources in session.execute(query) if sources)
        return ScanEnds(tuple(scanned), last_ok_scans(session=session)), None

    return _memo.get(("scans", _ledger_key(session)), mark.estate, now, build)


def adoption_kpi(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    switches: PolicySwitches,
    by: str | None = None,
    policy: str | None = None,
    disclosure: Disclosure | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`report adoption` and GET /adoption: the KPI as DESIGN.md's JSON contract.

    The province total and the city and node rows are aggregates every reader may see; the
    department rows are cut to the reader's departments. Classified systems are counted and
    never named; the expired scopes' names are disclosed as `disclosure` allows."""
    require_reader(actor)
    now = now or datetime.now(tz=UTC)
    mark = ledger_mark(session)
    view = kpi_view(
        session=session, settings=settings, policy=policy_from(settings, policy), now=now, mark=mark
    )
    report = dict(view.contract(switches, by))
    report["as_of"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    freshness = timedelta(hours=settings.freshness_hours)
    report["stale_nodes"] = _scan_ends(session, mark, now).stale(now, freshness)
    report["expired_scopes"] = view.expired_scopes(session, disclosure)
    readable = actor.readable_departments(session)
    if by == "department" and readable is not None:
        report["groups"] = [g for g in report["groups"] if g["key"] in readable]
    return report


# --- systems ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """One registered system as the register holds it (models.System less its bookkeeping)."""

    code: str
    name: str
    department_code: str
    city: str
    classified: bool
    mlps_level: int
    data_level: str
    network_zone: str | None
    lifecycle: str
    exemption_reason: str | None
    exemption_doc: str | None
    exemption_valid_until: date | None
    declared_node: str | None
    environment: str | None
    criticality: str | None
    crypto_assessed_on: date | None
    contact: str | None


_ENTRY_COLUMNS = [getattr(System, name) for name in SystemEntry.__slots__]
# The orders the register alone decides, kept sorted; a status order needs the KPI.
REGISTER_SORTS = ("code", "name", "department")
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}


def _sort_key(sort: str, statuses: dict[str, str]) -> Callable[[SystemEntry], Any]:
    if sort == "name":
        return lambda e: e.name
    if sort == "department":
        return lambda e: e.department_code
    if sort == "status":
        return lambda e: _STATUS_RANK.get(statuses.get(e.code, ""), len(STATUSES))
    return lambda e: e.code


def sort_entries(
    entries: Iterable[SystemEntry], sort: str, statuses: dict[str, str] | None = None
) -> list[SystemEntry]:
    """By the field asked for ("-" first: descending), then by code, which is unique, so a
    page boundary never moves between two requests. Code points, not a database collation:
    PostgreSQL's locale would order codes unlike SQLite's."""
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    ordered = sorted(entries, key=lambda e: e.code)
    if name == "code":
        if descending:
            ordered.reverse()
        return ordered
    # Stable: equal fields keep the code order, ascending either way.
    ordered.sort(key=_sort_key(name, statuses or {}), reverse=descending)
    return ordered


@dataclass
class RegisterIndex:
    """Every registered system once, with the buckets and orders a page is cut from."""

    entries: dict[str, SystemEntry]
    by_department: dict[str, list[SystemEntry]]
    by_city: dict[str, list[SystemEntry]]
    classified_codes: list[str]
    _orders: dict[str, list[SystemEntry]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def read(cls, session: Session) -> RegisterIndex:
        rows = session.connection().execute(sa.select(*_ENTRY_COLUMNS))
        entries = sorted((SystemEntry(*row) for row in rows), key=lambda e: e.code)
        by_department: dict[str, list[SystemEntry]] = {}
        by_city: dict[str, list[SystemEntry]] = {}
        for entry in entries:
            by_department.setdefault(entry.department_code, []).append(entry)
            by_city.setdefault(entry.city, []).append(entry)
        classified = [e.code for e in entries if e.classified]
        return cls({e.code: e for e in entries}, by_department, by_city, classified)

    def public_order(self, sort: str) -> list[SystemEntry]:
        """The non-classified systems in a register order, sorted once per register change."""
        with self._lock:
            found = self._orders.get(sort)
            if found is None:
                public = (e for e in self.entries.values() if not e.classified)
                found = self._orders[sort] = sort_entries(public, sort)
            return found


def register_index(*, session: Session, mark: LedgerMark, now: datetime) -> RegisterIndex:
    def build() -> tuple[RegisterIndex, None]:
        return RegisterIndex.read(session), None

    return _memo.get(("register", _ledger_key(session)), mark.register, now, build)


@dataclass(frozen=True)
class SystemQuery:
    """What a reader narrows the systems to, and the order of the page."""

    department: str | None = None
    city: str | None = None
    status: str | None = None
    node: str | None = None
    # A piece of the code or the name, any case.
    q: str | None = None
    sort: str = "code"

    @property
    def narrowed(self) -> bool:
        return any(
            v is not None for v in (self.department, self.city, self.status, self.node, self.q)
        )


@dataclass(frozen=True)
class EvidenceResource:
    """One live resource that shows where a system runs (evidence.evidence_clause)."""

    source: str
    kind: str
    name: str | None
    native_id: str
    namespace: str | None
    state: str | None
    last_seen_at: datetime
    # False under evidence-v2 when its scope has not listed completely within the maximum age.
    counted: bool


@dataclass(frozen=True)
class NodeEvidence:
    node: str
    one_cloud: bool
    resources: tuple[EvidenceResource, ...]


@dataclass(frozen=True)
class FoundSystem:
    """A system as a reader finds it: its register entry, its department's name, its KPI status
    and the nodes its live evidence is on (status None when the KPI was not asked for)."""

    entry: SystemEntry
    department: str | None
    status: str | None
    nodes: tuple[str, ...]
    exempt: bool
    evidence: tuple[NodeEvidence, ...] = ()
    evidence_truncated: bool = False

    def as_row(self) -> dict[str, Any]:
        row = {name: getattr(self.entry, name) for name in SystemEntry.__slots__}
        row.update(
            department=self.department,
            status=self.status,
            nodes=list(self.nodes),
            exempt=self.exempt,
            evidence=self.evidence,
            evidence_truncated=self.evidence_truncated,
        )
        return row


@dataclass(frozen=True)
class SystemsFound:
    items: list[FoundSystem]
    total: int


# A system's evidence as a detail shows it: enough to see where it runs, never a dump.
EVIDENCE_SHOWN = 1000


def find_systems(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    query: SystemQuery = SystemQuery(),
    offset: int = 0,
    limit: int | None = None,
    code: str | None = None,
    disclosure: Disclosure | None = None,
    kpi: bool = True,
    evidence: bool = False,
    now: datetime | None = None,
) -> SystemsFound:
    """`registry list`, GET /systems and GET /systems/{code}: registered systems the actor may
    read, narrowed by `query`, in its stable order, one page of them.

    With `code`, that system alone, or UnknownToReader: an unknown, a classified and an
    out-of-scope code read alike. Classified systems are left out (and tallied by the
    disclosure) unless it includes them. `kpi` adds each system's status under the settings'
    policy and switches, and its evidence nodes; `evidence`, its evidence resources.

    The register and the KPI are computed once per ledger change (ledger_mark), so a page is
    cut from memory: for a province reader with no filter, a slice of a presorted list."""
    require_reader(actor)
    # Only a caller that passed a disclosure reads what it withheld (the CLI's note).
    tally = disclosure is not None
    disclosure = disclosure or Disclosure()
    now = now or datetime.now(tz=UTC)
    mark = ledger_mark(session)
    register = register_index(session=session, mark=mark, now=now)
    needs_kpi = kpi or query.status is not None or query.node is not None or "status" in query.sort
    statuses: dict[str, str] = {}
    nodes: dict[str, tuple[str, ...]] = {}
    view: KpiView | None = None
    if needs_kpi:
        policy = policy_from(settings)
        view = kpi_view(session=session, settings=settings, policy=policy, now=now, mark=mark)
        switches = PolicySwitches(settings.exempt_in_denominator, settings.trust_declared)
        statuses = view.result(switches, None).statuses
        nodes = view.evidence_nodes()
    today = settings.today(now)

    if code is not None:
        entry = register.entries.get(code)
        visible = entry is not None and (
            disclosure.answers_about(session, code, classified=entry.classified)
            and actor.may("read", department=entry.department_code, city=entry.city)
        )
        if entry is None or not visible:
            raise UnknownToReader("reads_system_unknown", code=code)
        page, total = [entry], 1
    else:
        if tally and not disclosure.include_classified:
            # As `registry list` always said: these exist, and were left out.
            for classified in register.classified_codes:
                disclosure.shows_system(session, classified, classified=True)
        page, total = _page(register, actor, query, statuses, nodes, disclosure.include_classified)
        page = page[offset : None if limit is None else offset + limit]

    names = _department_names(session, {e.department_code for e in page})
    shown = evidence_of(session, page, view) if evidence else {}
    found = []
    for entry in page:
        resources, truncated = shown.get(entry.code, ((), False))
        found.append(
            FoundSystem(
                entry=entry,
                department=names.get(entry.department_code),
                status=statuses.get(entry.code) if needs_kpi else None,
                nodes=nodes.get(entry.code, ()),
                exempt=entry.exemption_valid_until is not None
                and entry.exemption_valid_until >= today,
                evidence=resources,
                evidence_truncated=truncated,
            )
        )
    return SystemsFound(found, total)


def _page(
    register: RegisterIndex,
    actor: Actor,
    query: SystemQuery,
    statuses: dict[str, str],
    nodes: dict[str, tuple[str, ...]],
    include_classified: bool,
) -> tuple[list[SystemEntry], int]:
    """Every entry the actor may read that matches the query, in the query's order."""
    sort = query.sort.removeprefix("-")
    if (
        actor.province_wide
        and not query.narrowed
        and sort in REGISTER_SORTS
        and not include_classified
    ):
        ordered = register.public_order(query.sort)
        return ordered, len(ordered)
    # Start from the smallest list that holds every answer, then test each entry.
    if query.department is not None:
        candidates: Iterable[SystemEntry] = register.by_department.get(query.department, [])
    elif query.city is not None:
        candidates = register.by_city.get(query.city, [])
    elif not actor.province_wide:
        candidates = _in_scope(register, actor)
    else:
        candidates = register.entries.values()
    needle = query.q.casefold() if query.q else None
    matched = [
        e
        for e in candidates
        if (include_classified or not e.classified)
        and (query.department is None or e.department_code == query.department)
        and (query.city is None or e.city == query.city)
        and (query.status is None or statuses.get(e.code) == query.status)
        and (query.node is None or query.node in nodes.get(e.code, ()))
        and (needle is None or needle in e.code.casefold() or needle in e.name.casefold())
        and actor.may("read", department=e.department_code, city=e.city)
    ]
    ordered = sort_entries(matched, query.sort, statuses)
    return ordered, len(ordered)


def _in_scope(register: RegisterIndex, actor: Actor) -> list[SystemEntry]:
    """The buckets of the departments and cities the actor's grants read (access.Scope)."""
    found: dict[str, SystemEntry] = {}
    for grant in actor.grants:
        if not grant.allows("read"):
            continue
        if grant.scope.kind == "department":
            bucket = register.by_department.get(grant.scope.value, [])
        elif grant.scope.kind == "city":
            bucket = register.by_city.get(grant.scope.value, [])
        else:
            # Not reached: a province grant that reads makes the actor province-wide.
            bucket = list(register.entries.values())
        found.update((e.code, e) for e in bucket)
    return list(found.values())


_DEPARTMENT_NAMES = sa.select(col(Department.code), col(Department.name))
_NAMED_DEPARTMENTS = _DEPARTMENT_NAMES.where(
    col(Department.code).in_(sa.bindparam("codes", expanding=True))
)


def _department_names(session: Session, codes: set[str]) -> dict[str, str]:
    """Read fresh for the page: a department renamed by the register shows at once."""
    if not codes:
        return {}
    connection = session.connection()
    # Past a few hundred codes, the whole (small) table is cheaper than binding them all.
    if len(codes) > 500:
        return {code: name for code, name in connection.execute(_DEPARTMENT_NAMES)}
    named = connection.execute(_NAMED_DEPARTMENTS, {"codes": sorted(codes)})
    return {code: name for code, name in named}


@dataclass(frozen=True)
class DepartmentEntry:
    code: str
    name: str
    city: str


def departments_readable(
    *, session: Session, actor: Actor, city: str | None = None, code: str | None = None
) -> dict[str, DepartmentEntry]:
    """The departments the actor may read (in `city`, or `code` alone), as the register names
    them: the portal's names and cities beside the KPI's department rows."""
    require_reader(actor)
    query = sa.select(col(Department.code), col(Department.name), col(Department.city))
    if city is not None:
        query = query.where(col(Department.city) == city)
    if code is not None:
        query = query.where(col(Department.code) == code)
    readable = actor.readable_departments(session)
    if readable is not None:
        query = query.where(col(Department.code).in_(sorted(readable)))
    rows = session.execute(query.order_by(col(Department.code)))
    return {c: DepartmentEntry(c, n or c, t or "") for c, n, t in rows}


def department_names(*, session: Session, actor: Actor, codes: set[str]) -> dict[str, str]:
    """code → name of the departments of `codes` the actor may read."""
    require_reader(actor)
    readable = actor.readable_departments(session)
    wanted = codes if readable is None else codes & readable
    return _department_names(session, wanted)


def classified_ledger(session: Session) -> ClassifiedLedger:
    """The classified systems and their namespaces (a scan of the namespace rows, ~0.2 s at
    province scale), kept while the ledger's mark stands: a new namespace row moves it."""
    mark = ledger_mark(session)

    def build() -> tuple[ClassifiedLedger, None]:
        return read_classified(session=session), None

    key = ("classified", _ledger_key(session))
    return _memo.get(key, mark.estate, datetime.now(tz=UTC), build)


def evidence_of(
    session: Session, entries: list[SystemEntry], view: KpiView | None
) -> dict[str, tuple[tuple[NodeEvidence, ...], bool]]:
    """code → its live evidence resources per node (retired nodes' rows prove nothing), and
    whether more than EVIDENCE_SHOWN were left out."""
    if not entries:
        return {}
    retired = retired_nodes(session=session)
    one_cloud = view.one_cloud if view is not None else one_cloud_nodes(session=session)
    expired: set[ScopeKey] = set(view.evidence.expired) if view is not None else set()
    disclosure = Disclosure(_ledger=classified_ledger(session))
    found: dict[str, tuple[tuple[NodeEvidence, ...], bool]] = {}
    for entry in entries:
        query = select(Resource).where(col(Resource.system_code) == entry.code, evidence_clause())
        if retired:
            query = query.where(col(Resource.node_id).not_in(sorted(retired)))
        rows = list(session.exec(query.limit(EVIDENCE_SHOWN + 1)))
        truncated = len(rows) > EVIDENCE_SHOWN
        rows.sort(key=lambda r: (r.node_id, r.kind, r.native_id))
        by_node: dict[str, list[EvidenceResource]] = {}
        for r in rows[:EVIDENCE_SHOWN]:
            # A row in a classified system's namespace names that system: redacted.
            shown = disclosure.shows_resource(session, r)
            by_node.setdefault(r.node_id, []).append(
                EvidenceResource(
                    source=r.source,
                    kind=r.kind,
                    name=r.name if shown else REDACTED,
                    native_id=r.native_id if shown else REDACTED,
                    namespace=r.namespace if shown else REDACTED,
                    state=r.state,
                    last_seen_at=r.last_seen_at,
                    counted=(r.node_id, r.source, r.kind, r.scope) not in expired,
                )
            )
        found[entry.code] = (
            tuple(
                NodeEvidence(node, node in one_cloud, tuple(resources))
                for node, resources in by_node.items()
            ),
            truncated,
        )
    return found


# --- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFound:
    """A node as `nodes list` shows it (nodes.list_nodes' row), what is allocated on it and
    when its last complete scan ended (None when usage was not asked for, or never)."""

    row: dict[str, Any]
    allocated: tuple[float, float, float] | None
    last_complete_scan: datetime | None
    stale: bool


def _allocation(
    session: Session, mark: LedgerMark, now: datetime
) -> dict[str, tuple[float, float, float]]:
    """node → (vCPU, memory GiB, storage GiB) allocated (inventory.allocation), over one
    GROUP BY of the live rows, kept while the ledger's mark stands."""

    def build() -> tuple[dict[str, tuple[float, float, float]], None]:
        query = (
            sa.select(
                col(Resource.node_id),
                col(Resource.kind),
                sa.func.sum(Resource.vcpu),
                sa.func.sum(Resource.memory_gib),
                sa.func.sum(Resource.storage_gib),
            )
            .where(col(Resource.deleted_at).is_(None), col(Resource.kind).in_(ALLOCATION_KINDS))
            .group_by(col(Resource.node_id), col(Resource.kind))
        )
        by_node: dict[str, dict[str, tuple[float, float, float]]] = {}
        for node_id, kind, vcpu, memory, storage in session.execute(query):
            # SUM over rows of unknown size is NULL: nothing known, nothing added.
            sums = (float(vcpu or 0), float(memory or 0), float(storage or 0))
            by_node.setdefault(node_id, {})[kind] = sums
        return {node: node_allocation(kinds) for node, kinds in by_node.items()}, None

    return _memo.get(("allocation", _ledger_key(session)), mark.estate, now, build)


def find_nodes(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    node_id: str | None = None,
    usage: bool = True,
    now: datetime | None = None,
) -> list[NodeFound]:
    """`nodes list`, GET /nodes and GET /nodes/{node_id}: every stored node (retired ones too),
    or the one asked for (UnknownToReader otherwise). Nodes are the estate's infrastructure,
    not any department's systems: every reader sees them. `usage` adds what is allocated on
    each and its last complete scan."""
    require_reader(actor)
    now = now or datetime.now(tz=UTC)
    rows = list_nodes(session=session)
    if node_id is not None:
        rows = [row for row in rows if row["id"] == node_id]
        if not rows:
            raise UnknownToReader("reads_node_unknown", node=node_id)
    if not usage:
        return [NodeFound(row, None, None, False) for row in rows]
    mark = ledger_mark(session)
    allocated = _allocation(session, mark, now)
    ends = _scan_ends(session, mark, now)
    stale = set(ends.stale(now, timedelta(hours=settings.freshness_hours)))
    return [
        NodeFound(
            row=row,
            allocated=allocated.get(row["id"], (0.0, 0.0, 0.0)),
            last_complete_scan=ends.last_ok.get(row["id"]),
            stale=row["id"] in stale,
        )
        for row in rows
    ]


# --- scans ------------------------------------------------------------------------------------


def scan_runs(
    *, session: Session, actor: Actor, offset: int = 0, limit: int | None = None
) -> tuple[list[ScanRun], int]:
    """GET /scans, and `report scans` to find the latest: scan runs newest first, and how many
    there are. Runs are the estate's, not a department's: every reader sees them."""
    require_reader(actor)
    total = session.exec(select(sa.func.count()).select_from(ScanRun)).one()
    query = select(ScanRun).order_by(col(ScanRun.id).desc()).offset(offset).limit(limit)
    return list(session.exec(query)), int(total)


def scan_run_scopes(
    *, session: Session, actor: Actor, run_id: int, disclosure: Disclosure | None = None
) -> tuple[ScanRun, list[dict[str, Any]]]:
    """`report scans --run` and GET /scans/{run_id}: the run and a row per scope it planned
    (runs.scope_rows), or UnknownToReader. A namespace of a classified system is redacted."""
    require_reader(actor)
    run = session.get(ScanRun, run_id)
    if run is None:
        raise UnknownToReader("reads_scan_unknown", run=run_id)
    shown = disclosure or Disclosure(_ledger=classified_ledger(session))
    return run, scope_rows(session=session, run=run, disclosure=shown)


# --- findings and the trend -------------------------------------------------------------------


def policy_findings(
    *,
    session: Session,
    actor: Actor,
    settings: Settings,
    details: bool = False,
    disclosure: Disclosure | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Findings:
    """`report violations` and GET /violations: freeze-rule violations, then placement
    findings, then unattributed resources (counted per node and kind, or listed with
    `details`), from `offset`, at most `limit` of them, and how many there are in all.

    Findings that belong to a system (a placement, a frozen node's resource attributed to
    one) reach a reader in that system's scope only; a classified system's stay counted and
    redacted for the province's readers. Unattributed resources are the nodes' own.

    A province may hold a hundred thousand freeze violations: they are counted and cut in
    SQL; the placements and unattributed resources are few and, under the default
    disclosure, worked out once per ledger change."""
    require_reader(actor)
    scoped = None if actor.province_wide else _readable_systems(actor)
    frozen_end = None if limit is None else offset + limit

    def frozen_page() -> tuple[tuple[list[Violation], int], None]:
        page = freeze_page(
            session=session,
            tz=settings.tz,
            offset=offset,
            limit=limit,
            systems=scoped,
            disclosure=disclosure,
        )
        return page, None

    if disclosure is None:
        # A province's freeze violations are counted and sorted over a million resource rows
        # (~2 s): a page of them is kept while the ledger stands, per reader's scope.
        scope = None if scoped is None else tuple(sorted(str(g) for g in actor.grants))
        key = ("freeze", _ledger_key(session), str(settings.tz), offset, limit, scope)
        mark = ledger_mark(session)
        frozen, frozen_total = _memo.get(key, mark.estate, datetime.now(tz=UTC), frozen_page)
    else:
        frozen, frozen_total = frozen_page()[0]
    rest = _other_findings(session, details, disclosure)
    placed = rest.placed
    if scoped is not None:
        readable = set(session.execute(scoped).scalars())
        placed = [p for p in placed if not p.redacted and p.system_code in readable]
    unattributed = sorted(rest.unattributed.items())
    later = len(placed) + (len(rest.listed) if details else len(unattributed))
    # The page's part of what follows the freeze violations.
    start = max(offset - frozen_total, 0)
    end = None if frozen_end is None else max(frozen_end - frozen_total, 0)
    placed_page = placed[start:end]
    start, end = (
        max(start - len(placed), 0),
        None if end is None else max(end - len(placed), 0),
    )
    return Findings(
        frozen=frozen,
        unattributed=Counter(dict(unattributed[start:end])) if not details else Counter(),
        listed=rest.listed[start:end] if details else [],
        placed=placed_page,
        details=details,
        total=frozen_total + later,
    )


def _readable_systems(actor: Actor) -> sa.Select[Any]:
    """The codes of the systems the actor reads, as SQL (access.system_filter)."""
    where = system_filter(actor)
    query = sa.select(col(System.code))
    return query if where is None else query.where(where)


def _other_findings(session: Session, details: bool, disclosure: Disclosure | None) -> Findings:
    """Placement findings and unattributed resources. The default disclosure's are kept per
    ledger change; a caller's own disclosure (the CLI's) tallies what it withholds, afresh."""

    def build() -> tuple[Findings, None]:
        shown = disclosure or Disclosure()
        found = Findings(
            frozen=[],
            unattributed=unattributed_counts(session=session),
            listed=unattributed_resources(session=session, disclosure=shown) if details else [],
            placed=placement_violations(session=session, disclosure=shown),
            details=details,
        )
        return found, None

    if disclosure is not None:
        return build()[0]
    now = datetime.now(tz=UTC)
    mark = ledger_mark(session)
    return _memo.get(("findings", _ledger_key(session), details), mark.estate, now, build)


def snapshot_trend(
    *, session: Session, actor: Actor, offset: int = 0, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """`report adoption --history` and GET /snapshots: stored KPI snapshots oldest first (the
    trend), each marked where the policy changed, and how many there are. Province figures:
    every reader sees them."""
    require_reader(actor)
    total = session.exec(select(sa.func.count()).select_from(AdoptionSnapshot)).one()
    return snapshot_rows(session=session, offset=offset, limit=limit), int(total)
