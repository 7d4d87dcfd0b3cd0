"""One node's stack: read and validate its config, then build providers and components."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components import DepartmentTenant, InventoryAgent, WaveLandingZone
from infra.naming import short_hash, slug
from infra.stack_config import (
    CONFIG_KEYS,
    PROJECT,
    StackConfig,
    StackConfigError,
    parse_stack_config,
)

PROJECT_DIR = Path(__file__).resolve().parent


def read_stack_config(
    config: pulumi.Config | None = None, *, base_dir: Path | None = None
) -> StackConfig:
    """The `yiyun:` stack config, validated; a bad config stops the run with every problem."""
    config = config or pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = config.get_object(key)
        if value is not None:
            raw[key] = value
    try:
        return parse_stack_config(raw, base_dir=base_dir or PROJECT_DIR)
    except StackConfigError as error:
        # RunError prints the message without a Python traceback.
        raise pulumi.RunError(str(error)) from None


@dataclass
class NodeStack:
    tenants: dict[str, DepartmentTenant]
    landing_zones: list[WaveLandingZone]
    agent: InventoryAgent | None


def build_stack(stack: StackConfig) -> NodeStack:
    """Providers from the node's endpoints, then every component the config asks for."""
    node = stack.node
    cluster = k8s.Provider(
        f"{node.id}-k8s",
        context=node.kubernetes.context,
        kubeconfig=node.kubernetes.kubeconfig,
    )
    providers: dict[str, pulumi.ProviderResource] = {"kubernetes": cluster}
    if node.object_store is not None:
        store = node.object_store
        # S3-compatible and private: no STS, no metadata API, no AWS region list, own CA.
        providers["aws"] = aws.Provider(
            f"{node.id}-object-store",
            region=store.region,
            profile=store.profile,
            endpoints=[aws.ProviderEndpointArgs(s3=store.endpoint)],
            s3_use_path_style=store.path_style,
            skip_credentials_validation=True,
            skip_requesting_account_id=True,
            skip_metadata_api_check=True,
            skip_region_validation=True,
        )
    opts = pulumi.ResourceOptions(providers=providers)

    tenants = {
        t.rules.department.code: DepartmentTenant(f"tenant-{t.namespace}", t, opts)
        for t in stack.tenants
    }
    zones = [
        WaveLandingZone(
            f"lz-{slug(z.plan) or short_hash(z.plan)}-wave-{z.wave}",
            z,
            pulumi.ResourceOptions(
                providers=providers,
                # A landing zone lives inside its departments' tenants: create those first.
                depends_on=[tenants[n.rules.department.code] for n in z.namespaces],
            ),
        )
        for z in stack.landing_zones
    ]
    agent = InventoryAgent(f"agent-{node.id}", stack.agent, opts) if stack.agent else None

    pulumi.export("node", node.id)
    pulumi.export(
        "tenant_namespaces", {code: t.namespace.metadata.name for code, t in tenants.items()}
    )
    pulumi.export(
        "tenant_buckets",
        {code: t.bucket.bucket for code, t in tenants.items() if t.bucket is not None},
    )
    pulumi.export(
        "landing_zone_namespaces",
        {code: ns.metadata.name for z in zones for code, ns in z.namespaces.items()},
    )
    if agent is not None:
        pulumi.export("agent_namespace", agent.namespace.metadata.name)
    return NodeStack(tenants=tenants, landing_zones=zones, agent=agent)
