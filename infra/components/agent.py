"""InventoryAgent: yiyun itself on a node — a read-only scanner CronJob and the exporter."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.stack_config import LABEL_MANAGED_BY, LABEL_NODE, MANAGED_BY, InventoryAgentArgs

# Exactly what inventory/collectors/kubernetes.py lists, and only the verbs listing needs.
READ_VERBS = ("get", "list", "watch")
COLLECTED_KINDS = (
    ("", ("namespaces", "nodes", "persistentvolumeclaims", "services", "resourcequotas")),
    ("apps", ("deployments", "statefulsets", "daemonsets")),
    ("batch", ("cronjobs",)),
)
METRICS_PATH = "/metrics"


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
            scrape = {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
                "prometheus.io/path": METRICS_PATH,
            }
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

        self.register_outputs(
            {
                "namespace": ns,
                "cluster_role": self.cluster_role.metadata.name,
                "exporter_service": self.exporter_service.metadata.name
                if self.exporter_service
                else None,
            }
        )
