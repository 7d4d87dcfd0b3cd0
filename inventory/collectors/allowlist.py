"""Which fields of a listed object the ledger keeps as its `raw`: one declaration per kind."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final

from inventory.secret_shape import redact_labels, redacted

# `raw` is the auditor's answer to "why does this row say that": the fields the ledger, the
# reports and `infra import-spec` read, and those each `normalize_*` derived its typed columns
# from. Nothing else is stored — not env values, command lines, annotations or anything else
# a pod template or an API answer may carry a secret in — and label and tag values that look
# like secrets are stored as `<redacted>` (inventory/secret_shape.py).
#
# A shape maps a key to KEEP (the value as it is: scalars and maps of quantities only), to a
# nested shape, to `[shape]` (each item of a list), or to LABELS / TAGS (a Kubernetes label
# map, an AWS `[{Key, Value}]` list: kept with secret-shaped values redacted). A value whose
# type does not match its shape is left out: what is not understood is not stored.


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEEP: Final = _Marker("KEEP")
LABELS: Final = _Marker("LABELS")
TAGS: Final = _Marker("TAGS")
Shape = Mapping[str, Any]

_MISSING = object()

# --- Kubernetes ---------------------------------------------------------------------------

METADATA: Shape = {
    "name": KEEP,
    "namespace": KEEP,
    "uid": KEEP,
    "creationTimestamp": KEEP,
    "deletionTimestamp": KEEP,
    "ownerReferences": [{"kind": KEEP, "name": KEEP, "uid": KEEP}],
    "labels": LABELS,
}
# What the scheduler reserves, by container name (pod_requests); never image, env, envFrom,
# command, args or volumes.
_CONTAINER: Shape = {
    "name": KEEP,
    "restartPolicy": KEEP,  # an init container that keeps running is a sidecar
    "resources": {"requests": KEEP, "limits": KEEP},
}
POD_TEMPLATE: Shape = {"spec": {"initContainers": [_CONTAINER], "containers": [_CONTAINER]}}
_CLAIM: Shape = {"metadata": {"name": KEEP}, "spec": {"resources": {"requests": {"storage": KEEP}}}}

# --- AWS-compatible -----------------------------------------------------------------------

_EBS_MAPPING: Shape = {
    "DeviceName": KEEP,
    "Ebs": {"VolumeId": KEEP, "AttachTime": KEEP, "Status": KEEP},
}


def _flat(*paths: str) -> Shape:
    """A vSphere declaration: the PropertyCollector's flat property paths, kept as they are."""
    return dict.fromkeys(paths, KEEP)


RAW_FIELDS: dict[str, Shape] = {
    # vSphere (inventory/collectors/vsphere.py): only the paths each normalize reads; never
    # annotations, guest info, extra config or device backings.
    "vsphere_vm": {
        **_flat(
            "moref",
            "name",
            "config.instanceUuid",
            "config.uuid",
            "config.template",
            "config.createDate",
            "config.guestId",
            "config.hardware.numCPU",
            "config.hardware.memoryMB",
            "runtime.powerState",
            "runtime.host",
            "summary.storage.committed",
            "summary.storage.uncommitted",
            "parent",
            "inventoryPath",
        ),
        # Its disks, read from config.hardware.device and nothing else of it (vsphere._disks).
        "disks": [{"key": KEEP, "capacityInBytes": KEEP}],
    },
    "vsphere_host": _flat(
        "moref",
        "name",
        "summary.hardware.uuid",
        "summary.hardware.numCpuCores",
        "summary.hardware.memorySize",
        "runtime.connectionState",
        "runtime.inMaintenanceMode",
        "runtime.powerState",
        "parent",
    ),
    "vsphere_cluster": _flat(
        "moref",
        "name",
        "summary.numCpuCores",
        "summary.totalMemory",
        "summary.numHosts",
    ),
    "vsphere_datastore": _flat(
        "moref",
        "name",
        "summary.url",
        "summary.type",
        "summary.capacity",
        "summary.freeSpace",
        "summary.accessible",
    ),
    # Kubernetes (inventory/collectors/kubernetes.py)
    "k8s_node": {
        "metadata": METADATA,
        "spec": {"unschedulable": KEEP},
        "status": {
            "capacity": KEEP,
            "allocatable": KEEP,
            "conditions": [{"type": KEEP, "status": KEEP}],
        },
    },
    "namespace": {"metadata": METADATA, "status": {"phase": KEEP}},
    "deployment": {"metadata": METADATA, "spec": {"replicas": KEEP, "template": POD_TEMPLATE}},
    "statefulset": {
        "metadata": METADATA,
        "spec": {"replicas": KEEP, "template": POD_TEMPLATE, "volumeClaimTemplates": [_CLAIM]},
    },
    "daemonset": {
        "metadata": METADATA,
        "spec": {"template": POD_TEMPLATE},
        "status": {"desiredNumberScheduled": KEEP},
    },
    "cronjob": {
        "metadata": METADATA,
        "spec": {
            "schedule": KEEP,
            "suspend": KEEP,
            "jobTemplate": {"spec": {"parallelism": KEEP, "template": POD_TEMPLATE}},
        },
    },
    "pvc": {
        "metadata": METADATA,
        "spec": {"resources": {"requests": {"storage": KEEP}}},
        "status": {"phase": KEEP},
    },
    "service": {"metadata": METADATA, "spec": {"type": KEEP}},
    "resource_quota": {"metadata": METADATA, "spec": {"hard": KEEP}},
    "cluster": {
        "kubeSystem": {"metadata": METADATA},
        "version": {"gitVersion": KEEP, "major": KEEP, "minor": KEEP, "platform": KEEP},
    },
    # AWS-compatible (inventory/collectors/aws.py)
    "vm": {
        "InstanceId": KEEP,
        "InstanceType": KEEP,
        "ImageId": KEEP,
        "State": {"Name": KEEP, "Code": KEEP},
        "Placement": {"AvailabilityZone": KEEP},
        "VpcId": KEEP,
        "SubnetId": KEEP,
        "LaunchTime": KEEP,
        "RootDeviceName": KEEP,
        "BlockDeviceMappings": [_EBS_MAPPING],
        "Tags": TAGS,
    },
    "volume": {
        "VolumeId": KEEP,
        "VolumeType": KEEP,
        "Size": KEEP,
        "Iops": KEEP,
        "Throughput": KEEP,
        "State": KEEP,
        "AvailabilityZone": KEEP,
        "CreateTime": KEEP,
        "SnapshotId": KEEP,
        "Encrypted": KEEP,
        "Attachments": [{"InstanceId": KEEP, "Device": KEEP, "State": KEEP, "AttachTime": KEEP}],
        "Tags": TAGS,
    },
    "bucket": {"Name": KEEP, "CreationDate": KEEP, "BucketRegion": KEEP, "TagSet": TAGS},
    "db_instance": {
        "DBInstanceArn": KEEP,
        "DBInstanceIdentifier": KEEP,
        "DbiResourceId": KEEP,
        "DBInstanceClass": KEEP,
        "DBInstanceStatus": KEEP,
        "Engine": KEEP,
        "EngineVersion": KEEP,
        "AllocatedStorage": KEEP,
        "StorageType": KEEP,
        "Iops": KEEP,
        "InstanceCreateTime": KEEP,
        "AvailabilityZone": KEEP,
        "MultiAZ": KEEP,
        "TagList": TAGS,
    },
    # -- openstack -- (inventory/collectors/openstack.py): never adminPass, user_data,
    # addresses (MACs), security groups, links or a flavor's extra_specs. Server `tags` are
    # "key=value" strings the collector redacts before this shape is applied.
    "openstack_server": {
        **_flat(
            "id",
            "name",
            "status",
            "tenant_id",
            "user_id",
            "created",
            "updated",
            "tags",
            "OS-EXT-AZ:availability_zone",
            "OS-EXT-STS:vm_state",
            "OS-EXT-STS:power_state",
            "OS-EXT-STS:task_state",
            "OS-EXT-SRV-ATTR:host",
            "OS-EXT-SRV-ATTR:hypervisor_hostname",
            "OS-SRV-USG:launched_at",
        ),
        "flavor": _flat("id", "original_name", "vcpus", "ram", "disk", "ephemeral", "swap"),
        "image": {"id": KEEP},
        "os-extended-volumes:volumes_attached": [{"id": KEEP}],
        "metadata": LABELS,
    },
    "openstack_volume": {
        **_flat(
            "id",
            "name",
            "size",
            "status",
            "volume_type",
            "bootable",
            "encrypted",
            "multiattach",
            "availability_zone",
            "created_at",
            "updated_at",
            "snapshot_id",
            "source_volid",
            "os-vol-tenant-attr:tenant_id",
        ),
        "attachments": [_flat("server_id", "attachment_id", "device")],
        "metadata": LABELS,
    },
    "openstack_container": _flat("name", "count", "bytes", "last_modified", "project_id"),
    "openstack_database": {
        **_flat("id", "name", "status", "tenant_id", "region", "created", "updated"),
        "flavor": {"id": KEEP},
        "volume": {"size": KEEP, "used": KEEP},
        "datastore": {"type": KEEP, "version": KEEP},
        "metadata": LABELS,
    },
    # Placement ({uuid, name, inventories}) or os-hypervisors detail; never host_ip or cpu_info.
    "hypervisor": {
        **_flat(
            "uuid",
            "name",
            "generation",
            "root_provider_uuid",
            "id",
            "hypervisor_hostname",
            "hypervisor_type",
            "state",
            "status",
            "vcpus",
            "memory_mb",
            "local_gb",
            "vcpus_used",
            "memory_mb_used",
            "local_gb_used",
        ),
        "inventories": dict.fromkeys(
            ("VCPU", "MEMORY_MB", "DISK_GB"), _flat("total", "reserved", "allocation_ratio")
        ),
    },
}


def allowed_raw(
    kind: str,
    raw: Mapping[str, Any],
    *,
    system_tag: str | None,
    settled: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of `raw` its kind declares, label and tag values redacted where they look
    like secrets (`system_tag` never is). A kind without a declaration keeps nothing.

    `settled` holds top-level label fields the caller has already made safe, checking each
    pair once for the row's tags too: for those the given value is stored instead of the
    declared shape's work. Only declared fields that `raw` has are taken from it."""
    pick = _picker_without(kind, frozenset(settled)) if settled else _PICKERS.get(kind)
    kept = pick(raw, system_tag) if pick is not None else _MISSING
    if not isinstance(kept, dict):
        return {}
    if settled:
        declared = RAW_FIELDS[kind]
        kept.update((k, v) for k, v in settled.items() if k in declared and k in raw)
    return kept


@functools.lru_cache(maxsize=64)
def _picker_without(kind: str, fields: frozenset[str]) -> Pick | None:
    shape = RAW_FIELDS.get(kind)
    if shape is None:
        return None
    return _compile({key: inner for key, inner in shape.items() if key not in fields})


# --- applying a shape: each declaration compiled once into a function ------------------------

Pick = Callable[[Any, str | None], Any]


def _labels(value: Any, system_tag: str | None) -> Any:
    return redact_labels(value, keep=system_tag) if isinstance(value, dict) else _MISSING


def _tags(value: Any, system_tag: str | None) -> Any:
    if not isinstance(value, list):
        return _MISSING
    return [
        {"Key": pair["Key"], "Value": redacted(pair["Key"], pair["Value"], keep=system_tag)}
        if isinstance(pair.get("Value"), str)
        else {"Key": pair["Key"]}
        for pair in value
        if isinstance(pair, dict) and isinstance(pair.get("Key"), str)
    ]


def _compile(shape: Any) -> Pick:
    if shape is LABELS:
        return _labels
    if shape is TAGS:
        return _tags
    if isinstance(shape, list):
        return _each(_compile(shape[0]))
    # KEEP fields are copied without a call: they are most of every declaration.
    fields = [(key, None if inner is KEEP else _compile(inner)) for key, inner in shape.items()]

    def pick(value: Any, system_tag: str | None) -> Any:
        if not isinstance(value, dict):
            return _MISSING
        kept = {}
        for key, inner in fields:
            if key in value:
                item = value[key] if inner is None else inner(value[key], system_tag)
                if item is not _MISSING:
                    kept[key] = item
        return kept

    return pick


def _each(inner: Pick) -> Pick:
    def pick(value: Any, system_tag: str | None) -> Any:
        if not isinstance(value, list):
            return _MISSING
        items = (inner(item, system_tag) for item in value)
        return [item for item in items if item is not _MISSING]

    return pick


_PICKERS: dict[str, Pick] = {kind: _compile(shape) for kind, shape in RAW_FIELDS.items()}
