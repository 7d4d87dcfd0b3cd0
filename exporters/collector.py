"""The prometheus-client collector: serves the last published snapshot from memory, never the DB."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporters.snapshot import Labels, MetricsSnapshot


@dataclass(frozen=True)
class Family:
    """One metric of DESIGN.md's contract and the snapshot field holding its series."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    field: str


# The public contract (DESIGN.md, "Prometheus metrics"): names and labels never change.
FAMILIES = (
    Family(
        "yiyun_adoption_ratio",
        "Cloud-adoption rate of non-classified systems (非涉密系统上云率), 0..1, under the "
        "policy of yiyun_adoption_policy_info; scope is province, city or department. "
        "Absent when the denominator is 0.",
        ("scope", "city", "department"),
        "adoption_ratio",
    ),
    Family(
        "yiyun_systems",
        "Registered systems per KPI status (classified systems only ever counted here).",
        ("city", "department", "status"),
        "systems",
    ),
    Family(
        "yiyun_resources",
        "Live (not tombstoned) resources in the ledger.",
        ("node", "kind"),
        "resources",
    ),
    Family(
        "yiyun_node_capacity",
        "Capacity declared for the node: vcpu in cores, memory_bytes and storage_bytes in bytes.",
        ("node", "resource"),
        "node_capacity",
    ),
    Family(
        "yiyun_node_capacity_listed",
        "Capacity the node's own API reports, in the units of yiyun_node_capacity: vSphere "
        "hosts and datastores, OpenStack hypervisors. Absent where no such rows are listed.",
        ("node", "resource"),
        "node_capacity_listed",
    ),
    Family(
        "yiyun_node_allocated",
        "Capacity taken by live resources on the node, in the units of yiyun_node_capacity "
        "(IaaS rows; Kubernetes requests only where a node shows no IaaS rows).",
        ("node", "resource"),
        "node_allocated",
    ),
    Family(
        "yiyun_scan_last_success_timestamp_seconds",
        "End of the node's latest scan run in which every scope listed completely; 0 if never.",
        ("node",),
        "scan_last_success",
    ),
    Family(
        "yiyun_scan_scope_status",
        "Scopes in each status in the node's latest finished scan run (zeros included).",
        ("node", "source", "kind", "status"),
        "scan_scope_status",
    ),
    Family(
        "yiyun_policy_violations",
        "Policy violations the inventory proves: freeze (不再新建或外租), unattributed, and "
        "placement (systems on the unified cloud whose node breaks R1–R6).",
        ("rule", "node"),
        "policy_violations",
    ),
    Family(
        "yiyun_migration_systems",
        "Systems per migration plan, wave and tracked state.",
        ("plan", "wave", "state"),
        "migration_systems",
    ),
    Family(
        "yiyun_systems_by_network_zone",
        "Registered systems that are not retired, per network zone (unknown when unset).",
        ("city", "department", "zone"),
        "systems_by_network_zone",
    ),
    Family(
        "yiyun_expired_scopes",
        "Scopes of the node holding live evidence that no longer counts in the KPI: no complete "
        "listing within YIYUN_EVIDENCE_MAX_AGE_HOURS (policy evidence-v2; 0 under evidence-v1).",
        ("node",),
        "expired_scopes",
    ),
)
UP = "yiyun_exporter_up"
AGE = "yiyun_exporter_snapshot_age_seconds"
DURATION = "yiyun_exporter_refresh_duration_seconds"
FAILURES = "yiyun_exporter_refresh_failures"  # exposed as ..._total
FRESHNESS = "yiyun_scan_freshness_limit_seconds"
POLICY = "yiyun_adoption_policy"  # exposed as ..._info


@dataclass(frozen=True)
class _State:
    """Everything collect() serves, swapped as one object so a scrape never sees half a refresh."""

    snapshot: MetricsSnapshot | None = None
    families: tuple[Metric, ...] = ()
    # The families in the text format, plain and gzipped, rendered once per refresh.
    text: bytes = b""
    text_gzip: bytes = b""
    up: bool = False
    refresh_duration_seconds: float | None = None
    refresh_failures: int = 0


def _gauge(family: Family, series: dict[Labels, float] | None = None) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(family.name, family.documentation, labels=family.labels)
    for labels, value in sorted((series or {}).items()):
        metric.add_metric(list(labels), value)
    return metric


class ReadyFamilies:
    """A collector of ready-made families, for rendering them with generate_latest."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _snapshot_families(snapshot: MetricsSnapshot) -> tuple[Metric, ...]:
    families: list[Metric] = [_gauge(f, getattr(snapshot, f.field)) for f in FAMILIES]
    freshness = GaugeMetricFamily(
        FRESHNESS, "The freshness limit for scans (YIYUN_FRESHNESS_HOURS), in seconds."
    )
    freshness.add_metric([], snapshot.freshness_limit_seconds)
    policy = InfoMetricFamily(POLICY, "The KPI policy and switches the ratios follow.")
    policy.add_metric(
        [],
        {
            "policy": snapshot.policy,
            **{k: str(v).lower() for k, v in snapshot.switches.as_dict().items()},
        },
    )
    return (*families, freshness, policy)


class SnapshotCollector(Collector):
    """Serves the snapshot the refresher published; describe() lets registration skip the DB."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._state = _State()

    @property
    def snapshot(self) -> MetricsSnapshot | None:
        return self._state.snapshot

    @property
    def up(self) -> bool:
        return self._state.up

    def publish(self, snapshot: MetricsSnapshot, *, duration_seconds: float) -> None:
        """A refresh succeeded: serve its snapshot from now on."""
        # Metric objects and their text are built here, once per refresh: formatting ten
        # thousand series costs more than a scrape may take, and they only change here.
        families = _snapshot_families(snapshot)
        text = generate_latest(ReadyFamilies(families))
        self._state = _State(
            snapshot=snapshot,
            families=families,
            text=text,
            text_gzip=gzip.compress(text),
            up=True,
            refresh_duration_seconds=duration_seconds,
            refresh_failures=self._state.refresh_failures,
        )

    def mark_failed(self, *, duration_seconds: float) -> None:
        """A refresh failed: keep serving the last good snapshot, with yiyun_exporter_up 0."""
        state = self._state
        self._state = replace(
            state,
            up=False,
            refresh_duration_seconds=duration_seconds,
            refresh_failures=state.refresh_failures + 1,
        )

    def describe(self) -> Iterable[Metric]:
        yield from (_gauge(f) for f in FAMILIES)
        yield GaugeMetricFamily(FRESHNESS, "")
        yield InfoMetricFamily(POLICY, "")
        yield from self._health(_State())

    def collect(self) -> Iterable[Metric]:
        state = self._state  # one read: a refresh publishing meanwhile does not mix in
        yield from state.families
        yield from self._health(state)

    def rendered(self) -> tuple[bytes, bytes, Iterable[Metric]]:
        """The snapshot's families pre-rendered (text, gzipped text) and the health families
        of the same moment, which the caller renders itself: one consistent scrape."""
        state = self._state
        return state.text, state.text_gzip, list(self._health(state))

    def _health(self, state: _State) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            UP, "1 when the latest snapshot refresh from the database succeeded, else 0."
        )
        up.add_metric([], 1.0 if state.up else 0.0)
        yield up
        age = GaugeMetricFamily(AGE, "Seconds since the snapshot being served was taken.")
        if state.snapshot is not None:
            age.add_metric([], max(0.0, self._clock() - state.snapshot.taken_at.timestamp()))
        yield age
        duration = GaugeMetricFamily(
            DURATION, "How long the latest refresh took to read and aggregate the database."
        )
        if state.refresh_duration_seconds is not None:
            duration.add_metric([], state.refresh_duration_seconds)
        yield duration
        failures = CounterMetricFamily(
            FAILURES, "Snapshot refreshes that failed since the exporter started."
        )
        failures.add_metric([], float(state.refresh_failures))
        yield failures
