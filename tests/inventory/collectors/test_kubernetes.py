"""Kubernetes collector: pure normalize per kind, and listings against the API simulator."""

from __future__ import annotations

import copy
import json
import socket
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from inventory.collectors.base import ResourceRow, Scope, ScopeFailed, is_evidence
from inventory.collectors.kubernetes import (
    KINDS,
    Attribution,
    ListPolicy,
    exposes_service,
    listing_problem,
    normalize_cluster,
    normalize_cronjob,
    normalize_daemonset,
    normalize_deployment,
    normalize_namespace,
    normalize_node,
    normalize_pvc,
    normalize_resource_quota,
    normalize_service,
    normalize_statefulset,
    object_problem,
    parse_quantity,
    plan_scopes,
    pod_requests,
)
from inventory.sim.faults import FaultProxy
from inventory.sim.k8s import (
    SIM_TOKEN,
    KubernetesSimulator,
    make_cronjob,
    make_daemonset,
    make_deployment,
    make_namespace,
    make_node,
    make_pvc,
    make_resource_quota,
    make_service,
    make_statefulset,
    write_kubeconfig,
)
from tests.inventory.collectors.conftest import Sleeps

DATA = Path(__file__).resolve().parents[2] / "data" / "k8s"
TAG = "yiyun.io/system"
EDU = Attribution(TAG, {"js-edu-portal": "JS-EDU-0001"})


def payload(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


# --- quantities and pod requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("100n", Decimal("1e-7")),
        ("250u", Decimal("0.00025")),
        ("1Ki", Decimal(1024)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("0.5Ti", Decimal(2**39)),
        ("1k", Decimal(1000)),
        ("3M", Decimal(3_000_000)),
        ("2G", Decimal(2_000_000_000)),
        ("1e3", Decimal(1000)),
        ("1E", Decimal(10**18)),
        ("128974848", Decimal(128974848)),
        (4, Decimal(4)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1 Gi", "Gi", "1.2.3"])
def test_parse_quantity_refuses_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_pod_requests_add_containers_and_sidecars_and_take_the_largest_init_container() -> None:
    spec = {
        "initContainers": [
            {"name": "migrate", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}},
            {"name": "proxy", "restartPolicy": "Always",
             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        ],
        "containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "log", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "bare"},
        ],
    }  # fmt: skip
    cpu, memory = pod_requests(spec)
    # The init container alone (2) beats the running set (0.1 + 0.5 + 0.1).
    assert cpu == Decimal("2")
    assert memory == Decimal("1.125")


def test_pod_without_requests_has_unknown_not_zero_requests() -> None:
    assert pod_requests({"containers": [{"name": "app"}]}) == (None, None)


# --- normalize, one kind at a time -------------------------------------------------------


def test_normalize_deployment_from_payload() -> None:
    raw = payload("deployment")

    row = normalize_deployment(raw, scope="*", attribution=EDU)

    assert (row.kind, row.native_id, row.name, row.namespace, row.scope) == (
        "deployment", "6f1c7a52-3c2e-4d8e-9b1a-0d6f6c1e2a10", "gov-portal-web",
        "js-edu-portal", "*",
    )  # fmt: skip
    assert (row.state, row.replicas) == ("active", 3)
    # Per pod: the 1-CPU init container outweighs 250m + 100m; memory 512Mi + 128Mi.
    assert (row.vcpu, row.memory_gib) == (3.0, 1.875)
    assert row.system_code == "JS-EDU-0042"  # its own label beats the namespace's
    assert row.tags == {"app": "gov-portal-web", TAG: "JS-EDU-0042"}
    assert row.created_at_source == datetime(2023, 5, 4, 2, 15, 30, tzinfo=UTC)
    # raw keeps the deployment's allowlist: identity, labels, replicas and what each container
    # requests; not managedFields, annotations, images, selector, strategy or status.
    assert row.raw == {
        "metadata": {
            "name": "gov-portal-web", "namespace": "js-edu-portal",
            "uid": "6f1c7a52-3c2e-4d8e-9b1a-0d6f6c1e2a10",
            "creationTimestamp": "2023-05-04T02:15:30Z",
            "labels": {"app": "gov-portal-web", TAG: "JS-EDU-0042"},
        },
        "spec": {
            "replicas": 3,
            "template": {"spec": {
                "initContainers": [
                    {"name": "migrate", "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}
                ],
                "containers": [
                    {"name": "web", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                                  "limits": {"cpu": "1", "memory": "1Gi"}}},
                    {"name": "envoy",
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                ],
            }},
        },
    }  # fmt: skip
    assert raw == payload("deployment"), "normalize must not change its input"
    assert is_evidence(row.kind, row.replicas, row.state)


def test_deployment_replicas_default_to_one_and_zero_is_no_evidence() -> None:
    raw = make_deployment("web", "api", replicas=2, cpu="100m", memory="64Mi")
    raw["metadata"]["uid"] = "u-1"
    del raw["spec"]["replicas"]
    defaulted = normalize_deployment(raw, scope="*", attribution=Attribution())
    raw["spec"]["replicas"] = 0
    scaled_down = normalize_deployment(raw, scope="*", attribution=Attribution())

    assert (defaulted.replicas, defaulted.vcpu, defaulted.state) == (1, 0.1, "active")
    assert (scaled_down.replicas, scaled_down.vcpu, scaled_down.state) == (0, 0.0, "scaled_to_zero")
    assert not is_evidence(scaled_down.kind, scaled_down.replicas, scaled_down.state)


def test_normalize_statefulset_counts_claim_templates_per_replica() -> None:
    raw = make_statefulset("db", "pg", replicas=3, cpu="2", memory="8Gi", storage="100Gi")
    raw["metadata"]["uid"] = "u-pg"

    row = normalize_statefulset(raw, scope="db", attribution=Attribution())

    assert (row.kind, row.replicas, row.vcpu, row.memory_gib, row.storage_gib) == (
        "statefulset", 3, 6.0, 24.0, 300.0,
    )  # fmt: skip


def test_normalize_daemonset_counts_one_pod_per_scheduled_node() -> None:
    raw = make_daemonset("kube-system", "node-agent", nodes=4, cpu="100m", memory="256Mi")
    raw["metadata"]["uid"] = "u-ds"

    row = normalize_daemonset(raw, scope="*", attribution=Attribution())

    assert (row.replicas, row.vcpu, row.memory_gib, row.state) == (4, 0.4, 1.0, "active")
    assert is_evidence(row.kind, row.replicas, row.state)


def test_normalize_cronjob_from_payload_suspended_is_no_evidence() -> None:
    row = normalize_cronjob(payload("cronjob"), scope="*", attribution=EDU)

    assert (row.kind, row.name, row.state) == ("cronjob", "nightly-report", "suspended")
    assert (row.vcpu, row.memory_gib) == (1.0, 2.0)  # parallelism 2 × (500m, 1Gi)
    assert row.system_code == "JS-EDU-0001"  # inherited from its namespace
    assert row.created_at_source == datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
    assert row.raw["spec"]["schedule"] == "0 2 * * *"
    assert not is_evidence(row.kind, row.replicas, row.state)


def test_running_cronjob_is_evidence() -> None:
    raw = payload("cronjob")
    raw["spec"]["suspend"] = False

    row = normalize_cronjob(raw, scope="*", attribution=EDU)

    assert row.state == "active"
    assert is_evidence(row.kind, row.replicas, row.state)


def test_normalize_node_from_payload() -> None:
    row = normalize_node(payload("node"), scope="*", attribution=Attribution())

    assert (row.kind, row.name, row.namespace, row.state) == (
        "k8s_node", "js-core-k8s-worker-017", None, "ready",
    )  # fmt: skip
    assert row.vcpu == 64.0
    assert row.memory_gib == pytest.approx(263518172 / 2**20)
    assert row.raw["status"]["allocatable"]["cpu"] == "63500m"
    assert row.system_code is None
    assert not is_evidence(row.kind, row.replicas, row.state)


@pytest.mark.parametrize(
    ("ready", "unschedulable", "state"),
    [("True", False, "ready"), ("False", False, "not_ready"), ("Unknown", False, "unknown"),
     ("True", True, "cordoned")],
)  # fmt: skip
def test_node_states(ready: str, unschedulable: bool, state: str) -> None:
    raw = payload("node")
    raw["status"]["conditions"][1]["status"] = ready
    raw["spec"]["unschedulable"] = unschedulable

    assert normalize_node(raw, scope="*", attribution=Attribution()).state == state


def test_normalize_namespace_carries_its_own_system() -> None:
    raw = make_namespace("js-edu-portal", system="JS-EDU-0001")
    raw["metadata"]["uid"] = "u-ns"

    row = normalize_namespace(raw, scope="*", attribution=Attribution())

    assert (row.kind, row.name, row.state, row.system_code) == (
        "namespace", "js-edu-portal", "active", "JS-EDU-0001",
    )  # fmt: skip
    assert not is_evidence(row.kind, row.replicas, row.state)


def test_normalize_pvc_storage_request() -> None:
    raw = make_pvc("js-edu-portal", "data", storage="500Gi", phase="Bound")
    raw["metadata"]["uid"] = "u-pvc"

    row = normalize_pvc(raw, scope="js-edu-portal", attribution=EDU)

    assert (row.kind, row.storage_gib, row.state, row.system_code) == (
        "pvc", 500.0, "bound", "JS-EDU-0001",
    )  # fmt: skip
    assert not is_evidence(row.kind, row.replicas, row.state)


@pytest.mark.parametrize(
    ("service_type", "kept"),
    [("LoadBalancer", True), ("NodePort", True), ("ClusterIP", False), ("ExternalName", False)],
)
def test_only_services_reachable_from_outside_are_kept(service_type: str, kept: bool) -> None:
    raw = make_service("web", "portal", type=service_type)
    raw["metadata"]["uid"] = "u-svc"

    assert exposes_service(raw) is kept
    row = normalize_service(raw, scope="*", attribution=Attribution())
    assert (row.kind, row.state) == ("service", service_type.lower())


def test_normalize_resource_quota() -> None:
    raw = make_resource_quota("web", "landing-zone", cpu="64", memory="256Gi", storage="2Ti")
    raw["metadata"]["uid"] = "u-quota"

    row = normalize_resource_quota(raw, scope="*", attribution=Attribution())

    assert (row.kind, row.vcpu, row.memory_gib, row.storage_gib) == (
        "resource_quota", 64.0, 256.0, 2048.0,
    )  # fmt: skip


def test_normalize_cluster_is_keyed_by_the_kube_system_uid() -> None:
    kube_system = make_namespace("kube-system", created="2021-03-01T00:00:00Z")
    kube_system["metadata"]["uid"] = "c1d2e3f4-0000-4000-8000-000000000001"

    row = normalize_cluster(kube_system, {"gitVersion": "v1.28.9"}, name="js-core-k8s")

    assert (row.kind, row.native_id, row.scope, row.name) == (
        "cluster", "c1d2e3f4-0000-4000-8000-000000000001", "*", "js-core-k8s",
    )  # fmt: skip
    assert row.raw["version"] == {"gitVersion": "v1.28.9"}
    assert row.created_at_source == datetime(2021, 3, 1, tzinfo=UTC)


def test_an_object_being_deleted_is_terminating_and_still_live() -> None:
    raw = payload("deployment")
    raw["metadata"]["deletionTimestamp"] = "2024-06-01T00:00:00Z"

    row = normalize_deployment(raw, scope="*", attribution=EDU)

    assert (row.state, row.terminal) == ("terminating", False)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_declared_kind_keys_rows_by_uid(kind: str) -> None:
    builders = {
        "k8s_node": lambda: make_node("n1"),
        "namespace": lambda: make_namespace("ns1"),
        "deployment": lambda: make_deployment("ns1", "d"),
        "statefulset": lambda: make_statefulset("ns1", "s"),
        "daemonset": lambda: make_daemonset("ns1", "ds"),
        "cronjob": lambda: make_cronjob("ns1", "cj"),
        "pvc": lambda: make_pvc("ns1", "p"),
        "service": lambda: make_service("ns1", "svc", type="NodePort"),
        "resource_quota": lambda: make_resource_quota("ns1", "q"),
    }
    raw = builders[kind]()
    raw["metadata"]["uid"] = f"uid-of-{kind}"

    row = KINDS[kind].normalize(raw, scope="*", attribution=Attribution())

    assert (row.kind, row.native_id) == (kind, f"uid-of-{kind}")


# --- attribution -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "namespace", "system"),
    [
        ({TAG: "OWN-1"}, "js-edu-portal", "OWN-1"),  # its own label wins
        ({}, "js-edu-portal", "JS-EDU-0001"),  # inherited from the namespace
        ({TAG: "  "}, "js-edu-portal", "JS-EDU-0001"),  # a blank label is no label
        ({}, "unlabelled", None),  # never guessed
        ({"other.io/system": "X"}, None, None),
    ],
)
def test_attribution_own_label_else_namespace_else_none(
    labels: dict[str, str], namespace: str | None, system: str | None
) -> None:
    assert EDU.system_of(labels, namespace) == system


def test_attribution_tag_key_is_configurable() -> None:
    raw = make_deployment("ns1", "d", labels={"gov.js.cn/system": "JS-GOV-7"})
    raw["metadata"]["uid"] = "u"

    row = normalize_deployment(raw, scope="*", attribution=Attribution("gov.js.cn/system"))

    assert row.system_code == "JS-GOV-7"


# --- planning ----------------------------------------------------------------------------

SOURCE = {"name": "core-k8s", "kind": "kubernetes", "kubeconfig": None, "context": None}


def test_plan_is_one_cluster_wide_scope_per_kind_plus_the_cluster() -> None:
    scopes = plan_scopes(node_id="js-core", source=SOURCE, system_tag=TAG)

    assert {s.key for s in scopes} == {
        ("js-core", "core-k8s", kind, "*") for kind in [*KINDS, "cluster"]
    }


def test_plan_for_a_namespace_restricted_source_is_per_kind_and_namespace() -> None:
    source = {**SOURCE, "namespaces": ["edu", "health"]}

    scopes = plan_scopes(node_id="js-core", source=source, system_tag=TAG)

    namespaced = [k for k, spec in KINDS.items() if spec.list_namespaced is not None]
    assert {(s.kind, s.scope) for s in scopes} == {
        (kind, ns) for kind in [*namespaced, "namespace"] for ns in ("edu", "health")
    }


@pytest.mark.parametrize(
    ("override", "complaint"),
    [({"kind": "aws"}, "not a kubernetes source"), ({"namespaces": []}, "non-empty list"),
     ({"namespaces": "edu"}, "non-empty list"), ({"namespaces": [""]}, "non-empty list")],
)  # fmt: skip
def test_plan_refuses_a_bad_source(override: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        plan_scopes(node_id="n", source={**SOURCE, **override}, system_tag=TAG)


def test_planning_does_no_io_and_a_bad_kubeconfig_fails_each_scope(tmp_path: Path) -> None:
    source = {**SOURCE, "kubeconfig": str(tmp_path / "missing"), "context": "nope"}

    scopes = plan_scopes(node_id="n", source=source, system_tag=TAG)
    rows, failure = drain(scopes[0])

    assert (rows, failure.status, failure.code) == ([], "error", "KubeconfigError")
    assert "missing" in failure.message


# --- listing against the simulator -------------------------------------------------------


def fast(sleeps: Sleeps, **changes: Any) -> ListPolicy:
    settings: dict[str, Any] = {"page_size": 5, "backoff_base": 0.0, "sleep": sleeps}
    settings.update(changes)
    return ListPolicy(**settings)


def scopes_of(
    kubeconfig: str, policy: ListPolicy, *, namespaces: list[str] | None = None
) -> dict[tuple[str, str], Scope]:
    source = {"name": "core-k8s", "kind": "kubernetes", "kubeconfig": kubeconfig,
              "context": "js-core-k8s", "namespaces": namespaces}  # fmt: skip
    scopes = plan_scopes(node_id="js-core", source=source, system_tag=TAG, policy=policy)
    return {(s.kind, s.scope): s for s in scopes}


def drain(scope: Scope) -> tuple[list[ResourceRow], ScopeFailed]:
    """Rows yielded before the listing failed, and the failure (the test expects one)."""
    rows: list[ResourceRow] = []
    with pytest.raises(ScopeFailed) as caught:
        for page in scope.pages(scope.stats):
            rows.extend(page)
    return rows, caught.value


def complete(scope: Scope) -> list[ResourceRow]:
    return [row for page in scope.pages(scope.stats) for row in page]


def add_workloads(sim: KubernetesSimulator, count: int, namespace: str = "edu") -> None:
    sim.add_many("deployment", (make_deployment(namespace, f"app-{i:03d}") for i in range(count)))


def test_lists_every_kind_with_attribution(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    sim.add("namespace", make_namespace("shared"))
    sim.add("node", make_node("worker-1", cpu="32", memory="128Gi"))
    sim.add("deployment", make_deployment("edu", "portal", replicas=2))
    sim.add("deployment", make_deployment("edu", "search", system="JS-EDU-0009"))
    sim.add("deployment", make_deployment("shared", "orphan"))
    sim.add("statefulset", make_statefulset("edu", "pg"))
    sim.add("daemonset", make_daemonset("kube-system", "agent", system="JS-OPS-0001"))
    sim.add("cronjob", make_cronjob("edu", "nightly", suspend=True))
    sim.add("pvc", make_pvc("edu", "pg-data"))
    sim.add("service", make_service("edu", "portal", type="LoadBalancer"))
    sim.add("service", make_service("edu", "portal-internal"))
    sim.add("resourcequota", make_resource_quota("edu", "landing-zone"))

    scopes = scopes_of(kubeconfig, fast(sleeps))
    rows = {key: complete(scope) for key, scope in scopes.items()}

    attributed = {
        (row.kind, row.namespace, row.name, row.system_code)
        for listed in rows.values()
        for row in listed
        if row.kind not in ("namespace", "cluster")
    }
    assert attributed == {
        ("k8s_node", None, "worker-1", None),
        ("deployment", "edu", "portal", "JS-EDU-0001"),
        ("deployment", "edu", "search", "JS-EDU-0009"),
        ("deployment", "shared", "orphan", None),
        ("statefulset", "edu", "pg", "JS-EDU-0001"),
        ("daemonset", "kube-system", "agent", "JS-OPS-0001"),
        ("cronjob", "edu", "nightly", "JS-EDU-0001"),
        ("pvc", "edu", "pg-data", "JS-EDU-0001"),
        ("service", "edu", "portal", "JS-EDU-0001"),
        ("resource_quota", "edu", "landing-zone", "JS-EDU-0001"),
    }
    assert {(r.name, r.system_code) for r in rows[("namespace", "*")]} == {
        ("default", None), ("kube-node-lease", None), ("kube-public", None),
        ("kube-system", None), ("edu", "JS-EDU-0001"), ("shared", None),
    }  # fmt: skip
    [cluster] = rows[("cluster", "*")]
    assert (cluster.native_id, cluster.name) == (sim.cluster_uid, "core-k8s")
    uids = {(r.kind, r.native_id) for listed in rows.values() for r in listed}
    assert ("deployment", sim.get("deployment", "edu", "portal")["metadata"]["uid"]) in uids  # type: ignore[index]
    assert all(scope.stats.api_calls >= 1 for scope in scopes.values())
    assert sleeps == []


def test_multi_page_listing_returns_every_item_exactly_once(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 23)
    scope = scopes_of(kubeconfig, fast(sleeps, page_size=5))[("deployment", "*")]

    rows = complete(scope)

    assert sorted(r.native_id for r in rows) == sorted(
        uid for (_, _, _, uid) in sim.identities("deployment")
    )
    assert scope.stats.pages == 5
    listing = [r for r in sim.requests if r.path == "/apis/apps/v1/deployments"]
    assert [r.query.get("limit") for r in listing] == ["5"] * 5
    assert ["continue" in r.query for r in listing] == [False, True, True, True, True]


def test_expired_continue_token_restarts_the_listing_and_completes(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    sim.expire_continue(1, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps, page_size=5))[("deployment", "*")]

    rows = complete(scope)

    assert sorted(str(r.name) for r in rows) == [f"app-{i:03d}" for i in range(12)]
    assert scope.stats.retries == 1
    listing = [r for r in sim.requests if r.path == "/apis/apps/v1/deployments"]
    assert ["continue" in r.query for r in listing] == [False, True, False, True, True]


def test_continue_token_expiring_beyond_the_restart_budget_is_partial(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    sim.expire_continue(100, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps, page_size=5, max_restarts=2))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (failure.status, failure.code) == ("partial", "HTTP410")
    assert "Expired" in failure.message
    assert len(rows) == 5 and scope.stats.retries == 2


def test_forbidden_kind_is_denied_with_the_servers_reason(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 3)
    sim.forbid(kind="deployment")
    scopes = scopes_of(kubeconfig, fast(sleeps))

    rows, failure = drain(scopes[("deployment", "*")])

    assert (rows, failure.status, failure.code) == ([], "denied", "HTTP403")
    assert 'cannot list resource "deployments" in API group "apps"' in failure.message
    assert len(complete(scopes[("statefulset", "*")])) == 0  # the other kinds are unaffected


def test_forbidden_namespace_fails_only_its_own_scopes(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    sim.add("namespace", make_namespace("health", system="JS-HEALTH-0001"))
    add_workloads(sim, 2, "edu")
    add_workloads(sim, 3, "health")
    sim.forbid(namespace="health")
    scopes = scopes_of(kubeconfig, fast(sleeps), namespaces=["edu", "health"])

    edu = complete(scopes[("deployment", "edu")])
    rows, failure = drain(scopes[("deployment", "health")])

    assert {(r.namespace, r.system_code) for r in edu} == {("edu", "JS-EDU-0001")}
    assert len(edu) == 2
    assert (rows, failure.status, failure.code) == ([], "denied", "HTTP403")
    assert 'in the namespace "health"' in failure.message


def test_throttling_honours_retry_after_then_succeeds_and_is_counted(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 7)
    sim.throttle(2, retry_after=1, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps))[("deployment", "*")]

    rows = complete(scope)

    assert len(rows) == 7
    assert scope.stats.retries == 2
    assert sleeps == [1.0, 1.0]  # what the server asked for, recorded rather than slept


def test_throttling_beyond_the_retry_budget_is_throttled(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 7)
    sim.throttle(50, retry_after=0, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps, max_throttle_retries=3))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "throttled", "HTTP429")
    assert scope.stats.retries == 3 and scope.stats.api_calls >= 4


def test_a_retry_after_beyond_the_cap_is_throttled_without_waiting(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.throttle(1, retry_after=600, kind="node")
    scope = scopes_of(kubeconfig, fast(sleeps, backoff_cap=30.0))[("k8s_node", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, scope.stats.retries, sleeps) == ([], "throttled", 0, [])


def test_throttled_after_some_pages_is_still_throttled(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    scope = scopes_of(kubeconfig, fast(sleeps, max_throttle_retries=1))[("deployment", "*")]
    pages = scope.pages(scope.stats)
    first = next(pages)
    sim.throttle(50, retry_after=0, kind="deployment")

    with pytest.raises(ScopeFailed) as caught:
        next(pages)

    assert len(first) == 5
    assert caught.value.status == "throttled"


def test_server_error_before_any_page_is_error_after_its_retries(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 3)
    sim.fail(None, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps, max_server_error_retries=3))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "error", "HTTP500")
    assert "InternalError" in failure.message
    listing = [r for r in sim.requests if r.path == "/apis/apps/v1/deployments"]
    assert (scope.stats.retries, len(listing), len(sleeps)) == (3, 4, 3)


def test_a_passing_server_error_is_retried_with_backoff_and_counted(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 7)
    sim.fail(2, kind="deployment")
    policy = fast(sleeps, backoff_base=0.5, backoff_cap=30.0, max_server_error_retries=3)
    scope = scopes_of(kubeconfig, policy)[("deployment", "*")]

    rows = complete(scope)

    assert len(rows) == 7
    assert scope.stats.retries == 2
    # Exponential with jitter: the n-th wait lies in [base·2ⁿ/2, base·2ⁿ].
    first, second = sleeps
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


def test_server_error_after_some_pages_is_partial(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    scope = scopes_of(kubeconfig, fast(sleeps))[("deployment", "*")]
    pages = scope.pages(scope.stats)
    first = next(pages)
    sim.fail(None, kind="deployment")

    with pytest.raises(ScopeFailed) as caught:
        next(pages)

    assert len(first) == 5
    assert (caught.value.status, caught.value.code) == ("partial", "HTTP500")


# --- answers that are not what was asked for ---------------------------------------------

STATUS_FAILURE = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500,
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "trusted"),
    [
        ({"kind": "DeploymentList", "metadata": {}, "items": []}, True),
        ({"kind": "DeploymentList", "metadata": {"continue": "x"}, "items": [{}]}, True),
        # Empty lists as API servers 1.5.0-1.5.2 and 1.18-1.19 (RemoveSelfLink) wrote them.
        ({"kind": "DeploymentList", "metadata": {}, "items": None}, True),
        (STATUS_FAILURE, False),
        ({}, False),
        ({"kind": "DeploymentList", "metadata": {}}, False),
        ({"kind": "DeploymentList", "metadata": {}, "items": {}}, False),
        ({"kind": "StatefulSetList", "metadata": {}, "items": []}, False),
        ({"metadata": {}, "items": []}, False),
    ],
)
def test_only_a_page_of_the_listing_asked_for_is_trusted(
    body: dict[str, Any], trusted: bool
) -> None:
    assert (listing_problem(body, "DeploymentList") is None) == trusted


def test_any_list_kind_is_a_page_when_none_is_named() -> None:
    assert listing_problem({"kind": "DeploymentList", "items": []}, None) is None
    assert listing_problem(STATUS_FAILURE, None) is not None
    assert listing_problem({"items": []}, None) is not None


def test_a_read_must_return_the_object_asked_for() -> None:
    assert object_problem({"kind": "Namespace", "metadata": {}}, "Namespace") is None
    assert object_problem({"major": "1", "gitVersion": "v1.30.0"}, None) is None  # /version
    problem = object_problem(STATUS_FAILURE, "Namespace")
    assert problem is not None and "etcdserver: request timed out" in problem
    assert object_problem(STATUS_FAILURE, None) is not None
    assert object_problem({}, "Namespace") is not None


def test_the_simulator_and_the_api_send_an_empty_list_as_empty_items(
    sim: KubernetesSimulator,
) -> None:
    with urllib.request.urlopen(f"{sim.url}/apis/apps/v1/deployments?limit=5") as response:
        body = json.loads(response.read())

    assert (body["kind"], body["items"]) == ("DeploymentList", [])
    assert listing_problem(body, "DeploymentList") is None


def test_the_simulator_can_fail_with_200(sim: KubernetesSimulator) -> None:
    sim.fail_with_200(page=1, times=1, kind="deployment")
    sim.omit_items(page=1, times=1, kind="deployment")
    url = f"{sim.url}/apis/apps/v1/deployments?limit=5"

    answers = []
    for _ in range(3):
        with urllib.request.urlopen(url) as response:
            answers.append((response.status, json.loads(response.read())))

    (status, disguised), (_, itemless), (_, healthy) = answers
    assert (status, disguised["kind"], disguised["status"]) == (200, "Status", "Failure")
    assert (itemless["kind"], "items" in itemless) == ("DeploymentList", False)
    assert healthy["items"] == []


@pytest.mark.parametrize("fault", ["status_200", "no_items"])
def test_a_disguised_failure_on_the_first_page_is_error(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps, fault: str
) -> None:
    add_workloads(sim, 7)
    if fault == "status_200":
        sim.fail_with_200(page=1, kind="deployment")
    else:
        sim.omit_items(page=1, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "error", "malformed_response")
    assert (scope.stats.pages, scope.stats.retries) == (0, 0)
    expected = "Status document" if fault == "status_200" else "DeploymentList page without items"
    assert expected in failure.message


def test_a_disguised_failure_after_a_continue_token_is_partial(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    sim.fail_with_200(page=2, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (len(rows), failure.status, failure.code) == (5, "partial", "malformed_response")
    assert "after 1 complete page(s)" in failure.message
    listing = [r for r in sim.requests if r.path == "/apis/apps/v1/deployments"]
    assert ["continue" in r.query for r in listing] == [False, True]


def test_a_status_200_for_one_kind_fails_only_that_kind(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 3)
    sim.add("statefulset", make_statefulset("edu", "pg"))
    sim.fail_with_200(page=1, kind="statefulset")
    scopes = scopes_of(kubeconfig, fast(sleeps))

    assert len(complete(scopes[("deployment", "*")])) == 3
    assert drain(scopes[("statefulset", "*")])[1].code == "malformed_response"


def test_a_read_answered_with_a_status_200_fails_the_scope(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 2, "edu")
    sim.fail_with_200(page=None, kind="namespace")  # reads of one namespace included
    scopes = scopes_of(kubeconfig, fast(sleeps), namespaces=["edu"])

    namespace_rows, namespace_failure = drain(scopes[("namespace", "edu")])
    workload_rows, workload_failure = drain(scopes[("deployment", "edu")])

    assert (namespace_rows, namespace_failure.status) == ([], "error")
    assert namespace_failure.code == workload_failure.code == "malformed_response"
    assert workload_rows == []
    assert workload_failure.message.startswith("reading namespace 'edu' for attribution")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", "application/json"), (b"{}", "application/json"), (b"<html>ok</html>", "text/html")],
)
def test_a_gateway_answering_200_for_the_api_server_is_malformed(
    sim: KubernetesSimulator, tmp_path: Path, sleeps: Sleeps, body: bytes, content_type: str
) -> None:
    add_workloads(sim, 3)
    with FaultProxy(sim.url) as proxy:
        kubeconfig = write_kubeconfig(tmp_path / "proxied", server=proxy.url, context="js-core-k8s")
        proxy.respond_ok(
            lambda request: "/deployments" in request.path,
            body,
            headers={"Content-Type": content_type},
        )
        scope = scopes_of(str(kubeconfig), fast(sleeps))[("deployment", "*")]

        rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "error", "malformed_response")


def test_dropped_connection_once_is_retried_and_counted(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    sim.drop_connection(page=2, times=1, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps))[("deployment", "*")]

    rows = complete(scope)

    assert len({r.native_id for r in rows}) == len(rows) == 12
    assert scope.stats.retries == 1


def test_connection_dropped_mid_pagination_is_partial(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 12)
    sim.drop_connection(page=2, times=100, kind="deployment")
    scope = scopes_of(kubeconfig, fast(sleeps, max_connection_retries=2))[("deployment", "*")]

    rows, failure = drain(scope)

    assert (len(rows), failure.status, failure.code) == (5, "partial", "ConnectionError")
    assert scope.stats.retries == 2


def test_unreachable_api_server_is_error(tmp_path: Path, sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server=f"http://127.0.0.1:{port}", context="js-core-k8s"
    )
    scope = scopes_of(str(kubeconfig), fast(sleeps, max_connection_retries=1))[("k8s_node", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "error", "ConnectionError")
    assert scope.stats.api_calls == 2


def test_read_timeout_is_error(sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps) -> None:
    sim.delay(0.5, kind="node")
    policy = fast(sleeps, read_timeout=0.05, max_connection_retries=0)
    scope = scopes_of(kubeconfig, policy)[("k8s_node", "*")]

    rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "error", "Timeout")


def test_workloads_fail_rather_than_lose_their_inherited_system(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 3)
    sim.forbid(kind="namespace")
    scopes = scopes_of(kubeconfig, fast(sleeps))

    rows, failure = drain(scopes[("deployment", "*")])

    assert (rows, failure.status, failure.code) == ([], "denied", "HTTP403")
    assert failure.message.startswith("listing namespaces for attribution")
    assert complete(scopes[("k8s_node", "*")]) == []  # cluster-scoped kinds need no labels


def test_namespace_labels_are_listed_once_per_source(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 3)
    scopes = scopes_of(kubeconfig, fast(sleeps))

    for kind in ("deployment", "statefulset", "daemonset", "cronjob", "pvc"):
        complete(scopes[(kind, "*")])

    listings_started = [
        r for r in sim.requests if r.path == "/api/v1/namespaces" and "continue" not in r.query
    ]
    assert len(listings_started) == 1


def test_restricted_source_reads_only_its_namespaces(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 2, "edu")
    add_workloads(sim, 2, "edu-archive")  # a namespace whose name shares the prefix
    scopes = scopes_of(kubeconfig, fast(sleeps), namespaces=["edu", "gone"])

    edu = complete(scopes[("deployment", "edu")])
    namespace_rows = complete(scopes[("namespace", "edu")])
    gone = complete(scopes[("namespace", "gone")])

    assert {(r.namespace, r.system_code) for r in edu} == {("edu", "JS-EDU-0001")}
    assert [(r.name, r.scope) for r in namespace_rows] == [("edu", "edu")]
    assert gone == []  # listed completely: a deleted namespace may be tombstoned
    assert not any(r.path == "/api/v1/namespaces" for r in sim.requests)


def test_wrong_token_is_denied_and_no_message_carries_a_credential(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    with KubernetesSimulator(token="expected-token-value", require_token=True) as strict:
        kubeconfig = strict.write_kubeconfig(tmp_path / "kubeconfig", context="js-core-k8s")
        text = kubeconfig.read_text().replace("expected-token-value", SIM_TOKEN)
        kubeconfig.write_text(text)
        scope = scopes_of(str(kubeconfig), fast(sleeps))[("k8s_node", "*")]

        rows, failure = drain(scope)

    assert (rows, failure.status, failure.code) == ([], "denied", "HTTP401")
    for text in (failure.message, str(failure), repr(failure.__cause__)):
        assert SIM_TOKEN not in text and "expected-token-value" not in text


def test_every_failure_message_is_free_of_the_token(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    add_workloads(sim, 3)
    failures = []
    for arm in (
        lambda: sim.forbid(kind="deployment"),
        lambda: sim.fail(None, kind="deployment"),
        lambda: sim.throttle(10, retry_after=0, kind="deployment"),
        lambda: sim.drop_connection(page=1, times=10, kind="deployment"),
    ):
        sim.reset_faults()
        arm()
        scope = scopes_of(
            kubeconfig, fast(sleeps, max_throttle_retries=0, max_connection_retries=0)
        )
        failures.append(drain(scope[("deployment", "*")])[1])

    assert [f.status for f in failures] == ["denied", "error", "throttled", "error"]
    assert all(SIM_TOKEN not in f.message for f in failures)


def test_kinds_are_listed_with_their_own_endpoints(
    sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    scopes = scopes_of(kubeconfig, fast(sleeps))
    for scope in scopes.values():
        complete(scope)

    paths = {r.path for r in sim.requests}

    assert {
        "/api/v1/nodes", "/api/v1/namespaces", "/api/v1/namespaces/kube-system", "/version",
        "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets", "/apis/apps/v1/daemonsets",
        "/apis/batch/v1/cronjobs", "/api/v1/persistentvolumeclaims", "/api/v1/services",
        "/api/v1/resourcequotas",
    } <= paths  # fmt: skip
    assert copy.deepcopy(sleeps) == []


# --- through the scan orchestrator: the stale-data rule with this collector --------------

NODE_ID = "js-core"


def scan(engine: Any, kubeconfig: str, policy: ListPolicy, **source: Any) -> dict[str, str]:
    """One `yiyun scan` of the simulated cluster; returns {kind/scope: status}."""
    from inventory.models import Node
    from inventory.scan import Scanner

    node = Node(id=NODE_ID, name="省级核心节点", level="province_core", one_cloud=True)
    spec = {"name": "core-k8s", "kind": "kubernetes", "kubeconfig": kubeconfig,
            "context": "js-core-k8s", **source}  # fmt: skip
    scopes = plan_scopes(node_id=NODE_ID, source=spec, system_tag=TAG, policy=policy)
    summary = Scanner(engine, concurrency=4, planner=lambda _node: (scopes, [])).run([node])
    return {f"{o.kind}/{o.scope}": o.status for o in summary.outcomes}


def live(engine: Any, kind: str) -> set[tuple[str | None, str | None]]:
    from sqlmodel import Session, col, select

    from inventory.models import Resource

    with Session(engine) as session:
        rows = session.exec(
            select(Resource.name, Resource.system_code)
            .where(Resource.kind == kind)
            .where(col(Resource.deleted_at).is_(None))
        )
        return set(rows)


def test_two_runs_tombstone_a_workload_gone_from_a_complete_listing(
    engine: Any, sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 7)
    first = scan(engine, kubeconfig, fast(sleeps, page_size=3))
    sim.delete("deployment", "edu", "app-003")

    second = scan(engine, kubeconfig, fast(sleeps, page_size=3))

    assert set(first.values()) == set(second.values()) == {"ok"}
    assert live(engine, "deployment") == {
        (f"app-{i:03d}", "JS-EDU-0001") for i in range(7) if i != 3
    }


@pytest.mark.parametrize(
    "breakage",
    [
        "forbid", "expire_every_continue", "drop_second_page", "forbid_namespaces",
        "status_200_on_the_second_page", "second_page_without_items", "status_200_for_namespaces",
    ],
)  # fmt: skip
def test_a_failed_scope_keeps_every_row_it_had(
    engine: Any, sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps, breakage: str
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    add_workloads(sim, 7)
    policy = fast(sleeps, page_size=3, max_restarts=1, max_connection_retries=0)
    scan(engine, kubeconfig, policy)
    before = live(engine, "deployment")
    for name in ("app-000", "app-005", "app-006"):  # gone, but the next listing cannot prove it
        sim.delete("deployment", "edu", name)
    {
        "forbid": lambda: sim.forbid(kind="deployment"),
        "expire_every_continue": lambda: sim.expire_continue(100, kind="deployment"),
        "drop_second_page": lambda: sim.drop_connection(page=2, times=100, kind="deployment"),
        "forbid_namespaces": lambda: sim.forbid(kind="namespace"),
        "status_200_on_the_second_page": lambda: sim.fail_with_200(page=2, kind="deployment"),
        "second_page_without_items": lambda: sim.omit_items(page=2, kind="deployment"),
        "status_200_for_namespaces": lambda: sim.fail_with_200(page=None, kind="namespace"),
    }[breakage]()

    statuses = scan(engine, kubeconfig, policy)

    assert statuses["deployment/*"] != "ok"
    assert live(engine, "deployment") == before
