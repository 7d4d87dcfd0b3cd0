"""WaveLandingZone: one labelled, quota-sized namespace per system of a migration wave."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.components.guardrails import apply_guardrails
from infra.stack_config import WaveLandingZoneArgs


class WaveLandingZone(pulumi.ComponentResource):
    """Where a wave's systems land: once they run here the inventory attributes them by label."""

    def __init__(
        self, name: str, args: WaveLandingZoneArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("yiyun:landingzone:WaveLandingZone", name, None, opts)
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for zone in args.namespaces:
            child = f"{name}-{zone.namespace}"
            namespace = k8s.core.v1.Namespace(
                child,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=zone.namespace,
                    # yiyun.io/system on the namespace: workloads inherit it (DESIGN, Attribution).
                    labels=zone.labels,
                    annotations={
                        "yiyun.io/wave-window": f"{args.start.isoformat()}/{args.end.isoformat()}",
                        "yiyun.io/headroom": str(args.headroom),
                    },
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The department's tenant rules, with a quota sized from the measured use.
            apply_guardrails(self, namespace, name=child, quota=zone.quota, rules=zone.rules)
            self.namespaces[zone.system_code] = namespace
        self.register_outputs({code: ns.metadata.name for code, ns in self.namespaces.items()})
