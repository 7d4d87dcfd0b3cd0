"""纳管 import specs: a node's live resources not yet under Pulumi, as `pulumi import --file` reads.

Pulumi is not needed here: the spec comes from the ledger alone. A resource counts as
managed by Pulumi when it carries `yiyun.io/managed-by=pulumi` (every resource infra/ creates
does) or the `app.kubernetes.io/managed-by=pulumi` label pulumi-kubernetes adds by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from infra.naming import short_hash, slug
from inventory.confidentiality import Disclosure
from inventory.models import Resource, System

MANAGED_MARKERS = (("yiyun.io/managed-by", "pulumi"), ("app.kubernetes.io/managed-by", "pulumi"))
# States in which the source is already removing the thing: adopting it would be pointless.
_GOING_STATES = frozenset({"terminating", "shutting-down", "terminated", "deleting"})
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


@dataclass(frozen=True)
class ImportMapping:
    """Which Pulumi type adopts a ledger kind, and which import id its provider expects."""

    type_token: str
    import_id: Callable[[Resource], str]


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

# Kinds the ledger records that are deliberately not adopted, and why.
NOT_ADOPTED: dict[str, str] = {
    "k8s_node": "cluster machines belong to the cluster's own lifecycle, not to a Pulumi stack",
    "cluster": "the cluster itself is the platform Pulumi deploys onto, not a tenant resource",
}


# Why a classified system's resource is not in the spec (inventory/confidentiality.py).
CLASSIFIED_REASON = "of a classified (涉密) system: counted, never named (--include-classified)"


class UnknownKind(ValueError):
    pass


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

    choices = sorted(set(IMPORT_MAPPINGS) | set(known))
    for kind in kinds:
        if kind in NOT_ADOPTED:
            raise UnknownKind(f"kind {kind} is not adopted into Pulumi: {NOT_ADOPTED[kind]}")
        if kind not in IMPORT_MAPPINGS:
            close = difflib.get_close_matches(kind, choices, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            reason = "it has no import mapping" if kind in known else "the ledger has no such kind"
            raise UnknownKind(
                f"cannot import kind {kind}: {reason}; {hint}"
                f"kinds with an import mapping: {', '.join(sorted(IMPORT_MAPPINGS))}"
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

    spec = ImportSpec()
    chosen: list[tuple[Resource, ImportMapping]] = []
    for row in rows:
        mapping = IMPORT_MAPPINGS.get(row.kind)
        if is_managed(row.tags):
            spec.managed += 1
        elif row.kind in NOT_ADOPTED:
            spec.leave_out(NOT_ADOPTED[row.kind], row.kind)
        elif mapping is None:
            spec.leave_out("no import mapping for this kind yet", row.kind)
        elif (row.state or "").lower() in _GOING_STATES:
            spec.leave_out("being deleted at the source", row.kind)
        elif _cluster_owned(row):
            spec.leave_out("owned by the cluster (kube-* or default namespace)", row.kind)
        elif not disclosure.shows_resource(session, row):
            spec.leave_out(CLASSIFIED_REASON, row.kind)
        else:
            chosen.append((row, mapping))

    # Names must be unique in the file; a clash gets a hash of each resource's own identity,
    # so the same ledger always yields the same names whatever else is on the node.
    ledger = disclosure.classified(session)
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
