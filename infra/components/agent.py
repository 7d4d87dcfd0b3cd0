"""InventoryAgent: yiyun itself on a node — the scanner CronJob, the exporter and `yiyun serve`."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s

from infra.stack_config import (
    LABEL_MANAGED_BY,
    LABEL_NODE,
    MANAGED_BY,
    HttpServiceArgs,
    InventoryAgentArgs,
)

# Exactly what inventory/collectors/kubernetes.py lists, and only the verbs listing needs.
READ_VERBS = ("get", "list", "watch")
COLLECTED_KINDS = (
    ("", ("namespaces", "nodes", "persistentvolumeclaims", "services", "resourcequotas")),
    ("apps", ("deployments", "statefulsets", "daemonsets")),
    ("batch", ("cronjobs",)),
)
METRICS_PATH = "/metrics"
# `yiyun serve`'s own port in the pod; the Service offers it on the usual HTTP port.
SERVE_PORT = 8080
SERVICE_PORT = 80
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


def scrape_annotations(port: int) -> dict[str, str]:
    """What the province's Prometheus discovers pods and Services by, for every yiyun process."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": METRICS_PATH,
    }


class InventoryAgent(pulumi.ComponentResource):
    """Deploys yiyun on the node it inventories; the database URL only ever comes from a Secret."""

    def __init__(
        self, name: str, args: InventoryAgentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("yiyun:agent:InventoryAgent", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {
            "app.kubernetes.io/name": "yiyun",
            "app.kubernetes.io/part-of": "yiyun",
            LABEL_NODE: args.node_id,
            LABEL_MANAGED_BY: MANAGED_BY,
        }

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace, labels=labels),
            opts=child,
        )
        ns = self.namespace.metadata.name

        def meta(
            object_name: str, extra: dict[str, str] | None = None
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=ns, labels={**labels, **(extra or {})}
            )

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-scanner-sa", metadata=meta(args.service_account), opts=child
        )
        self.cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-reader",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{args.namespace}-inventory-reader", labels=labels
            ),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[group], resources=list(resources), verbs=list(READ_VERBS)
                )
                for group, resources in COLLECTED_KINDS
            ],
            opts=child,
        )
        self.cluster_role_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-reader-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{args.namespace}-inventory-reader", labels=labels
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name=self.cluster_role.metadata.name,
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=self.service_account.metadata.name, namespace=ns
                )
            ],
            opts=child,
        )

        database_url = k8s.core.v1.EnvVarArgs(
            name="YIYUN_DATABASE_URL",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                    name=args.database_secret.name, key=args.database_secret.key
                )
            ),
        )
        env = [database_url]
        volumes: list[k8s.core.v1.VolumeArgs] = [
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
        ]
        mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
        if args.node_file_config_map:
            # The node file (endpoints, regions, contexts: no secrets) is the operator's ConfigMap.
            env.append(k8s.core.v1.EnvVarArgs(name="YIYUN_CONFIG", value="/etc/yiyun/nodes.yaml"))
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="node-file",
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                        name=args.node_file_config_map
                    ),
                )
            )
            mounts.append(
                k8s.core.v1.VolumeMountArgs(
                    name="node-file", mount_path="/etc/yiyun", read_only=True
                )
            )
        env_from = (
            [
                k8s.core.v1.EnvFromSourceArgs(
                    secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=args.aws_credentials_secret)
                )
            ]
            if args.aws_credentials_secret
            else None
        )
        security = k8s.core.v1.SecurityContextArgs(
            # A numeric user, so the kubelet can verify runAsNonRoot for any image.
            run_as_non_root=True,
            run_as_user=10001,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        )

        self.scan = k8s.batch.v1.CronJob(
            f"{name}-scan",
            metadata=meta("yiyun-scan", {"app.kubernetes.io/component": "scanner"}),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                # A second scan of the node would only be refused by the ledger's per-node lock.
                concurrency_policy="Forbid",
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=1,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                service_account_name=self.service_account.metadata.name,
                                restart_policy="Never",
                                containers=[
                                    k8s.core.v1.ContainerArgs(
                                        name="scan",
                                        image=args.image,
                                        command=["yiyun"],
                                        args=["scan", "--node", args.node_id],
                                        env=env,
                                        env_from=env_from,
                                        volume_mounts=mounts,
                                        security_context=security,
                                    )
                                ],
                                volumes=volumes,
                            ),
                        ),
                    )
                ),
            ),
            opts=child,
        )

        self.exporter: k8s.apps.v1.Deployment | None = None
        self.exporter_service: k8s.core.v1.Service | None = None
        if args.exporter:
            port = args.exporter_port
            scrape = scrape_annotations(port)
            exporter_labels = {**labels, "app.kubernetes.io/component": "exporter"}
            self.exporter = k8s.apps.v1.Deployment(
                f"{name}-exporter",
                metadata=meta("yiyun-exporter", {"app.kubernetes.io/component": "exporter"}),
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=exporter_labels),
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(
                            labels=exporter_labels, annotations=scrape
                        ),
                        spec=k8s.core.v1.PodSpecArgs(
                            # The exporter reads the ledger only: it needs no Kubernetes API.
                            automount_service_account_token=False,
                            containers=[
                                k8s.core.v1.ContainerArgs(
                                    name="exporter",
                                    image=args.image,
                                    command=["yiyun"],
                                    args=[
                                        "exporter",
                                        "serve",
                                        "--host",
                                        "0.0.0.0",
                                        "--port",
                                        str(port),
                                    ],
                                    env=[database_url],
                                    ports=[
                                        k8s.core.v1.ContainerPortArgs(
                                            name="metrics", container_port=port
                                        )
                                    ],
                                    readiness_probe=k8s.core.v1.ProbeArgs(
                                        http_get=k8s.core.v1.HTTPGetActionArgs(
                                            path=METRICS_PATH, port="metrics"
                                        )
                                    ),
                                    volume_mounts=[mounts[0]],
                                    security_context=security,
                                )
                            ],
                            volumes=[volumes[0]],
                        ),
                    ),
                ),
                opts=child,
            )
            self.exporter_service = k8s.core.v1.Service(
                f"{name}-exporter-service",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="yiyun-exporter", namespace=ns, labels=exporter_labels, annotations=scrape
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    selector=exporter_labels,
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name="metrics", port=port, target_port="metrics"
                        )
                    ],
                ),
                opts=child,
            )

        self.api: k8s.apps.v1.Deployment | None = None
        self.api_service: k8s.core.v1.Service | None = None
        self.api_budget: k8s.policy.v1.PodDisruptionBudget | None = None
        if args.service:
            self._serve(
                name,
                args,
                args.service,
                labels=labels,
                meta=meta,
                database_url=database_url,
                security=security,
                tmp=(volumes[0], mounts[0]),
            )

        self.register_outputs(
            {
                "namespace": ns,
                "cluster_role": self.cluster_role.metadata.name,
                "exporter_service": self.exporter_service.metadata.name
                if self.exporter_service
                else None,
                "service": self.api_service.metadata.name if self.api_service else None,
            }
        )

    def _serve(
        self,
        name: str,
        args: InventoryAgentArgs,
        service: HttpServiceArgs,
        *,
        labels: dict[str, str],
        meta: Callable[[str, dict[str, str] | None], k8s.meta.v1.ObjectMetaArgs],
        database_url: k8s.core.v1.EnvVarArgs,
        security: k8s.core.v1.SecurityContextArgs,
        tmp: tuple[k8s.core.v1.VolumeArgs, k8s.core.v1.VolumeMountArgs],
    ) -> None:
        """`yiyun serve` as a Deployment behind a ClusterIP Service, and its disruption budget."""
        child = pulumi.ResourceOptions(parent=self)
        component = {"app.kubernetes.io/component": "service"}
        service_labels = {**labels, **component}
        scrape = scrape_annotations(SERVE_PORT)
        oidc = service.oidc_secret

        def from_secret(variable: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
            return k8s.core.v1.EnvVarArgs(
                name=variable,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)
                ),
            )

        env = [
            database_url,
            from_secret("YIYUN_OIDC_ISSUER", oidc.name, oidc.issuer_key),
            from_secret("YIYUN_OIDC_AUDIENCE", oidc.name, oidc.audience_key),
        ]
        if service.portal_secret is not None:
            portal = service.portal_secret
            env += [
                from_secret("YIYUN_OIDC_PORTAL_CLIENT_ID", portal.name, portal.client_id_key),
                from_secret(
                    "YIYUN_OIDC_PORTAL_CLIENT_SECRET", portal.name, portal.client_secret_key
                ),
                from_secret("YIYUN_PORTAL_URL", portal.name, portal.url_key),
            ]
        # Claim names are not secrets: which claim carries the principal and the grants.
        for variable, claim in (
            ("YIYUN_OIDC_PRINCIPAL_CLAIM", service.principal_claim),
            ("YIYUN_OIDC_GRANTS_CLAIM", service.grants_claim),
        ):
            if claim:
                env.append(k8s.core.v1.EnvVarArgs(name=variable, value=claim))

        def probe(
            path: str, *, period: int, failures: int, timeout: int = 1
        ) -> k8s.core.v1.ProbeArgs:
            return k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port="http"),
                period_seconds=period,
                failure_threshold=failures,
                timeout_seconds=timeout,
            )

        resources = service.resources
        self.api = k8s.apps.v1.Deployment(
            f"{name}-service",
            metadata=meta("yiyun-service", component),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=service.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=service_labels, annotations=scrape),
                    spec=k8s.core.v1.PodSpecArgs(
                        # The service reads and writes the ledger only: no Kubernetes API.
                        automount_service_account_token=False,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="serve",
                                image=args.image,
                                command=["yiyun"],
                                args=["serve", "--host", "0.0.0.0", "--port", str(SERVE_PORT)],
                                env=env,
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="http", container_port=SERVE_PORT
                                    )
                                ],
                                # Up to a minute to import and bind before liveness counts.
                                startup_probe=probe(LIVENESS_PATH, period=2, failures=30),
                                # Liveness asks only whether the process answers: a ledger
                                # outage must take pods out of the Service, not restart them.
                                liveness_probe=probe(
                                    LIVENESS_PATH, period=10, failures=3, timeout=3
                                ),
                                # /readyz queries the ledger, so it gets more than a second.
                                readiness_probe=probe(
                                    READINESS_PATH, period=5, failures=2, timeout=3
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={
                                        "cpu": resources.cpu_request,
                                        "memory": resources.memory_request,
                                    },
                                    limits={
                                        "cpu": resources.cpu_limit,
                                        "memory": resources.memory_limit,
                                    },
                                ),
                                volume_mounts=[tmp[1]],
                                security_context=security,
                            )
                        ],
                        volumes=[tmp[0]],
                    ),
                ),
            ),
            opts=child,
        )
        self.api_service = k8s.core.v1.Service(
            f"{name}-service-http",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="yiyun-service",
                namespace=self.namespace.metadata.name,
                labels=service_labels,
                annotations=scrape,
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=service_labels,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="http", port=SERVICE_PORT, target_port="http")
                ],
            ),
            opts=child,
        )
        # With one replica, minAvailable 1 would block every node drain for good.
        if service.replicas > 1:
            self.api_budget = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-service-budget",
                metadata=meta("yiyun-service", component),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    min_available=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=service_labels),
                ),
                opts=child,
            )
