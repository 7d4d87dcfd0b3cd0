"""The rules every department namespace gets: quota, limits, default-deny, IT access."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.stack_config import LABEL_DEPARTMENT, LABEL_MANAGED_BY, MANAGED_BY, NamespaceRules, Quota

ns_meta = k8s.meta.v1.ObjectMetaArgs
selector = k8s.meta.v1.LabelSelectorArgs
Peer = k8s.networking.v1.NetworkPolicyPeerArgs
Port = k8s.networking.v1.NetworkPolicyPortArgs
PolicyRule = k8s.rbac.v1.PolicyRuleArgs

# What the department's IT staff may change in their namespaces. Deliberately absent:
# networkpolicies, resourcequotas, limitranges, roles and rolebindings, which are the
# platform's guardrails (the built-in `edit`/`admin` roles would let a tenant delete them).
RW = ("get", "list", "watch", "create", "update", "patch", "delete")
RO = ("get", "list", "watch")
IT_GROUP_RULES = (
    ("", ("pods", "pods/log", "pods/exec", "pods/portforward", "services", "endpoints",
          "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts"), RW),
    ("apps", ("deployments", "statefulsets", "daemonsets", "replicasets",
              "deployments/scale", "statefulsets/scale"), RW),
    ("batch", ("jobs", "cronjobs"), RW),
    ("networking.k8s.io", ("ingresses",), RW),
    ("autoscaling", ("horizontalpodautoscalers",), RW),
    ("", ("events", "resourcequotas", "limitranges"), RO),
    ("networking.k8s.io", ("networkpolicies",), RO),
)  # fmt: skip


def _meta(name: str, namespace: pulumi.Input[str], labels: dict[str, str]) -> ns_meta:
    return ns_meta(name=name, namespace=namespace, labels=labels)


def _by_name(namespace: str) -> selector:
    # Every namespace carries this label (Kubernetes ≥ 1.21 sets it itself).
    return selector(match_labels={"kubernetes.io/metadata.name": namespace})


def apply_guardrails(
    parent: pulumi.ComponentResource,
    namespace: k8s.core.v1.Namespace,
    *,
    name: str,
    quota: Quota,
    rules: NamespaceRules,
) -> dict[str, pulumi.CustomResource]:
    """Create the guardrail objects in `namespace`, each a child of `parent`."""
    department = rules.department
    labels = {LABEL_DEPARTMENT: department.code, LABEL_MANAGED_BY: MANAGED_BY}
    ns = namespace.metadata.name  # an Output: every object waits for its namespace
    opts = pulumi.ResourceOptions(parent=parent)
    made: dict[str, pulumi.CustomResource] = {}

    made["quota"] = k8s.core.v1.ResourceQuota(
        f"{name}-quota",
        metadata=_meta("tenant-quota", ns, labels),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota.hard()),
        opts=opts,
    )
    limits = rules.limits
    made["limits"] = k8s.core.v1.LimitRange(
        f"{name}-limits",
        metadata=_meta("tenant-limits", ns, labels),
        spec=k8s.core.v1.LimitRangeSpecArgs(
            limits=[
                k8s.core.v1.LimitRangeItemArgs(
                    type="Container",
                    default={"cpu": limits.default_cpu, "memory": limits.default_memory},
                    default_request={
                        "cpu": limits.default_request_cpu,
                        "memory": limits.default_request_memory,
                    },
                    max={"cpu": limits.max_cpu, "memory": limits.max_memory},
                )
            ]
        ),
        opts=opts,
    )

    def policy(
        key: str,
        policy_name: str,
        types: list[str],
        ingress: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs] | None = None,
        egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] | None = None,
    ) -> None:
        made[key] = k8s.networking.v1.NetworkPolicy(
            f"{name}-{policy_name}",
            metadata=_meta(policy_name, ns, labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=selector(), policy_types=types, ingress=ingress, egress=egress
            ),
            opts=opts,
        )

    # Default deny both ways; the allowances below are the only holes.
    policy("default_deny", "default-deny", ["Ingress", "Egress"])
    same_namespace = [Peer(pod_selector=selector())]
    policy(
        "same_namespace",
        "allow-same-namespace",
        ["Ingress", "Egress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=same_namespace)],
        egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=same_namespace)],
    )
    policy(
        "dns",
        "allow-dns",
        ["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    Peer(
                        namespace_selector=_by_name(rules.dns_namespace),
                        pod_selector=selector(match_labels={"k8s-app": "kube-dns"}),
                    )
                ],
                ports=[Port(protocol="UDP", port=53), Port(protocol="TCP", port=53)],
            )
        ],
    )
    policy(
        "ingress_controller",
        "allow-ingress-controller",
        ["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[Peer(namespace_selector=_by_name(rules.ingress_namespace))]
            )
        ],
    )
    if rules.egress_cidrs:
        policy(
            "egress_cidrs",
            "allow-egress-cidrs",
            ["Egress"],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        Peer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=c))
                        for c in rules.egress_cidrs
                    ]
                )
            ],
        )

    role = k8s.rbac.v1.Role(
        f"{name}-it-role",
        metadata=_meta("department-it", ns, labels),
        rules=[
            PolicyRule(api_groups=[group], resources=list(resources), verbs=list(verbs))
            for group, resources, verbs in IT_GROUP_RULES
        ],
        opts=opts,
    )
    made["role"] = role
    made["role_binding"] = k8s.rbac.v1.RoleBinding(
        f"{name}-it-binding",
        metadata=_meta("department-it", ns, labels),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="Group", name=department.it_group, api_group="rbac.authorization.k8s.io"
            )
        ],
        opts=opts,
    )
    return made
