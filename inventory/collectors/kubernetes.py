"""Kubernetes collector: nodes, namespaces, workloads, claims and exposed services of a cluster."""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any

from inventory.collectors.allowlist import allowed_raw
from inventory.collectors.base import (
    DENIED,
    ERROR,
    PARTIAL,
    RETRIED_SERVER_ERRORS,
    THROTTLED,
    ResourceRow,
    RetryPolicy,
    Scope,
    ScopeFailed,
    ScopeStats,
)
from inventory.secret_shape import redact_labels

DEFAULT_SYSTEM_TAG = "yiyun.io/system"
GIB = Decimal(2**30)
# The error code of a scope whose answer was not shaped like what was asked for: a Status
# document or an empty object under HTTP 200, a page without `items`, not JSON at all.
MALFORMED = "malformed_response"
# Server errors worth another try: the API server or a load balancer in front of it failing
# for the moment (etcd leader election, a restarting replica). Others are not retried.

Raw = dict[str, Any]


# --- listing policy ----------------------------------------------------------------------


@dataclass(frozen=True)
class ListPolicy(RetryPolicy):
    """RetryPolicy, and what the Kubernetes list API adds: continue tokens that expire."""

    connect_timeout: float = 5.0
    # A 410 on a continue token restarts the listing from the start, at most this often.
    max_restarts: int = 3


# --- quantities and pod requests (pure) --------------------------------------------------

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))(?P<exponent>[eE][+-]?\d+)?"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_SUFFIXES = {
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), None: Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"),
    "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip


def parse_quantity(quantity: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "1Gi", "2", "1e3", "128974848") as a number."""
    if isinstance(quantity, int | float):
        return Decimal(str(quantity))
    return _parse_quantity_text(quantity)


# An estate repeats a handful of request values ("500m", "1Gi") tens of thousands of times.
@lru_cache(maxsize=4096)
def _parse_quantity_text(quantity: str) -> Decimal:
    match = _QUANTITY.match(quantity.strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    try:
        number = Decimal(match["number"] + (match["exponent"] or ""))
    except InvalidOperation as error:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}") from error
    return number * _SUFFIXES[match["suffix"]]


def cpu_cores(quantity: str | int | float) -> float:
    return float(parse_quantity(quantity))


def gibibytes(quantity: str | int | float) -> float:
    return float(parse_quantity(quantity) / GIB)


def _requests(container: Raw) -> dict[str, Any]:
    return (container.get("resources") or {}).get("requests") or {}


def pod_requests(pod_spec: Raw) -> tuple[Decimal | None, Decimal | None]:
    """(vCPU, memory GiB) the scheduler reserves for one pod; None when nothing declares it.

    Exact decimals, so that 3 × 100m is 0.3 and not 0.30000000000000004 (a row's content hash
    must not depend on float noise).

    As the scheduler counts: app containers and sidecars (init containers that keep running)
    add up, while an ordinary init container runs alone first, so only the largest one
    matters, and only if it needs more than the rest.
    """
    result: list[Decimal | None] = []
    for resource, unit in (("cpu", Decimal(1)), ("memory", GIB)):
        declared = False
        running = Decimal(0)
        init_peak = Decimal(0)
        for container in pod_spec.get("initContainers") or []:
            value = _requests(container).get(resource)
            if value is None:
                continue
            declared = True
            amount = parse_quantity(value) / unit
            if container.get("restartPolicy") == "Always":
                running += amount
            else:
                init_peak = max(init_peak, running + amount)
        for container in pod_spec.get("containers") or []:
            value = _requests(container).get(resource)
            if value is not None:
                declared = True
                running += parse_quantity(value) / unit
        result.append(max(running, init_peak) if declared else None)
    return result[0], result[1]


def _times(value: Decimal | None, count: int | None) -> float | None:
    """Per-pod amount × pods, as the row's float; the per-pod amount when the count is unknown."""
    if value is None:
        return None
    return float(value if count is None else value * count)


def parse_timestamp(text: str | None) -> datetime | None:
    """creationTimestamp ("2024-03-01T08:00:00Z") as an aware UTC datetime."""
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


# --- attribution and normalize (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """Which label names the system, and the systems of namespaces for workloads without one."""

    system_tag: str = DEFAULT_SYSTEM_TAG
    namespace_systems: Mapping[str, str] = field(default_factory=dict)

    def system_of(self, labels: Mapping[str, str], namespace: str | None) -> str | None:
        # DESIGN.md: a workload inherits its namespace's system when it has none itself.
        own = (labels.get(self.system_tag) or "").strip()
        if own:
            return own
        return self.namespace_systems.get(namespace) if namespace else None


def namespace_system(raw: Raw, system_tag: str) -> str | None:
    labels = raw["metadata"].get("labels") or {}
    return (labels.get(system_tag) or "").strip() or None


def _row(
    kind: str, raw: Raw, *, scope: str, attribution: Attribution, **fields: Any
) -> ResourceRow:
    metadata = raw["metadata"]
    labels = dict(metadata.get("labels") or {})
    namespace = metadata.get("namespace")
    if metadata.get("deletionTimestamp") and "state" in fields:
        fields["state"] = "terminating"
    system_tag = attribution.system_tag
    return ResourceRow(
        kind=kind,
        native_id=metadata["uid"],
        scope=scope,
        name=metadata["name"],
        namespace=namespace,
        # Secret-shaped label values are redacted here and in `raw` (DESIGN: no secret is
        # stored); the system tag never is, so attribution reads what the cluster says.
        tags=redact_labels(labels, keep=system_tag),
        raw=allowed_raw(kind, raw, system_tag=system_tag),
        system_code=attribution.system_of(labels, namespace),
        created_at_source=parse_timestamp(metadata.get("creationTimestamp")),
        **fields,
    )


def normalize_node(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    status = raw.get("status") or {}
    capacity = status.get("capacity") or {}
    ready = next(
        (c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    if (raw.get("spec") or {}).get("unschedulable"):
        state = "cordoned"
    else:
        state = {"True": "ready", "False": "not_ready"}.get(ready or "", "unknown")
    return _row(
        "k8s_node", raw, scope=scope, attribution=attribution, state=state,
        vcpu=cpu_cores(capacity["cpu"]) if "cpu" in capacity else None,
        memory_gib=gibibytes(capacity["memory"]) if "memory" in capacity else None,
    )  # fmt: skip


def normalize_namespace(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    phase = (raw.get("status") or {}).get("phase") or "Active"
    return _row("namespace", raw, scope=scope, attribution=attribution, state=phase.lower())


def _replicated(kind: str, raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    spec = raw["spec"]
    # The API defaults an unset replica count to 1.
    replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
    cpu, memory = pod_requests(spec["template"].get("spec") or {})
    storage: Decimal | None = None
    for claim in spec.get("volumeClaimTemplates") or []:
        size = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        if size is not None:
            storage = (storage or Decimal(0)) + parse_quantity(size) / GIB
    return _row(
        kind, raw, scope=scope, attribution=attribution,
        state="active" if replicas > 0 else "scaled_to_zero", replicas=replicas,
        vcpu=_times(cpu, replicas), memory_gib=_times(memory, replicas),
        storage_gib=_times(storage, replicas),
    )  # fmt: skip


def normalize_deployment(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    return _replicated("deployment", raw, scope=scope, attribution=attribution)


def normalize_statefulset(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    return _replicated("statefulset", raw, scope=scope, attribution=attribution)


def normalize_daemonset(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    # One pod per eligible node: the controller's own count says how many that is.
    pods = (raw.get("status") or {}).get("desiredNumberScheduled")
    cpu, memory = pod_requests(raw["spec"]["template"].get("spec") or {})
    return _row(
        "daemonset", raw, scope=scope, attribution=attribution, state="active",
        replicas=pods, vcpu=_times(cpu, pods), memory_gib=_times(memory, pods),
    )  # fmt: skip


def normalize_cronjob(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    spec = raw["spec"]
    job = spec["jobTemplate"].get("spec") or {}
    cpu, memory = pod_requests((job.get("template") or {}).get("spec") or {})
    parallelism = job.get("parallelism")
    return _row(
        "cronjob", raw, scope=scope, attribution=attribution,
        state="suspended" if spec.get("suspend") else "active",
        vcpu=_times(cpu, parallelism), memory_gib=_times(memory, parallelism),
    )  # fmt: skip


def normalize_pvc(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    requested = ((raw["spec"].get("resources") or {}).get("requests") or {}).get("storage")
    phase = (raw.get("status") or {}).get("phase") or "Pending"
    return _row(
        "pvc", raw, scope=scope, attribution=attribution, state=phase.lower(),
        storage_gib=gibibytes(requested) if requested is not None else None,
    )  # fmt: skip


def exposes_service(raw: Raw) -> bool:
    """Only services reachable from outside the cluster are worth a ledger row."""
    return raw["spec"].get("type") in ("LoadBalancer", "NodePort")


def normalize_service(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    state = str(raw["spec"].get("type", "ClusterIP")).lower()
    return _row("service", raw, scope=scope, attribution=attribution, state=state)


def normalize_resource_quota(raw: Raw, *, scope: str, attribution: Attribution) -> ResourceRow:
    hard = (raw.get("spec") or {}).get("hard") or {}
    cpu = hard.get("requests.cpu", hard.get("cpu"))
    memory = hard.get("requests.memory", hard.get("memory"))
    storage = hard.get("requests.storage")
    return _row(
        "resource_quota", raw, scope=scope, attribution=attribution, state="active",
        vcpu=cpu_cores(cpu) if cpu is not None else None,
        memory_gib=gibibytes(memory) if memory is not None else None,
        storage_gib=gibibytes(storage) if storage is not None else None,
    )  # fmt: skip


def normalize_cluster(
    kube_system: Raw, version: Raw, *, name: str, system_tag: str = DEFAULT_SYSTEM_TAG
) -> ResourceRow:
    """The cluster itself: kube-system's UID is the one identity a cluster cannot change."""
    metadata = kube_system["metadata"]
    raw = {"kubeSystem": kube_system, "version": version}
    return ResourceRow(
        kind="cluster",
        native_id=metadata["uid"],
        scope="*",
        name=name,
        state="active",
        raw=allowed_raw("cluster", raw, system_tag=system_tag),
        created_at_source=parse_timestamp(metadata.get("creationTimestamp")),
    )


# --- kinds: one declaration each over one paginate helper --------------------------------

Normalize = Callable[..., ResourceRow]


@dataclass(frozen=True)
class KindSpec:
    """Which client call lists a kind, and how its items become rows."""

    kind: str
    list_kind: str  # the `kind` a page of its listing carries (DeploymentList)
    api: str  # class in kubernetes.client
    list_all: str  # cluster-wide (or cluster-scoped) list method
    list_namespaced: str | None  # None for cluster-scoped kinds
    normalize: Normalize
    keep: Callable[[Raw], bool] | None = None


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("k8s_node", "NodeList", "CoreV1Api", "list_node", None, normalize_node),
        KindSpec("namespace", "NamespaceList", "CoreV1Api", "list_namespace", None,
                 normalize_namespace),
        KindSpec("deployment", "DeploymentList", "AppsV1Api",
                 "list_deployment_for_all_namespaces", "list_namespaced_deployment",
                 normalize_deployment),
        KindSpec("statefulset", "StatefulSetList", "AppsV1Api",
                 "list_stateful_set_for_all_namespaces", "list_namespaced_stateful_set",
                 normalize_statefulset),
        KindSpec("daemonset", "DaemonSetList", "AppsV1Api",
                 "list_daemon_set_for_all_namespaces", "list_namespaced_daemon_set",
                 normalize_daemonset),
        KindSpec("cronjob", "CronJobList", "BatchV1Api", "list_cron_job_for_all_namespaces",
                 "list_namespaced_cron_job", normalize_cronjob),
        KindSpec("pvc", "PersistentVolumeClaimList", "CoreV1Api",
                 "list_persistent_volume_claim_for_all_namespaces",
                 "list_namespaced_persistent_volume_claim", normalize_pvc),
        KindSpec("service", "ServiceList", "CoreV1Api", "list_service_for_all_namespaces",
                 "list_namespaced_service", normalize_service, keep=exposes_service),
        KindSpec("resource_quota", "ResourceQuotaList", "CoreV1Api",
                 "list_resource_quota_for_all_namespaces", "list_namespaced_resource_quota",
                 normalize_resource_quota),
    )
}  # fmt: skip


# --- I/O: one request, one listing -------------------------------------------------------


def _http_failure(error: Any, *, yielded: bool) -> ScopeFailed:
    """ApiException → ScopeFailed with the server's own reason and message (never headers)."""
    status = int(error.status or 0)
    reason, message = str(error.reason or ""), ""
    try:
        body = json.loads(error.body or "")
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
    except ValueError:
        message = (error.body or "")[:300]
    text = f"{reason}: {message}" if message else reason
    if status == 0:
        return ScopeFailed(PARTIAL if yielded else ERROR, "TLSError", text[:500])
    if status in (401, 403):
        return ScopeFailed(DENIED, f"HTTP{status}", text[:500])
    if status == 429:
        return ScopeFailed(THROTTLED, "HTTP429", text[:500])
    return ScopeFailed(PARTIAL if yielded else ERROR, f"HTTP{status}", text[:500])


def _connection_failure(error: Exception, *, yielded: bool) -> ScopeFailed:
    import urllib3.exceptions as u3

    cause: BaseException = error
    if isinstance(error, u3.MaxRetryError) and error.reason is not None:
        cause = error.reason
    if isinstance(cause, u3.NewConnectionError):
        code = "ConnectionError"
    elif isinstance(cause, u3.TimeoutError | TimeoutError):
        code = "Timeout"
    else:
        code = "ConnectionError"
    return ScopeFailed(
        PARTIAL if yielded else ERROR, code, f"{type(cause).__name__}: {cause}"[:500]
    )


def _retry_after(error: Any) -> float | None:
    value = (error.headers or {}).get("Retry-After") if error.headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def request_json(
    call: Callable[..., Any],
    *,
    stats: ScopeStats,
    policy: ListPolicy,
    yielded: bool = False,
    **params: Any,
) -> Raw:
    """One API call, raw JSON back; 429s, dropped connections and 5xx retried within bounds."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    throttled = dropped = failed = 0
    while True:
        stats.api_calls += 1
        try:
            response = call(
                **params,
                _preload_content=False,
                _request_timeout=(policy.connect_timeout, policy.read_timeout),
            )
            try:
                payload = response.data
            finally:
                response.release_conn()
        except ApiException as error:
            wait = _retry_after(error) if error.status == 429 else None
            # A server asking for more patience than our cap is answered with `throttled`
            # now rather than a scan that stalls; retrying sooner would only be refused.
            if (
                error.status == 429
                and throttled < policy.max_throttle_retries
                and (wait is None or wait <= policy.backoff_cap)
            ):
                # Honour the server's wait; jitter keeps parallel scopes from retrying in step.
                policy.sleep(
                    policy.backoff(throttled)
                    if wait is None
                    else wait + random.uniform(0, policy.backoff_base)
                )
                throttled += 1
                stats.retries += 1
                continue
            if error.status in RETRIED_SERVER_ERRORS and failed < policy.max_server_error_retries:
                policy.sleep(policy.backoff(failed))
                failed += 1
                stats.retries += 1
                continue
            raise
        except (HTTPError, OSError) as error:
            if dropped < policy.max_connection_retries:
                policy.sleep(policy.backoff(dropped))
                dropped += 1
                stats.retries += 1
                continue
            raise _connection_failure(error, yielded=yielded) from error
        try:
            body = json.loads(payload)
        except ValueError as error:
            raise ScopeFailed(
                PARTIAL if yielded else ERROR, MALFORMED, f"the answer is not JSON: {error}"
            ) from error
        if not isinstance(body, dict):
            raise ScopeFailed(
                PARTIAL if yielded else ERROR, MALFORMED, "the answer is not a JSON object"
            )
        if b"\\u0000" in payload:
            # An annotation may hold a NUL, which PostgreSQL cannot store: one such object
            # would fail the write of its whole batch, scan after scan.
            body = _without_nul(body)
        return body


def _without_nul(value: Any) -> Any:
    """The JSON value with every NUL character replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _status_text(body: Raw) -> str:
    """What a Status document says it is: code, reason and message."""
    parts = [str(body.get(key)) for key in ("code", "reason", "message") if body.get(key)]
    return " ".join(parts)[:400] or "no reason given"


def listing_problem(body: Raw, list_kind: str | None) -> str | None:
    """Why an answer is not a page of the listing asked for; None when it is one.

    A page is trusted only with the List kind the API server sets (`DeploymentList`; any
    `…List` when `list_kind` is None) and an `items` key. An empty list is `"items": []`;
    API servers 1.5.0–1.5.2, and 1.18–1.19 with the RemoveSelfLink gate, wrote `null` for it
    (kubernetes#39822, #98022), so null is taken as empty under the right kind. A Status
    document, an empty object or a page without `items` is not a listing: trusted as an
    empty page, it would tombstone the whole scope.
    """
    kind = body.get("kind")
    wanted = list_kind or "…List"
    if kind == "Status":
        return f"HTTP 200 with a Status document instead of a {wanted}: {_status_text(body)}"
    if list_kind is not None:
        shaped = kind == list_kind
    else:
        shaped = isinstance(kind, str) and kind.endswith("List")
    if not shaped:
        return f"expected a {wanted}, got kind {kind!r} (keys: {', '.join(sorted(body))[:200]})"
    if "items" not in body:
        return f"a {kind} page without items"
    if body["items"] is not None and not isinstance(body["items"], list):
        return f"a {kind} page whose items are a {type(body['items']).__name__}, not a list"
    return None


def object_problem(body: Raw, kind: str | None) -> str | None:
    """Why an answer is not the object read; None when it is. `kind` None: an unversioned
    document such as /version, which carries no kind (only a Status is refused)."""
    found = body.get("kind")
    wanted = kind or "the document"
    if found == "Status":
        return f"HTTP 200 with a Status document instead of {wanted}: {_status_text(body)}"
    if kind is not None and found != kind:
        return f"expected a {kind}, got kind {found!r} (keys: {', '.join(sorted(body))[:200]})"
    return None


def list_objects(
    call: Callable[..., Any],
    *,
    stats: ScopeStats,
    policy: ListPolicy,
    list_kind: str | None = None,
    **params: Any,
) -> Iterator[list[Raw]]:
    """Yield the raw items of a listing page by page (`limit` + `continue`).

    An expired continue token (410) restarts the listing from the start; items already
    yielded before the restart are not yielded again, so every object comes out once.
    Every page must be a `list_kind` with `items` (see `listing_problem`). Failures leave
    as ScopeFailed: `partial` when pages were already yielded, except denied and
    throttled, which say why whatever the progress.
    """
    from kubernetes.client.exceptions import ApiException

    token: str | None = None
    restarts = 0
    yielded = False
    seen: set[str] = set()  # uids already yielded, to skip them after a restart
    while True:
        try:
            page_params = dict(params, limit=policy.page_size)
            if token:
                page_params["_continue"] = token
            body = request_json(call, stats=stats, policy=policy, yielded=yielded, **page_params)
        except ApiException as error:
            if error.status == 410 and token is not None and restarts < policy.max_restarts:
                restarts += 1
                stats.retries += 1
                token = None
                continue
            raise _http_failure(error, yielded=yielded) from error
        problem = listing_problem(body, list_kind)
        if problem is not None:
            after = f" after {stats.pages} complete page(s)" if yielded else ""
            raise ScopeFailed(PARTIAL if yielded else ERROR, MALFORMED, problem + after)
        stats.pages += 1
        items: list[Raw] = body["items"] or []
        if restarts:
            items = [item for item in items if item["metadata"]["uid"] not in seen]
        seen.update(item["metadata"]["uid"] for item in items)
        yield items
        yielded = True
        token = (body.get("metadata") or {}).get("continue") or None
        if token is None:
            return


def get_object(
    call: Callable[..., Any],
    *,
    stats: ScopeStats,
    policy: ListPolicy,
    kind: str | None,
    **params: Any,
) -> Raw | None:
    """Read one object of `kind` as raw JSON; None when it does not exist (404)."""
    from kubernetes.client.exceptions import ApiException

    try:
        body = request_json(call, stats=stats, policy=policy, **params)
    except ApiException as error:
        if error.status == 404:
            return None
        raise _http_failure(error, yielded=False) from error
    problem = object_problem(body, kind)
    if problem is not None:
        raise ScopeFailed(ERROR, MALFORMED, problem)
    return body


# --- one source: a lazily built client and what every scope of it shares ------------------


def _load_api_client(source: Mapping[str, Any]) -> Any:
    """A client for the source's kubeconfig and context (in-cluster config when none exists)."""
    import yaml
    from kubernetes import client, config
    from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION

    configuration = client.Configuration()
    path = source.get("kubeconfig")
    context = source.get("context")
    try:
        in_cluster = (
            path is None
            and not os.environ.get("KUBECONFIG")
            and not os.path.exists(os.path.expanduser(KUBE_CONFIG_DEFAULT_LOCATION))
            and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        )
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=os.path.expanduser(path) if path else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as error:
        where = f"kubeconfig {path or 'default'!r}, context {context or 'current'!r}"
        raise ScopeFailed(
            ERROR, "KubeconfigError", f"cannot load {where}: {error}"[:500]
        ) from error
    # Retries are ours: bounded, counted in the scope's stats, and visible in ScopeResult.
    configuration.retries = False
    return client.ApiClient(configuration)


class _Source:
    """What all scopes of one source share: its API client and the namespace systems.

    Built lazily so that planning does no I/O, and guarded by a lock because the
    orchestrator may run the scopes of a source in parallel threads.
    """

    def __init__(self, source: Mapping[str, Any], system_tag: str, policy: ListPolicy) -> None:
        self.source = source
        self.system_tag = system_tag
        self.policy = policy
        self._lock = threading.Lock()
        self._client: Any = None
        self._apis: dict[str, Any] = {}
        self._all_namespace_systems: dict[str, str] | None = None
        self._namespace_system: dict[str, str | None] = {}

    def api(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _load_api_client(self.source)
            if name not in self._apis:
                from kubernetes import client

                self._apis[name] = getattr(client, name)(self._client)
            return self._apis[name]

    def attribution(self, stats: ScopeStats, namespace: str | None) -> Attribution:
        """Namespace systems for inheritance: all of them for a cluster-wide scope, else one.

        A scope that cannot learn them fails rather than write workloads without their
        inherited system, which would silently move them out of the KPI.
        """
        core = self.api("CoreV1Api")
        with self._lock:
            if namespace is None:
                if self._all_namespace_systems is None:
                    self._all_namespace_systems = self._list_namespace_systems(core, stats)
                return Attribution(self.system_tag, self._all_namespace_systems)
            if namespace not in self._namespace_system:
                self._namespace_system[namespace] = self._read_namespace_system(
                    core, stats, namespace
                )
            system = self._namespace_system[namespace]
            return Attribution(self.system_tag, {namespace: system} if system else {})

    def _list_namespace_systems(self, core: Any, stats: ScopeStats) -> dict[str, str]:
        listing = ScopeStats()  # its pages are not this scope's pages; its calls are
        systems: dict[str, str] = {}
        try:
            for items in list_objects(
                core.list_namespace, stats=listing, policy=self.policy, list_kind="NamespaceList"
            ):
                for raw in items:
                    system = namespace_system(raw, self.system_tag)
                    if system:
                        systems[raw["metadata"]["name"]] = system
        except ScopeFailed as failure:
            status = ERROR if failure.status == PARTIAL else failure.status
            raise ScopeFailed(
                status, failure.code, f"listing namespaces for attribution: {failure.message}"
            ) from failure
        finally:
            stats.api_calls += listing.api_calls
            stats.retries += listing.retries
        return systems

    def _read_namespace_system(self, core: Any, stats: ScopeStats, namespace: str) -> str | None:
        try:
            raw = get_object(
                core.read_namespace, stats=stats, policy=self.policy, kind="Namespace",
                name=namespace,
            )  # fmt: skip
        except ScopeFailed as failure:
            raise ScopeFailed(
                failure.status, failure.code,
                f"reading namespace {namespace!r} for attribution: {failure.message}",
            ) from failure  # fmt: skip
        return namespace_system(raw, self.system_tag) if raw else None


# --- scopes ------------------------------------------------------------------------------


def _kind_pages(
    shared: _Source, spec: KindSpec, namespace: str | None, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    api = shared.api(spec.api)
    attribution = (
        shared.attribution(stats, namespace)
        if spec.list_namespaced is not None
        else Attribution(shared.system_tag)
    )
    if namespace is None:
        call, params = getattr(api, spec.list_all), {}
    else:
        assert spec.list_namespaced is not None
        call, params = getattr(api, spec.list_namespaced), {"namespace": namespace}
    scope = namespace or "*"
    listing = list_objects(
        call, stats=stats, policy=shared.policy, list_kind=spec.list_kind, **params
    )
    for items in listing:
        yield [
            spec.normalize(raw, scope=scope, attribution=attribution)
            for raw in items
            if spec.keep is None or spec.keep(raw)
        ]


def _one_namespace_pages(
    shared: _Source, namespace: str, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    """A namespace-restricted source reads its namespace rather than listing them all."""
    core = shared.api("CoreV1Api")
    raw = get_object(
        core.read_namespace, stats=stats, policy=shared.policy, kind="Namespace", name=namespace
    )
    stats.pages += 1
    attribution = Attribution(shared.system_tag)
    yield (
        [] if raw is None else [normalize_namespace(raw, scope=namespace, attribution=attribution)]
    )


def _cluster_pages(shared: _Source, name: str, stats: ScopeStats) -> Iterator[list[ResourceRow]]:
    core = shared.api("CoreV1Api")
    kube_system = get_object(
        core.read_namespace, stats=stats, policy=shared.policy, kind="Namespace",
        name="kube-system",
    )  # fmt: skip
    if kube_system is None:
        raise ScopeFailed(ERROR, "HTTP404", "namespace kube-system not found: not a cluster?")
    version = get_object(
        shared.api("VersionApi").get_code, stats=stats, policy=shared.policy, kind=None
    )
    stats.pages += 1
    yield [normalize_cluster(kube_system, version or {}, name=name, system_tag=shared.system_tag)]


def source_name(source: Mapping[str, Any]) -> str:
    """The source's name in the ledger's natural key (the orchestrator's fallback is the kind)."""
    return str(source.get("name") or "kubernetes")


def plan_scopes(
    *,
    node_id: str,
    source: Mapping[str, Any],
    system_tag: str = DEFAULT_SYSTEM_TAG,
    policy: ListPolicy | None = None,
) -> list[Scope]:
    """One scope per kind ("*": cluster-wide), or per (kind, namespace) for a restricted source.

    Planning does no I/O; the client is built by the first scope that runs. A source
    restricted to namespaces lists no cluster-scoped kinds (nodes, the cluster identity):
    such credentials cannot read them, and a scope that fails every scan helps no one.
    """
    if source.get("kind", "kubernetes") != "kubernetes":
        raise ValueError(f"not a kubernetes source: kind {source.get('kind')!r}")
    namespaces = source.get("namespaces")
    if namespaces is not None and (
        not isinstance(namespaces, list) or not namespaces or not all(namespaces)
    ):
        raise ValueError("`namespaces` must be a non-empty list of namespace names when given")
    name = source_name(source)
    shared = _Source(source, system_tag, policy or ListPolicy.from_source(source))
    scopes: list[Scope] = []

    def add(
        kind: str, scope: str, pages: Callable[[ScopeStats], Iterator[list[ResourceRow]]]
    ) -> None:
        scopes.append(Scope(node_id=node_id, source=name, kind=kind, scope=scope, pages=pages))

    if namespaces is None:
        add("cluster", "*", partial(_cluster_pages, shared, name))
        for spec in KINDS.values():
            add(spec.kind, "*", partial(_kind_pages, shared, spec, None))
        return scopes
    for namespace in namespaces:
        add("namespace", namespace, partial(_one_namespace_pages, shared, namespace))
        for spec in KINDS.values():
            if spec.list_namespaced is not None:
                add(spec.kind, namespace, partial(_kind_pages, shared, spec, namespace))
    return scopes
