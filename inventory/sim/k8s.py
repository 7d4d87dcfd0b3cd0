"""A small Kubernetes API server simulator that kubectl and the official client can list from."""

from __future__ import annotations

import base64
import binascii
import bisect
import collections
import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inventory.sim.loopback import LoopbackHandler, LoopbackService

SYSTEM_TAG = "yiyun.io/system"
# A fixed, fake bearer token written into the simulator's kubeconfig. It is not, and never
# protects, a real secret. kubectl (client-go) sends no credentials over plain http, so the
# simulator admits anonymous requests unless `require_token` is set; a wrong token is a 401.
SIM_TOKEN = "yiyun-sim-token-not-a-secret"
SIM_USER = "system:serviceaccount:yiyun:scanner"

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


@dataclass(frozen=True)
class ResourceType:
    """One served resource, as API discovery describes it."""

    kind: str
    plural: str
    singular: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, as the API server names a resource in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCE_TYPES: dict[str, ResourceType] = {
    "namespace": ResourceType("Namespace", "namespaces", "namespace", "", "v1", False, ("ns",)),
    "node": ResourceType("Node", "nodes", "node", "", "v1", False, ("no",)),
    "persistentvolumeclaim": ResourceType(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "",
        "v1",
        True,
        ("pvc",),
    ),
    "service": ResourceType("Service", "services", "service", "", "v1", True, ("svc",), ("all",)),
    "resourcequota": ResourceType(
        "ResourceQuota", "resourcequotas", "resourcequota", "", "v1", True, ("quota",)
    ),
    "deployment": ResourceType(
        "Deployment", "deployments", "deployment", "apps", "v1", True, ("deploy",), ("all",)
    ),
    "statefulset": ResourceType(
        "StatefulSet", "statefulsets", "statefulset", "apps", "v1", True, ("sts",), ("all",)
    ),
    "daemonset": ResourceType(
        "DaemonSet", "daemonsets", "daemonset", "apps", "v1", True, ("ds",), ("all",)
    ),
    "cronjob": ResourceType(
        "CronJob", "cronjobs", "cronjob", "batch", "v1", True, ("cj",), ("all",)
    ),
}
ALIASES = {"pvc": "persistentvolumeclaim", "k8s_node": "node", "quota": "resourcequota"}
_BY_PATH = {(t.group, t.version, t.plural): name for name, t in RESOURCE_TYPES.items()}


def resource_type(kind: str) -> str:
    """The simulator's name for a kind ("pvc" → "persistentvolumeclaim"); unknown kinds fail."""
    name = ALIASES.get(kind, kind)
    if name not in RESOURCE_TYPES:
        raise KeyError(f"unknown kind {kind!r}; known: {sorted(RESOURCE_TYPES)}")
    return name


def _new_uid() -> str:
    # A random version-4 UUID without a system call per object: 50,000 of them add up, and
    # nothing here needs cryptographic randomness.
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 in UTC with a Z, the way the API server writes creationTimestamp."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_kubeconfig(
    path: str | Path,
    *,
    server: str,
    token: str | None = SIM_TOKEN,
    context: str = "yiyun-sim",
    namespace: str = "default",
) -> Path:
    """A kubeconfig with one cluster at `server` and one user holding the fake sim token."""
    user: dict[str, Any] = {"token": token} if token else {}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": f"{context}-scanner", "user": user}],
        "contexts": [
            {
                "name": context,
                "context": {
                    "cluster": context,
                    "user": f"{context}-scanner",
                    "namespace": namespace,
                },
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    target = Path(path)
    # JSON is YAML, and keeps this module free of a YAML dependency.
    target.write_text(json.dumps(kubeconfig, indent=2), encoding="utf-8")
    return target


# --- builders for typical objects --------------------------------------------------------


def _labels(system: str | None, labels: dict[str, str] | None, system_tag: str) -> dict[str, str]:
    merged = dict(labels or {})
    if system is not None:
        merged[system_tag] = system
    return merged


def _metadata(
    name: str, namespace: str | None, labels: dict[str, str], created: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    if created is not None:
        metadata["creationTimestamp"] = created
    return metadata


def _pod_template(app: str, cpu: str | None, memory: str | None, containers: int) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    specs = []
    for index in range(containers):
        container: dict[str, Any] = {
            "name": app if index == 0 else f"{app}-{index}",
            "image": f"registry.gov.example/{app}:1.0",
            "resources": {"requests": dict(requests)} if requests else {},
        }
        specs.append(container)
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": specs, "restartPolicy": "Always"},
    }


def make_namespace(
    name: str,
    *,
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    merged = {"kubernetes.io/metadata.name": name, **_labels(system, labels, system_tag)}
    return {
        "metadata": _metadata(name, None, merged, created),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def make_node(
    name: str,
    *,
    cpu: str = "16",
    memory: str = "64Gi",
    pods: str = "110",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    merged = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})}
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "200Gi"}
    return {
        "metadata": _metadata(name, None, merged, created),
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kubeletVersion": "v1.30.0", "architecture": "amd64"},
        },
    }


def make_deployment(
    namespace: str,
    name: str,
    *,
    replicas: int = 1,
    cpu: str | None = "500m",
    memory: str | None = "1Gi",
    containers: int = 1,
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, cpu, memory, containers),
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }


def make_statefulset(
    namespace: str,
    name: str,
    *,
    replicas: int = 1,
    cpu: str | None = "1",
    memory: str | None = "2Gi",
    storage: str | None = "20Gi",
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": _pod_template(name, cpu, memory, 1),
    }
    if storage is not None:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": storage}},
                },
            }
        ]
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": spec,
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def make_daemonset(
    namespace: str,
    name: str,
    *,
    nodes: int = 3,
    cpu: str | None = "100m",
    memory: str | None = "128Mi",
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, cpu, memory, 1),
        },
        "status": {
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "numberReady": nodes,
        },
    }


def make_cronjob(
    namespace: str,
    name: str,
    *,
    schedule: str = "0 2 * * *",
    suspend: bool = False,
    cpu: str | None = "250m",
    memory: str | None = "256Mi",
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    template = _pod_template(name, cpu, memory, 1)
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {
            "schedule": schedule,
            "suspend": suspend,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": template}},
        },
        "status": {},
    }


def make_pvc(
    namespace: str,
    name: str,
    *,
    storage: str = "10Gi",
    storage_class: str = "csi-rbd",
    phase: str = "Bound",
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage}},
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
        },
        "status": {"phase": phase, "capacity": {"storage": storage}},
    }


def make_service(
    namespace: str,
    name: str,
    *,
    type: str = "ClusterIP",
    port: int = 80,
    node_port: int | None = None,
    load_balancer_ip: str | None = None,
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    port_spec: dict[str, Any] = {
        "name": "http",
        "port": port,
        "protocol": "TCP",
        "targetPort": port,
    }
    if type in ("NodePort", "LoadBalancer"):
        port_spec["nodePort"] = node_port or 30000 + port % 2768
    status: dict[str, Any] = {"loadBalancer": {}}
    if type == "LoadBalancer" and load_balancer_ip:
        status["loadBalancer"] = {"ingress": [{"ip": load_balancer_ip}]}
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {"type": type, "selector": {"app": name}, "ports": [port_spec]},
        "status": status,
    }


def make_resource_quota(
    namespace: str,
    name: str,
    *,
    cpu: str = "64",
    memory: str = "256Gi",
    storage: str = "2Ti",
    system: str | None = None,
    labels: dict[str, str] | None = None,
    system_tag: str = SYSTEM_TAG,
    created: str | None = None,
) -> dict[str, Any]:
    hard = {"requests.cpu": cpu, "requests.memory": memory, "requests.storage": storage}
    return {
        "metadata": _metadata(name, namespace, _labels(system, labels, system_tag), created),
        "spec": {"hard": hard},
        "status": {"hard": dict(hard), "used": {"requests.cpu": "0", "requests.memory": "0"}},
    }


# --- selectors ---------------------------------------------------------------------------


class BadRequest(ValueError):
    """A request the real API server would refuse with 400."""


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists", "in", "notin"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # `!=` and `notin` also match objects that lack the label, as in the real API.
        return not present or value not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` → ["a in (x,y)", "b"]."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def parse_label_selector(text: str) -> list[_Requirement]:
    """Parse `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, comma-joined."""
    requirements = []
    for part in _split_top_level(text):
        if part.startswith("!"):
            requirements.append(_Requirement(part[1:].strip(), "!exists"))
        elif " notin " in part or " in " in part:
            op = "notin" if " notin " in part else "in"
            key, _, rest = part.partition(f" {op} ")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise BadRequest(f"unable to parse requirement: {part!r}")
            values = frozenset(v.strip() for v in rest[1:-1].split(",") if v.strip())
            requirements.append(_Requirement(key.strip(), op, values))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            requirements.append(_Requirement(key.strip(), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, _, value = part.replace("==", "=", 1).partition("=")
            requirements.append(_Requirement(key.strip(), "=", frozenset({value.strip()})))
        else:
            requirements.append(_Requirement(part, "exists"))
        if not requirements[-1].key:
            raise BadRequest(f"unable to parse requirement: {part!r}")
    return requirements


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """Only metadata.name and metadata.namespace, as (field, op, value); others are refused."""
    selectors = []
    for part in _split_top_level(text):
        op = "!=" if "!=" in part else "="
        name, _, value = part.replace("==", "=", 1).partition(op)
        name = name.strip()
        if name not in ("metadata.name", "metadata.namespace"):
            raise BadRequest(f'field label not supported: "{name}"')
        selectors.append((name, op, value.strip()))
    return selectors


# --- the store ---------------------------------------------------------------------------


class _Entry:
    """A stored object and its JSON encoding, computed once on first serve.

    Objects are replaced, never changed in place, so a page holding references to entries
    stays a consistent snapshot after the lock is released.
    """

    __slots__ = ("blob", "obj")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.blob: bytes | None = None

    def encoded(self) -> bytes:
        if self.blob is None:
            self.blob = json.dumps(self.obj, separators=(",", ":")).encode()
        return self.blob


@dataclass
class _Table:
    keys: list[Key] = field(default_factory=list)  # sorted, so a page is a bisect and a slice
    entries: dict[Key, _Entry] = field(default_factory=dict)


@dataclass
class _PageFault:
    """A fault armed for page `page` of listings (None: every request, reads included) of
    `kind` (None: any), `left` more times (None: until reset)."""

    page: int | None
    kind: str | None
    left: int | None

    def take(self, name: str, page: int | None) -> bool:
        """Whether the request meets this fault, using up one of its times if so."""
        if self.kind not in (None, name) or self.page not in (None, page):
            return False
        if self.left is None:
            return True
        if self.left > 0:
            self.left -= 1
            return True
        return False


@dataclass
class _Faults:
    """Armed faults. Counters are keyed by kind, None meaning any kind; None left = forever."""

    forbidden: set[tuple[str | None, str | None]] = field(default_factory=set)
    throttles: dict[str | None, int] = field(default_factory=dict)
    retry_after: int = 1
    errors: dict[str | None, int | None] = field(default_factory=dict)
    expiries: dict[str | None, int] = field(default_factory=dict)
    # page number (1 = the first request, without continue) -> (kind or None, drops left)
    drops: dict[int, tuple[str | None, int]] = field(default_factory=dict)
    delays: dict[str | None, float] = field(default_factory=dict)
    # Failures that answer 200: a Status document in place of the answer, a page without
    # its `items`.
    disguised: list[_PageFault] = field(default_factory=list)
    itemless: list[_PageFault] = field(default_factory=list)

    def consume(self, counters: dict[str | None, Any], name: str) -> bool:
        for key in (name, None):
            if key in counters:
                left = counters[key]
                if left is None:
                    return True
                if left > 0:
                    counters[key] = left - 1
                    return True
        return False


@dataclass(frozen=True)
class _Fault:
    """What a request meets: a delay, then either a dropped connection or an error Status.

    `disguised` sends the error Status with HTTP 200; `itemless` serves the page without its
    `items` key.
    """

    delay: float = 0.0
    drop: bool = False
    code: int = 0
    reason: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    disguised: bool = False
    itemless: bool = False


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]


@dataclass
class _Page:
    entries: list[_Entry]
    resource_version: int
    continue_token: str | None
    remaining: int | None


class KubernetesSimulator(LoopbackService):
    """An in-memory estate served over HTTP in the shapes of the Kubernetes list endpoints.

    `add`/`update`/`delete` change the estate from Python at any time (thread-safe); the fault
    switches make the next requests fail the ways real API servers do, and `reset_faults`
    puts everything back.
    """

    thread_name = "k8s-sim"

    def handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def __init__(
        self,
        *,
        cluster_uid: str | None = None,
        token: str | None = SIM_TOKEN,
        require_token: bool = False,
        server_version: tuple[int, int] = (1, 30),
        system_namespaces: bool = True,
    ) -> None:
        self._init_loopback()
        self._tables: dict[str, _Table] = {name: _Table() for name in RESOURCE_TYPES}
        self._resource_version = 1000
        self._faults = _Faults()
        self.token = token
        self.require_token = require_token
        self.server_version = server_version
        self._requests: collections.deque[LoggedRequest] = collections.deque(maxlen=100_000)
        if system_namespaces:
            for name in ("default", "kube-node-lease", "kube-public"):
                self.add("namespace", make_namespace(name))
            kube_system = make_namespace("kube-system")
            kube_system["metadata"]["uid"] = cluster_uid or _new_uid()
            self.add("namespace", kube_system)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request served so far (the last 100,000), oldest first."""
        with self._lock:
            return list(self._requests)

    def _log(self, request: LoggedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # --- addresses (start, stop, port, url: inventory/sim/loopback.py) ---

    @property
    def cluster_uid(self) -> str:
        entry = self._tables["namespace"].entries.get(("", "kube-system"))
        if entry is None:
            raise KeyError("the simulated cluster has no kube-system namespace")
        return str(entry.obj["metadata"]["uid"])

    def write_kubeconfig(
        self, path: str | Path, *, context: str = "yiyun-sim", namespace: str = "default"
    ) -> Path:
        """A kubeconfig whose only cluster is this simulator (plain http, a fake token)."""
        return write_kubeconfig(
            path, server=self.url, token=self.token, context=context, namespace=namespace
        )

    # --- the estate ---

    def _next_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _prepare(
        self, name: str, obj: dict[str, Any], now: str | None = None
    ) -> tuple[Key, dict[str, Any]]:
        """Fill what the API server fills on create: uid, resourceVersion, timestamps."""
        rtype = RESOURCE_TYPES[name]
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
        metadata = obj.setdefault("metadata", {})
        if not metadata.get("name"):
            raise ValueError(f"a {rtype.kind} needs metadata.name")
        if rtype.namespaced:
            metadata.setdefault("namespace", "default")
        else:
            metadata.pop("namespace", None)
        if "uid" not in metadata:
            metadata["uid"] = _new_uid()
        if "creationTimestamp" not in metadata:
            metadata["creationTimestamp"] = now or utc_timestamp()
        metadata.setdefault("generation", 1)
        metadata["resourceVersion"] = str(self._next_version())
        return (metadata.get("namespace", ""), metadata["name"]), obj

    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace one object (a copy of `obj` is stored); returns the stored copy."""
        name = resource_type(kind)
        stored = json.loads(json.dumps(obj))
        with self._lock:
            key, stored = self._prepare(name, stored)
            table = self._tables[name]
            if key not in table.entries:
                bisect.insort(table.keys, key)
            table.entries[key] = _Entry(stored)
        return json.loads(json.dumps(stored))

    def add_many(self, kind: str, objs: Iterable[dict[str, Any]]) -> int:
        """Bulk create for scale estates; takes ownership of `objs` (no copy) and sorts once."""
        name = resource_type(kind)
        count = 0
        with self._lock:
            table = self._tables[name]
            fresh = []
            now = utc_timestamp()
            for obj in objs:
                key, stored = self._prepare(name, obj, now)
                if key not in table.entries:
                    fresh.append(key)
                table.entries[key] = _Entry(stored)
                count += 1
            if fresh:
                table.keys.extend(fresh)
                table.keys.sort()
        return count

    def update(self, kind: str, namespace: str | None, name: str, **changes: Any) -> dict[str, Any]:
        """Replace top-level parts of an object (`spec=…`, `metadata=…`) and bump its version."""
        kind_name = resource_type(kind)
        key = (namespace or "", name)
        with self._lock:
            entry = self._tables[kind_name].entries[key]
            obj = json.loads(json.dumps(entry.obj))
            for part, value in changes.items():
                if part == "metadata":
                    obj["metadata"].update(value)
                else:
                    obj[part] = value
            obj["metadata"]["resourceVersion"] = str(self._next_version())
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            self._tables[kind_name].entries[key] = _Entry(obj)
            return json.loads(json.dumps(obj))

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        kind_name = resource_type(kind)
        key = (namespace or "", name)
        with self._lock:
            table = self._tables[kind_name]
            if table.entries.pop(key, None) is None:
                return False
            index = bisect.bisect_left(table.keys, key)
            del table.keys[index]
            self._next_version()
            return True

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._tables[resource_type(kind)].entries.get((namespace or "", name))
            return None if entry is None else json.loads(json.dumps(entry.obj))

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """A copy of every stored object of a kind, in list order."""
        with self._lock:
            table = self._tables[resource_type(kind)]
            return [json.loads(json.dumps(table.entries[key].obj)) for key in table.keys]

    def identities(self, kind: str) -> set[tuple[str, str | None, str, str]]:
        """{(Kind, namespace, name, uid)}: what a complete listing of the kind must return."""
        rtype = RESOURCE_TYPES[resource_type(kind)]
        with self._lock:
            table = self._tables[resource_type(kind)]
            return {
                (rtype.kind, key[0] or None, key[1], str(table.entries[key].obj["metadata"]["uid"]))
                for key in table.keys
            }

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._tables[resource_type(kind)].keys)

    # --- faults ---

    def forbid(self, *, kind: str | None = None, namespace: str | None = None) -> None:
        """403 for every request on `kind` (all kinds if None) in `namespace` (any if None)."""
        with self._lock:
            self._faults.forbidden.add((resource_type(kind) if kind else None, namespace))

    def throttle(self, requests: int = 1, *, retry_after: int = 1, kind: str | None = None) -> None:
        """429 with Retry-After for the next `requests` resource requests (of `kind`)."""
        with self._lock:
            self._faults.throttles[resource_type(kind) if kind else None] = requests
            self._faults.retry_after = retry_after

    def fail(self, requests: int | None = 1, *, kind: str | None = None) -> None:
        """500 for the next `requests` resource requests (of `kind`); None: until reset."""
        with self._lock:
            self._faults.errors[resource_type(kind) if kind else None] = requests

    def expire_continue(self, requests: int = 1, *, kind: str | None = None) -> None:
        """410 Gone ("continue token expired") for the next `requests` continue requests."""
        with self._lock:
            self._faults.expiries[resource_type(kind) if kind else None] = requests

    def drop_connection(self, *, page: int, times: int = 1, kind: str | None = None) -> None:
        """Close the socket without a response on page `page` (1-based) of a listing."""
        with self._lock:
            self._faults.drops[page] = (resource_type(kind) if kind else None, times)

    def delay(self, seconds: float, *, kind: str | None = None) -> None:
        """Hold every resource request (of `kind`, if given) this long before answering."""
        with self._lock:
            self._faults.delays[resource_type(kind) if kind else None] = seconds

    def fail_with_200(
        self, *, page: int | None = 1, times: int | None = None, kind: str | None = None
    ) -> None:
        """Answer page `page` (1-based) of listings of `kind` with HTTP 200 and a `kind: Status,
        status: Failure` document, as some gateways and aggregated API servers do. `page=None`
        answers every request of the kind that way, reads of one object included;
        `times=None` keeps it up until reset."""
        with self._lock:
            self._faults.disguised.append(
                _PageFault(page, resource_type(kind) if kind else None, times)
            )

    def omit_items(
        self, *, page: int = 1, times: int | None = None, kind: str | None = None
    ) -> None:
        """Serve page `page` of listings of `kind` with its kind and metadata but no `items`
        key, as a truncating proxy might. `times=None` keeps it up until reset."""
        with self._lock:
            self._faults.itemless.append(
                _PageFault(page, resource_type(kind) if kind else None, times)
            )

    def reset_faults(self) -> None:
        with self._lock:
            self._faults = _Faults()

    def _fault_for(
        self, name: str, namespace: str | None, page: int | None, continued: bool, verb: str
    ) -> _Fault | None:
        """Decide (and consume) the fault a resource request meets, if any."""
        rtype = RESOURCE_TYPES[name]
        with self._lock:
            faults = self._faults
            delay = faults.delays.get(name, faults.delays.get(None, 0.0))
            if page is not None and page in faults.drops:
                drop_kind, times = faults.drops[page]
                if drop_kind in (None, name) and times > 0:
                    faults.drops[page] = (drop_kind, times - 1)
                    return _Fault(delay, drop=True)
            for kind, scope in faults.forbidden:
                if kind in (None, name) and (scope is None or scope == namespace):
                    where = (
                        f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                    )
                    message = (
                        f'{rtype.qualified} is forbidden: User "{SIM_USER}" cannot {verb} '
                        f'resource "{rtype.plural}" in API group "{rtype.group}" {where}'
                    )
                    return _Fault(delay, code=403, reason="Forbidden", message=message)
            if faults.consume(faults.throttles, name):
                return _Fault(
                    delay, code=429, reason="TooManyRequests",
                    message="Too many requests, please try again later.",
                    headers={"Retry-After": str(faults.retry_after)},
                )  # fmt: skip
            if faults.consume(faults.errors, name):
                return _Fault(
                    delay, code=500, reason="InternalError",
                    message="Internal error occurred: simulated etcd request timed out",
                )  # fmt: skip
            if continued and faults.consume(faults.expiries, name):
                return _Fault(
                    delay, code=410, reason="Expired",
                    message="The provided continue parameter is too old to display a "
                    "consistent list result. You can start a new list without the continue "
                    "parameter.",
                )  # fmt: skip
            if any(fault.take(name, page) for fault in faults.disguised):
                return _Fault(
                    delay, code=500, reason="InternalError", disguised=True,
                    message="Internal error occurred: etcdserver: request timed out",
                )  # fmt: skip
            if page is not None and any(fault.take(name, page) for fault in faults.itemless):
                return _Fault(delay, itemless=True)
            return _Fault(delay) if delay else None

    # --- serving ---

    def _page(
        self,
        name: str,
        namespace: str | None,
        limit: int,
        token: dict[str, Any] | None,
        labels: list[_Requirement],
        fields: list[tuple[str, str, str]],
    ) -> _Page:
        with self._lock:
            table = self._tables[name]
            keys = table.keys
            if namespace is not None:
                low = bisect.bisect_left(keys, (namespace,))
                high = bisect.bisect_left(keys, (namespace + "\x00",))
            else:
                low, high = 0, len(keys)
            version = self._resource_version
            if token is not None:
                version = int(token["rv"])
                start_key = (str(token["start"][0]), str(token["start"][1]))
                low = max(low, bisect.bisect_right(keys, start_key))
            if not labels and not fields:
                end = high if limit <= 0 else min(high, low + limit)
                chosen = [table.entries[key] for key in keys[low:end]]
                last = keys[end - 1] if end > low else None
            else:
                chosen, end, last = [], low, None
                while end < high and (limit <= 0 or len(chosen) < limit):
                    key = keys[end]
                    entry = table.entries[key]
                    if _selected(entry.obj, labels, fields):
                        chosen.append(entry)
                    last = key
                    end += 1
            more = end < high and last is not None
            continue_token = None
            if more and last is not None:
                page = int(token["page"]) + 1 if token else 2
                continue_token = _encode_token(version, last, page)
            # As the real server does, no count when a selector filters the listing.
            remaining = high - end if more and not labels and not fields else None
            return _Page(chosen, version, continue_token, remaining)

    def _get(self, name: str, namespace: str | None, object_name: str) -> _Entry | None:
        with self._lock:
            return self._tables[name].entries.get((namespace or "", object_name))


def _selected(
    obj: dict[str, Any], labels: list[_Requirement], fields: list[tuple[str, str, str]]
) -> bool:
    metadata = obj["metadata"]
    object_labels = metadata.get("labels") or {}
    if not all(requirement.matches(object_labels) for requirement in labels):
        return False
    for name, op, value in fields:
        actual = metadata.get("name") if name == "metadata.name" else metadata.get("namespace")
        if (actual == value) != (op == "="):
            return False
    return True


def _encode_token(version: int, last: Key, page: int) -> str:
    # Like the real server's token: where to resume (the last key served, not an offset, so
    # objects deleted between pages shift nothing) and the list's resourceVersion.
    payload = {"v": "meta.k8s.io/v1", "rv": version, "start": list(last), "page": page}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        int(payload["rv"])
        int(payload["page"])
        if len(payload["start"]) != 2:
            raise ValueError("bad start key")
        return dict(payload)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise BadRequest(f"continue key is not valid: {error}") from error


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return json.dumps(body).encode()


def _age(created: str | None, now: float) -> str:
    """kubectl's short age: 42s, 5m, 3h, 12d, 2y."""
    if not created:
        return "<unknown>"
    seconds = max(0, int(now - datetime.fromisoformat(created).timestamp()))
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Handler(LoopbackHandler):
    """Routes one request; the simulator instance is a class attribute of a per-server subclass."""

    sim: KubernetesSimulator
    server_version = "yiyun-k8s-sim"

    # --- responses ---

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, payload: dict[str, Any]) -> None:
        self._send(200, json.dumps(payload).encode())

    def _not_found(self, message: str = "the server could not find the requested resource") -> None:
        self._send(404, _status(404, "NotFound", message, {}))

    def _drop(self) -> None:
        # Close without a byte of response: the client sees the connection reset mid-listing.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- routing ---

    def do_GET(self) -> None:
        sim = self.sim
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        sim._log(LoggedRequest("GET", path, query))
        if not self._authenticated():
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        segments = [s for s in path.split("/") if s]
        if path == "/version":
            self._send_json(self._version())
        elif path == "/api":
            self._send_json(self._core_versions())
        elif path == "/apis":
            self._send_json(self._groups())
        elif segments[:2] == ["api", "v1"] and len(segments) == 2:
            self._send_json(self._resource_list("", "v1"))
        elif segments[:1] == ["apis"] and len(segments) == 3 and self._group_known(segments[1:3]):
            self._send_json(self._resource_list(segments[1], segments[2]))
        elif segments[:2] == ["api", "v1"]:
            self._resource("", "v1", segments[2:], query)
        elif segments[:1] == ["apis"] and len(segments) > 3:
            self._resource(segments[1], segments[2], segments[3:], query)
        else:
            self._not_found()

    def _authenticated(self) -> bool:
        sent = self.headers.get("Authorization")
        if sent is None:
            return not self.sim.require_token
        return self.sim.token is not None and sent == f"Bearer {self.sim.token}"

    def _method_not_allowed(self) -> None:
        self.sim._log(LoggedRequest(self.command, self.path, {}))
        self._send(405, _status(405, "MethodNotAllowed", "the simulator serves reads only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed

    # --- discovery ---

    def _version(self) -> dict[str, Any]:
        major, minor = self.sim.server_version
        return {
            "major": str(major),
            "minor": str(minor),
            "gitVersion": f"v{major}.{minor}.0",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-04-17T00:00:00Z",
            "goVersion": "go1.22.2",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _core_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.sim.port}"}
            ],
        }

    @staticmethod
    def _group_versions() -> dict[str, str]:
        return {t.group: t.version for t in RESOURCE_TYPES.values() if t.group}

    def _group_known(self, group_version: list[str]) -> bool:
        return self._group_versions().get(group_version[0]) == group_version[1]

    def _groups(self) -> dict[str, Any]:
        groups = []
        for group, version in sorted(self._group_versions().items()):
            gv = {"groupVersion": f"{group}/{version}", "version": version}
            groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    @staticmethod
    def _resource_list(group: str, version: str) -> dict[str, Any]:
        resources = []
        for rtype in RESOURCE_TYPES.values():
            if (rtype.group, rtype.version) != (group, version):
                continue
            resource: dict[str, Any] = {
                "name": rtype.plural,
                "singularName": rtype.singular,
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "list"],
            }
            if rtype.short_names:
                resource["shortNames"] = list(rtype.short_names)
            if rtype.categories:
                resource["categories"] = list(rtype.categories)
            resources.append(resource)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # --- resources ---

    def _resource(self, group: str, version: str, rest: list[str], query: dict[str, str]) -> None:
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        name = _BY_PATH.get((group, version, rest[0])) if rest else None
        if name is None or len(rest) > 2:
            self._not_found()
            return
        rtype = RESOURCE_TYPES[name]
        if namespace is not None and not rtype.namespaced:
            self._not_found()
            return
        object_name = rest[1] if len(rest) == 2 else None
        if object_name is not None and rtype.namespaced and namespace is None:
            self._not_found()
            return
        if query.get("watch") in ("true", "1"):
            self._send(400, _status(400, "BadRequest", "the simulator does not serve watches"))
            return
        try:
            token = _decode_token(query["continue"]) if query.get("continue") else None
        except BadRequest as error:
            self._send(400, _status(400, "BadRequest", str(error)))
            return
        page = None if object_name is not None else (int(token["page"]) if token else 1)
        verb = "get" if object_name is not None else "list"
        fault = self.sim._fault_for(name, namespace, page, token is not None, verb)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self._drop()
                return
            if fault.code:
                details: dict[str, Any] = {"kind": rtype.plural}
                if rtype.group:
                    details["group"] = rtype.group
                if fault.code == 429:
                    details["retryAfterSeconds"] = int(fault.headers["Retry-After"])
                body = _status(fault.code, fault.reason, fault.message, details)
                self._send(200 if fault.disguised else fault.code, body, fault.headers)
                return
        if object_name is not None:
            self._get_one(name, namespace, object_name)
        else:
            self._list(name, namespace, token, query, items=not (fault and fault.itemless))

    def _get_one(self, name: str, namespace: str | None, object_name: str) -> None:
        rtype = RESOURCE_TYPES[name]
        entry = self.sim._get(name, namespace, object_name)
        if entry is None:
            details = {"name": object_name, "kind": rtype.plural}
            message = f'{rtype.qualified} "{object_name}" not found'
            self._send(404, _status(404, "NotFound", message, details))
            return
        if self._wants_table():
            page = _Page([entry], self.sim._resource_version, None, None)
            self._send_json(self._table(page, {"resourceVersion": str(page.resource_version)}))
            return
        head = json.dumps({"kind": rtype.kind, "apiVersion": rtype.api_version})[:-1].encode()
        # Splice kind/apiVersion in front of the cached encoding instead of re-encoding.
        self._send(200, head + b"," + entry.encoded()[1:])

    def _list(
        self,
        name: str,
        namespace: str | None,
        token: dict[str, Any] | None,
        query: dict[str, str],
        *,
        items: bool = True,
    ) -> None:
        rtype = RESOURCE_TYPES[name]
        try:
            limit = int(query.get("limit") or 0)
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(query.get("fieldSelector", ""))
        except (BadRequest, ValueError) as error:
            self._send(400, _status(400, "BadRequest", str(error)))
            return
        page = self.sim._page(name, namespace, limit, token, labels, fields)
        metadata: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        if page.remaining is not None:
            metadata["remainingItemCount"] = page.remaining
        if self._wants_table():
            self._send_json(self._table(page, metadata))
            return
        head = json.dumps(
            {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": metadata}
        )
        if not items:
            self._send(200, head.encode())
            return
        # Join the per-object encodings cached in the store: a page costs O(limit), not O(n).
        body = b"".join(
            (head[:-1].encode(), b',"items":[', b",".join(e.encoded() for e in page.entries), b"]}")
        )
        self._send(200, body)

    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    @staticmethod
    def _table(page: _Page, metadata: dict[str, Any]) -> dict[str, Any]:
        """The server-side printing kubectl asks for without -o: name and age columns."""
        now = time.time()
        rows = []
        for entry in page.entries:
            object_metadata = entry.obj["metadata"]
            rows.append(
                {
                    "cells": [
                        object_metadata["name"],
                        _age(object_metadata.get("creationTimestamp"), now),
                    ],
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object_metadata,
                    },
                }
            )
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "columnDefinitions": [
                {
                    "name": "Name",
                    "type": "string",
                    "format": "name",
                    "priority": 0,
                    "description": "Name must be unique within a namespace.",
                },
                {
                    "name": "Age",
                    "type": "string",
                    "format": "",
                    "priority": 0,
                    "description": "Time since the object was created.",
                },
            ],
            "rows": rows,
        }


def populate_scale_estate(
    sim: KubernetesSimulator,
    *,
    deployments: int,
    namespaces: int = 500,
    systems: int | None = None,
    system_tag: str = SYSTEM_TAG,
) -> None:
    """A large estate: `deployments` spread over labelled namespaces; every 10th has its own label.

    Systems are numbered SYS-0000…; by default each namespace belongs to its own system.
    """
    systems = systems or namespaces
    sim.add_many(
        "namespace",
        (
            make_namespace(f"ns-{i:04d}", system=f"SYS-{i % systems:04d}", system_tag=system_tag)
            for i in range(namespaces)
        ),
    )
    sim.add_many(
        "deployment",
        (
            make_deployment(
                f"ns-{i % namespaces:04d}",
                f"app-{i:06d}",
                replicas=1 + i % 3,
                system=f"SYS-{(i + 1) % systems:04d}" if i % 10 == 0 else None,
                system_tag=system_tag,
            )
            for i in range(deployments)
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """Serve a simulated cluster until interrupted (for benchmarks, demos and kubectl by hand)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m inventory.sim.k8s", description=main.__doc__)
    parser.add_argument("--deployments", type=int, default=0, help="scale estate size")
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--kubeconfig", help="write a kubeconfig pointing at the simulator here")
    parser.add_argument("--context", default="yiyun-sim")
    args = parser.parse_args(argv)
    sim = KubernetesSimulator()
    if args.deployments:
        populate_scale_estate(sim, deployments=args.deployments, namespaces=args.namespaces)
    sim.start()
    if args.kubeconfig:
        sim.write_kubeconfig(args.kubeconfig, context=args.context)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    # The first line of output is the URL: a parent process waits for it to know we are up.
    print(sim.url, flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
