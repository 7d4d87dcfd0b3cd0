"""DepartmentTenant: a department's namespace with its guardrails, and its private bucket."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.guardrails import apply_guardrails
from infra.naming import city_label
from infra.stack_config import (
    LABEL_CITY,
    LABEL_DEPARTMENT,
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_TENANT,
    MANAGED_BY,
    DepartmentTenantArgs,
)


class DepartmentTenant(pulumi.ComponentResource):
    """One department (使用单位) on one node: where its systems land and what bounds them."""

    def __init__(
        self, name: str, args: DepartmentTenantArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("yiyun:tenant:DepartmentTenant", name, None, opts)
        department = args.rules.department
        labels = {
            LABEL_DEPARTMENT: department.code,
            LABEL_CITY: city_label(department.city),
            LABEL_NODE: args.node_id,
            LABEL_TENANT: args.namespace,
            LABEL_MANAGED_BY: MANAGED_BY,
        }
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels=labels,
                annotations={
                    "yiyun.io/department-name": department.name,
                    "yiyun.io/city-name": department.city,
                },
            ),
            opts=child,
        )
        self.guardrails = apply_guardrails(
            self, self.namespace, name=name, quota=args.quota, rules=args.rules
        )

        self.bucket: aws.s3.Bucket | None = None
        if args.bucket:
            tags = {
                LABEL_DEPARTMENT: department.code,
                LABEL_CITY: department.city,
                LABEL_NODE: args.node_id,
                LABEL_TENANT: args.namespace,
                LABEL_MANAGED_BY: MANAGED_BY,
            }
            # No yiyun.io/system tag: a bucket is evidence for the KPI, and a shared tenant
            # bucket provisioned before any system arrives must not count for one.
            self.bucket = aws.s3.Bucket(
                f"{name}-bucket", bucket=args.bucket, force_destroy=False, tags=tags, opts=child
            )
            store = args.object_store
            self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-bucket-sse",
                bucket=self.bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm=store.sse_algorithm if store else "AES256",
                            kms_master_key_id=store.kms_key_id if store else None,
                        )
                    )
                ],
                opts=child,
            )
            self.versioning = aws.s3.BucketVersioning(
                f"{name}-bucket-versioning",
                bucket=self.bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                    status="Enabled"
                ),
                opts=child,
            )
            self.public_access_block = aws.s3.BucketPublicAccessBlock(
                f"{name}-bucket-private",
                bucket=self.bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )

        self.register_outputs(
            {
                "namespace": self.namespace.metadata.name,
                "bucket": self.bucket.bucket if self.bucket else None,
            }
        )
