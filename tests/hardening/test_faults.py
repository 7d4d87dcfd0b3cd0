"""Faults injected under the real `yiyun scan`: every failure stays in its scope, keeps its rows,
is recorded and exported, exits 1, and the next healthy scan converges to the truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from exporters.snapshot import build_snapshot
from inventory.collectors.kubernetes import ListPolicy
from inventory.models import Node, Resource
from inventory.scan import Scanner
from inventory.settings import Settings
from inventory.sim.faults import action_is, aws_error, has_param, s3_call
from inventory.sim.k8s import KubernetesSimulator, make_deployment
from tests.hardening.conftest import Cli
from tests.hardening.rig import (
    AWS_NODE,
    AWS_SOURCE,
    K8S_NODE,
    K8S_SOURCE,
    MAX_ATTEMPTS,
    NAMESPACES,
    REGIONS,
    Rig,
    ScopeKey,
    every,
    in_region,
    k8s_continued,
    k8s_status,
    running_rig,
)

US, EU = REGIONS
EDU_A, EDU_B = NAMESPACES
AWS_SCOPES = [
    *((kind, region) for kind in ("vm", "volume", "db_instance") for region in REGIONS),
    ("bucket", "*"),
]
K8S_KINDS = (
    "namespace", "deployment", "statefulset", "daemonset", "cronjob", "pvc", "service",
    "resource_quota",
)  # fmt: skip
ALL_SCOPES: list[ScopeKey] = [
    *((AWS_NODE, kind, scope) for kind, scope in AWS_SCOPES),
    *((K8S_NODE, kind, ns) for kind in K8S_KINDS for ns in NAMESPACES),
]
AWS_RETRIES = MAX_ATTEMPTS - 1  # botocore's standard mode after the first try
K8S_DEFAULTS = ListPolicy()


@dataclass(frozen=True)
class Expect:
    """What a fault must leave in one scope's ScopeResult."""

    status: str
    code: str | None = None
    retries: int | None = None  # exact count; None: not checked here
    items: int | None = None  # rows listed (and kept) before the failure


@dataclass(frozen=True)
class Fault:
    """One way a source breaks: how to break it, and what each scope it touches must record."""

    name: str
    inject: Callable[[Rig], None]
    expect: dict[ScopeKey, Expect]
    # Retries over all its scopes, when which scope meets a one-off fault is up to timing.
    total_retries: int | None = None


def aws(kind: str, scope: str) -> ScopeKey:
    return (AWS_NODE, kind, scope)


def k8s(kind: str, *namespaces: str) -> list[ScopeKey]:
    return [(K8S_NODE, kind, ns) for ns in namespaces or NAMESPACES]


def on_all(keys: list[ScopeKey], expect: Expect) -> dict[ScopeKey, Expect]:
    return dict.fromkeys(keys, expect)


def ec2_error(code: str, message: str) -> bytes:
    return aws_error("ec2", code, message)


FAULTS = {
    fault.name: fault
    for fault in [
        # --- AWS-compatible node, through the proxy in front of moto
        Fault(
            "aws-5xx",
            lambda rig: rig.aws_proxy.respond(
                every(action_is("DescribeVolumes"), in_region(EU)),
                500,
                ec2_error("InternalError", "An internal error has occurred"),
            ),
            {aws("volume", EU): Expect("error", "InternalError", AWS_RETRIES, 0)},
        ),
        Fault(
            "aws-throttled",
            lambda rig: rig.aws_proxy.respond(
                every(action_is("DescribeInstances"), in_region(US)),
                400,
                ec2_error("RequestLimitExceeded", "Request limit exceeded."),
            ),
            {aws("vm", US): Expect("throttled", "RequestLimitExceeded", AWS_RETRIES, 0)},
        ),
        Fault(
            "aws-throttling-recovers",
            lambda rig: rig.aws_proxy.respond(
                every(action_is("DescribeDBInstances"), in_region(US)),
                400,
                aws_error("query", "Throttling", "Rate exceeded"),
                times=2,
            ),
            {aws("db_instance", US): Expect("ok", None, 2)},
        ),
        Fault(
            "s3-slowdown",
            lambda rig: rig.aws_proxy.respond(
                s3_call("GET", bucket=False),
                503,
                aws_error("rest-xml", "SlowDown", "Please reduce your request rate."),
            ),
            {aws("bucket", "*"): Expect("throttled", "SlowDown", AWS_RETRIES, 0)},
        ),
        Fault(
            "aws-timeout",
            lambda rig: rig.aws_proxy.delay(
                every(action_is("DescribeDBInstances"), in_region(EU)), 5.0
            ),
            {aws("db_instance", EU): Expect("error", "ReadTimeoutError", AWS_RETRIES, 0)},
        ),
        Fault(
            "aws-reset-mid-pagination",
            lambda rig: rig.aws_proxy.reset(
                every(action_is("DescribeInstances"), in_region(EU), has_param("NextToken"))
            ),
            {aws("vm", EU): Expect("partial", "ConnectionClosedError", AWS_RETRIES, 3)},
        ),
        Fault(
            # Temporary credentials that run out between page 1 and page 2.
            "aws-credentials-expire-mid-scan",
            lambda rig: rig.aws_proxy.respond(
                every(action_is("DescribeInstances"), in_region(US), has_param("NextToken")),
                400,
                ec2_error("ExpiredToken", "The security token included in the request is expired"),
            ),
            {aws("vm", US): Expect("denied", "ExpiredToken", 0, 3)},
        ),
        Fault(
            "aws-region-denied",
            lambda rig: (
                rig.aws_proxy.respond(
                    every(in_region(EU), action_is("DescribeDBInstances")),
                    403,
                    aws_error("query", "AccessDenied", "not authorized in this region"),
                ),
                rig.aws_proxy.respond(
                    in_region(EU),
                    403,
                    ec2_error("UnauthorizedOperation", "not authorized in this region"),
                ),
            ),
            {
                aws("vm", EU): Expect("denied", "UnauthorizedOperation", 0, 0),
                aws("volume", EU): Expect("denied", "UnauthorizedOperation", 0, 0),
                aws("db_instance", EU): Expect("denied", "AccessDenied", 0, 0),
            },
        ),
        Fault(
            "aws-node-down",
            lambda rig: rig.aws_proxy.down(),
            {
                aws(kind, scope): Expect("error", "EndpointConnectionError", AWS_RETRIES, 0)
                for kind, scope in AWS_SCOPES
            },
        ),
        # --- Kubernetes node: the simulator's own faults, and the proxy in front of it
        Fault(
            # Retried with backoff and jitter, like botocore's standard mode, then given up.
            "k8s-5xx",
            lambda rig: rig.sim.fail(None, kind="statefulset"),
            on_all(
                k8s("statefulset"),
                Expect("error", "HTTP500", K8S_DEFAULTS.max_server_error_retries, 0),
            ),
        ),
        Fault(
            "k8s-throttled",
            lambda rig: rig.sim.throttle(1000, retry_after=1, kind="deployment"),
            on_all(
                k8s("deployment"),
                Expect("throttled", "HTTP429", K8S_DEFAULTS.max_throttle_retries, 0),
            ),
        ),
        Fault(
            "k8s-throttling-recovers",
            lambda rig: rig.sim.throttle(1, retry_after=1, kind="pvc"),
            on_all(k8s("pvc"), Expect("ok")),
            total_retries=1,
        ),
        Fault(
            "k8s-timeout",
            lambda rig: rig.sim.delay(2.0, kind="cronjob"),
            on_all(
                k8s("cronjob"), Expect("error", "Timeout", K8S_DEFAULTS.max_connection_retries, 0)
            ),
        ),
        Fault(
            "k8s-reset-mid-pagination",
            lambda rig: rig.sim.drop_connection(page=2, times=1000, kind="daemonset"),
            on_all(
                k8s("daemonset"),
                Expect("partial", "ConnectionError", K8S_DEFAULTS.max_connection_retries, 2),
            ),
        ),
        Fault(
            # Every continue token expires: the listing restarts a bounded number of times.
            "k8s-410-on-continue",
            lambda rig: rig.sim.expire_continue(1000, kind="resourcequota"),
            on_all(
                k8s("resource_quota"), Expect("partial", "HTTP410", K8S_DEFAULTS.max_restarts, 2)
            ),
        ),
        Fault(
            "k8s-410-recovers",
            lambda rig: rig.sim.expire_continue(1, kind="service"),
            on_all(k8s("service"), Expect("ok")),
            total_retries=1,
        ),
        Fault(
            "k8s-namespace-denied",
            lambda rig: rig.sim.forbid(namespace=EDU_B),
            # Reading the namespace object itself is cluster-scoped: only its contents are denied.
            on_all(
                [(K8S_NODE, kind, EDU_B) for kind in K8S_KINDS if kind != "namespace"],
                Expect("denied", "HTTP403", 0, 0),
            ),
        ),
        Fault(
            # The token is revoked between page 1 and page 2 of a listing.
            "k8s-credentials-expire-mid-scan",
            lambda rig: rig.k8s_proxy.respond(
                every(k8s_continued, lambda request: "/deployments" in request.path),
                401,
                k8s_status(401, "Unauthorized", "Unauthorized"),
                headers={"Content-Type": "application/json"},
            ),
            on_all(k8s("deployment"), Expect("denied", "HTTP401", 0, 2)),
        ),
        Fault(
            "k8s-node-down",
            lambda rig: rig.k8s_proxy.down(),
            on_all(
                [(K8S_NODE, kind, ns) for kind in K8S_KINDS for ns in NAMESPACES],
                Expect("error", "ConnectionError", K8S_DEFAULTS.max_connection_retries, 0),
            ),
        ),
    ]
}

# Faults that touch disjoint scopes run together: one scan proves each of them and that the
# scopes around them (the other node included) are untouched.
SCENARIOS = {
    "server-trouble": [
        "aws-5xx", "aws-throttled", "aws-throttling-recovers", "s3-slowdown",
        "k8s-5xx", "k8s-throttled", "k8s-throttling-recovers", "k8s-410-recovers",
    ],
    "broken-connections": [
        "aws-timeout", "aws-reset-mid-pagination", "aws-credentials-expire-mid-scan",
        "k8s-timeout", "k8s-reset-mid-pagination", "k8s-410-on-continue",
        "k8s-credentials-expire-mid-scan",
    ],
    "aws-node-down": ["aws-node-down", "k8s-namespace-denied"],
    "k8s-node-down": ["k8s-node-down", "aws-region-denied"],
}  # fmt: skip


def test_scenarios_cover_every_fault_once() -> None:
    listed = [name for names in SCENARIOS.values() for name in names]
    assert sorted(listed) == sorted(FAULTS)
    for names in SCENARIOS.values():
        touched = [key for name in names for key in FAULTS[name].expect]
        assert len(touched) == len(set(touched)), "faults of one scenario must not share scopes"


@pytest.fixture
def rig(
    moto: str,
    db_url: str,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Rig]:
    with running_rig(moto, db_url, cli, tmp_path, monkeypatch) as rig:
        yield rig


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_faults_stay_in_their_scope_and_the_next_scan_converges(rig: Rig, scenario: str) -> None:
    faults = [FAULTS[name] for name in SCENARIOS[scenario]]
    expected = {key: e for fault in faults for key, e in fault.expect.items()}
    failing = {key for key, e in expected.items() if e.status != "ok"}
    code, _, err = rig.scan("--concurrency", "8")
    assert code == 0, err
    # Between the scans the estate changes in every scope: a complete listing must see it.
    rig.churn()
    before = rig.live_by_scope()
    for fault in faults:
        fault.inject(rig)

    code, _, err = rig.scan("--concurrency", "8")

    assert code == 1, err
    assert "scope(s) failed; their rows were kept" in err
    run, results = rig.last_run()
    assert run.status == "failed" and run.finished_at is not None
    by_scope = {(r.node_id, r.kind, r.scope): r for r in results}
    assert set(by_scope) == set(ALL_SCOPES)
    for key, result in by_scope.items():
        want = expected.get(key, Expect("ok"))
        got = (result.status, result.error_code if want.status != "ok" else None)
        assert got == (want.status, want.code), f"{key}: {result.error_message}"
        if want.status != "ok":
            assert result.error_message, key
        if want.retries is not None:
            assert result.retries == want.retries, key
        if want.items is not None:
            assert result.items == want.items, key
    for fault in faults:
        if fault.total_retries is not None:
            retries = sum(by_scope[key].retries for key in fault.expect)
            assert retries == fault.total_retries, fault.name
    # A failed scope swept nothing: every row it had is still live, except one its pages
    # reported as terminated (the source's own word, true whatever page it came on).
    after = rig.live_by_scope()
    terminal = rig.terminal_ids()
    for key in failing:
        assert before.get(key, set()) - after.get(key, set()) <= terminal, key
    # Every scope that listed completely is already the truth, whatever failed around it.
    truth = rig.truth_by_scope()
    for key in set(ALL_SCOPES) - failing:
        assert after.get(key, set()) == truth.get(key, set()), key
    for node, kind, scope in failing:
        source = AWS_SOURCE if node == AWS_NODE else K8S_SOURCE
        want = expected[(node, kind, scope)]
        assert f"{node}/{source}/{kind}/{scope}: {want.status} {want.code}" in err
    assert_exported(rig, {key: expected[key].status for key in failing})
    assert_bounded_waits(rig, throttled="k8s-throttled" in SCENARIOS[scenario])

    rig.aws_proxy.clear()
    rig.k8s_proxy.clear()
    rig.sim.reset_faults()
    for proxy in (rig.aws_proxy, rig.k8s_proxy):
        if not proxy.running:
            proxy.up()
    code, _, err = rig.scan("--concurrency", "8")

    assert code == 0, err
    assert rig.live() == rig.truth()


def assert_exported(rig: Rig, failing: dict[ScopeKey, str]) -> None:
    """The exporter's yiyun_scan_scope_status shows each failure of the latest run."""
    settings = Settings(database_url=rig.db_url)
    with Session(rig.engine()) as session:
        snapshot = build_snapshot(session=session, settings=settings, now=datetime.now(tz=UTC))
    series = snapshot.scan_scope_status
    for (node, kind, _scope), status in failing.items():
        source = AWS_SOURCE if node == AWS_NODE else K8S_SOURCE
        assert series[(node, source, kind, status)] >= 1, (node, kind, status)
    ok_scopes = sum(v for (_, _, _, status), v in series.items() if status == "ok")
    assert ok_scopes == len(ALL_SCOPES) - len(failing)


def assert_bounded_waits(rig: Rig, *, throttled: bool) -> None:
    """Kubernetes retries wait with backoff or as Retry-After says, with jitter, never longer
    than the policy's cap."""
    for wait in rig.waits:
        assert 0 < wait <= K8S_DEFAULTS.backoff_cap + K8S_DEFAULTS.backoff_base
    if throttled:
        # Retry-After: 1 honoured on every retry of both namespaces, each with its own jitter.
        honoured = [wait for wait in rig.waits if wait >= 1]
        assert len(honoured) >= 2 * K8S_DEFAULTS.max_throttle_retries
        assert len(set(honoured)) > 1


def test_a_nul_character_in_one_object_costs_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    """A label (or an annotation) may hold a NUL; PostgreSQL refused it, and with it the whole
    batch of the scope (every deployment of the cluster), at every scan."""
    with KubernetesSimulator() as sim:
        poisoned = make_deployment("default", "poisoned")
        poisoned["metadata"]["labels"] = {"note": "a\x00b"}
        sim.add("deployment", poisoned)
        sim.add("deployment", make_deployment("default", "healthy"))
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        node = Node(
            id=K8S_NODE,
            name="省教育厅部门云",
            level="department_cloud",
            one_cloud=False,
            sources=[{"kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "yiyun-sim"}],
        )

        summary = Scanner(engine).run([node])

    assert summary.ok, [(o.kind, o.error_message) for o in summary.failed]
    with Session(engine) as session:
        rows = {
            r.name: r for r in session.exec(select(Resource).where(Resource.kind == "deployment"))
        }
    assert set(rows) == {"poisoned", "healthy"}
    assert rows["poisoned"].tags == {"note": "a\ufffdb"}
    assert rows["poisoned"].raw["metadata"]["labels"] == {"note": "a\ufffdb"}
