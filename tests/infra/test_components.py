"""The Pulumi components under the mock runtime: the policies they enforce, not mere existence."""

from __future__ import annotations

import importlib
import inspect
import json
import runpy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.import_spec import IMPORT_MAPPINGS
from infra.stack_config import StackConfig, parse_stack_config, read_stack_file
from tests.infra.pulumi_harness import Recording, pulumi, run_program

# pulumi_aws's s3 module warns about its own deprecated V2 classes when it loads.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*")

DATA = Path(__file__).parents[1] / "data" / "infra"
STACK_FILE = DATA / "Pulumi.test-core.yaml"
INFRA = Path(__file__).parents[2] / "infra"

NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
LIMITS = "kubernetes:core/v1:LimitRange"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
BUCKET = "aws:s3/bucket:Bucket"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*", "escalate", "bind"}
GUARDRAILS = {"networkpolicies", "resourcequotas", "limitranges", "roles", "rolebindings"}


def stack_raw() -> dict[str, Any]:
    document = yaml.safe_load(STACK_FILE.read_text(encoding="utf-8"))
    return {k.split(":", 1)[1]: v for k, v in document["config"].items()}


@pytest.fixture(scope="module")
def config() -> StackConfig:
    return read_stack_file(STACK_FILE)


@pytest.fixture(scope="module")
def recording(config: StackConfig) -> Recording:
    from infra.stack import build_stack

    return run_program(lambda: build_stack(config))


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity in base units (cores, bytes)."""
    units = {"m": Decimal("0.001"), "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * Decimal(factor)
    return Decimal(text)


def department_namespaces(recording: Recording) -> list[dict[str, Any]]:
    """Namespaces of tenants and landing zones (everything but the agent's own)."""
    return [
        r.inputs["metadata"]
        for r in recording.of_type(NAMESPACE)
        if "yiyun.io/department" in r.inputs["metadata"]["labels"]
    ]


def policies(recording: Recording, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in recording.in_namespace(NETPOL, namespace)
    }


# ---------------------------------------------------------------- tenants and landing zones


def test_every_department_namespace_has_quota_limit_range_and_default_deny(
    recording: Recording, config: StackConfig
) -> None:
    namespaces = department_namespaces(recording)
    # 3 tenants + 3 systems of wave 1.
    assert {m["name"] for m in namespaces} == {
        "js-edu", "js-hrss", "nj-bigdata", "js-edu-0003", "js-hrss-s-hr-11", "nj-dsj-nj-0101"
    }  # fmt: skip
    for meta in namespaces:
        name = meta["name"]
        (quota,) = recording.in_namespace(QUOTA, name)
        hard = quota.inputs["spec"]["hard"]
        assert {"requests.cpu", "requests.memory", "requests.storage", "pods"} <= set(hard), name
        (limit_range,) = recording.in_namespace(LIMITS, name)
        (item,) = limit_range.inputs["spec"]["limits"]
        assert item["type"] == "Container"
        for key in ("default", "defaultRequest", "max"):
            assert set(item[key]) == {"cpu", "memory"}, (name, key)
        assert quantity(item["defaultRequest"]["cpu"]) <= quantity(item["default"]["cpu"])

        specs = policies(recording, name)
        deny = specs["default-deny"]
        assert deny["podSelector"] == {}
        assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny and "egress" not in deny


def test_allowances_are_same_namespace_dns_and_ingress_controller_only(
    recording: Recording, config: StackConfig
) -> None:
    expected = {"default-deny", "allow-same-namespace", "allow-dns", "allow-ingress-controller"}
    for meta in department_namespaces(recording):
        name = meta["name"]
        department = meta["labels"]["yiyun.io/department"]
        specs = policies(recording, name)
        extra = {"allow-egress-cidrs"} if department == "JS-HRSS" else set()
        assert set(specs) == expected | extra, name

        same = specs["allow-same-namespace"]
        assert same["ingress"] == [{"from": [{"podSelector": {}}]}]
        assert same["egress"] == [{"to": [{"podSelector": {}}]}]

        (dns,) = specs["allow-dns"]["egress"]
        assert dns["to"] == [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ]
        assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}

        (ingress,) = specs["allow-ingress-controller"]["ingress"]
        assert ingress["from"] == [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "ingress-system"}
                }
            }
        ]
        assert specs["allow-ingress-controller"]["policyTypes"] == ["Ingress"]

        # No rule anywhere opens to every peer or every namespace.
        for spec in specs.values():
            for rule in spec.get("ingress", []) + spec.get("egress", []):
                peers = rule.get("from", rule.get("to"))
                assert peers, f"{name}: a rule without peers allows everything"
                for peer in peers:
                    assert peer.get("namespaceSelector") != {}, name
                    assert peer.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0")


def test_department_it_group_gets_a_role_that_cannot_touch_the_guardrails(
    recording: Recording, config: StackConfig
) -> None:
    for meta in department_namespaces(recording):
        name = meta["name"]
        department = config.departments[meta["labels"]["yiyun.io/department"]]
        (binding,) = recording.in_namespace(ROLE_BINDING, name)
        assert binding.inputs["subjects"] == [
            {"kind": "Group", "name": department.it_group, "apiGroup": "rbac.authorization.k8s.io"}
        ]
        role_ref = binding.inputs["roleRef"]
        assert role_ref["kind"] == "Role"  # namespaced: never a cluster-wide grant
        (role,) = recording.in_namespace(ROLE, name)
        assert role.inputs["metadata"]["name"] == role_ref["name"]
        for rule in role.inputs["rules"]:
            assert "*" not in rule["resources"] and "*" not in rule["verbs"]
            if set(rule["verbs"]) & WRITE_VERBS:
                assert not set(rule["resources"]) & GUARDRAILS, rule


def test_every_bucket_is_encrypted_versioned_private_and_tagged(
    recording: Recording, config: StackConfig
) -> None:
    buckets = recording.of_type(BUCKET)
    assert {b.inputs["bucket"] for b in buckets} == {"test-core-js-edu", "test-core-js-hrss"}

    def attached(type_token: str, bucket: str) -> list[dict[str, Any]]:
        return [r.inputs for r in recording.of_type(type_token) if r.inputs["bucket"] == bucket]

    for bucket in buckets:
        name = bucket.inputs["bucket"]
        (sse,) = attached(
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            name,
        )
        (rule,) = sse["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
        (versioning,) = attached("aws:s3/bucketVersioning:BucketVersioning", name)
        assert versioning["versioningConfiguration"]["status"] == "Enabled"
        (private,) = attached("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name)
        assert all(
            private[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                      "restrictPublicBuckets")
        )  # fmt: skip
        assert bucket.inputs.get("forceDestroy") is False
        tags = bucket.inputs["tags"]
        assert tags["yiyun.io/managed-by"] == "pulumi"
        assert tags["yiyun.io/node"] == "test-core"
        assert tags["yiyun.io/department"] in config.departments
        # A provisioned, empty bucket must not count as evidence for a system.
        assert "yiyun.io/system" not in tags


def test_landing_zone_namespaces_carry_the_system_and_a_quota_above_measured_use(
    recording: Recording,
) -> None:
    plan = json.loads((DATA / "plan_export.json").read_text(encoding="utf-8"))
    (wave,) = [w for w in plan["waves"] if w["number"] == 1]
    headroom = Decimal("0.2")
    labelled = {
        m["labels"]["yiyun.io/system"]: m for m in department_namespaces(recording)
        if "yiyun.io/system" in m["labels"]
    }  # fmt: skip
    assert set(labelled) == {s["code"] for s in wave["systems"]}
    for system in wave["systems"]:
        meta = labelled[system["code"]]
        assert meta["labels"]["yiyun.io/department"] == system["department_code"]
        assert meta["labels"]["yiyun.io/managed-by"] == "pulumi"
        (quota,) = recording.in_namespace(QUOTA, meta["name"])
        hard = quota.inputs["spec"]["hard"]
        sizing = {k: Decimal(str(v)) * (1 + headroom) for k, v in system["sizing"].items()}
        assert quantity(hard["requests.cpu"]) >= sizing["vcpu"]
        assert quantity(hard["requests.memory"]) >= sizing["memory_gib"] * 1024**3
        assert quantity(hard["requests.storage"]) >= sizing["storage_gib"] * 1024**3
    # A tiny system still gets a workable floor (0.5 vCPU, 1 GiB, 10 GiB by default).
    tiny = recording.in_namespace(QUOTA, labelled["NJ-0101"]["name"])[0].inputs["spec"]["hard"]
    assert (tiny["requests.cpu"], tiny["requests.memory"], tiny["requests.storage"]) == (
        "500m", "1024Mi", "10Gi"
    )  # fmt: skip


# ---------------------------------------------------------------- the inventory agent


def test_agent_cluster_role_reads_exactly_the_collected_kinds_and_nothing_else(
    recording: Recording,
) -> None:
    (role,) = recording.of_type(CLUSTER_ROLE)
    granted: set[tuple[str, str]] = set()
    for rule in role.inputs["rules"]:
        assert set(rule["verbs"]) == {"get", "list", "watch"}, rule
        assert "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
        granted |= {
            (group, resource) for group in rule["apiGroups"] for resource in rule["resources"]
        }
    assert not any(resource == "secrets" for _, resource in granted)
    assert granted == {
        ("", "namespaces"), ("", "nodes"), ("", "persistentvolumeclaims"), ("", "services"),
        ("", "resourcequotas"), ("apps", "deployments"), ("apps", "statefulsets"),
        ("apps", "daemonsets"), ("batch", "cronjobs"),
    }  # fmt: skip
    (binding,) = recording.of_type(CLUSTER_ROLE_BINDING)
    assert binding.inputs["roleRef"]["name"] == role.inputs["metadata"]["name"]
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "yiyun-inventory", "namespace": "yiyun-system"}
    ]


def _pod(recording: Recording, type_token: str) -> dict[str, Any]:
    (workload,) = recording.of_type(type_token)
    spec = workload.inputs["spec"]
    return spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]


def _database_from_secret(container: dict[str, Any]) -> None:
    (url,) = [e for e in container["env"] if e["name"] == "YIYUN_DATABASE_URL"]
    assert "value" not in url
    assert url["valueFrom"] == {"secretKeyRef": {"name": "yiyun-database", "key": "url"}}
    for variable in container["env"]:
        assert "://" not in variable.get("value", ""), "a URL in plain pod config"


def test_scan_cronjob_runs_yiyun_scan_for_its_node_with_the_database_from_a_secret(
    recording: Recording,
) -> None:
    (cronjob,) = recording.of_type("kubernetes:batch/v1:CronJob")
    assert cronjob.inputs["spec"]["schedule"] == "*/30 * * * *"
    assert cronjob.inputs["spec"]["concurrencyPolicy"] == "Forbid"
    pod = _pod(recording, "kubernetes:batch/v1:CronJob")["spec"]
    assert pod["serviceAccountName"] == "yiyun-inventory"
    (container,) = pod["containers"]
    assert container["command"] + container["args"] == ["yiyun", "scan", "--node", "test-core"]
    _database_from_secret(container)
    assert container["envFrom"] == [{"secretRef": {"name": "yiyun-aws"}}]
    assert {"name": "YIYUN_CONFIG", "value": "/etc/yiyun/nodes.yaml"} in container["env"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_exporter_is_a_scrapeable_deployment_and_service(recording: Recording) -> None:
    template = _pod(recording, "kubernetes:apps/v1:Deployment")
    (container,) = template["spec"]["containers"]
    assert container["command"] + container["args"] == [
        "yiyun", "exporter", "serve", "--host", "0.0.0.0", "--port", "9464"
    ]  # fmt: skip
    _database_from_secret(container)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464}]
    assert template["spec"]["automountServiceAccountToken"] is False
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "9464",
              "prometheus.io/path": "/metrics"}  # fmt: skip
    assert template["metadata"]["annotations"] == scrape

    (service,) = [
        s for s in recording.of_type("kubernetes:core/v1:Service")
        if s.inputs["metadata"]["namespace"] == "yiyun-system"
    ]  # fmt: skip
    assert service.inputs["metadata"]["annotations"] == scrape
    selector = service.inputs["spec"]["selector"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert service.inputs["spec"]["ports"] == [
        {"name": "metrics", "port": 9464, "targetPort": "metrics"}
    ]


def test_a_node_without_the_exporter_gets_only_the_scanner() -> None:
    from infra.stack import build_stack

    raw = stack_raw()
    raw["agent"] = {**raw["agent"], "exporter": False}
    raw.pop("landingZones")
    config = parse_stack_config(raw, base_dir=DATA)
    recording = run_program(lambda: build_stack(config))
    assert recording.of_type("kubernetes:apps/v1:Deployment") == []
    assert recording.of_type("kubernetes:core/v1:Service") == []
    assert len(recording.of_type("kubernetes:batch/v1:CronJob")) == 1


# ---------------------------------------------------------------- structure


def test_every_child_has_its_component_as_parent_and_the_node_providers(
    recording: Recording,
) -> None:
    assert recording.duplicates == []
    components = {r.urn: r for r in recording.resources if not r.custom}
    assert {c.type for c in components.values()} == {
        "yiyun:tenant:DepartmentTenant", "yiyun:landingzone:WaveLandingZone",
        "yiyun:agent:InventoryAgent",
    }  # fmt: skip
    for resource in recording.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        assert resource.parent in components, f"{resource.type} {resource.name} has no component"
        package = resource.type.split(":", 1)[0]
        provider = {"kubernetes": "test-core-k8s", "aws": "test-core-object-store"}[package]
        # Children inherit the node's explicit providers (its kubeconfig, its private S3).
        assert f"pulumi:providers:{package}::{provider}::" in resource.provider, resource.name
    (store,) = recording.of_type("pulumi:providers:aws")
    assert json.loads(store.inputs["endpoints"]) == [{"s3": "http://127.0.0.1:9000"}]
    for flag in ("s3UsePathStyle", "skipCredentialsValidation", "skipRequestingAccountId",
                 "skipMetadataApiCheck", "skipRegionValidation"):  # fmt: skip
        assert store.inputs[flag] == "true", flag
    assert "accessKey" not in store.inputs and "secretKey" not in store.inputs


def test_import_type_tokens_name_resource_classes_of_the_installed_providers() -> None:
    packages = {"aws": "pulumi_aws", "kubernetes": "pulumi_kubernetes"}
    for kind, mapping in IMPORT_MAPPINGS.items():
        package, module, class_name = mapping.type_token.split(":")
        # aws:<module>/<resource> lives in pulumi_aws.<module>; kubernetes:core/v1 in .core.v1.
        path = module.split("/")[0] if package == "aws" else module.replace("/", ".")
        resource_class = getattr(importlib.import_module(f"{packages[package]}.{path}"), class_name)
        assert resource_class.pulumi_type == mapping.type_token, kind
        # pulumi-aws flags a superseded class (s3.BucketV2) in its own source.
        assert f"{class_name} is deprecated" not in inspect.getsource(resource_class), kind


# ---------------------------------------------------------------- the program entry point


def _set_config(raw: dict[str, Any]) -> None:
    pulumi.runtime.set_all_config({f"yiyun:{k}": json.dumps(v) for k, v in raw.items()})


def test_main_reads_the_stack_config_and_builds_the_node() -> None:
    raw = stack_raw()
    raw["landingZones"][0]["plan"] = str(DATA / "plan_export.json")
    _set_config(raw)
    try:
        recording = run_program(lambda: runpy.run_path(str(INFRA / "program"), run_name="__main__"))
    finally:
        pulumi.runtime.set_all_config({})
    assert len(department_namespaces(recording)) == 6
    assert len(recording.of_type(BUCKET)) == 2


def test_main_stops_on_a_bad_config_with_every_problem() -> None:
    raw = stack_raw()
    raw["tenants"] = [
        {"department": "JS-EDX", "quota": {"cpu": 1, "memoryGib": 1, "storageGib": 1}},
        {"department": "JS-HRSS", "quota": {"cpu": -4, "memoryGib": 1, "storageGib": 1}},
    ]
    raw.pop("landingZones")
    _set_config(raw)
    try:
        with pytest.raises(pulumi.RunError) as raised:
            run_program(lambda: runpy.run_path(str(INFRA / "program"), run_name="__main__"))
    finally:
        pulumi.runtime.set_all_config({})
    message = str(raised.value)
    assert "unknown department JS-EDX (did you mean JS-EDU?)" in message
    assert "tenants[1].quota.cpu: must be ≥ 0, got -4" in message
