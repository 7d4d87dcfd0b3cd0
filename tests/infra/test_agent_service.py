"""`yiyun serve` as the InventoryAgent deploys it: probes, secrets, Service, budget, validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.stack_config import (
    HttpServiceArgs,
    OidcSecretRef,
    StackConfigError,
    parse_quantity,
    parse_stack_config,
    read_stack_file,
)
from tests.infra.pulumi_harness import Recording, run_program
from tests.infra.test_components import DATA, stack_raw

INFRA = Path(__file__).parents[2] / "infra"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*")

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
AGENT = "yiyun:agent:InventoryAgent"
PROBES = ("startup", "liveness", "readiness")
SECRET_VARIABLES = {
    "YIYUN_DATABASE_URL",
    "YIYUN_OIDC_ISSUER",
    "YIYUN_OIDC_AUDIENCE",
    "YIYUN_OIDC_PORTAL_CLIENT_ID",
    "YIYUN_OIDC_PORTAL_CLIENT_SECRET",
    "YIYUN_PORTAL_URL",
}
OIDC_SECRET = {"name": "yiyun-oidc", "issuerKey": "issuer-url", "audienceKey": "audience"}


def raw_with_service(**service: Any) -> dict[str, Any]:
    """The test stack with the service on its agent (and without the landing zones)."""
    raw = stack_raw()
    raw.pop("landingZones")
    raw["agent"] = {**raw["agent"], "service": {"oidcSecret": dict(OIDC_SECRET), **service}}
    return raw


def build(raw: dict[str, Any]) -> Recording:
    from infra.stack import build_stack

    config = parse_stack_config(raw, base_dir=DATA)
    return run_program(lambda: build_stack(config))


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as raised:
        parse_stack_config(raw, base_dir=DATA)
    return raised.value.problems


@pytest.fixture(scope="module")
def recording() -> Recording:
    return build(
        raw_with_service(
            principalClaim="preferred_username",
            grantsClaim="yiyun_grants",
            portalSecret={"name": "yiyun-portal"},
        )
    )


def named(recording: Recording, type_token: str, name: str) -> dict[str, Any]:
    (resource,) = [r for r in recording.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    return resource.inputs


def serve_container(recording: Recording) -> dict[str, Any]:
    pod = named(recording, DEPLOYMENT, "yiyun-service")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, resolved against the container's ports as kubelet does."""
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in container["ports"]}
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def walk(value: Any) -> Iterator[Any]:
    """Every dict, list and scalar nested in a resource's inputs."""
    yield value
    if isinstance(value, dict):
        value = list(value.values())
    for child in value if isinstance(value, list) else ():
        yield from walk(child)


# ---------------------------------------------------------------- the Deployment


def test_service_runs_yiyun_serve_with_health_probes_on_its_own_port(
    recording: Recording,
) -> None:
    deployment = named(recording, DEPLOYMENT, "yiyun-service")
    assert deployment["metadata"]["namespace"] == "yiyun-system"
    assert deployment["spec"]["replicas"] == 2
    container = serve_container(recording)
    assert container["image"] == "registry.test/yiyun:0.1.0"
    assert container["command"] + container["args"] == [
        "yiyun", "serve", "--host", "0.0.0.0", "--port", "8080"
    ]  # fmt: skip
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]

    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in PROBES}
    assert {kind: get["path"] for kind, get in probes.items()} == {
        "startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"
    }  # fmt: skip
    for get in probes.values():
        assert container_port(container, get["port"]) == 8080
    # The startup probe gives the process longer than liveness would before a restart.
    startup, liveness = container["startupProbe"], container["livenessProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > (
        liveness["periodSeconds"] * liveness["failureThreshold"]
    )


def test_service_pods_are_non_root_read_only_unprivileged_and_bounded(
    recording: Recording,
) -> None:
    pod = named(recording, DEPLOYMENT, "yiyun-service")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = serve_container(recording)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The only writable path is a scratch emptyDir for /tmp.
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert (mount["mountPath"], set(volume)) == ("/tmp", {"name", "emptyDir"})

    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) == set(limits) == {"cpu", "memory"}
    for resource in ("cpu", "memory"):
        assert parse_quantity(requests[resource]) <= parse_quantity(limits[resource]), resource
    # The benchmark's target is an RSS under 300 MiB; the limit leaves room above it.
    assert parse_quantity(limits["memory"]) >= 384 * 1024**2
    assert parse_quantity(requests["memory"]) >= 300 * 1024**2


def test_database_url_and_oidc_come_only_from_secret_key_refs(recording: Recording) -> None:
    container = serve_container(recording)
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == SECRET_VARIABLES | {"YIYUN_OIDC_PRINCIPAL_CLAIM", "YIYUN_OIDC_GRANTS_CLAIM"}
    assert {name: env[name]["valueFrom"] for name in SECRET_VARIABLES} == {
        "YIYUN_DATABASE_URL": {"secretKeyRef": {"name": "yiyun-database", "key": "url"}},
        "YIYUN_OIDC_ISSUER": {"secretKeyRef": {"name": "yiyun-oidc", "key": "issuer-url"}},
        "YIYUN_OIDC_AUDIENCE": {"secretKeyRef": {"name": "yiyun-oidc", "key": "audience"}},
        "YIYUN_OIDC_PORTAL_CLIENT_ID": {
            "secretKeyRef": {"name": "yiyun-portal", "key": "client-id"}
        },
        "YIYUN_OIDC_PORTAL_CLIENT_SECRET": {
            "secretKeyRef": {"name": "yiyun-portal", "key": "client-secret"}
        },
        "YIYUN_PORTAL_URL": {"secretKeyRef": {"name": "yiyun-portal", "key": "url"}},
    }
    assert env["YIYUN_OIDC_PRINCIPAL_CLAIM"]["value"] == "preferred_username"
    assert env["YIYUN_OIDC_GRANTS_CLAIM"]["value"] == "yiyun_grants"
    assert "envFrom" not in container

    # Everywhere in the agent's resources: a secret variable is never given a literal value,
    # and no URL (a database DSN, an issuer) sits in plain config.
    (agent,) = [r for r in recording.resources if r.type == AGENT]
    children = [r for r in recording.resources if r.parent == agent.urn]
    secret_entries = 0
    for child in children:
        for node in walk(child.inputs):
            if isinstance(node, dict) and node.get("name") in SECRET_VARIABLES:
                assert set(node) == {"name", "valueFrom"}, (child.name, node)
                assert set(node["valueFrom"]) == {"secretKeyRef"}, (child.name, node)
                secret_entries += 1
            assert not (isinstance(node, str) and "://" in node), (child.name, node)
    # scanner 1 + exporter 1 + service 6 (ledger, issuer, audience, portal id, secret, URL).
    assert secret_entries == 8


# ---------------------------------------------------------------- Service and budget


def test_cluster_ip_service_sends_port_80_to_the_serve_container(recording: Recording) -> None:
    service = named(recording, SERVICE, "yiyun-service")
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    (port,) = spec["ports"]
    assert (port["name"], port["port"]) == ("http", 80)
    assert container_port(serve_container(recording), port["targetPort"]) == 8080

    template = named(recording, DEPLOYMENT, "yiyun-service")["spec"]["template"]
    assert spec["selector"].items() <= template["metadata"]["labels"].items()
    exporter = named(recording, DEPLOYMENT, "yiyun-exporter")["spec"]["template"]
    assert not spec["selector"].items() <= exporter["metadata"]["labels"].items()

    # Scraped the way the exporter is, at the service's own port.
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
              "prometheus.io/path": "/metrics"}  # fmt: skip
    assert template["metadata"]["annotations"] == scrape
    assert service["metadata"]["annotations"] == scrape
    assert set(exporter["metadata"]["annotations"]) == set(scrape)


def test_two_replicas_get_a_disruption_budget_keeping_one(recording: Recording) -> None:
    (budget,) = recording.of_type(BUDGET)
    spec = budget.inputs["spec"]
    assert spec["minAvailable"] == 1
    template = named(recording, DEPLOYMENT, "yiyun-service")["spec"]["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert budget.inputs["metadata"]["namespace"] == "yiyun-system"


def test_one_replica_without_claims_gets_no_budget_and_only_the_secret_variables() -> None:
    recording = build(raw_with_service(replicas=1))
    assert named(recording, DEPLOYMENT, "yiyun-service")["spec"]["replicas"] == 1
    assert recording.of_type(BUDGET) == []
    # Without portalSecret the portal offers only what the API does: no login client.
    assert {e["name"] for e in serve_container(recording)["env"]} == SECRET_VARIABLES - {
        "YIYUN_OIDC_PORTAL_CLIENT_ID",
        "YIYUN_OIDC_PORTAL_CLIENT_SECRET",
        "YIYUN_PORTAL_URL",
    }


def test_an_agent_without_a_service_section_deploys_no_service() -> None:
    raw = stack_raw()
    raw.pop("landingZones")
    config = parse_stack_config(raw, base_dir=DATA)
    assert config.agent is not None and config.agent.service is None
    recording = build(raw)
    assert {r.inputs["metadata"]["name"] for r in recording.of_type(DEPLOYMENT)} == {
        "yiyun-exporter"
    }
    assert recording.of_type(BUDGET) == []


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({}, "agent.service.oidcSecret: is required"),
        ({"oidcSecret": "yiyun-oidc"}, "agent.service.oidcSecret: must be an object with name"),
        ({"oidcSecret": {"issuerKey": "issuer"}}, "agent.service.oidcSecret.name: is required"),
        (
            {"oidcSecret": {"name": "Yiyun_OIDC"}},
            "agent.service.oidcSecret.name: 'Yiyun_OIDC' is not a Kubernetes name",
        ),
        (
            {"oidcSecret": {"name": "yiyun-oidc", "issuerKey": "issuer url"}},
            "agent.service.oidcSecret.issuerKey: 'issuer url' is not a Secret data key",
        ),
        (
            {"oidcSecret": {"name": "yiyun-oidc", "audienceKey": "issuer"}},
            "agent.service.oidcSecret: issuerKey and audienceKey both name 'issuer'",
        ),
        (
            {"oidcSecret": {"name": "yiyun-oidc", "issuer": "https://idp.example"}},
            "agent.service.oidcSecret.issuer: unknown setting (did you mean issuerKey?)",
        ),
        (
            {"oidcSecret": dict(OIDC_SECRET), "replicas": 0},
            "agent.service.replicas: must be at least 1",
        ),
        (
            {"oidcSecret": dict(OIDC_SECRET), "memoryRequest": "200Mi", "memoryLimit": "256Mi"},
            "agent.service.memoryLimit: 256Mi is below 384Mi",
        ),
        (True, "agent.service: must be an object with replicas, oidcSecret"),
        (
            {"oidcSecret": dict(OIDC_SECRET), "portalSecret": {"name": "p", "urlKey": "client-id"}},
            "agent.service.portalSecret: clientIdKey, urlKey and client-secret must be three",
        ),
    ],
    ids=[
        "missing", "not-an-object", "no-name", "bad-name", "bad-key", "same-key",
        "literal-issuer", "no-replicas", "memory-too-small", "bare-true", "portal-same-key",
    ],
)  # fmt: skip
def test_a_missing_or_malformed_service_setting_is_refused_with_its_path(
    service: Any, expected: str
) -> None:
    raw = stack_raw()
    raw.pop("landingZones")
    raw["agent"]["service"] = service
    (found,) = problems(raw)
    assert found.startswith(expected), found


def test_service_settings_parse_with_their_defaults() -> None:
    config = parse_stack_config(raw_with_service(oidcSecret={"name": "yiyun-oidc"}), base_dir=DATA)
    assert config.agent is not None
    assert config.agent.service == HttpServiceArgs(
        oidc_secret=OidcSecretRef(name="yiyun-oidc", issuer_key="issuer", audience_key="audience"),
        replicas=2,
        principal_claim=None,
        grants_claim=None,
    )
    assert parse_quantity(config.agent.service.resources.memory_limit) >= 384 * 1024**2


def test_the_province_runs_one_service_on_the_core_node() -> None:
    core = read_stack_file(INFRA / "Pulumi.js-core.yaml").agent
    city = read_stack_file(INFRA / "Pulumi.nj.yaml").agent
    assert core is not None and core.service is not None and core.service.replicas == 2
    assert core.service.oidc_secret.name == "yiyun-oidc"
    assert city is not None and city.service is None
