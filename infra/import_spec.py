"""纳管 import specs: a node's live resources not yet under Pulumi, as `pulumi import --file` reads.

Pulumi is not needed here: the spec comes from the ledger alone. A resource counts as
managed by Pulumi when it carries `yiyun.io/managed-by=pulumi` (every resource infra/ creates
does) or the `app.kubernetes.io/managed-by=pulumi` label pulumi-kubernetes adds by itself.
A row's Pulumi type depends on its source's kind as well as its own: a `vm` is an EC2
instance, a vSphere VM or a Nova server, so the kind of the source that listed it is looked
up in the node's stored sources (Node.sources; Resource.source is the source's id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from infra.naming import short_hash, slug
from inventory.confidentiality import Disclosure
from inventory.models import Node, Resource, System

MANAGED_MARKERS = (("yiyun.io/managed-by", "pulumi"), ("app.kubernetes.io/managed-by", "pulumi"))
# States in which the source is already removing the thing: adopting it would be pointless.
# The last three are OpenStack's: a soft-deleted Nova server is reclaimed after an interval,
# and a Cinder volume in error_deleting is half gone.
_GOING_STATES = frozenset(
    {"terminating", "shutting-down", "terminated", "deleting"}
    | {"deleted", "soft_deleted", "error_deleting"}
)
_CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _own_id(resource: Resource) -> str:
    return resource.native_id


def _name_id(resource: Resource) -> str:
    return resource.name or resource.native_id


def _namespaced_id(resource: Resource) -> str:
    return f"{resource.namespace}/{resource.name}"


def _db_identifier(resource: Resource) -> str:
    # The ledger keys RDS rows by ARN (identifiers repeat across regions); Pulumi imports by
    # the DB identifier, which is the name, or the ARN's last segment (arn:…:db:<identifier>).
    return resource.name or resource.native_id.rsplit(":", 1)[-1]


def _vsphere_vm_path(resource: Resource) -> str:
    # pulumi-vsphere imports a VM by its inventory path, `/<datacenter>/vm/<folders…>/<name>`,
    # which the collector records as it lists (raw `inventoryPath`, names escaped as vCenter
    # escapes them). Rows listed before it did carry none: for them this is the path of a VM
    # in the datacenter's root VM folder, which `pulumi import` refuses with "not found" for
    # a VM in a folder (the next scan records the real one).
    recorded = (resource.raw or {}).get("inventoryPath")
    if isinstance(recorded, str) and recorded.startswith("/"):
        return recorded
    return f"/{resource.scope.strip('/')}/vm/{resource.name or resource.native_id}"


def _container_name(resource: Resource) -> str:
    # The ledger keys a Swift container by "<project_id>/<name>" (names repeat across
    # projects); pulumi-openstack imports it by its name, in the provider's own project.
    return resource.name or resource.native_id.split("/", 1)[-1]


@dataclass(frozen=True)
class ImportMapping:
    """Which Pulumi type adopts a ledger kind, and which import id its provider expects."""

    type_token: str
    import_id: Callable[[Resource], str]
    # For ids that are a name within something the ledger row does not carry into the id (a
    # vSphere folder, an OpenStack project), why two rows with the same id are left out: the
    # provider would find one resource for both, so `pulumi import` would adopt it twice.
    shared_id: str | None = None


# One line per kind; the id formats are those in each resource's "Import" documentation.
IMPORT_MAPPINGS: dict[str, ImportMapping] = {
    "vm": ImportMapping("aws:ec2/instance:Instance", _own_id),
    "volume": ImportMapping("aws:ebs/volume:Volume", _own_id),
    # pulumi-aws 7 made s3.Bucket the current bucket resource (BucketV2 is deprecated).
    "bucket": ImportMapping("aws:s3/bucket:Bucket", _own_id),
    "db_instance": ImportMapping("aws:rds/instance:Instance", _db_identifier),
    "namespace": ImportMapping("kubernetes:core/v1:Namespace", _name_id),
    "deployment": ImportMapping("kubernetes:apps/v1:Deployment", _namespaced_id),
    "statefulset": ImportMapping("kubernetes:apps/v1:StatefulSet", _namespaced_id),
    "daemonset": ImportMapping("kubernetes:apps/v1:DaemonSet", _namespaced_id),
    "cronjob": ImportMapping("kubernetes:batch/v1:CronJob", _namespaced_id),
    "pvc": ImportMapping("kubernetes:core/v1:PersistentVolumeClaim", _namespaced_id),
    "service": ImportMapping("kubernetes:core/v1:Service", _namespaced_id),
    "resource_quota": ImportMapping("kubernetes:core/v1:ResourceQuota", _namespaced_id),
}

# Why rows whose import ids coincide are left out (ImportMapping.shared_id).
_SAME_VM_PATH = (
    "the same import path as another VM of the node (the same folder and name in another "
    "vCenter, or a row listed before folders were recorded): import it by hand"
)
_SAME_CONTAINER = (
    "the same container name in another project of the node: the provider imports by name "
    "in its own project; import each project's with a provider for that project"
)

# Other source kinds, whose row kinds overlap AWS's (vm, volume, bucket, db_instance): their
# rows map through their own table, never through IMPORT_MAPPINGS (which serves aws and
# kubernetes sources, and rows whose node records no sources).
SOURCE_MAPPINGS: dict[str, dict[str, ImportMapping]] = {
    "vsphere": {
        "vm": ImportMapping(
            "vsphere:index/virtualMachine:VirtualMachine", _vsphere_vm_path, _SAME_VM_PATH
        ),
    },
    "openstack": {
        "vm": ImportMapping("openstack:compute/instance:Instance", _own_id),
        # pulumi-openstack 5 named Cinder's v3 volume plain Volume (4.x's VolumeV3 is gone).
        "volume": ImportMapping("openstack:blockstorage/volume:Volume", _own_id),
        "bucket": ImportMapping(
            "openstack:objectstorage/container:Container", _container_name, _SAME_CONTAINER
        ),
    },
}

# Kinds the ledger records that are deliberately not adopted, and why.
NOT_ADOPTED: dict[str, str] = {
    "k8s_node": "cluster machines belong to the cluster's own lifecycle, not to a Pulumi stack",
    "cluster": "the cluster itself is the platform Pulumi deploys onto, not a tenant resource",
    # pulumi-vsphere could import these (a host or datastore by managed object id, a cluster by
    # path), but they are the vCenter's own estate, run by its administrators: a tenant stack
    # that owned one could destroy it (disconnect a host, delete a datastore) under every VM
    # on it. They are capacity in the ledger, as k8s_node is.
    "vsphere_host": "ESXi hosts belong to the vCenter's own lifecycle, not to a Pulumi stack",
    "vsphere_cluster": "the vCenter's clusters are the platform the VMs run on, not tenants'",
    "datastore": "datastores belong to the vCenter's own lifecycle, not to a Pulumi stack",
    # pulumi-openstack has no hypervisor resource (only a data source): Nova's capacity.
    "hypervisor": "hypervisors are the OpenStack cloud's own capacity; no Pulumi type adopts one",
}

# Per source kind, row kinds that are not adopted from that source although another adopts them.
SOURCE_NOT_ADOPTED: dict[str, dict[str, str]] = {
    "openstack": {
        # openstack:database/instance:Instance exists, but the provider cannot import it (its
        # Terraform resource has no importer; the docs have no Import section).
        "db_instance": "pulumi-openstack cannot import a Trove instance (no importer)",
    },
}


# Why a classified system's resource is not in the spec (inventory/confidentiality.py).
CLASSIFIED_REASON = "of a classified (涉密) system: counted, never named (--include-classified)"
# Why a row of a source the node no longer lists (`nodes apply`) is not in the spec.
RETIRED_SOURCE = "its source is no longer in the node's sources: the next scan retires it"


class UnknownKind(ValueError):
    pass


def mappings_for(source_kind: str | None) -> dict[str, ImportMapping]:
    """The import table for rows of a source of this kind (None: the node records none)."""
    return SOURCE_MAPPINGS.get(source_kind or "", IMPORT_MAPPINGS)


def is_managed(tags: dict[str, str] | None) -> bool:
    return any((tags or {}).get(key) == value for key, value in MANAGED_MARKERS)


@dataclass
class ImportSpec:
    """The import file plus what was left out of it, so nothing is dropped silently."""

    resources: list[dict[str, str]] = field(default_factory=list)
    managed: int = 0
    # reason → kind → count
    left_out: dict[str, Counter[str]] = field(default_factory=dict)

    def leave_out(self, reason: str, kind: str) -> None:
        self.left_out.setdefault(reason, Counter())[kind] += 1

    def document(self) -> dict[str, Any]:
        return {"resources": self.resources}


def check_kinds(kinds: Collection[str], known: Collection[str]) -> None:
    """Refuse a kind the ledger cannot have, or one no Pulumi type adopts, with a hint."""
    import difflib

    mapped = set(IMPORT_MAPPINGS).union(*SOURCE_MAPPINGS.values())
    choices = sorted(mapped | set(known))
    for kind in kinds:
        if kind in NOT_ADOPTED:
            raise UnknownKind(f"kind {kind} is not adopted into Pulumi: {NOT_ADOPTED[kind]}")
        if kind not in mapped:
            close = difflib.get_close_matches(kind, choices, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            reason = "it has no import mapping" if kind in known else "the ledger has no such kind"
            raise UnknownKind(
                f"cannot import kind {kind}: {reason}; {hint}"
                f"kinds with an import mapping: {', '.join(sorted(mapped))}"
            )


def _cluster_owned(row: Resource) -> bool:
    if row.kind == "namespace":
        return (row.name or "") in _CLUSTER_NAMESPACES or (row.name or "").startswith("kube-")
    return (row.namespace or "").startswith("kube-")


def _base_name(resource: Resource, departments: dict[str, str], *, classified: bool) -> str:
    """`<department>-<system>-<kind>-<name>`: who owns it first, then what it is.

    A classified system's resource (only ever here when the reader asked for it) is
    `classified-<kind>-<hash>`: the name lives on in the Pulumi state and in the code `pulumi
    import` generates, read by people who never asked, so it carries neither the system's
    code nor the resource's own name; the import id alone identifies it, as it must.
    """
    if classified:
        return f"classified-{resource.kind.replace('_', '-')}-{short_hash(resource.native_id)}"
    if resource.system_code:
        owner = [departments.get(resource.system_code, "unregistered"), resource.system_code]
    else:
        owner = ["unattributed"]
    own_name = slug(resource.name or "") or slug(resource.native_id)
    if resource.namespace and resource.kind != "namespace":
        own_name = f"{slug(resource.namespace)}-{own_name}"
    parts = [slug(p) for p in (*owner, resource.kind.replace("_", "-"), own_name)]
    name = "-".join(p for p in parts if p)
    # A Pulumi name is also the seed of a variable in the code `pulumi import` generates.
    return name if name[:1].isalpha() else f"r-{name}"


def source_kinds(*, session: Session, node_id: str) -> dict[str, str]:
    """Source id → source kind, from the node's stored sources (empty: it records none)."""
    sources = session.exec(select(Node.sources).where(col(Node.id) == node_id)).first() or []
    return {
        str(source["name"]): str(source["kind"])
        for source in sources
        if source.get("name") and source.get("kind")
    }


def build_import_spec(
    *,
    session: Session,
    node_id: str,
    kinds: Collection[str] | None = None,
    disclosure: Disclosure | None = None,
) -> ImportSpec:
    """Every live, unmanaged resource of the node (of the chosen kinds) exactly once; a
    classified system's only when the disclosure includes it, and then under a neutral name."""
    disclosure = disclosure or Disclosure()
    query = select(Resource).where(
        col(Resource.node_id) == node_id, col(Resource.deleted_at).is_(None)
    )
    if kinds:
        query = query.where(col(Resource.kind).in_(sorted(set(kinds))))
    rows = session.exec(query.order_by(col(Resource.kind), col(Resource.native_id))).all()
    departments = {
        code: department
        for code, department in session.exec(select(System.code, System.department_code)).all()
    }

    kinds_of = source_kinds(session=session, node_id=node_id)
    ledger = disclosure.classified(session)
    mapped = [(row, mappings_for(kinds_of.get(row.source)).get(row.kind)) for row in rows]
    # An id that is a name within a folder or project can stand for two live rows (managed or
    # not), and then for neither. Counted among the rows this reader may see, so that a
    # classified peer never shows through as a reason; with --include-classified it counts.
    ids = Counter(
        (mapping.type_token, mapping.import_id(row))
        for row, mapping in mapped
        if mapping is not None
        and mapping.shared_id is not None
        and (disclosure.include_classified or not ledger.owns_resource(row))
    )

    spec = ImportSpec()
    chosen: list[tuple[Resource, ImportMapping]] = []
    for row, mapping in mapped:
        source_kind = kinds_of.get(row.source)
        refused = SOURCE_NOT_ADOPTED.get(source_kind or "", {}).get(row.kind)
        if is_managed(row.tags):
            spec.managed += 1
        elif kinds_of and source_kind is None:
            spec.leave_out(RETIRED_SOURCE, row.kind)
        elif row.kind in NOT_ADOPTED:
            spec.leave_out(NOT_ADOPTED[row.kind], row.kind)
        elif refused is not None:
            spec.leave_out(refused, row.kind)
        elif mapping is None:
            spec.leave_out("no import mapping for this kind yet", row.kind)
        elif (row.state or "").lower() in _GOING_STATES:
            spec.leave_out("being deleted at the source", row.kind)
        elif _cluster_owned(row):
            spec.leave_out("owned by the cluster (kube-* or default namespace)", row.kind)
        elif not disclosure.shows_resource(session, row):
            spec.leave_out(CLASSIFIED_REASON, row.kind)
        elif mapping.shared_id and ids[(mapping.type_token, mapping.import_id(row))] > 1:
            spec.leave_out(mapping.shared_id, row.kind)
        else:
            chosen.append((row, mapping))

    # Names must be unique in the file; a clash gets a hash of each resource's own identity,
    # so the same ledger always yields the same names whatever else is on the node.
    bases = [
        _base_name(row, departments, classified=ledger.owns_resource(row)) for row, _ in chosen
    ]
    taken = Counter(bases)
    for (row, mapping), base in zip(chosen, bases, strict=True):
        name = f"{base}-{short_hash(row.native_id)}" if taken[base] > 1 else base
        spec.resources.append(
            {"type": mapping.type_token, "name": name, "id": mapping.import_id(row)}
        )
    spec.resources.sort(key=lambda r: (r["type"], r["name"]))
    return spec
