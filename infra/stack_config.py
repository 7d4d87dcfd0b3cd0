"""A node's stack config, validated whole into the arguments of its Pulumi components.

Pure Python (no Pulumi import), so `yiyun infra check` and the tests can validate a stack
file on a machine without the `infra` extra. Every problem is collected with its config path;
nothing is provisioned from a config with any problem.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.naming import BUCKET_NAME, K8S_LABEL, bucket_name, city_label, k8s_name, slug
from infra.wave_plan import LABEL_DEPARTMENT, LABEL_SYSTEM, PlanExportError, read_plan_export

PROJECT = "yiyun"
CONFIG_KEYS = ("node", "departments", "tenants", "agent", "landingZones")
LABEL_CITY = "yiyun.io/city"
LABEL_NODE = "yiyun.io/node"
LABEL_TENANT = "yiyun.io/tenant"
LABEL_MANAGED_BY = "yiyun.io/managed-by"
MANAGED_BY = "pulumi"
# Namespaces the cluster owns: a tenant or landing zone must never be created over them.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# Key names that smell of a credential; stack config is committed to Git in plain text.
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|token$|secret_?key|access_?key|credential$|database_?url|^dsn$",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z]+$")


class StackConfigError(ValueError):
    """A stack config that cannot be provisioned from; lists every problem with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"stack config is not valid ({len(problems)} problems):\n{lines}")


# ---------------------------------------------------------------- quantities


def cpu_quantity(cores: float) -> str:
    """Cores as millicores, rounded up so that a quota never ends below what was asked."""
    return f"{math.ceil(round(cores * 1000, 6))}m"


_SUFFIXES = {"m": Decimal("0.001"), "k": Decimal(1000), "M": Decimal(1000**2),
             "G": Decimal(1000**3), "T": Decimal(1000**4), "Ki": Decimal(1024),
             "Mi": Decimal(1024**2), "Gi": Decimal(1024**3), "Ti": Decimal(1024**4)}  # fmt: skip


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity (already matched by _QUANTITY) in base units."""
    number = text.rstrip("kmMGTi")
    return Decimal(number) * _SUFFIXES.get(text[len(number) :], Decimal(1))


def memory_quantity(gib: float) -> str:
    return f"{math.ceil(round(gib * 1024, 6))}Mi"


def storage_quantity(gib: float) -> str:
    return f"{math.ceil(round(gib, 6))}Gi"


# ---------------------------------------------------------------- component arguments


@dataclass(frozen=True)
class Quota:
    """A namespace's ceiling: requested vCPU, memory and storage (GiB) and a pod count."""

    cpu: float
    memory_gib: float
    storage_gib: float
    pods: int

    def hard(self) -> dict[str, str]:
        """The ResourceQuota `hard` map; requests.* is what yiyun's collector reads back."""
        return {
            "requests.cpu": cpu_quantity(self.cpu),
            "requests.memory": memory_quantity(self.memory_gib),
            "requests.storage": storage_quantity(self.storage_gib),
            "pods": str(self.pods),
        }


@dataclass(frozen=True)
class ContainerLimits:
    """The LimitRange every tenant namespace gets, so quota-bound pods are admitted."""

    default_cpu: str = "500m"
    default_memory: str = "512Mi"
    default_request_cpu: str = "100m"
    default_request_memory: str = "128Mi"
    max_cpu: str = "8"
    max_memory: str = "32Gi"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    city: str
    it_group: str


@dataclass(frozen=True)
class NamespaceRules:
    """The department's tenant rules, applied to its tenant namespace and its landing zones."""

    department: Department
    limits: ContainerLimits
    ingress_namespace: str
    dns_namespace: str
    egress_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectStore:
    """The node's S3-compatible store; credentials come from the AWS chain (`profile`)."""

    endpoint: str
    region: str
    profile: str | None = None
    path_style: bool = True
    sse_algorithm: str = "AES256"
    kms_key_id: str | None = None


@dataclass(frozen=True)
class KubernetesTarget:
    context: str | None = None
    kubeconfig: str | None = None
    ingress_namespace: str = "ingress-nginx"
    dns_namespace: str = "kube-system"


@dataclass(frozen=True)
class NodeTarget:
    id: str
    name: str
    city: str
    kubernetes: KubernetesTarget
    object_store: ObjectStore | None


@dataclass(frozen=True)
class DepartmentTenantArgs:
    node_id: str
    namespace: str
    quota: Quota
    rules: NamespaceRules
    bucket: str | None
    object_store: ObjectStore | None


@dataclass(frozen=True)
class LandingZoneNamespace:
    system_code: str
    namespace: str
    quota: Quota
    rules: NamespaceRules
    labels: dict[str, str]


@dataclass(frozen=True)
class WaveLandingZoneArgs:
    node_id: str
    plan: str
    wave: int
    start: date
    end: date
    headroom: float
    namespaces: tuple[LandingZoneNamespace, ...]


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


# The identity provider's issuer URL and this service's audience, from the operator's Secret.
@dataclass(frozen=True)
class OidcSecretRef:
    name: str
    issuer_key: str = "issuer"
    audience_key: str = "audience"


# The portal as the identity provider's client: its id, its secret and the portal's public
# address (the login's redirect URI starts with it), all three from one Secret.
@dataclass(frozen=True)
class PortalSecretRef:
    name: str
    client_id_key: str = "client-id"
    client_secret_key: str = "client-secret"
    url_key: str = "url"


# Sized for the benchmark's target of an RSS under 300 MiB, with headroom for a burst.
@dataclass(frozen=True)
class ServeResources:
    cpu_request: str = "250m"
    memory_request: str = "320Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"


# `yiyun serve` in the cluster: the API and portal over the same ledger as the scanner.
@dataclass(frozen=True)
class HttpServiceArgs:
    oidc_secret: OidcSecretRef
    portal_secret: PortalSecretRef | None = None
    replicas: int = 2
    principal_claim: str | None = None
    grants_claim: str | None = None
    resources: ServeResources = field(default_factory=ServeResources)


@dataclass(frozen=True)
class InventoryAgentArgs:
    node_id: str
    image: str
    namespace: str
    service_account: str
    schedule: str
    database_secret: SecretRef
    node_file_config_map: str | None = None
    aws_credentials_secret: str | None = None
    exporter: bool = True
    exporter_port: int = 9464
    service: HttpServiceArgs | None = None


@dataclass(frozen=True)
class StackConfig:
    node: NodeTarget
    departments: dict[str, Department]
    tenants: tuple[DepartmentTenantArgs, ...]
    agent: InventoryAgentArgs | None
    landing_zones: tuple[WaveLandingZoneArgs, ...] = field(default=())


# ---------------------------------------------------------------- validation helpers


class _Checker:
    """Collects problems with their config paths while reading plain YAML/JSON values."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def obj(
        self, value: Any, where: str, *, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.add(where, f"must be an object with {', '.join(allowed)}; got {value!r}")
            return {}
        for key in value:
            if _SECRET_KEY.search(str(key)):
                self.add(
                    f"{where}.{key}",
                    "stack config is plain text in Git: never put a credential here; "
                    "reference a Kubernetes Secret (agent.databaseSecret, "
                    "agent.awsCredentialsSecret) or an AWS profile instead",
                )
            elif key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = (
                    f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(allowed)})"
                )
                self.add(f"{where}.{key}", f"unknown setting{hint}")
        for key in required:
            if value.get(key) is None:
                self.add(f"{where}.{key}", "is required")
        return dict(value)

    def text(
        self, obj: dict[str, Any], key: str, where: str, default: str | None = None
    ) -> str | None:
        value = obj.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
            return default
        return value.strip()

    def k8s(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = self.text(obj, key, where, default)
        if value is not None and not K8S_LABEL.match(value):
            self.add(
                f"{where}.{key}",
                f"{value!r} is not a Kubernetes name (lowercase letters, digits, '-', ≤ 63)",
            )
        return value or ""

    def number(
        self, obj: dict[str, Any], key: str, where: str, default: float | None = None
    ) -> float:
        value = obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{where}.{key}", f"must be a number, got {value!r}")
            return 0.0
        if value < 0 or not math.isfinite(value):
            self.add(f"{where}.{key}", f"must be ≥ 0, got {value}")
            return 0.0
        return float(value)

    def whole(self, obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
        value = obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(f"{where}.{key}", f"must be a whole number, got {value!r}")
            return 0
        if value < 0:
            self.add(f"{where}.{key}", f"must be ≥ 0, got {value}")
            return 0
        return value

    def flag(self, obj: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            self.add(f"{where}.{key}", f"must be true or false, got {value!r}")
            return default
        return value

    def quantity(self, obj: dict[str, Any], key: str, where: str, default: str) -> str:
        value = obj.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _QUANTITY.match(value):
            self.add(f"{where}.{key}", f"must be a Kubernetes quantity like 500m or 2Gi: {value!r}")
            return default
        return value


def _did_you_mean(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (known: {', '.join(sorted(choices))})" if choices else ""


# ---------------------------------------------------------------- sections


def _node(check: _Checker, raw: Any) -> NodeTarget:
    where = "node"
    obj = check.obj(
        raw,
        where,
        allowed=("id", "name", "city", "kubernetes", "objectStore"),
        required=("id", "city"),
    )
    node_id = check.k8s(obj, "id", where)
    k8s = check.obj(
        obj.get("kubernetes", {}),
        f"{where}.kubernetes",
        allowed=("context", "kubeconfig", "ingressNamespace", "dnsNamespace"),
    )
    kubernetes = KubernetesTarget(
        context=check.text(k8s, "context", f"{where}.kubernetes"),
        kubeconfig=check.text(k8s, "kubeconfig", f"{where}.kubernetes"),
        ingress_namespace=check.k8s(
            k8s, "ingressNamespace", f"{where}.kubernetes", "ingress-nginx"
        ),
        dns_namespace=check.k8s(k8s, "dnsNamespace", f"{where}.kubernetes", "kube-system"),
    )
    store: ObjectStore | None = None
    if obj.get("objectStore") is not None:
        at = f"{where}.objectStore"
        raw_store = check.obj(
            obj["objectStore"],
            at,
            allowed=("endpoint", "region", "profile", "pathStyle", "sseAlgorithm", "kmsKeyId"),
            required=("endpoint", "region"),
        )
        endpoint = check.text(raw_store, "endpoint", at) or ""
        if endpoint and not re.match(r"^https?://[^\s/]+", endpoint):
            check.add(f"{at}.endpoint", f"must be an http(s) URL, got {endpoint!r}")
        algorithm = check.text(raw_store, "sseAlgorithm", at, "AES256") or "AES256"
        if algorithm not in ("AES256", "aws:kms"):
            check.add(f"{at}.sseAlgorithm", f"must be AES256 or aws:kms, got {algorithm!r}")
        kms_key = check.text(raw_store, "kmsKeyId", at)
        if algorithm == "aws:kms" and not kms_key:
            check.add(f"{at}.kmsKeyId", "is required when sseAlgorithm is aws:kms")
        store = ObjectStore(
            endpoint=endpoint,
            region=check.text(raw_store, "region", at) or "",
            profile=check.text(raw_store, "profile", at),
            path_style=check.flag(raw_store, "pathStyle", at, True),
            sse_algorithm=algorithm,
            kms_key_id=kms_key,
        )
    return NodeTarget(
        id=node_id,
        name=check.text(obj, "name", where) or node_id,
        city=check.text(obj, "city", where) or "",
        kubernetes=kubernetes,
        object_store=store,
    )


def _departments(check: _Checker, raw: Any) -> dict[str, Department]:
    if not isinstance(raw, Mapping) or not raw:
        check.add("departments", "must map department codes to {name, city, itGroup}")
        return {}
    departments: dict[str, Department] = {}
    for code, value in raw.items():
        where = f"departments.{code}"
        obj = check.obj(
            value, where, allowed=("name", "city", "itGroup"), required=("name", "city", "itGroup")
        )
        if not slug(str(code)):
            check.add(where, "a department code needs letters or digits")
        departments[str(code)] = Department(
            code=str(code),
            name=check.text(obj, "name", where) or "",
            city=check.text(obj, "city", where) or "",
            it_group=check.text(obj, "itGroup", where) or "",
        )
    return departments


def _quota(check: _Checker, raw: Any, where: str, *, defaults: Quota | None = None) -> Quota:
    required = () if defaults else ("cpu", "memoryGib", "storageGib")
    obj = check.obj(
        raw, where, allowed=("cpu", "memoryGib", "storageGib", "pods"), required=required
    )
    base = defaults or Quota(0.0, 0.0, 0.0, 100)
    return Quota(
        cpu=check.number(obj, "cpu", where, base.cpu),
        memory_gib=check.number(obj, "memoryGib", where, base.memory_gib),
        storage_gib=check.number(obj, "storageGib", where, base.storage_gib),
        pods=check.whole(obj, "pods", where, base.pods),
    )


def _limits(check: _Checker, raw: Any, where: str) -> ContainerLimits:
    fields = {
        "defaultCpu": "default_cpu",
        "defaultMemory": "default_memory",
        "defaultRequestCpu": "default_request_cpu",
        "defaultRequestMemory": "default_request_memory",
        "maxCpu": "max_cpu",
        "maxMemory": "max_memory",
    }
    obj = check.obj(raw, where, allowed=tuple(fields))
    base = ContainerLimits()
    limits = ContainerLimits(
        **{
            attr: check.quantity(obj, key, where, getattr(base, attr))
            for key, attr in fields.items()
        }
    )
    # The API server refuses a LimitRange whose defaults exceed its own maxima.
    for resource in ("cpu", "memory"):
        chain = [
            (f"defaultRequest{resource.title()}", getattr(limits, f"default_request_{resource}")),
            (f"default{resource.title()}", getattr(limits, f"default_{resource}")),
            (f"max{resource.title()}", getattr(limits, f"max_{resource}")),
        ]
        for (low_key, low), (high_key, high) in itertools.pairwise(chain):
            if parse_quantity(low) > parse_quantity(high):
                check.add(where, f"{low_key} {low} is above {high_key} {high}")
    return limits


def _tenants(
    check: _Checker, raw: Any, node: NodeTarget, departments: dict[str, Department]
) -> tuple[list[DepartmentTenantArgs], dict[str, NamespaceRules]]:
    if not isinstance(raw, list):
        check.add("tenants", f"must be a list of tenants, got {raw!r}")
        return [], {}
    tenants: list[DepartmentTenantArgs] = []
    rules_by_department: dict[str, NamespaceRules] = {}
    first_seen: dict[str, str] = {}
    for i, value in enumerate(raw):
        where = f"tenants[{i}]"
        obj = check.obj(
            value,
            where,
            allowed=(
                "department",
                "namespace",
                "quota",
                "limits",
                "bucket",
                "bucketName",
                "egressCidrs",
            ),
            required=("department", "quota"),
        )
        code = check.text(obj, "department", where) or ""
        department = departments.get(code)
        if code and department is None:
            check.add(
                f"{where}.department",
                f"unknown department {code}{_did_you_mean(code, list(departments))}; "
                "add it under departments first",
            )
        if code in first_seen:
            check.add(where, f"duplicate tenant: department {code} already has {first_seen[code]}")
            continue
        first_seen[code] = where
        namespace = check.k8s(obj, "namespace", where, k8s_name(code) if slug(code) else None)
        quota = _quota(check, obj.get("quota"), f"{where}.quota")
        limits = _limits(check, obj.get("limits", {}), f"{where}.limits")
        cidrs: list[str] = []
        raw_cidrs = obj.get("egressCidrs", [])
        if not isinstance(raw_cidrs, list):
            check.add(f"{where}.egressCidrs", "must be a list of CIDRs")
            raw_cidrs = []
        for j, cidr in enumerate(raw_cidrs):
            try:
                cidrs.append(str(ipaddress.ip_network(str(cidr), strict=True)))
            except ValueError as error:
                check.add(f"{where}.egressCidrs[{j}]", f"not a CIDR: {error}")
        bucket: str | None = None
        if check.flag(obj, "bucket", where, True):
            if node.object_store is None:
                check.add(
                    f"{where}.bucket",
                    "the tenant wants a bucket but node.objectStore is not configured "
                    "(set it, or bucket: false)",
                )
            bucket = check.text(obj, "bucketName", where) or bucket_name(node.id, code)
            if not BUCKET_NAME.match(bucket):
                check.add(f"{where}.bucketName", f"{bucket!r} is not a valid S3 bucket name")
        if department is None:
            continue
        rules = NamespaceRules(
            department=department,
            limits=limits,
            ingress_namespace=node.kubernetes.ingress_namespace,
            dns_namespace=node.kubernetes.dns_namespace,
            egress_cidrs=tuple(cidrs),
        )
        rules_by_department[code] = rules
        tenants.append(
            DepartmentTenantArgs(
                node_id=node.id,
                namespace=namespace,
                quota=quota,
                rules=rules,
                bucket=bucket,
                object_store=node.object_store,
            )
        )
    return tenants, rules_by_department


def _agent(check: _Checker, raw: Any, node: NodeTarget) -> InventoryAgentArgs | None:
    if raw is None:
        return None
    where = "agent"
    obj = check.obj(
        raw,
        where,
        allowed=(
            "image",
            "namespace",
            "serviceAccount",
            "schedule",
            "databaseSecret",
            "nodeFileConfigMap",
            "awsCredentialsSecret",
            "exporter",
            "exporterPort",
            "service",
        ),
        required=("image", "databaseSecret"),
    )
    schedule = check.text(obj, "schedule", where, "0 * * * *") or "0 * * * *"
    fields = schedule.split()
    if not (len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)) and not (
        schedule.startswith("@") and len(fields) == 1
    ):
        check.add(f"{where}.schedule", f"must be a five-field cron schedule, got {schedule!r}")
    secret = check.obj(
        obj.get("databaseSecret", {}),
        f"{where}.databaseSecret",
        allowed=("name", "key"),
        required=("name",),
    )
    port = check.whole(obj, "exporterPort", where, 9464)
    if not 1 <= port <= 65535:
        check.add(f"{where}.exporterPort", f"must be a TCP port (1–65535), got {port}")
    config_map = obj.get("nodeFileConfigMap")
    aws_secret = obj.get("awsCredentialsSecret")
    return InventoryAgentArgs(
        node_id=node.id,
        image=check.text(obj, "image", where) or "",
        namespace=check.k8s(obj, "namespace", where, "yiyun-system"),
        service_account=check.k8s(obj, "serviceAccount", where, "yiyun-inventory"),
        schedule=schedule,
        database_secret=SecretRef(
            name=check.k8s(secret, "name", f"{where}.databaseSecret"),
            key=check.text(secret, "key", f"{where}.databaseSecret", "url") or "url",
        ),
        node_file_config_map=check.k8s(obj, "nodeFileConfigMap", where) if config_map else None,
        aws_credentials_secret=check.k8s(obj, "awsCredentialsSecret", where)
        if aws_secret
        else None,
        exporter=check.flag(obj, "exporter", where, True),
        exporter_port=port,
        service=_http_service(check, obj.get("service"), f"{where}.service"),
    )


# The least memory limit `yiyun serve` is sized for: its RSS target (300 MiB) plus headroom.
SERVE_MEMORY_FLOOR = "384Mi"
# What Kubernetes accepts as a key of a Secret's data.
_SECRET_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def _http_service(check: _Checker, raw: Any, where: str) -> HttpServiceArgs | None:
    # Opt-in, like the exporter on one node: the service serves the whole ledger.
    if raw is None or raw is False:
        return None
    obj = check.obj(
        raw,
        where,
        allowed=(
            "replicas",
            "oidcSecret",
            "portalSecret",
            "principalClaim",
            "grantsClaim",
            "cpuRequest",
            "memoryRequest",
            "cpuLimit",
            "memoryLimit",
        ),
        required=("oidcSecret",),
    )
    replicas = check.whole(obj, "replicas", where, 2)
    # whole() has already refused anything but a whole number ≥ 0.
    if type(obj.get("replicas")) is int and replicas == 0:
        check.add(f"{where}.replicas", "must be at least 1; leave agent.service out for none")
    at = f"{where}.oidcSecret"
    oidc: OidcSecretRef | None = None
    if obj.get("oidcSecret") is not None:
        secret = check.obj(
            obj["oidcSecret"], at, allowed=("name", "issuerKey", "audienceKey"), required=("name",)
        )
        keys: dict[str, str] = {}
        for key, default in (("issuerKey", "issuer"), ("audienceKey", "audience")):
            keys[key] = check.text(secret, key, at, default) or default
            if not _SECRET_DATA_KEY.match(keys[key]):
                check.add(
                    f"{at}.{key}",
                    f"{keys[key]!r} is not a Secret data key (letters, digits, '-', '_', '.')",
                )
        if keys["issuerKey"] == keys["audienceKey"]:
            check.add(
                at,
                f"issuerKey and audienceKey both name {keys['issuerKey']!r}; the issuer URL "
                "and the audience are two different values",
            )
        oidc = OidcSecretRef(
            name=check.k8s(secret, "name", at),
            issuer_key=keys["issuerKey"],
            audience_key=keys["audienceKey"],
        )
    portal: PortalSecretRef | None = None
    if obj.get("portalSecret") is not None:
        at = f"{where}.portalSecret"
        # The client secret's own data key is fixed (client-secret): a setting named for a
        # secret key would read, to the plain-text check, like a credential in Git.
        keyed = (("clientIdKey", "client-id"), ("urlKey", "url"))
        secret = check.obj(
            obj["portalSecret"], at, allowed=("name", *(k for k, _ in keyed)), required=("name",)
        )
        names: dict[str, str] = {}
        for key, default in keyed:
            names[key] = check.text(secret, key, at, default) or default
            if not _SECRET_DATA_KEY.match(names[key]):
                check.add(
                    f"{at}.{key}",
                    f"{names[key]!r} is not a Secret data key (letters, digits, '-', '_', '.')",
                )
        if len({*names.values(), PortalSecretRef.client_secret_key}) < len(names) + 1:
            check.add(at, "clientIdKey, urlKey and client-secret must be three different keys")
        portal = PortalSecretRef(
            name=check.k8s(secret, "name", at),
            client_id_key=names["clientIdKey"],
            url_key=names["urlKey"],
        )
    base = ServeResources()
    resources = ServeResources(
        cpu_request=check.quantity(obj, "cpuRequest", where, base.cpu_request),
        memory_request=check.quantity(obj, "memoryRequest", where, base.memory_request),
        cpu_limit=check.quantity(obj, "cpuLimit", where, base.cpu_limit),
        memory_limit=check.quantity(obj, "memoryLimit", where, base.memory_limit),
    )
    for request_key, request, limit_key, limit in (
        ("cpuRequest", resources.cpu_request, "cpuLimit", resources.cpu_limit),
        ("memoryRequest", resources.memory_request, "memoryLimit", resources.memory_limit),
    ):
        if parse_quantity(request) > parse_quantity(limit):
            check.add(where, f"{request_key} {request} is above {limit_key} {limit}")
    if parse_quantity(resources.memory_limit) < parse_quantity(SERVE_MEMORY_FLOOR):
        check.add(
            f"{where}.memoryLimit",
            f"{resources.memory_limit} is below {SERVE_MEMORY_FLOOR}, the least yiyun serve "
            "is sized for (its resident memory target is 300 MiB)",
        )
    if oidc is None:
        return None
    return HttpServiceArgs(
        oidc_secret=oidc,
        portal_secret=portal,
        replicas=replicas,
        principal_claim=check.text(obj, "principalClaim", where),
        grants_claim=check.text(obj, "grantsClaim", where),
        resources=resources,
    )


def landing_zone_namespace(department_code: str, system_code: str) -> str:
    """`<department>-<system>`, without repeating a department prefix the code already has."""
    department, system = slug(department_code), slug(system_code)
    if system.startswith(department + "-"):
        return k8s_name(system_code)
    return k8s_name(department_code, system_code)


def sized_quota(
    vcpu: float, memory_gib: float, storage_gib: float, *, headroom: float, floor: Quota
) -> Quota:
    """The measured use plus headroom, never below the floor a working namespace needs."""
    grow = 1.0 + headroom
    return Quota(
        cpu=max(vcpu * grow, floor.cpu),
        memory_gib=max(memory_gib * grow, floor.memory_gib),
        storage_gib=max(storage_gib * grow, floor.storage_gib),
        pods=floor.pods,
    )


DEFAULT_FLOOR = Quota(cpu=0.5, memory_gib=1.0, storage_gib=10.0, pods=20)


def _landing_zones(
    check: _Checker,
    raw: Any,
    node: NodeTarget,
    departments: dict[str, Department],
    rules: dict[str, NamespaceRules],
    base_dir: Path,
) -> list[WaveLandingZoneArgs]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.add("landingZones", f"must be a list of {{plan, wave}}, got {raw!r}")
        return []
    zones: list[WaveLandingZoneArgs] = []
    seen: dict[tuple[str, int], str] = {}
    for i, value in enumerate(raw):
        where = f"landingZones[{i}]"
        obj = check.obj(
            value, where, allowed=("plan", "wave", "headroom", "minimum"), required=("plan", "wave")
        )
        plan_file = check.text(obj, "plan", where)
        wave_number = check.whole(obj, "wave", where, 0) if "wave" in obj else 0
        headroom = check.number(obj, "headroom", where, 0.25)
        floor = _quota(check, obj.get("minimum", {}), f"{where}.minimum", defaults=DEFAULT_FLOOR)
        if not plan_file:
            continue
        path = Path(plan_file).expanduser()
        path = path if path.is_absolute() else base_dir / path
        try:
            plan = read_plan_export(path)
        except PlanExportError as error:
            for problem in error.problems:
                check.add(f"{where}.plan ({plan_file})", problem)
            continue
        if plan.target_node != node.id:
            check.add(
                f"{where}.plan",
                f"plan {plan.plan} moves systems to node {plan.target_node}, not to this "
                f"stack's node {node.id}",
            )
            continue
        try:
            wave = plan.wave(wave_number)
        except KeyError as error:
            check.add(f"{where}.wave", str(error.args[0]))
            continue
        if (plan.plan, wave.number) in seen:
            check.add(
                where,
                f"plan {plan.plan} wave {wave.number} repeats {seen[(plan.plan, wave.number)]}",
            )
            continue
        seen[(plan.plan, wave.number)] = where
        namespaces: list[LandingZoneNamespace] = []
        for system in wave.systems:
            at = f"{where} (plan {plan.plan} wave {wave.number}) system {system.code}"
            code = system.department_code
            if code not in departments:
                check.add(at, f"unknown department {code}{_did_you_mean(code, list(departments))}")
                continue
            if code not in rules:
                check.add(
                    at,
                    f"department {code} has no tenant on node {node.id}: add its tenant first, "
                    "so the landing zone inherits the department's rules",
                )
                continue
            labels = {
                LABEL_SYSTEM: system.code,
                LABEL_DEPARTMENT: code,
                LABEL_CITY: city_label(system.city),
                LABEL_NODE: node.id,
                LABEL_MANAGED_BY: MANAGED_BY,
                "yiyun.io/plan": slug(plan.plan) or "plan",
                "yiyun.io/wave": str(wave.number),
            }
            namespaces.append(
                LandingZoneNamespace(
                    system_code=system.code,
                    namespace=landing_zone_namespace(code, system.code),
                    quota=sized_quota(
                        system.sizing.vcpu,
                        system.sizing.memory_gib,
                        system.sizing.storage_gib,
                        headroom=headroom,
                        floor=floor,
                    ),
                    rules=rules[code],
                    labels=labels,
                )
            )
        zones.append(
            WaveLandingZoneArgs(
                node_id=node.id,
                plan=plan.plan,
                wave=wave.number,
                start=wave.start,
                end=wave.end,
                headroom=headroom,
                namespaces=tuple(namespaces),
            )
        )
    return zones


def parse_stack_config(raw: Mapping[str, Any], *, base_dir: Path) -> StackConfig:
    """Validate the `yiyun:` config of one stack (keys without the `yiyun:` prefix).

    `base_dir` is the Pulumi project directory; relative plan paths are resolved from it.
    """
    check = _Checker()
    for key in raw:
        if key not in CONFIG_KEYS:
            check.add(
                f"{PROJECT}:{key}", f"unknown setting{_did_you_mean(str(key), list(CONFIG_KEYS))}"
            )
    if raw.get("node") is None:
        check.add(f"{PROJECT}:node", "is required: the node this stack provisions")
    node = _node(check, raw.get("node") or {})
    departments = _departments(check, raw.get("departments"))
    tenants, rules = _tenants(check, raw.get("tenants", []), node, departments)
    agent = _agent(check, raw.get("agent"), node)
    zones = _landing_zones(check, raw.get("landingZones"), node, departments, rules, base_dir)

    # One namespace, one owner: a landing zone may not land on a tenant's or the agent's.
    owners: dict[str, str] = {}
    claims = [(t.namespace, f"tenant {t.rules.department.code}") for t in tenants]
    claims += [
        (n.namespace, f"landing zone for {n.system_code}") for z in zones for n in z.namespaces
    ]
    if agent is not None:
        claims.append((agent.namespace, "the inventory agent"))
    for namespace, owner in claims:
        if namespace in RESERVED_NAMESPACES | {
            node.kubernetes.ingress_namespace,
            node.kubernetes.dns_namespace,
        }:
            check.add(
                owner, f"namespace {namespace} belongs to the cluster's platform, pick another"
            )
        elif namespace in owners:
            check.add(owner, f"namespace {namespace} is already used by {owners[namespace]}")
        else:
            owners[namespace] = owner
    buckets: dict[str, str] = {}
    for tenant in tenants:
        if tenant.bucket and tenant.bucket in buckets:
            check.add(
                f"tenant {tenant.rules.department.code}",
                f"bucket {tenant.bucket} is already used by tenant {buckets[tenant.bucket]}",
            )
        elif tenant.bucket:
            buckets[tenant.bucket] = tenant.rules.department.code
    if check.problems:
        raise StackConfigError(check.problems)
    return StackConfig(
        node=node,
        departments=departments,
        tenants=tuple(tenants),
        agent=agent,
        landing_zones=tuple(zones),
    )


def read_stack_file(path: Path) -> StackConfig:
    """Validate a `Pulumi.<stack>.yaml` without Pulumi: its `yiyun:` keys, plans beside it."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise StackConfigError([f"{path}: cannot read it: {error.strerror or error}"]) from None
    except yaml.YAMLError as error:
        raise StackConfigError([f"{path}: not YAML: {error}"]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackConfigError([f"{path}: has no `config:` map"])
    raw: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == PROJECT:
            raw[name] = value
    return parse_stack_config(raw, base_dir=path.parent)
