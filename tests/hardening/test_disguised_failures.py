"""Failures that answer 200 under the real `yiyun scan`: a Kubernetes Status document, a page
without `items`, an AWS error document, an empty body or an empty result. Each one fails its
scope as `malformed_response` (an S3 error document: as the 500 botocore itself makes of it)
and sweeps nothing; none passes for an empty listing. And Kubernetes 5xx are retried within
bounds, like botocore's standard mode for AWS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from inventory.collectors import kubernetes as k8s_collector
from inventory.collectors.kubernetes import ListPolicy
from inventory.models import ScopeResult
from inventory.sim.faults import action_is, aws_empty_result, aws_error, has_param, s3_call
from tests.hardening.conftest import Cli
from tests.hardening.rig import (
    AWS_NODE,
    K8S_NODE,
    NAMESPACES,
    REGIONS,
    Rig,
    ScopeKey,
    every,
    in_region,
    k8s_status,
    running_rig,
)

US, EU = REGIONS
K8S_DEFAULTS = ListPolicy()
MALFORMED = "malformed_response"
JSON = {"Content-Type": "application/json"}
# No fault here holds an answer back, and retries are counted exactly: a loaded machine must
# not add a read-timeout retry of its own.
PATIENT_READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class Disguise:
    """One failure that answers 200, and what it must leave in each scope it touches."""

    name: str
    inject: Callable[[Rig], None]
    scopes: list[ScopeKey]
    status: str  # error (nothing listed yet) or partial (earlier pages were written)
    items: int  # rows its pages returned before the failure, per scope
    says: str  # part of the error message: what was wrong with the answer
    code: str = MALFORMED


def k8s(kind: str) -> list[ScopeKey]:
    return [(K8S_NODE, kind, namespace) for namespace in NAMESPACES]


K8S_KINDS = (
    "namespace", "deployment", "statefulset", "daemonset", "cronjob", "pvc", "service",
    "resource_quota",
)  # fmt: skip


def k8s_path(fragment: str) -> Callable[..., bool]:
    return lambda request: fragment in request.path


CASES = [
    # --- Kubernetes (rig page size 2: five deployments per namespace are three pages)
    Disguise(
        "k8s-status-failure-with-200-on-page-1",
        lambda rig: rig.sim.fail_with_200(page=1, kind="deployment"),
        k8s("deployment"),
        "error",
        0,
        "HTTP 200 with a Status document instead of a DeploymentList",
    ),
    Disguise(
        "k8s-status-failure-with-200-on-page-2-of-3",
        lambda rig: rig.sim.fail_with_200(page=2, kind="deployment"),
        k8s("deployment"),
        "partial",
        2,
        "after 1 complete page(s)",
    ),
    Disguise(
        "k8s-page-without-items",
        lambda rig: rig.sim.omit_items(page=1, kind="statefulset"),
        k8s("statefulset"),
        "error",
        0,
        "a StatefulSetList page without items",
    ),
    Disguise(
        # The source is restricted to namespaces: it reads each namespace object, for its
        # own scope and for the system label its workloads inherit.
        "k8s-namespace-read-answered-by-a-status-with-200",
        lambda rig: rig.sim.fail_with_200(page=None, kind="namespace"),
        [key for kind in K8S_KINDS for key in k8s(kind)],
        "error",
        0,
        "HTTP 200 with a Status document instead of Namespace",
    ),
    Disguise(
        "k8s-proxy-answers-an-empty-object",
        lambda rig: rig.k8s_proxy.respond_ok(k8s_path("/cronjobs"), b"{}", headers=JSON),
        k8s("cronjob"),
        "error",
        0,
        "expected a CronJobList, got kind None",
    ),
    Disguise(
        "k8s-proxy-answers-an-empty-body",
        lambda rig: rig.k8s_proxy.respond_ok(k8s_path("/persistentvolumeclaims"), b""),
        k8s("pvc"),
        "error",
        0,
        "not JSON",
    ),
    # --- AWS-compatible node (rig page size 3: five instances per region are two pages)
    Disguise(
        "aws-error-document-with-200-on-page-1",
        lambda rig: rig.aws_proxy.respond_ok(
            every(action_is("DescribeInstances"), in_region(US)),
            aws_error("ec2", "InternalError", "An internal error has occurred"),
        ),
        [(AWS_NODE, "vm", US)],
        "error",
        0,
        "HTTP 200 with an error document: InternalError",
    ),
    Disguise(
        "aws-error-document-with-200-after-next-token",
        lambda rig: rig.aws_proxy.respond_ok(
            every(action_is("DescribeInstances"), in_region(EU), has_param("NextToken")),
            aws_error("ec2", "InternalError", "An internal error has occurred"),
        ),
        [(AWS_NODE, "vm", EU)],
        "partial",
        3,
        "(after a complete page)",
    ),
    Disguise(
        "aws-rds-error-document-with-200",
        lambda rig: rig.aws_proxy.respond_ok(
            every(action_is("DescribeDBInstances"), in_region(EU)),
            aws_error("query", "InternalFailure", "An internal error has occurred"),
        ),
        [(AWS_NODE, "db_instance", EU)],
        "error",
        0,
        "HTTP 200 with an error document: InternalFailure",
    ),
    Disguise(
        "aws-empty-body-with-200",
        lambda rig: rig.aws_proxy.respond_ok(
            every(action_is("DescribeVolumes"), in_region(US)), b""
        ),
        [(AWS_NODE, "volume", US)],
        "error",
        0,
        "HTTP 200 with an empty body",
    ),
    Disguise(
        "aws-empty-result-with-200",
        lambda rig: rig.aws_proxy.respond_ok(
            every(action_is("DescribeDBInstances"), in_region(US)),
            aws_empty_result("query", "DescribeDBInstances"),
        ),
        [(AWS_NODE, "db_instance", US)],
        "error",
        0,
        "an answer without DBInstances",
    ),
    Disguise(
        "s3-empty-body-with-200",
        lambda rig: rig.aws_proxy.respond_ok(s3_call("GET", bucket=False), b""),
        [(AWS_NODE, "bucket", "*")],
        "error",
        0,
        "ListBuckets: HTTP 200 with an empty body",
    ),
    Disguise(
        # botocore itself reads an S3 error document under 200 as a 500 (S3 does send them
        # for some calls): retried, then failed with the document's own code.
        "s3-error-document-with-200",
        lambda rig: rig.aws_proxy.respond_ok(
            s3_call("GET", bucket=False), aws_error("rest-xml", "InternalError", "try again")
        ),
        [(AWS_NODE, "bucket", "*")],
        "error",
        0,
        "ListBuckets (HTTP 500): try again",
        code="InternalError",
    ),
    Disguise(
        "s3-empty-result-with-200",
        lambda rig: rig.aws_proxy.respond_ok(
            s3_call("GET", bucket=False), aws_empty_result("rest-xml", "ListBuckets")
        ),
        [(AWS_NODE, "bucket", "*")],
        "error",
        0,
        "an answer without Buckets",
    ),
]


@pytest.fixture
def rig(
    moto: str, db_url: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    with running_rig(moto, db_url, cli, tmp_path, monkeypatch) as rig:
        # After install_knobs: keep its small pages and recorded waits, with a patient read
        # timeout so exact retry counts hold on a loaded machine.
        knobs = k8s_collector.ListPolicy.from_source.__func__  # type: ignore[attr-defined]

        def patient(cls: type, source: Any) -> ListPolicy:
            return replace(knobs(cls, source), read_timeout=PATIENT_READ_TIMEOUT)

        monkeypatch.setattr(k8s_collector.ListPolicy, "from_source", classmethod(patient))
        yield rig


def results_by_scope(rig: Rig) -> dict[ScopeKey, ScopeResult]:
    _, results = rig.last_run()
    return {(r.node_id, r.kind, r.scope): r for r in results}


def printed(result: ScopeResult) -> str:
    """The line `yiyun scan` prints for a failed scope."""
    where = f"{result.node_id}/{result.source}/{result.kind}/{result.scope}"
    return f"{where}: {result.status} {result.error_code}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_failure_that_answers_200_fails_its_scope_and_sweeps_nothing(
    rig: Rig, case: Disguise
) -> None:
    # Before: the scope lists completely, and the ledger holds what the simulators hold.
    code, _, err = rig.scan("--concurrency", "8")
    assert code == 0, err
    before = rig.live_by_scope()
    truth = rig.truth_by_scope()
    results = results_by_scope(rig)
    for key in case.scopes:
        assert (results[key].status, results[key].error_code) == ("ok", None)
        assert before[key] and before[key] == truth[key], key
    # Every scope now lacks a row that a complete listing would tombstone.
    rig.churn()
    case.inject(rig)

    code, _, err = rig.scan("--concurrency", "8")

    assert code == 1, err
    results = results_by_scope(rig)
    after = rig.live_by_scope()
    terminal = rig.terminal_ids()
    for key in case.scopes:
        result = results[key]
        assert (result.status, result.error_code) == (case.status, case.code), key
        assert result.error_message is not None and case.says in result.error_message
        assert result.items == case.items, key
        assert printed(result) in err
        if case.status == "error":
            assert after[key] == before[key], key  # nothing written, nothing swept
            assert result.deleted == 0, key
        else:
            # Every row is still live, and page 1 was written (it is true). The one exception
            # is a row that page itself reported terminated: the source's own word.
            assert before[key] - after[key] <= terminal, key
            assert result.deleted == len(before[key] - after[key]), key
    # Every other scope listed completely and is already the truth.
    now = rig.truth_by_scope()
    for key, result in results.items():
        if key not in case.scopes:
            assert result.status == "ok", (key, result.error_message)
            assert after.get(key, set()) == now.get(key, set()), key

    rig.aws_proxy.clear()
    rig.k8s_proxy.clear()
    rig.sim.reset_faults()
    code, _, err = rig.scan("--concurrency", "8")

    assert code == 0, err
    assert rig.live() == rig.truth()
    assert all(result.status == "ok" for result in results_by_scope(rig).values())


def test_a_kubernetes_5xx_that_clears_is_retried_and_the_scope_ok(rig: Rig) -> None:
    rig.sim.fail(2, kind="deployment")  # two 500s, met by either namespace's listing
    for fragment, status in (("/persistentvolumeclaims", 502), ("/cronjobs", 503),
                             ("/services", 504)):  # fmt: skip
        rig.k8s_proxy.respond(
            k8s_path(fragment), status, k8s_status(status, "ServiceUnavailable", "try again"),
            times=1, headers=JSON,
        )  # fmt: skip

    code, _, err = rig.scan("--concurrency", "8")

    assert code == 0, err
    results = results_by_scope(rig)
    assert all(result.status == "ok" for result in results.values())
    retries = {
        kind: sum(results[key].retries for key in k8s(kind))
        for kind in ("deployment", "pvc", "cronjob", "service")
    }
    assert retries == {"deployment": 2, "pvc": 1, "cronjob": 1, "service": 1}
    # One backoff per retry, recorded rather than slept, with jitter and under the cap.
    assert len(rig.waits) == sum(r.retries for r in results.values() if r.node_id == K8S_NODE)
    assert all(0 < wait <= K8S_DEFAULTS.backoff_cap for wait in rig.waits)
    assert rig.live() == rig.truth()


def test_a_kubernetes_5xx_that_persists_fails_after_the_bound(rig: Rig) -> None:
    code, _, err = rig.scan("--concurrency", "8")
    assert code == 0, err
    before = rig.live_by_scope()
    rig.churn()
    rig.waits.clear()
    rig.sim.fail(None, kind="statefulset")
    # 501 Not Implemented is no passing trouble: not retried.
    rig.k8s_proxy.respond(
        k8s_path("/daemonsets"), 501, k8s_status(501, "NotImplemented", "no"), headers=JSON
    )

    code, _, err = rig.scan("--concurrency", "8")

    assert code == 1, err
    results = results_by_scope(rig)
    bound = K8S_DEFAULTS.max_server_error_retries
    for key in k8s("statefulset"):
        assert (results[key].status, results[key].error_code) == ("error", "HTTP500")
        assert results[key].retries == bound
        assert printed(results[key]) in err
    for key in k8s("daemonset"):
        assert (results[key].status, results[key].error_code, results[key].retries) == (
            "error", "HTTP501", 0,
        )  # fmt: skip
    after = rig.live_by_scope()
    for key in k8s("statefulset") + k8s("daemonset"):
        assert after[key] == before[key], key

    assert len(rig.waits) == sum(r.retries for r in results.values() if r.node_id == K8S_NODE)
    assert all(0 < wait <= K8S_DEFAULTS.backoff_cap for wait in rig.waits)

    rig.sim.reset_faults()
    rig.k8s_proxy.clear()
    code, _, err = rig.scan("--concurrency", "8")

    assert code == 0, err
    assert rig.live() == rig.truth()
