"""The Kubernetes API simulator: list shapes, paging, selectors, faults, and kubectl fidelity."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from inventory.sim.k8s import (
    SIM_TOKEN,
    KubernetesSimulator,
    make_cronjob,
    make_daemonset,
    make_deployment,
    make_namespace,
    make_node,
    make_pvc,
    make_service,
    make_statefulset,
    populate_scale_estate,
)
from tests.conftest import require_binary

CLUSTER_UID = "7d3c1b2a-0000-4000-8000-0000000000aa"


@pytest.fixture
def sim() -> Iterator[KubernetesSimulator]:
    with KubernetesSimulator(cluster_uid=CLUSTER_UID) as simulator:
        yield simulator


def call(
    sim: KubernetesSimulator, path: str, headers: dict[str, str] | None = None, /, **query: Any
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """GET a path, as (status, headers, JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        target = f"{path}?{urlencode(query)}" if query else path
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        body = json.loads(response.read())
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


def list_all(sim: KubernetesSimulator, path: str, limit: int, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        params = dict(query, limit=limit, **({"continue": token} if token else {}))
        status, _, body = call(sim, path, **params)
        assert status == 200, body
        items.extend(body["items"])
        token = body["metadata"].get("continue")
        if not token:
            return items


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


# --- discovery and shapes ----------------------------------------------------------------


def test_discovery_describes_every_served_resource(sim: KubernetesSimulator) -> None:
    _, _, version = call(sim, "/version")
    _, _, core = call(sim, "/api")
    _, _, groups = call(sim, "/apis")
    resources = {
        path: {r["name"]: (r["kind"], r["namespaced"]) for r in call(sim, path)[2]["resources"]}
        for path in ("/api/v1", "/apis/apps/v1", "/apis/batch/v1")
    }

    assert (version["major"], version["gitVersion"]) == ("1", "v1.30.0")
    assert (core["kind"], core["versions"]) == ("APIVersions", ["v1"])
    assert {g["name"]: g["preferredVersion"]["groupVersion"] for g in groups["groups"]} == {
        "apps": "apps/v1", "batch": "batch/v1",
    }  # fmt: skip
    assert resources == {
        "/api/v1": {
            "namespaces": ("Namespace", False), "nodes": ("Node", False),
            "persistentvolumeclaims": ("PersistentVolumeClaim", True),
            "services": ("Service", True), "resourcequotas": ("ResourceQuota", True),
        },
        "/apis/apps/v1": {
            "deployments": ("Deployment", True), "statefulsets": ("StatefulSet", True),
            "daemonsets": ("DaemonSet", True),
        },
        "/apis/batch/v1": {"cronjobs": ("CronJob", True)},
    }  # fmt: skip


def test_list_has_the_real_list_shape(sim: KubernetesSimulator) -> None:
    sim.add("deployment", make_deployment("edu", "portal", replicas=3, system="JS-EDU-0001"))

    status, headers, body = call(sim, "/apis/apps/v1/namespaces/edu/deployments")

    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert (body["kind"], body["apiVersion"]) == ("DeploymentList", "apps/v1")
    assert int(body["metadata"]["resourceVersion"]) > 0
    assert "continue" not in body["metadata"]
    [item] = body["items"]
    assert "kind" not in item and "apiVersion" not in item  # as the real API omits them
    metadata = item["metadata"]
    assert {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"} <= set(metadata)
    assert metadata["labels"]["yiyun.io/system"] == "JS-EDU-0001"
    assert metadata["creationTimestamp"].endswith("Z")
    container = item["spec"]["template"]["spec"]["containers"][0]
    assert (item["spec"]["replicas"], container["resources"]["requests"]) == (
        3, {"cpu": "500m", "memory": "1Gi"},
    )  # fmt: skip


def test_get_one_object_carries_kind_and_api_version(sim: KubernetesSimulator) -> None:
    status, _, body = call(sim, "/api/v1/namespaces/kube-system")

    assert status == 200
    assert (body["kind"], body["apiVersion"], body["metadata"]["uid"]) == (
        "Namespace", "v1", CLUSTER_UID,
    )  # fmt: skip
    assert sim.cluster_uid == CLUSTER_UID


def test_each_builder_yields_the_fields_collectors_read(sim: KubernetesSimulator) -> None:
    sim.add("node", make_node("worker-1", cpu="32", memory="128Gi"))
    sim.add("statefulset", make_statefulset("db", "pg", storage="50Gi"))
    sim.add("daemonset", make_daemonset("kube-system", "agent", nodes=5))
    sim.add("cronjob", make_cronjob("edu", "nightly", suspend=True, schedule="0 3 * * *"))
    sim.add("pvc", make_pvc("db", "data", storage="20Gi"))
    sim.add(
        "service", make_service("edu", "portal", type="LoadBalancer", load_balancer_ip="10.0.0.9")
    )

    node = call(sim, "/api/v1/nodes")[2]["items"][0]
    sts = call(sim, "/apis/apps/v1/statefulsets")[2]["items"][0]
    ds = call(sim, "/apis/apps/v1/daemonsets")[2]["items"][0]
    cj = call(sim, "/apis/batch/v1/cronjobs")[2]["items"][0]
    pvc = call(sim, "/api/v1/persistentvolumeclaims")[2]["items"][0]
    svc = call(sim, "/api/v1/services")[2]["items"][0]

    capacity = node["status"]["capacity"]
    assert (capacity["cpu"], capacity["memory"], capacity["pods"]) == ("32", "128Gi", "110")
    assert node["status"]["allocatable"]["cpu"] == "32"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "50Gi"
    }
    assert ds["status"]["desiredNumberScheduled"] == 5
    assert (cj["spec"]["suspend"], cj["spec"]["schedule"]) == (True, "0 3 * * *")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "10.0.0.9"}]


@pytest.mark.parametrize(
    "path",
    ["/apis/apps/v1/pods", "/api/v2/namespaces", "/apis/extensions/v1beta1/deployments",
     "/api/v1/namespaces/edu/nodes", "/apis/apps/v1/deployments/portal"],
)  # fmt: skip
def test_unknown_paths_are_a_not_found_status(sim: KubernetesSimulator, path: str) -> None:
    status, _, body = call(sim, path)

    assert status == 404
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status", "Failure", "NotFound", 404,
    )  # fmt: skip


def test_a_missing_object_is_a_not_found_status_naming_it(sim: KubernetesSimulator) -> None:
    status, _, body = call(sim, "/apis/apps/v1/namespaces/edu/deployments/ghost")

    assert (status, body["reason"]) == (404, "NotFound")
    assert body["message"] == 'deployments.apps "ghost" not found'
    assert body["details"] == {"name": "ghost", "kind": "deployments"}


# --- paging ------------------------------------------------------------------------------


def test_limit_and_continue_page_through_everything_once(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment(f"ns-{i % 3}", f"app-{i:02d}") for i in range(17)))

    first = call(sim, "/apis/apps/v1/deployments", limit=5)[2]
    everything = list_all(sim, "/apis/apps/v1/deployments", limit=5)

    assert len(first["items"]) == 5
    assert first["metadata"]["remainingItemCount"] == 12
    assert sorted(names(everything)) == [f"app-{i:02d}" for i in range(17)]
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everything]
    assert keys == sorted(keys)


def test_continued_pages_keep_the_lists_resource_version(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment("edu", f"app-{i}") for i in range(4)))
    first = call(sim, "/apis/apps/v1/deployments", limit=2)[2]
    sim.add("deployment", make_deployment("edu", "zzz-late"))

    second = call(
        sim, "/apis/apps/v1/deployments", limit=2, **{"continue": first["metadata"]["continue"]}
    )[2]

    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_deleting_between_pages_neither_skips_nor_repeats(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment("edu", f"app-{i}") for i in range(6)))
    first = call(sim, "/apis/apps/v1/deployments", limit=3)[2]
    assert sim.delete("deployment", "edu", "app-0")

    rest = call(
        sim, "/apis/apps/v1/deployments", **{"continue": first["metadata"]["continue"]}, limit=3
    )[2]

    assert names(first["items"]) + names(rest["items"]) == [f"app-{i}" for i in range(6)]
    assert "continue" not in rest["metadata"]


def test_namespaced_listing_is_only_that_namespace(sim: KubernetesSimulator) -> None:
    for namespace in ("edu", "edu-archive", "ed", "health"):
        sim.add_many("deployment", (make_deployment(namespace, f"app-{i}") for i in range(3)))

    edu = list_all(sim, "/apis/apps/v1/namespaces/edu/deployments", limit=2)
    everywhere = list_all(sim, "/apis/apps/v1/deployments", limit=4)

    assert {i["metadata"]["namespace"] for i in edu} == {"edu"} and len(edu) == 3
    assert len(everywhere) == 12


def test_a_bad_continue_token_is_a_bad_request(sim: KubernetesSimulator) -> None:
    status, _, body = call(sim, "/apis/apps/v1/deployments", **{"continue": "not-a-token"})

    assert (status, body["reason"]) == (400, "BadRequest")


def test_serving_a_page_encodes_only_that_page(sim: KubernetesSimulator) -> None:
    populate_scale_estate(sim, deployments=50_000, namespaces=100)

    status, _, body = call(sim, "/apis/apps/v1/deployments", limit=100)

    assert status == 200 and len(body["items"]) == 100
    assert body["metadata"]["remainingItemCount"] == 49_900
    table = sim._tables["deployment"]
    assert sum(1 for entry in table.entries.values() if entry.blob is not None) == 100


# --- selectors ---------------------------------------------------------------------------


@pytest.fixture
def labelled(sim: KubernetesSimulator) -> KubernetesSimulator:
    for name, labels in {
        "a": {"tier": "web", "env": "prod"},
        "b": {"tier": "web", "env": "test"},
        "c": {"tier": "db", "env": "prod"},
        "d": {"env": "dev"},
    }.items():
        sim.add("deployment", make_deployment("edu", name, labels=labels))
    return sim


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web", ["a", "b"]),
        ("tier!=web", ["c", "d"]),
        ("tier", ["a", "b", "c"]),
        ("!tier", ["d"]),
        ("tier=web,env=prod", ["a"]),
        ("env in (prod,dev)", ["a", "c", "d"]),
        ("env notin (prod),tier", ["b"]),
    ],
)
def test_label_selectors(labelled: KubernetesSimulator, selector: str, expected: list[str]) -> None:
    body = call(labelled, "/apis/apps/v1/deployments", labelSelector=selector)[2]

    assert names(body["items"]) == expected


def test_selected_listing_pages_without_remaining_count(labelled: KubernetesSimulator) -> None:
    first = call(labelled, "/apis/apps/v1/deployments", labelSelector="env", limit=2)[2]
    everything = list_all(labelled, "/apis/apps/v1/deployments", limit=1, labelSelector="env=prod")

    assert "remainingItemCount" not in first["metadata"] and "continue" in first["metadata"]
    assert names(everything) == ["a", "c"]


def test_field_selector_on_name_and_namespace(labelled: KubernetesSimulator) -> None:
    body = call(labelled, "/apis/apps/v1/deployments", fieldSelector="metadata.name=b")[2]
    status, _, refused = call(
        labelled, "/apis/apps/v1/deployments", fieldSelector="spec.replicas=1"
    )

    assert names(body["items"]) == ["b"]
    assert (status, refused["reason"]) == (400, "BadRequest")


# --- the estate from Python --------------------------------------------------------------


def test_add_update_delete_from_python(sim: KubernetesSimulator) -> None:
    stored = sim.add("deployment", make_deployment("edu", "portal", replicas=1))
    updated = sim.update("deployment", "edu", "portal", spec={**stored["spec"], "replicas": 4})

    assert updated["metadata"]["uid"] == stored["metadata"]["uid"]
    assert int(updated["metadata"]["resourceVersion"]) > int(stored["metadata"]["resourceVersion"])
    assert call(sim, "/apis/apps/v1/deployments")[2]["items"][0]["spec"]["replicas"] == 4
    assert sim.delete("deployment", "edu", "portal")
    assert not sim.delete("deployment", "edu", "portal")
    assert call(sim, "/apis/apps/v1/deployments")[2]["items"] == []


def test_concurrent_writers_and_readers_stay_consistent(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment("edu", f"base-{i:03d}") for i in range(200)))
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(200):
                sim.add("deployment", make_deployment("edu", f"new-{i:03d}"))
                sim.delete("deployment", "edu", f"new-{i:03d}")
        except BaseException as error:
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    listed = [list_all(sim, "/apis/apps/v1/deployments", limit=37) for _ in range(5)]
    writer.join()

    assert errors == []
    for items in listed:
        base = [n for n in names(items) if n.startswith("base-")]
        assert base == [f"base-{i:03d}" for i in range(200)]


# --- faults ------------------------------------------------------------------------------


def test_forbidden_namespace_is_a_real_forbidden_status(sim: KubernetesSimulator) -> None:
    sim.forbid(namespace="health")

    status, _, body = call(sim, "/apis/apps/v1/namespaces/health/deployments")
    allowed, _, _ = call(sim, "/apis/apps/v1/namespaces/edu/deployments")

    assert (status, allowed) == (403, 200)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    assert body["details"] == {"kind": "deployments", "group": "apps"}
    assert body["message"] == (
        'deployments.apps is forbidden: User "system:serviceaccount:yiyun:scanner" cannot list '
        'resource "deployments" in API group "apps" in the namespace "health"'
    )


def test_forbidden_kind_everywhere_but_not_other_kinds(sim: KubernetesSimulator) -> None:
    sim.forbid(kind="statefulset")

    assert call(sim, "/apis/apps/v1/statefulsets")[0] == 403
    assert call(sim, "/apis/apps/v1/namespaces/edu/statefulsets")[0] == 403
    assert call(sim, "/apis/apps/v1/deployments")[0] == 200


def test_throttle_answers_429_with_retry_after_then_recovers(sim: KubernetesSimulator) -> None:
    sim.throttle(2, retry_after=0)

    answers = [call(sim, "/api/v1/nodes") for _ in range(3)]

    assert [status for status, _, _ in answers] == [429, 429, 200]
    _, headers, body = answers[0]
    assert headers["Retry-After"] == "0"
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 0)


def test_server_errors_for_n_requests_or_for_a_kind(sim: KubernetesSimulator) -> None:
    sim.fail(1)
    first, second = call(sim, "/api/v1/nodes")[0], call(sim, "/api/v1/nodes")[0]
    sim.fail(None, kind="cronjob")
    cronjobs = [call(sim, "/apis/batch/v1/cronjobs")[0] for _ in range(3)]

    assert (first, second) == (500, 200)
    assert cronjobs == [500, 500, 500]
    assert call(sim, "/api/v1/nodes")[0] == 200


def test_expired_continue_is_410_only_on_a_continue_request(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment("edu", f"app-{i}") for i in range(4)))
    sim.expire_continue(1)
    first = call(sim, "/apis/apps/v1/deployments", limit=2)
    token = first[2]["metadata"]["continue"]

    expired = call(sim, "/apis/apps/v1/deployments", limit=2, **{"continue": token})
    retried = call(sim, "/apis/apps/v1/deployments", limit=2, **{"continue": token})

    assert first[0] == 200
    assert (expired[0], expired[2]["reason"]) == (410, "Expired")
    assert retried[0] == 200


def test_drop_closes_the_connection_on_the_chosen_page(sim: KubernetesSimulator) -> None:
    sim.add_many("deployment", (make_deployment("edu", f"app-{i}") for i in range(4)))
    sim.drop_connection(page=2, times=1)
    token = call(sim, "/apis/apps/v1/deployments", limit=2)[2]["metadata"]["continue"]

    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        call(sim, "/apis/apps/v1/deployments", limit=2, **{"continue": token})
    again = call(sim, "/apis/apps/v1/deployments", limit=2, **{"continue": token})

    assert again[0] == 200 and names(again[2]["items"]) == ["app-2", "app-3"]


def test_reset_faults_puts_everything_back(sim: KubernetesSimulator) -> None:
    sim.forbid()
    sim.throttle(5)
    sim.fail(None, kind="node")
    sim.reset_faults()

    assert call(sim, "/api/v1/nodes")[0] == 200


def test_a_wrong_token_is_unauthorized_and_none_is_anonymous(sim: KubernetesSimulator) -> None:
    wrong = call(sim, "/api/v1/nodes", {"Authorization": "Bearer nope"})
    right = call(sim, "/api/v1/nodes", {"Authorization": f"Bearer {SIM_TOKEN}"})
    anonymous = call(sim, "/api/v1/nodes")

    assert (wrong[0], wrong[2]["reason"]) == (401, "Unauthorized")
    assert (right[0], anonymous[0]) == (200, 200)


def test_kubeconfig_points_the_official_client_at_the_simulator(
    sim: KubernetesSimulator, tmp_path: Path
) -> None:
    from kubernetes import client, config

    path = sim.write_kubeconfig(tmp_path / "kubeconfig", context="js-core-k8s")
    api = client.CoreV1Api(
        config.new_client_from_config(config_file=str(path), context="js-core-k8s")
    )

    namespace = api.read_namespace("kube-system")

    assert namespace.metadata is not None
    assert namespace.metadata.uid == CLUSTER_UID
    assert api.api_client.configuration.host == sim.url


# --- fidelity: the real kubectl lists what the simulator holds ---------------------------


def kubectl(kubeconfig: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("kubectl")
    # Nothing from the developer's environment may send kubectl elsewhere than the simulator.
    env = {k: v for k, v in os.environ.items() if k.upper() not in {
        "KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}}  # fmt: skip
    env["HOME"] = str(cache)
    return subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache / "cache"),
         "--request-timeout", "10s", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


@pytest.fixture
def estate(sim: KubernetesSimulator) -> KubernetesSimulator:
    for namespace, system in (("edu", "JS-EDU-0001"), ("health", "JS-HEALTH-0002"), ("tmp", None)):
        sim.add("namespace", make_namespace(namespace, system=system))
    sim.add_many("deployment", (make_deployment(f"ns-{i % 4}", f"web-{i:02d}") for i in range(11)))
    sim.add("statefulset", make_statefulset("edu", "pg"))
    sim.add("statefulset", make_statefulset("health", "mysql", replicas=0))
    sim.add("daemonset", make_daemonset("kube-system", "node-agent"))
    return sim


def identities(listed: dict[str, Any]) -> set[tuple[str, str | None, str, str]]:
    return {
        (i["kind"], i["metadata"].get("namespace"), i["metadata"]["name"], i["metadata"]["uid"])
        for i in listed["items"]
    }


@pytest.mark.peers
def test_kubectl_lists_the_same_workloads_the_simulator_holds(
    estate: KubernetesSimulator, tmp_path: Path
) -> None:
    kubeconfig = estate.write_kubeconfig(tmp_path / "kubeconfig")

    # A small chunk size makes kubectl itself page with limit + continue.
    done = kubectl(kubeconfig, tmp_path, "get", "deployments,statefulsets,daemonsets", "-A",
                   "-o", "json", "--chunk-size", "4")  # fmt: skip

    assert done.returncode == 0, done.stderr
    expected = (
        estate.identities("deployment")
        | estate.identities("statefulset")
        | estate.identities("daemonset")
    )
    assert identities(json.loads(done.stdout)) == expected


@pytest.mark.peers
def test_kubectl_lists_the_same_namespaces_and_reads_the_cluster_identity(
    estate: KubernetesSimulator, tmp_path: Path
) -> None:
    kubeconfig = estate.write_kubeconfig(tmp_path / "kubeconfig")

    listed = kubectl(kubeconfig, tmp_path, "get", "namespaces", "-o", "json")
    uid = kubectl(kubeconfig, tmp_path, "get", "namespace", "kube-system", "-o",
                  "jsonpath={.metadata.uid}")  # fmt: skip
    selected = kubectl(kubeconfig, tmp_path, "get", "ns", "-l", "yiyun.io/system", "-o", "name")

    assert listed.returncode == 0, listed.stderr
    assert identities(json.loads(listed.stdout)) == estate.identities("namespace")
    assert uid.stdout == CLUSTER_UID
    assert selected.stdout.split() == ["namespace/edu", "namespace/health"]


@pytest.mark.peers
def test_kubectl_reports_the_simulators_forbidden_status(
    estate: KubernetesSimulator, tmp_path: Path
) -> None:
    kubeconfig = estate.write_kubeconfig(tmp_path / "kubeconfig")
    estate.forbid(kind="deployment")

    done = kubectl(kubeconfig, tmp_path, "get", "deployments", "-A", "-o", "json")

    assert done.returncode != 0
    assert 'cannot list resource "deployments" in API group "apps"' in done.stderr


@pytest.mark.peers
def test_kubectl_prints_the_simulators_tables(estate: KubernetesSimulator, tmp_path: Path) -> None:
    kubeconfig = estate.write_kubeconfig(tmp_path / "kubeconfig")

    done = kubectl(kubeconfig, tmp_path, "get", "statefulsets", "-A")

    assert done.returncode == 0, done.stderr
    rows = [line.split()[:2] for line in done.stdout.splitlines()[1:]]
    assert rows == [["edu", "pg"], ["health", "mysql"]]
