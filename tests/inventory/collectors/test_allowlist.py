"""The raw allowlist: every kind declared, what a pod template may hide never kept, tags
redacted in raw as in the row, and the scrub idempotent (migration 0006 relies on it)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from inventory.collectors.allowlist import RAW_FIELDS, allowed_raw
from inventory.collectors.aws import LISTINGS, ListingContext, normalize_instance
from inventory.collectors.kubernetes import (
    KINDS,
    Attribution,
    normalize_cluster,
    normalize_cronjob,
    normalize_deployment,
)
from inventory.secret_shape import REDACTED
from inventory.sim.k8s import make_cronjob, make_deployment, make_namespace

DATA = Path(__file__).resolve().parents[2] / "data"
TAG = "yiyun.io/system"
SECRET = "yiyunCanaryAllowlist0001"
TOKEN = "Zq3x9LmP2vR7tY8wK1nB4cD6fG0hJ5sA"  # secret-shaped by entropy alone


def payload(path: str) -> dict[str, Any]:
    return json.loads((DATA / path).read_text(encoding="utf-8"))


def with_secrets(obj: dict[str, Any], pod_spec: dict[str, Any]) -> dict[str, Any]:
    """An object as a careless chart leaves it: secrets in env, envFrom, the command line,
    an annotation, a volume and an init container."""
    obj["metadata"]["annotations"] = {"example.com/api-token": SECRET}
    obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), "build-key": TOKEN}
    container = pod_spec["containers"][0]
    container["env"] = [
        {"name": "DB_PASSWORD", "value": SECRET},
        {"name": "API", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "k"}}},
    ]
    container["envFrom"] = [{"secretRef": {"name": SECRET}}]
    container["command"] = ["/app", f"--password={SECRET}"]
    container["args"] = [f"--token={SECRET}"]
    pod_spec["initContainers"] = [
        {"name": "init", "image": "busybox", "command": ["sh", "-c", f"echo {SECRET}"],
         "resources": {"requests": {"cpu": "1"}}}
    ]  # fmt: skip
    pod_spec["volumes"] = [{"name": "v", "secret": {"secretName": SECRET}}]
    return obj


def test_every_kind_a_collector_writes_has_a_declaration() -> None:
    written = {*KINDS, "cluster", *(listing.kind for listing in LISTINGS.values())}

    assert written <= set(RAW_FIELDS), sorted(written - set(RAW_FIELDS))


def test_a_deployment_keeps_what_normalize_reads_and_nothing_a_secret_hides_in() -> None:
    raw = make_deployment("edu", "portal", replicas=2, system="JS-EDU-0001")
    raw["metadata"]["uid"] = "u-1"
    with_secrets(raw, raw["spec"]["template"]["spec"])

    row = normalize_deployment(raw, scope="*", attribution=Attribution(TAG))

    assert SECRET not in json.dumps(row.raw) and TOKEN not in json.dumps(row.raw)
    assert row.raw["metadata"]["labels"] == {TAG: "JS-EDU-0001", "build-key": REDACTED}
    assert row.tags == {TAG: "JS-EDU-0001", "build-key": REDACTED}
    assert row.system_code == "JS-EDU-0001"
    assert row.raw["spec"] == {
        "replicas": 2,
        "template": {"spec": {
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"name": "portal",
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
        }},
    }  # fmt: skip
    # The typed columns still come from the whole object.
    assert (row.replicas, row.vcpu, row.memory_gib) == (2, 2.0, 2.0)


def test_a_cronjob_keeps_its_schedule_and_job_template_requests() -> None:
    raw = make_cronjob("edu", "nightly", schedule="0 3 * * *")
    raw["metadata"]["uid"] = "u-cj"
    template = raw["spec"]["jobTemplate"]["spec"]["template"]
    with_secrets(raw, template["spec"])

    row = normalize_cronjob(raw, scope="*", attribution=Attribution(TAG))

    assert SECRET not in json.dumps(row.raw)
    assert row.raw["spec"]["schedule"] == "0 3 * * *"
    assert row.raw["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "nightly", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}
    ]


def test_the_cluster_keeps_kube_system_identity_and_version() -> None:
    kube_system = make_namespace("kube-system", labels={"build-key": TOKEN})
    kube_system["metadata"]["uid"] = "c-1"
    kube_system["metadata"]["annotations"] = {"example.com/api-token": SECRET}

    row = normalize_cluster(kube_system, {"gitVersion": "v1.30.0", "compiler": "gc"}, name="c")

    assert row.raw == {
        "kubeSystem": {"metadata": {
            "name": "kube-system", "uid": "c-1",
            "labels": {"kubernetes.io/metadata.name": "kube-system", "build-key": REDACTED},
        }},
        "version": {"gitVersion": "v1.30.0"},
    }  # fmt: skip


def test_aws_tags_are_redacted_in_raw_as_in_the_row() -> None:
    raw = payload("aws/instance.json")
    raw["Tags"] += [{"Key": "db_password", "Value": SECRET}, {"Key": "Name", "Value": TOKEN}]
    raw["UserData"] = SECRET  # not what DescribeInstances returns, but never stored if it were

    row = normalize_instance(raw, ListingContext(region="r", scope="r"))

    assert SECRET not in json.dumps(row.raw) and TOKEN not in json.dumps(row.raw)
    assert row.tags["db_password"] == REDACTED
    assert row.name == REDACTED, "a name taken from a secret-shaped Name tag is redacted too"
    assert row.tags[TAG] == "JS-HRSS-0042" and row.system_code == "JS-HRSS-0042"
    assert {pair["Key"]: pair["Value"] for pair in row.raw["Tags"]} == row.tags


@pytest.mark.parametrize(
    ("kind", "path"),
    [("deployment", "k8s/deployment.json"), ("cronjob", "k8s/cronjob.json"),
     ("k8s_node", "k8s/node.json"), ("vm", "aws/instance.json"), ("volume", "aws/volume.json"),
     ("bucket", "aws/bucket.json"), ("db_instance", "aws/db_instance.json")],
)  # fmt: skip
def test_the_scrub_is_idempotent(kind: str, path: str) -> None:
    """Migration 0006 re-applies the allowlist to what a scan stored: nothing may change."""
    raw = payload(path)
    original = copy.deepcopy(raw)

    once = allowed_raw(kind, raw, system_tag=TAG)

    assert allowed_raw(kind, once, system_tag=TAG) == once
    assert raw == original, "the listed object is not modified"


def test_unknown_kinds_and_unexpected_shapes_keep_nothing() -> None:
    assert allowed_raw("no_such_kind", {"name": "x", "password": SECRET}, system_tag=TAG) == {}
    # Labels as a string, containers as a map: not understood, so not stored.
    odd = {"metadata": {"name": "d", "labels": SECRET}, "spec": {"template": {"spec": {
        "containers": {"name": SECRET}}}}}  # fmt: skip
    assert allowed_raw("deployment", odd, system_tag=TAG) == {
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {}}},
    }
