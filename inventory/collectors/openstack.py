"""OpenStack collector: Nova servers, Cinder volumes, Swift containers, Trove and hypervisors."""

# The node file's `kind: openstack` (inventory/nodes.py OpenstackSource) gives `cloud`,
# `clouds_yaml`, `regions`, `projects`, `services` and `hypervisors`; tests also pass
# `page_size`, `request_timeout`, `verify_tls` and `ca_bundle` (TLS settings otherwise come
# from the clouds.yaml entry, as openstacksdk reads them).
#
# openstacksdk reads clouds.yaml, authenticates (keystoneauth), finds each service in the
# catalog and negotiates microversions; the listing itself is ours: raw GETs with
# limit/marker over one paginate-and-retry helper, so that every request is counted, every
# retry is bounded and visible, and every page is checked to be the list asked for.
# keystoneauth's own retries are turned off per request (connect_retries, status_code_retries,
# allow_reauth) for that reason.
#
# Attribution: Nova refuses "/" in server tags and metadata keys, so the system tag is also
# read in Nova's spelling, "/" as ":" (a server tag "yiyun.io:system=JS-EDU-0001"); see
# Attribution. Swift and Trove list no metadata: containers and databases are unattributed.

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property, partial
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
from inventory.secret_shape import REDACTED, names_a_secret, redacted, secret_shaped

DEFAULT_SYSTEM_TAG = "yiyun.io/system"
MIB_PER_GIB = 1024
BYTES_PER_GIB = 2**30
# The source's `services` and the default: everything a department cloud may run on.
SERVICES = ("compute", "volume", "object_store", "database")
# The error code of a scope whose answer was not the list asked for: an error document under
# HTTP 200, a page without its `servers` key, not JSON at all.
MALFORMED = "malformed_response"
# Nova's over-limit answer was 413 with Retry-After before it became 429; a 413 without
# Retry-After is a real "request too large" and is not retried.
THROTTLE_STATUSES = frozenset({413, 429})
# Nova: 2.47 embeds the flavor (vcpus, ram, disk) in the server; 2.26 added tags.
NOVA_MICROVERSION = "2.47"
# os-hypervisors: UUID ids (= the Placement provider) from 2.53; the capacity fields are
# gone from 2.88, so we never ask for more than 2.53.
HYPERVISOR_MICROVERSION = "2.53"
# Placement 1.14 shows root_provider_uuid: nested providers (a NIC's bandwidth, a GPU) are
# not hypervisors.
PLACEMENT_MICROVERSION = "1.14"
# States the source reports for what is gone or going; anything else (ERROR, SHUTOFF,
# SHELVED_OFFLOADED, a volume in `error`) still exists and is live.
SERVER_TERMINAL_STATES = frozenset({"DELETED", "SOFT_DELETED"})
VOLUME_TERMINAL_STATES = frozenset({"deleting", "deleted"})
DATABASE_TERMINAL_STATES = frozenset({"DELETED"})

Raw = dict[str, Any]


# --- listing policy ----------------------------------------------------------------------


@dataclass(frozen=True)
class ListPolicy(RetryPolicy):
    """RetryPolicy, and what Keystone adds: a token that expires mid-listing is replaced
    this often. A dropped connection is retried once here, not twice."""

    max_connection_retries: int = 1
    max_reauth: int = 1


# --- the source --------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenStackSourceConfig:
    """One `kind: openstack` source. Credentials stay in clouds.yaml (or OS_* variables, as
    openstacksdk reads them); this file names the cloud, never a password."""

    name: str
    cloud: str
    regions: tuple[str, ...]
    projects: tuple[str, ...] | None = None
    services: tuple[str, ...] = SERVICES
    clouds_yaml: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    hypervisors: bool = True


def _names(source: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"`{key}` must be a non-empty list of names when given")
    return tuple(value)


def parse_source(source: Mapping[str, Any]) -> OpenStackSourceConfig:
    if source.get("kind", "openstack") != "openstack":
        raise ValueError(f"not an openstack source: kind {source.get('kind')!r}")
    if any(names_a_secret(key) for key in source):
        raise ValueError("an openstack source names its cloud in clouds.yaml, never a secret")
    cloud = source.get("cloud")
    if not isinstance(cloud, str) or not cloud:
        raise ValueError("`cloud` must name an entry in clouds.yaml")
    regions = _names(source, "regions")
    if regions is None:
        raise ValueError("`regions` must be a non-empty list of region names")
    services = _names(source, "services") or SERVICES
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown services {unknown}; known: {', '.join(SERVICES)}")
    return OpenStackSourceConfig(
        name=source_name(source),
        cloud=cloud,
        regions=regions,
        projects=_names(source, "projects"),
        services=services,
        clouds_yaml=source.get("clouds_yaml"),
        verify_tls=bool(source.get("verify_tls", True)),
        ca_bundle=source.get("ca_bundle"),
        hypervisors=bool(source.get("hypervisors", True)),
    )


def source_name(source: Mapping[str, Any]) -> str:
    """The source's name in the ledger's natural key."""
    return str(source.get("name") or "openstack")


# --- attribution and normalize (pure) ----------------------------------------------------


def parse_tags(tags: Any) -> dict[str, str]:
    """Nova tags are plain strings: "key=value" becomes {key: value}, a bare tag {tag: ""}."""
    parsed: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, str):
            key, _, value = tag.partition("=")
            parsed[key] = value
    return parsed


def _stored_tags(tags: Any, safe: Mapping[str, str], parsed: Mapping[str, str]) -> list[str]:
    """The tag strings as they may be stored: "key=<redacted>" where the value is a secret.
    `safe` holds each parsed pair's verdict already (a key given twice is checked again)."""
    if not isinstance(tags, list):
        return []
    if (
        len(parsed) == len(tags)
        and safe == parsed
        and all(isinstance(tag, str) and "=" in tag for tag in tags)
    ):
        # Nothing redacted, no key given twice, no bare tag to look at (the usual server):
        # stored as listed.
        return list(tags)
    kept = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        key, equals, value = tag.partition("=")
        if equals:
            verdict = safe[key] if parsed.get(key) == value else redacted(key, value)
            kept.append(f"{key}={verdict}")
        else:
            kept.append(REDACTED if redacted("tag", key) == REDACTED else tag)
    return kept


def _metadata(raw: Raw) -> dict[str, str]:
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, str)}


@dataclass(frozen=True)
class Attribution:
    """Which key names the system: a server tag "<key>=<code>", else a metadata key.

    Nova refuses "/" in tags and in metadata keys, so "yiyun.io/system" can be neither
    there: Nova's spelling of the key has ":" for "/" ("yiyun.io:system=JS-EDU-0001", as
    OpenStack namespaces its own keys: "hw:cpu_policy"). Either spelling is read, everywhere.
    """

    system_tag: str = DEFAULT_SYSTEM_TAG

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """The system tag as written, then its Nova spelling."""
        nova = self.system_tag.replace("/", ":")
        return (self.system_tag, nova) if nova != self.system_tag else (nova,)

    def safe(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels as they may be stored, each pair checked once: secret-shaped values
        redacted, the system key (either spelling) never, so attribution reads the cloud."""
        keys = self.keys
        return {
            key: value if key in keys or not secret_shaped(key, value) else REDACTED
            for key, value in labels.items()
        }

    def system_of(self, tags: Mapping[str, str], metadata: Mapping[str, str]) -> str | None:
        for labels in (tags, metadata):
            for key in self.keys:
                code = (labels.get(key) or "").strip()
                if code:
                    return code
        return None


def parse_time(text: Any) -> datetime | None:
    """An OpenStack timestamp as aware UTC. Cinder and Trove write naive UTC
    ("2024-03-01T08:00:00.000000"), Nova a trailing Z."""
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _row(
    kind: str, raw_key: str, raw: Raw, *, scope: str, region: str, attribution: Attribution,
    tags: dict[str, str] | None = None, labels: Mapping[str, Any] | None = None,
    system_code: str | None = None, **fields: Any,
) -> ResourceRow:  # fmt: skip
    """The row, its `tags` already safe (Attribution.safe). `labels` are raw fields whose
    safe form the caller worked out with those tags (metadata, the tag list): stored as
    given, so no pair is checked twice; the allowlist picks every other field."""
    stored = allowed_raw(raw_key, raw, system_tag=attribution.system_tag, settled=labels)
    return ResourceRow(
        kind=kind,
        scope=scope,
        region=region,
        tags=tags or {},
        raw=stored,
        system_code=system_code,
        **fields,
    )


def _labelled(raw: Raw, attribution: Attribution) -> tuple[dict[str, str], dict[str, Any]]:
    """(row tags, stored label fields) of an object whose only labels are its metadata."""
    metadata = _metadata(raw)
    safe = attribution.safe(metadata)
    return safe, ({"metadata": safe} if isinstance(raw.get("metadata"), dict) else {})


def flavor_size(flavor: Any, flavors: Mapping[str, Raw] | None) -> Raw:
    """(vcpus, ram, disk…) of a flavor: embedded (Nova ≥ 2.47), else looked up by id."""
    if not isinstance(flavor, dict):
        return {}
    if "vcpus" in flavor or "ram" in flavor:
        return flavor
    return dict((flavors or {}).get(str(flavor.get("id")), {}))


def normalize_server(
    raw: Raw, *, scope: str, region: str, attribution: Attribution,
    flavors: Mapping[str, Raw] | None = None,
) -> ResourceRow:  # fmt: skip
    """A Nova server as a `vm` row: size from its flavor, system from its tag or metadata."""
    status = str(raw.get("status") or "UNKNOWN")
    flavor = flavor_size(raw.get("flavor"), flavors)
    ram, disk = _number(flavor.get("ram")), _number(flavor.get("disk"))
    # Ephemeral disks are local storage the server holds as much as its root disk.
    storage = None if disk is None else disk + (_number(flavor.get("ephemeral")) or 0)
    tags, metadata = parse_tags(raw.get("tags")), _metadata(raw)
    safe_tags, safe_metadata = attribution.safe(tags), attribution.safe(metadata)
    labels: dict[str, Any] = {"tags": _stored_tags(raw.get("tags"), safe_tags, tags)}
    if isinstance(raw.get("metadata"), dict):
        labels["metadata"] = safe_metadata
    return _row(
        "vm", "openstack_server", raw, scope=scope, region=region, attribution=attribution,
        native_id=raw["id"], name=raw.get("name"), namespace=raw.get("tenant_id"),
        state=status.lower(), vcpu=_number(flavor.get("vcpus")),
        memory_gib=None if ram is None else ram / MIB_PER_GIB, storage_gib=storage,
        tags={**safe_metadata, **safe_tags}, labels=labels,
        system_code=attribution.system_of(tags, metadata),
        created_at_source=parse_time(raw.get("created")),
        terminal=status in SERVER_TERMINAL_STATES,
    )  # fmt: skip


def normalize_volume(
    raw: Raw, *, scope: str, region: str, attribution: Attribution,
    flavors: Mapping[str, Raw] | None = None,
) -> ResourceRow:  # fmt: skip
    """A Cinder volume as a `volume` row; its system from its metadata."""
    status = str(raw.get("status") or "unknown")
    metadata = _metadata(raw)
    tags, labels = _labelled(raw, attribution)
    return _row(
        "volume", "openstack_volume", raw, scope=scope, region=region, attribution=attribution,
        native_id=raw["id"], name=raw.get("name"),
        namespace=raw.get("os-vol-tenant-attr:tenant_id"), state=status.lower(),
        storage_gib=_number(raw.get("size")), tags=tags, labels=labels,
        system_code=attribution.system_of({}, metadata),
        created_at_source=parse_time(raw.get("created_at")),
        terminal=status.lower() in VOLUME_TERMINAL_STATES,
    )  # fmt: skip


def normalize_container(
    raw: Raw, *, scope: str, region: str, attribution: Attribution,
    flavors: Mapping[str, Raw] | None = None,
) -> ResourceRow:  # fmt: skip
    """A Swift container as a `bucket` row, keyed by its account's project: container names
    are unique per account only. The listing carries no metadata, so no system; reading it
    would cost a HEAD per container."""
    size = _number(raw.get("bytes"))
    project_id = raw["project_id"]
    return _row(
        "bucket", "openstack_container", raw, scope=scope, region=region,
        attribution=attribution, native_id=f"{project_id}/{raw['name']}", name=raw["name"],
        namespace=project_id, state="active",
        storage_gib=None if size is None else size / BYTES_PER_GIB,
    )  # fmt: skip


def normalize_database(
    raw: Raw, *, scope: str, region: str, attribution: Attribution,
    flavors: Mapping[str, Raw] | None = None,
) -> ResourceRow:  # fmt: skip
    """A Trove instance as a `db_instance` row: size from its flavor (looked up in Nova's
    flavors) and its data volume."""
    status = str(raw.get("status") or "UNKNOWN")
    flavor = flavor_size(raw.get("flavor"), flavors)
    ram = _number(flavor.get("ram"))
    metadata = _metadata(raw)
    tags, labels = _labelled(raw, attribution)
    return _row(
        "db_instance", "openstack_database", raw, scope=scope, region=region,
        attribution=attribution, native_id=raw["id"], name=raw.get("name"),
        namespace=raw.get("tenant_id"), state=status.lower(),
        vcpu=_number(flavor.get("vcpus")), memory_gib=None if ram is None else ram / MIB_PER_GIB,
        storage_gib=_number((raw.get("volume") or {}).get("size")), tags=tags, labels=labels,
        system_code=attribution.system_of({}, metadata),
        created_at_source=parse_time(raw.get("created")),
        terminal=status in DATABASE_TERMINAL_STATES,
    )  # fmt: skip


def normalize_hypervisor(
    raw: Raw,
    *,
    scope: str,
    region: str,
    attribution: Attribution,
    flavors: Mapping[str, Raw] | None = None,
) -> ResourceRow:
    """A compute node as a `hypervisor` row (capacity only, no evidence): from Placement
    ({uuid, name, inventories}) when the cloud has it, else from os-hypervisors detail."""
    inventories = raw.get("inventories")
    if isinstance(inventories, dict):

        def total(resource_class: str) -> float | None:
            return _number((inventories.get(resource_class) or {}).get("total"))

        vcpu, memory_mb, disk = total("VCPU"), total("MEMORY_MB"), total("DISK_GB")
        native_id, name, state = raw["uuid"], raw.get("name"), None
    else:
        vcpu, memory_mb, disk = (
            _number(raw.get("vcpus")), _number(raw.get("memory_mb")), _number(raw.get("local_gb"))
        )  # fmt: skip
        native_id, name = str(raw["id"]), raw.get("hypervisor_hostname")
        state = "disabled" if raw.get("status") == "disabled" else raw.get("state")
    return _row(
        "hypervisor", "hypervisor", raw, scope=scope, region=region, attribution=attribution,
        native_id=native_id, name=name, state=state, vcpu=vcpu,
        memory_gib=None if memory_mb is None else memory_mb / MIB_PER_GIB, storage_gib=disk,
    )  # fmt: skip


# --- kinds: one declaration each over one paginate helper --------------------------------

Normalize = Callable[..., ResourceRow]


@dataclass(frozen=True)
class KindSpec:
    """Which API lists a kind, where its items sit, and how they become rows."""

    kind: str  # the ledger's row kind
    service: str  # the source's `services` entry that enables it
    catalog_type: str  # its service type in the catalog (aliases match: volumev3)
    proxy: str  # the openstacksdk Connection attribute that reaches it
    path: str
    items_key: str | None  # None: the body is the list itself (Swift)
    links_key: str | None  # a "next" link there means another page; None: a full page does
    marker: str  # the item field the next page starts after
    all_projects: str | None  # the query parameter an admin lists every project with
    normalize: Normalize
    microversion: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    all_projects_path: str | None = None  # or the admin path that lists every project


# Swift lists only the token's own account (an admin has no all-accounts listing), and
# Trove's all-projects listing is its admin API (mgmt/instances).
KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("vm", "compute", "compute", "compute", "/servers/detail", "servers",
                 "servers_links", "id", "all_tenants", normalize_server,
                 microversion=NOVA_MICROVERSION),
        KindSpec("volume", "volume", "block-storage", "block_storage", "/volumes/detail",
                 "volumes", "volumes_links", "id", "all_tenants", normalize_volume),
        KindSpec("bucket", "object_store", "object-store", "object_store", "/", None, None,
                 "name", None, normalize_container, params={"format": "json"}),
        KindSpec("db_instance", "database", "database", "database", "/instances", "instances",
                 "links", "id", None, normalize_database, all_projects_path="/mgmt/instances"),
    )
}  # fmt: skip
HYPERVISOR = KindSpec(
    "hypervisor", "compute", "compute", "compute", "/os-hypervisors/detail", "hypervisors",
    "hypervisors_links", "id", None, normalize_hypervisor, microversion=HYPERVISOR_MICROVERSION,
)  # fmt: skip


# --- faults ------------------------------------------------------------------------------


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """The text without any secret this source knows (its password, its tokens)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _error_text(response: Any) -> str:
    """What an OpenStack error body says: {"forbidden": {"message": …}} (Nova, Cinder),
    {"error": {"message": …}} (Keystone), or plain text (Swift)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:300]
    if isinstance(body, dict):
        for key, inner in body.items():
            if isinstance(inner, dict) and inner.get("message"):
                return f"{key}: {inner['message']}"[:300]
    return json.dumps(body)[:300]


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def _failure(status: int, text: str, *, yielded: bool, throttling: bool) -> ScopeFailed:
    if status in (401, 403):
        return ScopeFailed(DENIED, f"HTTP{status}", text[:500])
    if throttling:
        return ScopeFailed(THROTTLED, f"HTTP{status}", text[:500])
    return ScopeFailed(PARTIAL if yielded else ERROR, f"HTTP{status}", text[:500])


def _connection_code(error: BaseException) -> str:
    from keystoneauth1 import exceptions as ks

    if isinstance(error, ks.SSLError):
        return "TLSError"
    if isinstance(error, ks.ConnectTimeout):
        return "Timeout"
    return "ConnectionError"


# --- I/O: one authenticated cloud per (region, project), one request, one listing ----------


def _config_files(config: OpenStackSourceConfig) -> list[str]:
    """The clouds.yaml files openstacksdk reads, in its order."""
    from openstack.config import loader

    if config.clouds_yaml:
        return [os.path.expanduser(config.clouds_yaml)]
    files = list(loader.CONFIG_FILES)
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        files.insert(0, os.environ["OS_CLIENT_CONFIG_FILE"])
    return files


class Cloud:
    """One source's cloud in one region, with a token scoped to one project (None: the
    project clouds.yaml names). Built lazily, shared by that project's scopes in the region."""

    def __init__(self, config: OpenStackSourceConfig, region: str, project: str | None) -> None:
        self.config = config
        self.region = region
        self.project = project
        self._lock = threading.Lock()
        self._connection: Any = None
        self._secrets: tuple[str, ...] = ()

    def connection(self, policy: ListPolicy) -> Any:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect(policy)
            return self._connection

    def _connect(self, policy: ListPolicy) -> Any:
        import openstack.connection
        from keystoneauth1 import exceptions as ks
        from openstack import exceptions as sdk
        from openstack.config import loader

        files = _config_files(self.config)
        cloud = self.config.cloud
        if self.config.clouds_yaml and not os.path.exists(files[0]):
            raise ScopeFailed(
                ERROR, "cloud_config", f"cloud {cloud!r}: clouds.yaml {files[0]!r} does not exist"
            )
        try:
            found = loader.OpenStackConfig(config_files=files)
            if cloud not in found.cloud_config["clouds"]:
                existing = [path for path in files if os.path.exists(path)]
                if existing and found.config_filename is None:
                    # openstacksdk skips a file it cannot parse (and logs why).
                    where = f"{', '.join(existing)} is not valid YAML or JSON"
                else:
                    where = ", ".join(existing) or f"none of {', '.join(files)} exists"
                # The entries' names are no secret and most likely hold the misspelt one.
                defined = sorted(str(name) for name in found.cloud_config["clouds"])
                if defined:
                    where += f"; it defines: {', '.join(defined[:20])}"
                raise ScopeFailed(
                    ERROR,
                    "cloud_config",
                    f"cloud {cloud!r} is not defined in clouds.yaml ({where})",
                )
            auth = found.cloud_config["clouds"][cloud].setdefault("auth", {})
            self._secrets = tuple(
                str(value) for key, value in auth.items() if names_a_secret(key) and value
            )
            if self.project is not None:
                # A token scoped to this project by name, in the domain clouds.yaml gives.
                for key in ("project_id", "project_name", "tenant_id", "tenant_name"):
                    auth.pop(key, None)
                auth["project_name"] = self.project
            options: dict[str, Any] = {"api_timeout": policy.read_timeout}
            if not self.config.verify_tls:
                options["verify"] = False
            elif self.config.ca_bundle:
                options["cacert"] = os.path.expanduser(self.config.ca_bundle)
            region = found.get_one(cloud=cloud, region_name=self.region, **options)
            # Also what get_one merged in (secure.yaml, OS_* variables of the envvars cloud).
            self._secrets += tuple(
                str(value)
                for key, value in (region.config.get("auth") or {}).items()
                if names_a_secret(key) and value
            )
            return openstack.connection.Connection(config=region)
        except (sdk.ConfigException, ks.AuthPluginException, ks.MissingRequiredOptions) as error:
            text = _scrub(str(error), self._secrets)
            raise ScopeFailed(ERROR, "cloud_config", f"cloud {cloud!r}: {text}"[:500]) from error
        except (OSError, ValueError) as error:
            text = f"cloud {cloud!r}: cannot read clouds.yaml: {type(error).__name__}"
            raise ScopeFailed(ERROR, "cloud_config", text) from error

    def secrets(self) -> tuple[str, ...]:
        """The password and tokens of this cloud, to keep them out of every message."""
        token = None
        if self._connection is not None:
            auth_ref = getattr(self._connection.session.auth, "auth_ref", None)
            token = getattr(auth_ref, "auth_token", None)
        return (*self._secrets, token) if token else self._secrets


def request(
    cloud: Cloud,
    call: Callable[[Any], Any],
    *,
    stats: ScopeStats,
    policy: ListPolicy,
    yielded: bool = False,
    counted: bool = True,
) -> Any:
    """One API call through `call(connection)`; 429/413, dropped connections, 5xx and one
    expired token retried within bounds. Returns the response with a 2xx status. Each
    attempt is counted in `stats.api_calls` (unless `call` counts its own)."""
    from keystoneauth1 import exceptions as ks

    throttled = dropped = failed = reauths = 0
    connection = cloud.connection(policy)
    while True:
        if counted:
            stats.api_calls += 1
        try:
            response = call(connection)
            status, headers = response.status_code, response.headers
        except ks.HttpError as error:
            # Raised by keystoneauth when authenticating (the token request itself failed).
            response = error.response
            status = int(error.http_status or 0)
            headers = response.headers if response is not None else {}
        except ks.ConnectionError as error:
            if dropped < policy.max_connection_retries:
                policy.sleep(policy.backoff(dropped))
                dropped += 1
                stats.retries += 1
                continue
            text = _scrub(f"{type(error).__name__}: {error}", cloud.secrets())
            raise ScopeFailed(
                PARTIAL if yielded else ERROR, _connection_code(error), text[:500]
            ) from error
        except ks.ClientException as error:
            # keystoneauth's other refusals: an empty catalog, a failed discovery.
            text = _scrub(f"{type(error).__name__}: {error}", cloud.secrets())
            raise ScopeFailed(
                PARTIAL if yielded else ERROR, type(error).__name__, text[:500]
            ) from error
        if 200 <= status < 300:
            return response
        if status == 401 and reauths < policy.max_reauth:
            # The token expired or was revoked mid-listing: a new one, once.
            connection.session.auth.invalidate()
            reauths += 1
            stats.retries += 1
            continue
        wait = _retry_after(headers)
        throttling = status == 429 or (status in THROTTLE_STATUSES and wait is not None)
        if throttling:
            # A server asking for more patience than our cap is answered with `throttled`
            # now rather than a scan that stalls; retrying sooner would only be refused.
            if throttled < policy.max_throttle_retries and (
                wait is None or wait <= policy.backoff_cap
            ):
                policy.sleep(
                    policy.backoff(throttled)
                    if wait is None
                    else wait + random.uniform(0, policy.backoff_base)
                )
                throttled += 1
                stats.retries += 1
                continue
        elif status in RETRIED_SERVER_ERRORS and failed < policy.max_server_error_retries:
            policy.sleep(policy.backoff(failed))
            failed += 1
            stats.retries += 1
            continue
        text = _scrub(_error_text(response) if response is not None else "", cloud.secrets())
        raise _failure(status, text or f"HTTP {status}", yielded=yielded, throttling=throttling)


# Passed with every request: keystoneauth would otherwise retry by itself, unseen.
NO_HIDDEN_RETRIES: Mapping[str, Any] = {
    "connect_retries": 0,
    "status_code_retries": 0,
    "allow_reauth": False,
}


def _get(proxy: str, path: str, params: Mapping[str, Any], microversion: str | None) -> Any:
    def call(connection: Any) -> Any:
        options = dict(NO_HIDDEN_RETRIES)
        if microversion is not None:
            options["microversion"] = microversion
        return getattr(connection, proxy).get(path, params=dict(params), **options)

    return call


def _json(response: Any, *, yielded: bool, what: str) -> Any:
    if response.status_code == 204:
        return None
    try:
        return response.json()
    except ValueError as error:
        raise ScopeFailed(
            PARTIAL if yielded else ERROR, MALFORMED, f"{what}: the answer is not JSON"
        ) from error


def page_items(body: Any, spec: KindSpec) -> list[Raw] | str:
    """The items of one page, or why the answer is not a page of the listing asked for.

    An error document under HTTP 200 (a proxy's, or a service's {"computeFault": …}), a page
    without its items key, items that are not objects with their marker field: trusted as an
    empty page, any of these would tombstone the whole scope.
    """
    if spec.items_key is None:
        items = [] if body is None else body
        where = "the answer"
    else:
        if not isinstance(body, dict):
            return f"expected an object with {spec.items_key!r}, got {type(body).__name__}"
        if spec.items_key not in body:
            keys = ", ".join(sorted(body))[:200]
            return f"a page without {spec.items_key!r} (keys: {keys})"
        items = body[spec.items_key]
        where = repr(spec.items_key)
    if not isinstance(items, list):
        return f"{where} is a {type(items).__name__}, not a list"
    if not all(isinstance(item, dict) and spec.marker in item for item in items):
        return f"{where} holds items without {spec.marker!r}"
    return items


def _has_next(body: Any, spec: KindSpec, items: list[Raw], limit: int) -> bool:
    if spec.links_key is None:
        # Swift gives no links: a full page may have more after it.
        return len(items) >= limit
    links = body.get(spec.links_key) if isinstance(body, dict) else None
    return bool(items) and any(
        isinstance(link, dict) and link.get("rel") == "next" for link in links or []
    )


def list_items(
    cloud: Cloud,
    spec: KindSpec,
    *,
    stats: ScopeStats,
    policy: ListPolicy,
    params: Mapping[str, Any] | None = None,
    microversion: str | None = None,
) -> Iterator[list[Raw]]:
    """Yield the raw items of a listing page by page (limit + marker).

    The next page starts after the last item's marker field; a "next" link only says that
    there is one (its host may be an internal one a proxy rewrote). Failures leave as
    ScopeFailed: `partial` when pages were already yielded, except denied and throttled,
    which say why whatever the progress.
    """

    def fetch(marker: str | None, pages_done: int) -> tuple[Any, list[Raw]]:
        yielded = pages_done > 0
        query = {**spec.params, **(params or {}), "limit": policy.page_size}
        if marker is not None:
            query["marker"] = marker
        response = request(
            cloud, _get(spec.proxy, spec.path, query, microversion),
            stats=stats, policy=policy, yielded=yielded,
        )  # fmt: skip
        body = _json(response, yielded=yielded, what=spec.path)
        items = page_items(body, spec)
        if isinstance(items, str):
            after = f" after {pages_done} complete page(s)" if yielded else ""
            raise ScopeFailed(PARTIAL if yielded else ERROR, MALFORMED, items + after)
        return body, items

    body, items = fetch(None, 0)
    # The next page is asked for while the consumer normalizes and stores this one, so the
    # wait for the API and yiyun's own work overlap. One request is ever in flight per
    # listing, in order; its failure surfaces when its page is due, as if fetched then.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yiyun-page") as ahead:
        while True:
            stats.pages += 1
            more = _has_next(body, spec, items, policy.page_size)
            upcoming = (
                ahead.submit(fetch, str(items[-1][spec.marker]), stats.pages) if more else None
            )
            yield items
            if upcoming is None:
                return
            body, items = upcoming.result()


# --- what the scopes of a source share ----------------------------------------------------


class _Source:
    """The source's clouds, one per (region, project), built lazily: planning does no I/O."""

    def __init__(self, config: OpenStackSourceConfig, system_tag: str, policy: ListPolicy) -> None:
        self.config = config
        self.attribution = Attribution(system_tag)
        self.policy = policy
        self._lock = threading.Lock()
        self._clouds: dict[tuple[str, str | None], Cloud] = {}

    def cloud(self, region: str, project: str | None) -> Cloud:
        with self._lock:
            key = (region, project)
            if key not in self._clouds:
                self._clouds[key] = Cloud(self.config, region, project)
            return self._clouds[key]


def _access(cloud: Cloud, stats: ScopeStats, policy: ListPolicy) -> Any:
    """The token's access info (roles, project, catalog), authenticating when there is none."""

    def call(connection: Any) -> _Answer:
        auth = connection.session.auth
        if auth.auth_ref is None:
            stats.api_calls += 1  # a token request is an API call too; a cached token is not
        return _Answer(auth.get_access(connection.session))

    access = request(cloud, call, stats=stats, policy=policy, counted=False).access
    regions = {
        endpoint.region_name
        for endpoints in access.service_catalog.get_endpoints_data().values()
        for endpoint in endpoints
    }
    if cloud.region not in regions:
        # Not "a cloud without this service": a misspelt region, or a catalog that lost it.
        # Listed as empty, it would tombstone everything the region held.
        known = ", ".join(sorted(str(r) for r in regions if r)) or "none"
        raise ScopeFailed(
            ERROR, "unknown_region",
            f"the catalog has no endpoint in region {cloud.region!r} (regions: {known})",
        )  # fmt: skip
    return access


@dataclass
class _Answer:
    """A successful answer that is not an HTTP response, shaped like one for `request`."""

    access: Any
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def _in_catalog(access: Any, catalog_type: str, region: str) -> bool:
    endpoints = access.service_catalog.get_endpoints(service_type=catalog_type, region_name=region)
    return any(endpoints.values())


def _is_admin(access: Any) -> bool:
    return "admin" in (access.role_names or [])


def _microversion(cloud: Cloud, spec: KindSpec, policy: ListPolicy, wanted: str) -> str | None:
    """The highest microversion up to `wanted` that the service supports. A discovery that
    fails fails the scope: listing at the base version instead would drop fields (tags,
    the embedded flavor) and change rows that did not change."""
    from keystoneauth1 import exceptions as ks
    from openstack import utils

    proxy = getattr(cloud.connection(policy), spec.proxy)
    try:
        data = proxy.get_endpoint_data()
    except (ks.ClientException, ks.DiscoveryFailure) as error:
        text = _scrub(str(error), cloud.secrets())
        raise ScopeFailed(
            ERROR, "discovery_failed", f"{spec.catalog_type}: {text}"[:500]
        ) from error
    if data is None or not data.max_microversion:
        raise ScopeFailed(
            ERROR, "discovery_failed", f"{spec.catalog_type}: no microversion range in discovery"
        )
    return utils.maximum_supported_microversion(proxy, wanted)


def _flavors(cloud: Cloud, access: Any, stats: ScopeStats, policy: ListPolicy) -> dict[str, Raw]:
    """Nova's flavors by id (public and private), for servers listed below 2.47 and Trove.
    Without compute in the region, sizes stay unknown."""
    if not _in_catalog(access, "compute", cloud.region):
        return {}
    spec = replace(
        KINDS["vm"], path="/flavors/detail", items_key="flavors", links_key="flavors_links",
        microversion=None, params={"is_public": "None"},
    )  # fmt: skip
    flavors: dict[str, Raw] = {}
    listing = ScopeStats()  # its pages are not this scope's pages; its calls are
    try:
        for items in list_items(cloud, spec, stats=listing, policy=policy):
            flavors.update((str(item["id"]), item) for item in items)
    except ScopeFailed as failure:
        status = ERROR if failure.status == PARTIAL else failure.status
        raise ScopeFailed(status, failure.code, f"listing flavors: {failure.message}") from failure
    finally:
        stats.api_calls += listing.api_calls
        stats.retries += listing.retries
    return flavors


def _kind_pages(
    shared: _Source, spec: KindSpec, region: str, project: str | None, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    policy = shared.policy
    cloud = shared.cloud(region, project)
    access = _access(cloud, stats, policy)
    scope = f"{region}/{project or '*'}"
    if not _in_catalog(access, spec.catalog_type, region):
        # The cloud has no such service here: an empty, complete listing.
        stats.pages += 1
        yield []
        return
    if project is None and _is_admin(access):
        if spec.all_projects is not None:
            spec = replace(spec, params={**spec.params, spec.all_projects: "True"})
        elif spec.all_projects_path is not None:
            spec = replace(spec, path=spec.all_projects_path)
    microversion = None
    if spec.microversion is not None:
        microversion = _microversion(cloud, spec, policy, spec.microversion)
    # Nova below 2.47 and Trove name a flavor by id only: its size comes from Nova's list,
    # read once, and only when an item needs it.
    flavors: dict[str, Raw] | None = None
    for items in list_items(cloud, spec, stats=stats, policy=policy, microversion=microversion):
        if spec.kind == "bucket":
            items = [{**item, "project_id": access.project_id} for item in items]
        if flavors is None and any(_unsized(item) for item in items):
            flavors = _flavors(cloud, access, stats, policy)
        yield [
            spec.normalize(
                raw, scope=scope, region=region, attribution=shared.attribution, flavors=flavors
            )
            for raw in items
        ]


def _unsized(item: Raw) -> bool:
    flavor = item.get("flavor")
    return isinstance(flavor, dict) and not flavor_size(flavor, None)


def _placement_pages(
    shared: _Source, cloud: Cloud, scope: str, region: str, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    """Hypervisors from Placement: one listing of providers, one inventory read each."""
    policy = shared.policy
    spec = replace(
        HYPERVISOR, catalog_type="placement", proxy="placement", path="/resource_providers",
        items_key="resource_providers", links_key="links", marker="uuid",
    )  # fmt: skip
    microversion = _microversion(cloud, spec, policy, PLACEMENT_MICROVERSION)
    # Placement does not page providers (it ignores limit): one answer holds them all.
    response = request(
        cloud, _get("placement", spec.path, {}, microversion), stats=stats, policy=policy
    )
    providers = page_items(_json(response, yielded=False, what=spec.path), spec)
    if isinstance(providers, str):
        raise ScopeFailed(ERROR, MALFORMED, providers)
    stats.pages += 1
    rows: list[ResourceRow] = []
    yielded = False
    for provider in providers:
        if provider.get("root_provider_uuid", provider["uuid"]) != provider["uuid"]:
            continue  # a nested provider (a NIC, a GPU) inside a hypervisor
        path = f"/resource_providers/{provider['uuid']}/inventories"
        response = request(
            cloud, _get("placement", path, {}, microversion),
            stats=stats, policy=policy, yielded=yielded,
        )  # fmt: skip
        body = _json(response, yielded=yielded, what=path)
        if not isinstance(body, dict) or not isinstance(body.get("inventories"), dict):
            raise ScopeFailed(
                PARTIAL if yielded else ERROR, MALFORMED, f"{path}: not an inventory document"
            )
        if "VCPU" not in body["inventories"]:
            continue  # a sharing provider (a storage pool), not a compute node
        raw = {**provider, "inventories": body["inventories"]}
        rows.append(
            normalize_hypervisor(raw, scope=scope, region=region, attribution=shared.attribution)
        )
        if len(rows) >= policy.page_size:
            yield rows
            rows, yielded = [], True
    yield rows


def _hypervisor_pages(
    shared: _Source, region: str, stats: ScopeStats
) -> Iterator[list[ResourceRow]]:
    """Compute capacity in a region (admin only): Placement when the catalog has it, else
    os-hypervisors detail. A 403 fails this scope alone, as `denied`."""
    policy = shared.policy
    cloud = shared.cloud(region, None)
    access = _access(cloud, stats, policy)
    scope = f"{region}/*"
    if _in_catalog(access, "placement", region):
        yield from _placement_pages(shared, cloud, scope, region, stats)
        return
    if not _in_catalog(access, "compute", region):
        stats.pages += 1
        yield []
        return
    microversion = _microversion(cloud, HYPERVISOR, policy, HYPERVISOR_MICROVERSION)
    for items in list_items(
        cloud, HYPERVISOR, stats=stats, policy=policy, microversion=microversion
    ):
        yield [
            normalize_hypervisor(raw, scope=scope, region=region, attribution=shared.attribution)
            for raw in items
        ]


# --- scopes ------------------------------------------------------------------------------


def plan_scopes(
    *,
    node_id: str,
    source: Mapping[str, Any],
    system_tag: str = DEFAULT_SYSTEM_TAG,
    policy: ListPolicy | None = None,
) -> list[Scope]:
    """One scope per (kind, region, project) — "region/project", or "region/*" when no
    projects are listed (an admin then lists every project) — and one hypervisor scope per
    region when compute is listed. Planning does no I/O; the first scope authenticates."""
    config = parse_source(source)
    shared = _Source(config, system_tag, policy or ListPolicy.from_source(source))
    projects: tuple[str | None, ...] = config.projects or (None,)
    scopes: list[Scope] = []
    for region in config.regions:
        for project in projects:
            for spec in KINDS.values():
                if spec.service in config.services:
                    scopes.append(
                        Scope(
                            node_id=node_id, source=config.name, kind=spec.kind,
                            scope=f"{region}/{project or '*'}",
                            pages=partial(_kind_pages, shared, spec, region, project),
                        )
                    )  # fmt: skip
        if config.hypervisors and "compute" in config.services:
            scopes.append(
                Scope(
                    node_id=node_id, source=config.name, kind="hypervisor", scope=f"{region}/*",
                    pages=partial(_hypervisor_pages, shared, region),
                )
            )  # fmt: skip
    return scopes
