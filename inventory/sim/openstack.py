"""An OpenStack cloud simulator (Keystone, Nova, Cinder, Swift, Placement, Trove) that the
`openstack` CLI and openstacksdk can list from, with switchable faults."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import yaml

from inventory.sim.loopback import LoopbackHandler, LoopbackService

# Placeholder credentials of the simulated cloud's admin. They protect nothing real; tests
# and the demo write them into a clouds.yaml that points only at 127.0.0.1.
SIM_USER = "admin"
SIM_PASSWORD = "sim-password"

DOMAIN = {"id": "default", "name": "Default"}
NOVA_VERSIONS = ((2, 1), (2, 96))  # (min, max) microversions, as a 2024.1 Nova reports
CINDER_VERSIONS = ((3, 0), (3, 71))
PLACEMENT_VERSIONS = ((1, 0), (1, 39))
TOKEN_LIFETIME = timedelta(hours=1)

# Catalog type → (path segment, service name in the catalog).
SERVICE_PATHS = {
    "identity": ("identity", "keystone"),
    "compute": ("compute", "nova"),
    "volumev3": ("volume", "cinderv3"),
    "object-store": ("object-store", "swift"),
    "placement": ("placement", "placement"),
    "database": ("database", "trove"),
}
_BY_SEGMENT = {segment: service for service, (segment, _) in SERVICE_PATHS.items()}
# What callers may say for a catalog type (openstacksdk's and the collector's spellings).
_SERVICE_ALIASES = {
    "volume": "volumev3",
    "block-storage": "volumev3",
    "block_storage": "volumev3",
    "object_store": "object-store",
}

# What the real APIs refuse (Nova's and Cinder's JSON schemas): the simulator refuses it too,
# so a test cannot build an estate no real cloud could hold.
_NOVA_TAG = re.compile(r"^[^,/]{1,60}$")
_NOVA_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_CINDER_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. /]{1,255}$")

# Nova's status → OS-EXT-STS:vm_state.
_VM_STATES = {
    "ACTIVE": "active",
    "BUILD": "building",
    "SHUTOFF": "stopped",
    "ERROR": "error",
    "PAUSED": "paused",
    "SUSPENDED": "suspended",
    "SHELVED": "shelved",
    "SHELVED_OFFLOADED": "shelved_offloaded",
    "SOFT_DELETED": "soft-delete",
    "DELETED": "deleted",
    "RESCUE": "rescued",
    "RESIZE": "active",
    "VERIFY_RESIZE": "resized",
}

# Nova's and Cinder's fault wrapper names the error body after the status.
_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_UNAUTHORIZED = "The request you have made requires authentication."
_ROLE_IDS = {
    "admin": "5a1e0c7d0000400080000000000000a1",
    "member": "5a1e0c7d0000400080000000000000b2",
    "reader": "5a1e0c7d0000400080000000000000c3",
}


def _new_id() -> str:
    # A random version-4 UUID without a system call per object: 10,000 servers add up, and
    # nothing here needs cryptographic randomness.
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _hex_id() -> str:
    """Keystone's ids: 32 hex digits."""
    return f"{random.getrandbits(128):032x}"


def _iso(moment: datetime) -> str:
    """Nova's and Cinder's timestamps: ISO 8601 in UTC with a Z, no fraction."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_micro(moment: datetime) -> str:
    """Keystone's and Swift's timestamps carry microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _service_type(service: str) -> str:
    return _SERVICE_ALIASES.get(service, service)


# --- the estate --------------------------------------------------------------------------


@dataclass
class _Project:
    id: str
    name: str


@dataclass
class _User:
    id: str
    name: str
    password: str
    roles: dict[str, str] = field(default_factory=dict)  # project id → "admin" | "member"


@dataclass
class _Token:
    value: str
    user: _User
    project: _Project | None
    role: str | None
    issued_at: datetime
    expires_at: datetime
    expired: bool = False

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass
class _Flavor:
    id: str
    name: str
    vcpus: int
    ram_mib: int
    disk_gib: int


@dataclass
class _Server:
    id: str
    project_id: str
    user_id: str
    name: str
    status: str
    flavor: _Flavor
    tags: list[str]
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    host: str
    ip: str


@dataclass
class _Volume:
    id: str
    project_id: str
    user_id: str
    name: str
    size_gib: int
    status: str
    metadata: dict[str, str]
    attached_to: str | None
    attachment_id: str
    created: datetime


@dataclass
class _Container:
    name: str
    bytes_used: int
    object_count: int
    created: datetime


@dataclass
class _Database:
    id: str
    project_id: str
    name: str
    status: str
    flavor: _Flavor
    volume_gib: int
    created: datetime


@dataclass
class _Hypervisor:
    id: str
    hostname: str
    vcpus: int
    memory_mib: int
    local_gb: int
    vcpus_used: int
    memory_mib_used: int
    local_gb_used: int
    host_ip: str
    number: int


T = TypeVar("T")


class _Ordered(Generic[T]):
    """Objects in insertion order, paged by marker in O(log n + page).

    A removed object leaves a hole and keeps its position, so a listing resumed after it
    neither skips nor repeats anything (real Nova finds a deleted marker too).
    """

    def __init__(self) -> None:
        self._items: list[T | None] = []
        self._position: dict[str, int] = {}
        self._owner: dict[str, str] = {}
        self._by_project: dict[str, list[int]] = {}
        self.live = 0

    def add(self, object_id: str, project_id: str, item: T) -> None:
        if object_id in self._position:
            raise ValueError(f"id {object_id!r} is already used")
        position = len(self._items)
        self._items.append(item)
        self._position[object_id] = position
        self._owner[object_id] = project_id
        self._by_project.setdefault(project_id, []).append(position)
        self.live += 1

    def get(self, object_id: str) -> T | None:
        position = self._position.get(object_id)
        return None if position is None else self._items[position]

    def remove(self, object_id: str) -> T:
        position = self._position.get(object_id)
        item = None if position is None else self._items[position]
        if position is None or item is None:
            raise KeyError(object_id)
        self._items[position] = None
        self.live -= 1
        return item

    def knows(self, object_id: str) -> bool:
        return object_id in self._position

    def page(
        self,
        *,
        project_id: str | None,
        marker: str | None,
        limit: int,
        keep: Callable[[T], bool] | None = None,
    ) -> list[T]:
        """Up to `limit` objects after `marker` (of one project, if given); KeyError for an
        unknown marker."""
        after = -1 if marker is None else self._position[marker]
        if project_id is None:
            positions: Sequence[int] = range(after + 1, len(self._items))
        else:
            owned = self._by_project.get(project_id, [])
            positions = owned[bisect.bisect_right(owned, after) :]
        chosen: list[T] = []
        for position in positions:
            item = self._items[position]
            if item is not None and (keep is None or keep(item)):
                chosen.append(item)
                if len(chosen) == limit:
                    break
        return chosen

    def __iter__(self) -> Iterator[T]:
        return (item for item in self._items if item is not None)


@dataclass
class _Region:
    servers: _Ordered[_Server] = field(default_factory=_Ordered)
    volumes: _Ordered[_Volume] = field(default_factory=_Ordered)
    databases: _Ordered[_Database] = field(default_factory=_Ordered)
    hypervisors: _Ordered[_Hypervisor] = field(default_factory=_Ordered)
    flavors: dict[str, _Flavor] = field(default_factory=dict)
    # project id → container name → container, and the names kept sorted (Swift lists by name)
    containers: dict[str, dict[str, _Container]] = field(default_factory=dict)
    container_names: dict[str, list[str]] = field(default_factory=dict)
    attachments: dict[str, list[str]] = field(default_factory=dict)  # server id → volume ids

    def flavor(self, vcpus: int, ram_mib: int, disk_gib: int) -> _Flavor:
        name = f"sim.c{vcpus}.m{ram_mib}.d{disk_gib}"
        found = self.flavors.get(name)
        if found is None:
            found = self.flavors[name] = _Flavor(name, name, vcpus, ram_mib, disk_gib)
        return found


# --- requests and faults -----------------------------------------------------------------


class _Headers(Mapping[str, str]):
    """Request headers, looked up without regard to case, as HTTP means them."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = {name.lower(): (name, value) for name, value in pairs}

    def __getitem__(self, name: str) -> str:
        return self._pairs[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs.values())

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return repr(dict(self._pairs.values()))


@dataclass(frozen=True)
class SimRequest:
    """One request the simulator received: method, path (as sent), query, headers."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]


@dataclass
class _Armed:
    """A fault armed for `left` more requests of `service` (list page `page`, or any)."""

    service: str
    page: int | None
    left: int
    status: int = 500
    retry_after: int | None = None
    disguised: bool = False  # HTTP 200 carrying the error document
    reset: bool = False

    def take(self, service: str, page: int | None) -> bool:
        if self.left <= 0 or self.service != service:
            return False
        if self.page is not None and self.page != page:
            return False
        self.left -= 1
        return True


@dataclass
class _Expiry:
    """`expire_tokens`: these tokens stop working once `after` more requests have passed."""

    tokens: set[str]
    after: int


@dataclass
class _Call:
    """One authenticated service request, as the routes see it."""

    method: str
    region: str
    service: str
    rest: list[str]  # path segments after the service's root
    query: dict[str, str]
    token: _Token
    base: str  # the URL of the service's root in this region, e.g. …/r/RegionOne/compute
    version: tuple[int, int] = (0, 0)
    page: int | None = None
    listing: str | None = None  # which collection a list request pages through


class _Reply(Exception):
    """A finished response, raised from deep inside a route."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# --- the simulator -----------------------------------------------------------------------


class OpenStackSimulator(LoopbackService):
    """An in-memory OpenStack cloud served over HTTP on 127.0.0.1.

    Each region's endpoints live under `/r/{region}/…`, so a client pointed at one region sees
    only that region's objects; Keystone is shared, at `/identity`. The `add_*` methods change
    the estate at any time (thread-safe); the fault switches make the next requests fail the
    ways real clouds do, and `heal` puts everything back.
    """

    thread_name = "openstack-sim"

    def handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def __init__(
        self,
        *,
        regions: Sequence[str] = ("RegionOne",),
        services: Collection[str] = ("compute", "volumev3", "object-store", "placement"),
        max_limit: int = 1000,
    ) -> None:
        if not regions:
            raise ValueError("a cloud needs at least one region")
        unknown = {_service_type(s) for s in services} - set(SERVICE_PATHS)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {sorted(SERVICE_PATHS)}")
        self.regions = tuple(regions)
        self.services = frozenset(_service_type(s) for s in services) | {"identity"}
        self.max_limit = max_limit
        self._init_loopback()
        self._regions = {name: _Region() for name in self.regions}
        self._projects: dict[str, _Project] = {}  # by name
        self._projects_by_id: dict[str, _Project] = {}
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, _Token] = {}
        self._requests: list[SimRequest] = []
        self._armed: list[_Armed] = []
        self._forbidden: set[tuple[str | None, str | None]] = set()
        self._expiry: _Expiry | None = None
        # (region, service, listing, marker) → the page number a request with that marker is
        self._pages: dict[tuple[str, str, str, str], int] = {}
        self._catalog_ids = {
            (service, region, interface): _hex_id()
            for service in SERVICE_PATHS
            for region in self.regions
            for interface in ("public", "internal")
        }
        self._service_ids = {service: _hex_id() for service in SERVICE_PATHS}
        self.add_project("admin")
        self.add_user(SIM_USER, SIM_PASSWORD, project="admin", admin=True)

    # --- addresses (start, stop, port, url: inventory/sim/loopback.py) ---

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def endpoint(self, service: str, region: str = "RegionOne", project: str = "admin") -> str:
        """The public URL the catalog gives for `service` in `region` to a token of `project`."""
        service = _service_type(service)
        project_id = self.project_id(project)
        segment = SERVICE_PATHS[service][0]
        if service == "identity":
            return f"{self.url}/identity"
        root = f"{self.url}/r/{quote(region, safe='')}/{segment}"
        return {
            "compute": f"{root}/v2.1",
            "volumev3": f"{root}/v3/{project_id}",
            "object-store": f"{root}/v1/AUTH_{project_id}",
            "placement": root,
            "database": f"{root}/v1.0/{project_id}",
        }[service]

    @property
    def requests(self) -> list[SimRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def write_clouds_yaml(
        self,
        path: Path,
        *,
        cloud: str = "sim",
        project: str = "admin",
        user: str = SIM_USER,
        password: str = SIM_PASSWORD,
        region: str | None = None,
    ) -> Path:
        """A standard clouds.yaml with one cloud, `cloud`, pointing at this simulator.

        Without `region`, the entry lists every region (`regions`); clients use the first
        unless told otherwise (`--os-region-name`, `region_name=`).
        """
        entry: dict[str, Any] = {
            "auth": {
                "auth_url": self.auth_url,
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": DOMAIN["name"],
                "project_domain_name": DOMAIN["name"],
            },
            "identity_api_version": 3,
            "interface": "public",
        }
        if region is not None:
            entry["region_name"] = region
        else:
            entry["regions"] = list(self.regions)
        target = Path(path)
        target.write_text(yaml.safe_dump({"clouds": {cloud: entry}}), encoding="utf-8")
        target.chmod(0o600)
        return target

    # --- identity ---

    def add_project(self, name: str) -> str:
        """Create a project (idempotent); returns its id."""
        with self._lock:
            existing = self._projects.get(name)
            if existing is not None:
                return existing.id
            project = _Project(_hex_id(), name)
            self._projects[name] = project
            self._projects_by_id[project.id] = project
            return project.id

    def project_id(self, name: str) -> str:
        with self._lock:
            return self._project(name).id

    def _project(self, name: str) -> _Project:
        project = self._projects.get(name)
        if project is None:
            raise KeyError(f"no project {name!r}; known: {sorted(self._projects)}")
        return project

    def add_user(self, name: str, password: str, *, project: str, admin: bool = False) -> str:
        """A user with the admin or member role on `project` (a second call adds a role);
        returns the user id."""
        with self._lock:
            target = self._project(project)
            user = self._users.get(name)
            if user is None:
                user = self._users[name] = _User(_hex_id(), name, password)
            user.password = password
            user.roles[target.id] = "admin" if admin else "member"
            return user.id

    # --- compute ---

    def _region(self, region: str) -> _Region:
        found = self._regions.get(region)
        if found is None:
            raise KeyError(f"no region {region!r}; known: {list(self.regions)}")
        return found

    def add_server(
        self,
        project: str,
        *,
        name: str,
        region: str = "RegionOne",
        status: str = "ACTIVE",
        vcpus: int = 2,
        ram_mib: int = 4096,
        disk_gib: int = 40,
        tags: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        created: datetime | None = None,
        server_id: str | None = None,
    ) -> str:
        """A Nova server; returns its id. Tags and metadata must be what Nova would accept."""
        tags = list(tags)
        for tag in tags:
            if not _NOVA_TAG.match(tag):
                raise ValueError(
                    f"Nova refuses the tag {tag!r}: tags are 1-60 characters without '/' or ','"
                )
        if len(tags) > 50:
            raise ValueError("Nova allows at most 50 tags on a server")
        metadata = dict(metadata or {})
        for key, value in metadata.items():
            if not _NOVA_METADATA_KEY.match(key) or len(value) > 255:
                raise ValueError(
                    f"Nova refuses the metadata key {key!r}: keys match [a-zA-Z0-9-_:. ]{{1,255}}"
                    " (no '/'), values are at most 255 characters"
                )
        if status.upper() not in _VM_STATES:
            raise ValueError(f"unknown server status {status!r}; known: {sorted(_VM_STATES)}")
        moment = created or datetime.now(UTC)
        with self._lock:
            owner = self._project(project)
            store = self._region(region)
            object_id = server_id or _new_id()
            count = store.servers.live
            server = _Server(
                id=object_id,
                project_id=owner.id,
                user_id=self._users[SIM_USER].id,
                name=name,
                status=status.upper(),
                flavor=store.flavor(vcpus, ram_mib, disk_gib),
                tags=tags,
                metadata=metadata,
                created=moment,
                updated=moment,
                host=f"compute-{count % 8:02d}",
                ip=f"10.{count >> 16 & 255}.{count >> 8 & 255}.{count & 255}",
            )
            store.servers.add(object_id, owner.id, server)
            return object_id

    def _find_server(self, server_id: str) -> _Server:
        for store in self._regions.values():
            server = store.servers.get(server_id)
            if server is not None:
                return server
        raise KeyError(f"no server {server_id!r}")

    def set_server_status(self, server_id: str, status: str) -> None:
        """Change a server's status (DELETED hides it, as Nova hides deleted instances)."""
        if status.upper() not in _VM_STATES:
            raise ValueError(f"unknown server status {status!r}; known: {sorted(_VM_STATES)}")
        with self._lock:
            server = self._find_server(server_id)
            server.status = status.upper()
            server.updated = datetime.now(UTC)

    def delete_server(self, server_id: str) -> None:
        with self._lock:
            for store in self._regions.values():
                if store.servers.get(server_id) is not None:
                    store.servers.remove(server_id)
                    return
        raise KeyError(f"no server {server_id!r}")

    def add_hypervisor(
        self,
        *,
        region: str = "RegionOne",
        hostname: str,
        vcpus: int,
        memory_mib: int,
        local_gb: int,
        vcpus_used: int = 0,
        memory_mib_used: int = 0,
        local_gb_used: int = 0,
    ) -> str:
        """A compute node (and its Placement resource provider, same uuid); returns the id."""
        with self._lock:
            store = self._region(region)
            count = store.hypervisors.live
            hypervisor = _Hypervisor(
                _new_id(),
                hostname,
                vcpus,
                memory_mib,
                local_gb,
                vcpus_used,
                memory_mib_used,
                local_gb_used,
                f"192.168.{count >> 8 & 255}.{count & 255}",
                count + 1,
            )
            store.hypervisors.add(hypervisor.id, "", hypervisor)
            return hypervisor.id

    # --- block storage ---

    def add_volume(
        self,
        project: str,
        *,
        name: str,
        size_gib: int,
        region: str = "RegionOne",
        status: str = "available",
        metadata: Mapping[str, str] | None = None,
        attached_to: str | None = None,
        created: datetime | None = None,
    ) -> str:
        """A Cinder volume; attached to a server, it is `in-use` unless told otherwise."""
        metadata = dict(metadata or {})
        for key, value in metadata.items():
            if not _CINDER_METADATA_KEY.match(key) or len(value) > 255:
                raise ValueError(
                    f"Cinder refuses the metadata key {key!r}: keys match "
                    "[a-zA-Z0-9-_:. /]{1,255}, values are at most 255 characters"
                )
        with self._lock:
            owner = self._project(project)
            store = self._region(region)
            if attached_to is not None and store.servers.get(attached_to) is None:
                raise KeyError(f"no server {attached_to!r} in {region}")
            if attached_to is not None and status == "available":
                status = "in-use"
            volume = _Volume(
                id=_new_id(),
                project_id=owner.id,
                user_id=self._users[SIM_USER].id,
                name=name,
                size_gib=size_gib,
                status=status,
                metadata=metadata,
                attached_to=attached_to,
                attachment_id=_new_id(),
                created=created or datetime.now(UTC),
            )
            store.volumes.add(volume.id, owner.id, volume)
            if attached_to is not None:
                store.attachments.setdefault(attached_to, []).append(volume.id)
            return volume.id

    def delete_volume(self, volume_id: str) -> None:
        with self._lock:
            for store in self._regions.values():
                if store.volumes.get(volume_id) is not None:
                    volume = store.volumes.remove(volume_id)
                    if volume.attached_to is not None:
                        store.attachments[volume.attached_to].remove(volume_id)
                    return
        raise KeyError(f"no volume {volume_id!r}")

    # --- object storage ---

    def add_container(
        self,
        project: str,
        name: str,
        *,
        region: str = "RegionOne",
        bytes_used: int = 0,
        object_count: int = 0,
    ) -> None:
        """A Swift container in the project's account (replaces one of the same name)."""
        if not name or "/" in name or len(name) > 256:
            raise ValueError(f"Swift refuses the container name {name!r}")
        with self._lock:
            owner = self._project(project)
            store = self._region(region)
            account = store.containers.setdefault(owner.id, {})
            names = store.container_names.setdefault(owner.id, [])
            if name not in account:
                bisect.insort(names, name)
            account[name] = _Container(name, bytes_used, object_count, datetime.now(UTC))

    def delete_container(self, project: str, name: str) -> None:
        with self._lock:
            owner = self._project(project)
            for store in self._regions.values():
                account = store.containers.get(owner.id, {})
                if account.pop(name, None) is not None:
                    names = store.container_names[owner.id]
                    del names[bisect.bisect_left(names, name)]
                    return
        raise KeyError(f"no container {name!r} in {project}")

    # --- databases ---

    def add_database(
        self,
        project: str,
        *,
        name: str,
        region: str = "RegionOne",
        flavor_vcpus: int = 2,
        ram_mib: int = 4096,
        volume_gib: int = 20,
        status: str = "ACTIVE",
    ) -> str:
        """A Trove instance; served only when "database" is among the simulator's services."""
        with self._lock:
            owner = self._project(project)
            store = self._region(region)
            database = _Database(
                _new_id(),
                owner.id,
                name,
                status.upper(),
                store.flavor(flavor_vcpus, ram_mib, 0),
                volume_gib,
                datetime.now(UTC),
            )
            store.databases.add(database.id, owner.id, database)
            return database.id

    # --- faults ---

    def expire_tokens(self, *, after_requests: int) -> None:
        """Every token issued so far stops working after `after_requests` more authenticated
        requests (those carrying a token); a new token from Keystone works."""
        with self._lock:
            self._expiry = _Expiry(set(self._tokens), after_requests)

    def forbid(self, *, project: str | None = None, service: str | None = None) -> None:
        """403 for tokens scoped to `project` (any if None) on `service` (every service but
        Keystone's token issuing if None), until `heal`."""
        with self._lock:
            if project is not None:
                self._project(project)
            self._forbidden.add((project, _service_type(service) if service else None))

    def throttle(
        self,
        *,
        service: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        page: int | None = None,
    ) -> None:
        """`status` (429, or 413 as older Nova and Cinder send) with Retry-After."""
        self._arm(_Armed(_service_type(service), page, times, status, retry_after=retry_after))

    def fail(
        self, *, service: str, status: int = 500, times: int = 1, page: int | None = None
    ) -> None:
        self._arm(_Armed(_service_type(service), page, times, status))

    def fail_with_200(self, *, service: str, page: int | None = None, times: int = 1) -> None:
        """HTTP 200 whose body is the service's error document (as some proxies answer)."""
        self._arm(_Armed(_service_type(service), page, times, 500, disguised=True))

    def reset_connection(self, *, service: str, page: int | None = None, times: int = 1) -> None:
        """Abort the TCP connection (RST) without a byte of response."""
        self._arm(_Armed(_service_type(service), page, times, reset=True))

    def heal(self) -> None:
        """Disarm every fault; tokens already expired stay expired."""
        with self._lock:
            self._armed.clear()
            self._forbidden.clear()
            self._expiry = None

    def _arm(self, fault: _Armed) -> None:
        if fault.service not in SERVICE_PATHS:
            raise ValueError(f"unknown service {fault.service!r}; known: {sorted(SERVICE_PATHS)}")
        with self._lock:
            self._armed.append(fault)

    # --- serving helpers (called with requests in flight) ---

    def _log(self, request: SimRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _authenticate(self, value: str | None) -> _Token | None:
        """The token a request carries, if still valid; counts toward `expire_tokens`."""
        if value is None:
            return None
        with self._lock:
            expiry = self._expiry
            if expiry is not None:
                if expiry.after <= 0:
                    for expired in expiry.tokens:
                        if expired in self._tokens:
                            self._tokens[expired].expired = True
                    self._expiry = None
                else:
                    expiry.after -= 1
            token = self._tokens.get(value)
            if token is None or token.expired or token.expires_at <= datetime.now(UTC):
                return None
            return token

    def _issue(self, user: _User, project: _Project | None) -> _Token:
        now = datetime.now(UTC)
        role = user.roles.get(project.id) if project is not None else None
        token = _Token(secrets.token_urlsafe(32), user, project, role, now, now + TOKEN_LIFETIME)
        with self._lock:
            self._tokens[token.value] = token
        return token

    def _fault_for(self, call: _Call) -> _Armed | _Reply | None:
        """The fault a request meets, if any (consuming one of its times)."""
        with self._lock:
            project = call.token.project
            for name, service in self._forbidden:
                if (name is None or (project is not None and project.name == name)) and (
                    service is None or service == call.service
                ):
                    return _Reply(403, "Policy does not allow this request to be performed.")
            for fault in self._armed:
                if fault.take(call.service, call.page):
                    return fault
            return None

    def _page_number(self, call: _Call, marker: str | None) -> int:
        if marker is None or call.listing is None:
            return 1
        with self._lock:
            return self._pages.get((call.region, call.service, call.listing, marker), 2)

    def _note_next_page(self, call: _Call, last: str) -> None:
        if call.listing is None or call.page is None:
            return
        with self._lock:
            self._pages[(call.region, call.service, call.listing, last)] = call.page + 1

    def _catalog(self, project: _Project | None) -> list[dict[str, Any]]:
        if project is None:
            return []
        entries = []
        for service in sorted(self.services):
            endpoints = []
            for region in self.regions:
                url = self.endpoint(service, region, project.name)
                for interface in ("public", "internal"):
                    endpoints.append(
                        {
                            "id": self._catalog_ids[(service, region, interface)],
                            "interface": interface,
                            "region": region,
                            "region_id": region,
                            "url": url,
                        }
                    )
            entries.append(
                {
                    "id": self._service_ids[service],
                    "type": service,
                    "name": SERVICE_PATHS[service][1],
                    "endpoints": endpoints,
                }
            )
        return entries


# --- HTTP --------------------------------------------------------------------------------


def _version(text: str, bounds: tuple[tuple[int, int], tuple[int, int]]) -> tuple[int, int]:
    """Parse a microversion ("2.47", "latest"); _Reply 400/406 as the services answer."""
    low, high = bounds
    if text.strip().lower() == "latest":
        return high
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    if match is None:
        raise _Reply(400, f"Invalid API version request: {text!r}")
    version = (int(match[1]), int(match[2]))
    if not low <= version <= high:
        raise _Reply(
            406,
            f"Version {version[0]}.{version[1]} is not supported by the API. Minimum is "
            f"{low[0]}.{low[1]} and maximum is {high[0]}.{high[1]}.",
        )
    return version


def _bool_query(value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    raise _Reply(400, f"Invalid value {value!r} for a boolean parameter")


class _Handler(LoopbackHandler):
    """Routes one request; the simulator is a class attribute of a per-server subclass."""

    sim: OpenStackSimulator
    server_version = "yiyun-openstack-sim"

    # --- responses ---

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status, _REASONS.get(status))
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Openstack-Request-Id", f"req-{_new_id()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(
        self, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(
        self,
        service: str,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        sent_status: int | None = None,
    ) -> None:
        """The error document `service` sends for `status` (with HTTP `sent_status`)."""
        reason = _REASONS.get(status, "Error")
        content_type = "application/json"
        extra = dict(headers or {})
        if status == 401 and service != "object-store":
            # keystonemiddleware answers for every JSON service, and names Keystone.
            body: Any = {"error": {"code": 401, "title": "Unauthorized", "message": message}}
            extra.setdefault("WWW-Authenticate", f'Keystone uri="{self.sim.url}/identity"')
        elif service == "identity":
            body = {"error": {"code": status, "title": reason, "message": message}}
        elif service == "placement":
            request_id = f"req-{_new_id()}"
            body = {
                "errors": [
                    {"status": status, "title": reason, "detail": message, "request_id": request_id}
                ]
            }
        elif service == "object-store":
            html = f"<html><h1>{reason}</h1><p>{message}</p></html>"
            self._send(sent_status or status, html.encode(), extra, "text/html; charset=UTF-8")
            return
        else:
            name = _FAULT_NAMES.get(status, "computeFault")
            inner: dict[str, Any] = {"code": status, "message": message}
            if status in (413, 429) and "Retry-After" in extra:
                inner["retryAfter"] = extra["Retry-After"]
            body = {name: inner}
        self._send(sent_status or status, json.dumps(body).encode(), extra, content_type)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send an RST: the client sees
        # "connection reset by peer" without a byte of response.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # --- routing ---

    def do_GET(self) -> None:
        self._route()

    do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _route(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.sim._log(SimRequest(self.command, parts.path, query, _Headers(self.headers.items())))
        body = b""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        service = "identity"
        try:
            if segments[:1] == ["identity"]:
                self._identity(segments[1:], query, body)
                return
            if len(segments) < 3 or segments[0] != "r" or segments[1] not in self.sim.regions:
                raise _Reply(404, "The resource could not be found.")
            region, service = segments[1], _BY_SEGMENT.get(segments[2], "")
            if service not in self.sim.services or service == "identity":
                raise _Reply(404, "The resource could not be found.")
            self._service(region, service, segments[3:], query)
        except _Done:
            pass
        except _Reply as reply:
            self._error(service, reply.status, reply.message, reply.headers)

    # --- Keystone ---

    def _identity(self, rest: list[str], query: dict[str, str], body: bytes) -> None:
        sim = self.sim
        root = f"{sim.url}/identity"
        version = {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{root}/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }
        if not rest:
            # Keystone answers its root with 300 Multiple Choices.
            self._json({"versions": {"values": [version]}}, status=300)
            return
        if rest[0] != "v3":
            raise _Reply(404, "The resource could not be found.")
        rest = rest[1:]
        if not rest:
            self._json({"version": version})
            return
        if rest == ["auth", "tokens"] and self.command == "POST":
            self._identity_fault_check(None)
            self._issue_token(body)
            return
        token = sim._authenticate(self.headers.get("X-Auth-Token"))
        if token is None:
            raise _Reply(401, _UNAUTHORIZED)
        call = _Call(self.command, "", "identity", rest, query, token, root)
        if rest[-1] == "projects":
            call.listing, call.page = "projects", 1  # Keystone returns projects in one page
        self._identity_fault_check(call)
        if rest == ["auth", "tokens"]:
            self._validate_token(call)
        elif rest == ["auth", "projects"]:
            self._json(self._project_list(call, self._own_projects(token.user)))
        elif rest == ["projects"]:
            if not token.admin:
                raise _Reply(
                    403,
                    "You are not authorized to perform the requested action: "
                    "identity:list_projects.",
                )
            projects = list(sim._projects_by_id.values())
            if "name" in query:
                projects = [p for p in projects if p.name == query["name"]]
            self._json(self._project_list(call, projects))
        elif len(rest) == 2 and rest[0] == "projects":
            project = sim._projects_by_id.get(rest[1])
            if project is None or not (token.admin or project.id in token.user.roles):
                raise _Reply(404, f"Could not find project: {rest[1]}.")
            self._json({"project": self._project_body(project)})
        elif len(rest) == 3 and rest[0] == "users" and rest[2] == "projects":
            if not (token.admin or rest[1] == token.user.id):
                raise _Reply(
                    403,
                    "You are not authorized to perform the requested action: "
                    "identity:list_user_projects.",
                )
            user = next((u for u in sim._users.values() if u.id == rest[1]), None)
            if user is None:
                raise _Reply(404, f"Could not find user: {rest[1]}.")
            self._json(self._project_list(call, self._own_projects(user)))
        else:
            raise _Reply(404, "The resource could not be found.")

    def _identity_fault_check(self, call: _Call | None) -> None:
        """Keystone's faults; a token request meets any but `forbid`, which needs a token."""
        sim = self.sim
        if call is None:
            with sim._lock:
                fault = next((f for f in sim._armed if f.take("identity", None)), None)
        else:
            found = sim._fault_for(call)
            if isinstance(found, _Reply):
                raise found
            fault = found
        if fault is not None:
            self._apply_fault("identity", fault)
            raise _Done

    def _own_projects(self, user: _User) -> list[_Project]:
        return [self.sim._projects_by_id[pid] for pid in user.roles]

    def _project_body(self, project: _Project) -> dict[str, Any]:
        return {
            "id": project.id,
            "name": project.name,
            "domain_id": DOMAIN["id"],
            "description": "",
            "enabled": True,
            "is_domain": False,
            "parent_id": DOMAIN["id"],
            "tags": [],
            "options": {},
            "links": {"self": f"{self.sim.url}/identity/v3/projects/{project.id}"},
        }

    def _project_list(self, call: _Call, projects: list[_Project]) -> dict[str, Any]:
        return {
            "projects": [self._project_body(p) for p in sorted(projects, key=lambda p: p.name)],
            "links": {
                "self": f"{call.base}/v3/{'/'.join(call.rest)}",
                "previous": None,
                "next": None,
            },
        }

    def _issue_token(self, body: bytes) -> None:
        sim = self.sim
        try:
            auth = json.loads(body)["auth"]
            identity = auth["identity"]
            methods = identity["methods"]
        except (ValueError, KeyError, TypeError) as error:
            raise _Reply(400, f"Invalid authentication request: {error}") from None
        with sim._lock:
            user: _User | None = None
            if "password" in methods:
                claimed = identity.get("password", {}).get("user", {})
                if "id" in claimed:
                    user = next((u for u in sim._users.values() if u.id == claimed["id"]), None)
                else:
                    domain = claimed.get("domain") or {}
                    if (
                        domain.get("id", "default") == "default"
                        and domain.get("name", "Default") == "Default"
                    ):
                        user = sim._users.get(str(claimed.get("name")))
                password = str(claimed.get("password", ""))
                if user is None or not hmac.compare_digest(user.password, password):
                    raise _Reply(401, _UNAUTHORIZED)
            elif "token" in methods:
                held = sim._tokens.get(str(identity.get("token", {}).get("id")))
                if held is None or held.expired or held.expires_at <= datetime.now(UTC):
                    raise _Reply(401, _UNAUTHORIZED)
                user = held.user
            else:
                raise _Reply(401, f"Unsupported authentication methods: {methods}")
            scope = auth.get("scope")
            project: _Project | None = None
            if scope:
                wanted = scope.get("project")
                if not isinstance(wanted, dict):
                    raise _Reply(401, "The simulator scopes tokens to projects only.")
                if "id" in wanted:
                    project = sim._projects_by_id.get(str(wanted["id"]))
                else:
                    project = sim._projects.get(str(wanted.get("name")))
                if project is None or project.id not in user.roles:
                    raise _Reply(401, _UNAUTHORIZED)
        token = sim._issue(user, project)
        self._json(
            self._token_body(token, methods),
            status=201,
            headers={"X-Subject-Token": token.value, "Vary": "X-Auth-Token"},
        )

    def _validate_token(self, call: _Call) -> None:
        subject = self.sim._tokens.get(self.headers.get("X-Subject-Token") or "")
        if subject is None or subject.expired or subject.expires_at <= datetime.now(UTC):
            raise _Reply(404, "Could not recognize Fernet token")
        self._json(
            self._token_body(subject, ["password"]), headers={"X-Subject-Token": subject.value}
        )

    def _token_body(self, token: _Token, methods: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "methods": methods,
            "user": {
                "domain": dict(DOMAIN),
                "id": token.user.id,
                "name": token.user.name,
                "password_expires_at": None,
            },
            "audit_ids": [secrets.token_urlsafe(16)[:22]],
            "expires_at": _iso_micro(token.expires_at) + "Z",
            "issued_at": _iso_micro(token.issued_at) + "Z",
        }
        if token.project is not None:
            roles = ["admin", "member", "reader"] if token.admin else ["member", "reader"]
            body["project"] = {
                "domain": dict(DOMAIN),
                "id": token.project.id,
                "name": token.project.name,
            }
            body["is_domain"] = False
            body["roles"] = [{"id": _ROLE_IDS[name], "name": name} for name in roles]
            body["catalog"] = self.sim._catalog(token.project)
        return {"token": body}

    # --- the regional services ---

    def _service(self, region: str, service: str, rest: list[str], query: dict[str, str]) -> None:
        sim = self.sim
        base = f"{sim.url}/r/{quote(region, safe='')}/{SERVICE_PATHS[service][0]}"
        if self._discovery(service, base, rest):
            return
        token = sim._authenticate(self.headers.get("X-Auth-Token"))
        if token is None:
            message = (
                "<html><h1>Unauthorized</h1><p>This server could not verify that you are "
                "authorized to access the document you requested.</p></html>"
                if service == "object-store"
                else _UNAUTHORIZED
            )
            if service == "object-store":
                self._send(401, message.encode(), content_type="text/html; charset=UTF-8")
                return
            raise _Reply(401, message)
        call = _Call(self.command, region, service, rest, query, token, base)
        route = {
            "compute": self._compute,
            "volumev3": self._volume,
            "object-store": self._object_store,
            "placement": self._placement,
            "database": self._database,
        }[service]
        route(call)

    def _discovery(self, service: str, base: str, rest: list[str]) -> bool:
        """Serve the unauthenticated version documents; False if `rest` is not one."""
        if self.command not in ("GET", "HEAD"):
            return False
        if service == "compute" and rest in ([], ["v2.1"]):
            v21 = {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "{}.{}".format(*NOVA_VERSIONS[1]),
                "min_version": "{}.{}".format(*NOVA_VERSIONS[0]),
                "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
            }
            if rest:
                media = [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.compute+json;version=2.1",
                    }
                ]
                self._json({"version": {**v21, "media-types": media}})
            else:
                v20 = {
                    "id": "v2.0",
                    "status": "SUPPORTED",
                    "version": "",
                    "min_version": "",
                    "updated": "2011-01-21T11:33:21Z",
                    "links": [{"rel": "self", "href": f"{base}/v2/"}],
                }
                self._json({"versions": [v20, v21]})
            return True
        if service == "volumev3" and (
            not rest or (rest[0] == "v3" and len(rest) <= 2 and self._is_project(rest[1:]))
        ):
            v3 = {
                "id": "v3.0",
                "status": "CURRENT",
                "version": "{}.{}".format(*CINDER_VERSIONS[1]),
                "min_version": "{}.{}".format(*CINDER_VERSIONS[0]),
                "updated": "2023-08-31T00:00:00Z",
                "links": [{"rel": "self", "href": f"{base}/v3/"}],
                "media-types": [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.volume+json;version=3",
                    }
                ],
            }
            self._json({"versions": [v3]})
            return True
        if service == "placement" and not rest:
            self._json(
                {
                    "versions": [
                        {
                            "id": "v1.0",
                            "max_version": "{}.{}".format(*PLACEMENT_VERSIONS[1]),
                            "min_version": "{}.{}".format(*PLACEMENT_VERSIONS[0]),
                            "status": "CURRENT",
                            "links": [{"rel": "self", "href": ""}],
                        }
                    ]
                }
            )
            return True
        if service == "object-store" and rest == ["info"]:
            limits = {
                "container_listing_limit": self.sim.max_limit,
                "account_listing_limit": self.sim.max_limit,
            }
            self._json({"swift": {"version": "2.33.0", **limits}})
            return True
        if service == "database" and rest in ([], ["v1.0"]):
            self._json(
                {
                    "versions": [
                        {
                            "id": "v1.0",
                            "status": "CURRENT",
                            "updated": "2012-08-01T00:00:00Z",
                            "links": [{"rel": "self", "href": f"{base}/v1.0/"}],
                        }
                    ]
                }
            )
            return True
        return False

    def _is_project(self, rest: list[str]) -> bool:
        return not rest or rest[0] in self.sim._projects_by_id

    def _run(self, call: _Call, serve: Callable[[], None]) -> None:
        """Apply forbid and the armed faults to an authenticated call, else serve it."""
        found = self.sim._fault_for(call)
        if isinstance(found, _Reply):
            raise found
        if found is not None:
            self._apply_fault(call.service, found, call.version)
            return
        serve()

    def _apply_fault(
        self, service: str, fault: _Armed, version: tuple[int, int] | None = None
    ) -> None:
        if fault.reset:
            self._reset()
            return
        headers = self._version_headers(service, version) if version else {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
            message = "This request was rate-limited."
        else:
            message = (
                "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
                "and attach the Nova API log if possible."
            )
        self._error(
            service, fault.status, message, headers, sent_status=200 if fault.disguised else None
        )

    def _version_headers(self, service: str, version: tuple[int, int]) -> dict[str, str]:
        text = f"{version[0]}.{version[1]}"
        if service == "compute":
            return {
                "OpenStack-API-Version": f"compute {text}",
                "X-OpenStack-Nova-API-Version": text,
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            }
        name = {"volumev3": "volume", "placement": "placement"}.get(service)
        if name is None:
            return {}
        return {"OpenStack-API-Version": f"{name} {text}", "Vary": "OpenStack-API-Version"}

    def _requested_version(
        self, names: Sequence[str], legacy: str | None, bounds: tuple[tuple[int, int], ...]
    ) -> tuple[int, int]:
        """The microversion a request asks for (the minimum when it asks for none)."""
        low, high = bounds[0], bounds[1]
        for item in (self.headers.get("OpenStack-API-Version") or "").split(","):
            service, _, text = item.strip().partition(" ")
            if service.lower() in names:
                return _version(text, (low, high))
        if legacy and self.headers.get(legacy):
            return _version(self.headers[legacy], (low, high))
        return low

    def _limit(self, call: _Call) -> int:
        raw = call.query.get("limit")
        if raw is None or raw == "":
            return self.sim.max_limit
        try:
            limit = int(raw)
        except ValueError:
            raise _Reply(400, f"limit param must be an integer: {raw!r}") from None
        if limit < 0:
            raise _Reply(400, "limit param must be positive")
        return min(limit or self.sim.max_limit, self.sim.max_limit)

    def _next_link(self, call: _Call, path: str, last: str) -> list[dict[str, str]]:
        query = {k: v for k, v in call.query.items() if k != "marker"}
        query["marker"] = last
        return [{"rel": "next", "href": f"{call.base}/{path}?{urlencode(query)}"}]

    def _paged(
        self,
        call: _Call,
        collection: _Ordered[T],
        *,
        project_id: str | None,
        keep: Callable[[T], bool] | None = None,
        id_of: Callable[[T], str],
    ) -> tuple[list[T], int]:
        """One page of `collection` for a list call; the page's limit is returned too."""
        limit = self._limit(call)
        marker = call.query.get("marker") or None
        with self.sim._lock:
            if marker is not None and not collection.knows(marker):
                raise _Reply(400, f"marker [{marker}] not found")
            items = collection.page(project_id=project_id, marker=marker, limit=limit, keep=keep)
        if len(items) == limit:
            self.sim._note_next_page(call, id_of(items[-1]))
        return items, limit

    def _list_call(self, call: _Call, listing: str) -> None:
        call.listing = listing
        call.page = self.sim._page_number(call, call.query.get("marker") or None)

    # --- Nova ---

    def _compute(self, call: _Call) -> None:
        call.version = self._requested_version(
            ("compute",), "X-OpenStack-Nova-API-Version", NOVA_VERSIONS
        )
        if call.rest[:1] != ["v2.1"] or self.command not in ("GET", "HEAD"):
            raise _Reply(404, "The resource could not be found.")
        rest = call.rest[1:]
        store = self.sim._regions[call.region]
        serve: Callable[[], None]
        if rest in (["servers"], ["servers", "detail"]):
            self._list_call(call, "servers")
            serve = lambda: self._list_servers(call, store, detail=len(rest) == 2)  # noqa: E731
        elif len(rest) == 2 and rest[0] == "servers":
            serve = lambda: self._show_server(call, store, rest[1])  # noqa: E731
        elif rest in (["flavors"], ["flavors", "detail"]):
            self._list_call(call, "flavors")
            serve = lambda: self._list_flavors(call, store, detail=len(rest) == 2)  # noqa: E731
        elif len(rest) == 2 and rest[0] == "flavors":
            serve = lambda: self._show_flavor(call, store, rest[1])  # noqa: E731
        elif rest in (["os-hypervisors"], ["os-hypervisors", "detail"]):
            self._list_call(call, "hypervisors")
            serve = lambda: self._list_hypervisors(call, store, detail=len(rest) == 2)  # noqa: E731
        elif rest == ["os-hypervisors", "statistics"]:
            serve = lambda: self._hypervisor_statistics(call, store)  # noqa: E731
        else:
            raise _Reply(404, "The resource could not be found.")
        try:
            self._run(call, serve)
        except _Reply as reply:
            reply.headers = {**self._version_headers("compute", call.version), **reply.headers}
            raise

    def _nova_json(self, call: _Call, payload: dict[str, Any]) -> None:
        self._json(payload, headers=self._version_headers("compute", call.version))

    def _list_servers(self, call: _Call, store: _Region, *, detail: bool) -> None:
        query, token = call.query, call.token
        all_tenants = "all_tenants" in query and _bool_query(query["all_tenants"])
        if all_tenants and not token.admin:
            action = "detail" if detail else "index"
            raise _Reply(
                403,
                f"Policy doesn't allow os_compute_api:servers:{action}:"
                "get_all_tenants to be performed.",
            )
        project_id: str | None
        if all_tenants:
            project_id = query.get("project_id") or query.get("tenant_id") or None
        else:
            project_id = token.project.id if token.project else ""
        # Nova hides deleted instances unless an admin asks for them (deleted=true: only
        # those) or a listing asks for changes since a time (deleted ones included).
        deleted_only = token.admin and _bool_query(query.get("deleted"))
        with_deleted = deleted_only or "changes-since" in query
        wanted_status = query.get("status", "").upper() or None

        def keep(server: _Server) -> bool:
            deleted = server.status == "DELETED"
            if (deleted and not with_deleted) or (deleted_only and not deleted):
                return False
            return wanted_status is None or server.status == wanted_status

        servers, limit = self._paged(
            call, store.servers, project_id=project_id, keep=keep, id_of=lambda s: s.id
        )
        bodies = [self._server_body(call, server, detail=detail) for server in servers]
        payload: dict[str, Any] = {"servers": bodies}
        if len(servers) == limit:
            path = "v2.1/servers/detail" if detail else "v2.1/servers"
            payload["servers_links"] = self._next_link(call, path, servers[-1].id)
        self._nova_json(call, payload)

    def _show_server(self, call: _Call, store: _Region, server_id: str) -> None:
        with self.sim._lock:
            server = store.servers.get(server_id)
        token = call.token
        visible = server is not None and server.status != "DELETED"
        if (
            server is None
            or not visible
            or not (token.admin or (token.project and server.project_id == token.project.id))
        ):
            raise _Reply(404, f"Instance {server_id} could not be found.")
        self._nova_json(call, {"server": self._server_body(call, server, detail=True)})

    def _server_body(self, call: _Call, server: _Server, *, detail: bool) -> dict[str, Any]:
        url = f"{call.base}/v2.1/servers/{server.id}"
        links = [
            {"rel": "self", "href": url},
            {"rel": "bookmark", "href": f"{call.base}/servers/{server.id}"},
        ]
        if not detail:
            return {"id": server.id, "name": server.name, "links": links}
        version = call.version
        flavor = server.flavor
        flavor_body: dict[str, Any]
        if version >= (2, 47):
            flavor_body = {
                "vcpus": flavor.vcpus,
                "ram": flavor.ram_mib,
                "disk": flavor.disk_gib,
                "ephemeral": 0,
                "swap": 0,
                "original_name": flavor.name,
                "extra_specs": {"hw_rng:allowed": "True"},
            }
        else:
            flavor_body = {
                "id": flavor.id,
                "links": [{"rel": "bookmark", "href": f"{call.base}/flavors/{flavor.id}"}],
            }
        with self.sim._lock:
            volume_ids = list(self.sim._regions[call.region].attachments.get(server.id, ()))
        attached = [{"id": v, "delete_on_termination": False} for v in volume_ids]
        body: dict[str, Any] = {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "tenant_id": server.project_id,
            "user_id": server.user_id,
            "metadata": dict(server.metadata),
            "hostId": hashlib.sha224(f"{server.project_id}{server.host}".encode()).hexdigest(),
            "image": {
                "id": "6f7c1b3e-0000-4000-8000-00000000cafe",
                "links": [
                    {
                        "rel": "bookmark",
                        "href": f"{call.base}/images/6f7c1b3e-0000-4000-8000-00000000cafe",
                    }
                ],
            },
            "flavor": flavor_body,
            "created": _iso(server.created),
            "updated": _iso(server.updated),
            "addresses": {
                "private": [
                    {
                        "version": 4,
                        "addr": server.ip,
                        "OS-EXT-IPS:type": "fixed",
                        "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:"
                        + ":".join(f"{b:02x}" for b in server.id.encode()[:3]),
                    }
                ]
            },
            "accessIPv4": "",
            "accessIPv6": "",
            "links": links,
            "OS-DCF:diskConfig": "MANUAL",
            "progress": 0,
            "OS-EXT-AZ:availability_zone": "nova",
            "config_drive": "",
            "key_name": None,
            "OS-SRV-USG:launched_at": _iso_micro(server.created),
            "OS-SRV-USG:terminated_at": None,
            "security_groups": [{"name": "default"}],
            "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:vm_state": _VM_STATES[server.status],
            "OS-EXT-STS:power_state": 1 if server.status == "ACTIVE" else 4,
            "os-extended-volumes:volumes_attached": attached,
        }
        if call.token.admin:
            body["OS-EXT-SRV-ATTR:host"] = server.host
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = f"{server.host}.sim"
            body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{server.id[:8]}"
        if version >= (2, 3) and call.token.admin:
            body["OS-EXT-SRV-ATTR:hostname"] = server.name
        if version >= (2, 9):
            body["locked"] = False
        if version >= (2, 19):
            body["description"] = None
        if version >= (2, 26):
            body["tags"] = list(server.tags)
        if version >= (2, 73):
            body["locked_reason"] = None
        if version >= (2, 96):
            body["pinned_availability_zone"] = None
        return body

    def _flavor_body(self, call: _Call, flavor: _Flavor, *, detail: bool) -> dict[str, Any]:
        links = [
            {"rel": "self", "href": f"{call.base}/v2.1/flavors/{flavor.id}"},
            {"rel": "bookmark", "href": f"{call.base}/flavors/{flavor.id}"},
        ]
        if not detail:
            return {"id": flavor.id, "name": flavor.name, "links": links}
        body: dict[str, Any] = {
            "id": flavor.id,
            "name": flavor.name,
            "ram": flavor.ram_mib,
            "vcpus": flavor.vcpus,
            "disk": flavor.disk_gib,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": True,
            "rxtx_factor": 1.0,
            "swap": 0 if call.version >= (2, 75) else "",
            "links": links,
        }
        if call.version >= (2, 55):
            body["description"] = None
        if call.version >= (2, 61):
            body["extra_specs"] = {"hw_rng:allowed": "True"}
        return body

    def _list_flavors(self, call: _Call, store: _Region, *, detail: bool) -> None:
        with self.sim._lock:
            flavors = sorted(store.flavors.values(), key=lambda f: f.id)
        marker = call.query.get("marker")
        if marker:
            ids = [f.id for f in flavors]
            if marker not in ids:
                raise _Reply(400, f"marker [{marker}] not found")
            flavors = flavors[ids.index(marker) + 1 :]
        limit = self._limit(call)
        page = flavors[:limit]
        payload: dict[str, Any] = {
            "flavors": [self._flavor_body(call, f, detail=detail) for f in page]
        }
        if len(page) == limit:
            self.sim._note_next_page(call, page[-1].id)
            path = "v2.1/flavors/detail" if detail else "v2.1/flavors"
            payload["flavors_links"] = self._next_link(call, path, page[-1].id)
        self._nova_json(call, payload)

    def _show_flavor(self, call: _Call, store: _Region, flavor_id: str) -> None:
        flavor = store.flavors.get(flavor_id)
        if flavor is None:
            raise _Reply(404, f"Flavor {flavor_id} could not be found.")
        self._nova_json(call, {"flavor": self._flavor_body(call, flavor, detail=True)})

    def _require_admin(self, call: _Call, policy: str) -> None:
        if not call.token.admin:
            raise _Reply(403, f"Policy doesn't allow {policy} to be performed.")

    def _list_hypervisors(self, call: _Call, store: _Region, *, detail: bool) -> None:
        self._require_admin(call, "os_compute_api:os-hypervisors:list-detail")
        paged = call.version >= (2, 33)
        if not paged:
            call.query.pop("limit", None)
            call.query.pop("marker", None)
        hypervisors, limit = self._paged(
            call, store.hypervisors, project_id=None, id_of=lambda h: h.id
        )
        bodies = []
        for hypervisor in hypervisors:
            body: dict[str, Any] = {
                # Before 2.53 a hypervisor's id is the compute node's database number.
                "id": hypervisor.id if call.version >= (2, 53) else hypervisor.number,
                "hypervisor_hostname": hypervisor.hostname,
                "state": "up",
                "status": "enabled",
            }
            if detail:
                body.update(
                    {
                        "hypervisor_type": "QEMU",
                        "hypervisor_version": 8002000,
                        "host_ip": hypervisor.host_ip,
                        "service": {
                            "host": hypervisor.hostname.split(".")[0],
                            "id": _new_id(),
                            "disabled_reason": None,
                        },
                    }
                )
                if call.version < (2, 88):
                    body.update(
                        {
                            "vcpus": hypervisor.vcpus,
                            "memory_mb": hypervisor.memory_mib,
                            "local_gb": hypervisor.local_gb,
                            "vcpus_used": hypervisor.vcpus_used,
                            "memory_mb_used": hypervisor.memory_mib_used,
                            "local_gb_used": hypervisor.local_gb_used,
                            "free_ram_mb": hypervisor.memory_mib - hypervisor.memory_mib_used,
                            "free_disk_gb": hypervisor.local_gb - hypervisor.local_gb_used,
                            "current_workload": 0,
                            "running_vms": 0,
                            "disk_available_least": hypervisor.local_gb - hypervisor.local_gb_used,
                            "cpu_info": json.dumps({"arch": "x86_64", "model": "Haswell"}),
                        }
                    )
                else:
                    body["uptime"] = " 10:00:00 up 42 days"
            bodies.append(body)
        payload: dict[str, Any] = {"hypervisors": bodies}
        if paged and len(hypervisors) == limit:
            path = "v2.1/os-hypervisors/detail" if detail else "v2.1/os-hypervisors"
            payload["hypervisors_links"] = self._next_link(call, path, hypervisors[-1].id)
        self._nova_json(call, payload)

    def _hypervisor_statistics(self, call: _Call, store: _Region) -> None:
        self._require_admin(call, "os_compute_api:os-hypervisors:statistics")
        if call.version >= (2, 88):
            raise _Reply(404, "The resource could not be found.")
        with self.sim._lock:
            hypervisors = list(store.hypervisors)
        totals = {
            "count": len(hypervisors),
            "vcpus": sum(h.vcpus for h in hypervisors),
            "memory_mb": sum(h.memory_mib for h in hypervisors),
            "local_gb": sum(h.local_gb for h in hypervisors),
            "vcpus_used": sum(h.vcpus_used for h in hypervisors),
            "memory_mb_used": sum(h.memory_mib_used for h in hypervisors),
            "local_gb_used": sum(h.local_gb_used for h in hypervisors),
            "current_workload": 0,
            "running_vms": 0,
        }
        totals["free_ram_mb"] = totals["memory_mb"] - totals["memory_mb_used"]
        totals["free_disk_gb"] = totals["local_gb"] - totals["local_gb_used"]
        totals["disk_available_least"] = totals["free_disk_gb"]
        self._nova_json(call, {"hypervisor_statistics": totals})

    # --- Cinder ---

    def _project_in_path(self, call: _Call, project_id: str) -> None:
        """The project in a URL must be the token's own, unless the token is admin."""
        token = call.token
        own = token.project.id if token.project else None
        if project_id not in self.sim._projects_by_id:
            raise _Reply(404, f"Project {project_id} could not be found.")
        if project_id != own and not token.admin:
            raise _Reply(403, "Malformed request url: project_id does not match the token.")

    def _volume(self, call: _Call) -> None:
        call.version = self._requested_version(("volume", "block-storage"), None, CINDER_VERSIONS)
        rest = call.rest
        if len(rest) < 3 or rest[0] != "v3" or self.command not in ("GET", "HEAD"):
            raise _Reply(404, "The resource could not be found.")
        self._project_in_path(call, rest[1])
        rest = rest[2:]
        store = self.sim._regions[call.region]
        serve: Callable[[], None]
        if rest in (["volumes"], ["volumes", "detail"]):
            self._list_call(call, "volumes")
            serve = lambda: self._list_volumes(call, store, detail=len(rest) == 2)  # noqa: E731
        elif len(rest) == 2 and rest[0] == "volumes":
            serve = lambda: self._show_volume(call, store, rest[1])  # noqa: E731
        else:
            raise _Reply(404, "The resource could not be found.")
        try:
            self._run(call, serve)
        except _Reply as reply:
            reply.headers = {**self._version_headers("volumev3", call.version), **reply.headers}
            raise

    def _list_volumes(self, call: _Call, store: _Region, *, detail: bool) -> None:
        query, token = call.query, call.token
        # Cinder quietly ignores all_tenants from a non-admin.
        all_tenants = token.admin and "all_tenants" in query and _bool_query(query["all_tenants"])
        project_id = (query.get("project_id") or None) if all_tenants else call.rest[1]
        wanted_status = query.get("status") or None
        volumes, limit = self._paged(
            call,
            store.volumes,
            project_id=project_id,
            keep=None if wanted_status is None else (lambda v: v.status == wanted_status),
            id_of=lambda v: v.id,
        )
        payload: dict[str, Any] = {
            "volumes": [self._volume_body(call, v, detail=detail) for v in volumes]
        }
        if len(volumes) == limit:
            path = f"v3/{call.rest[1]}/volumes" + ("/detail" if detail else "")
            payload["volumes_links"] = self._next_link(call, path, volumes[-1].id)
        self._json(payload, headers=self._version_headers("volumev3", call.version))

    def _show_volume(self, call: _Call, store: _Region, volume_id: str) -> None:
        with self.sim._lock:
            volume = store.volumes.get(volume_id)
        token = call.token
        if volume is None or not (
            token.admin or (token.project and volume.project_id == token.project.id)
        ):
            raise _Reply(404, f"Volume {volume_id} could not be found.")
        self._json(
            {"volume": self._volume_body(call, volume, detail=True)},
            headers=self._version_headers("volumev3", call.version),
        )

    def _volume_body(self, call: _Call, volume: _Volume, *, detail: bool) -> dict[str, Any]:
        url = f"{call.base}/v3/{volume.project_id}/volumes/{volume.id}"
        links = [
            {"rel": "self", "href": url},
            {"rel": "bookmark", "href": f"{call.base}/{volume.project_id}/volumes/{volume.id}"},
        ]
        if not detail:
            return {"id": volume.id, "name": volume.name, "links": links}
        attachments = []
        if volume.attached_to is not None:
            attachments.append(
                {
                    "id": volume.id,
                    "attachment_id": volume.attachment_id,
                    "volume_id": volume.id,
                    "server_id": volume.attached_to,
                    "host_name": None,
                    "device": "/dev/vdb",
                    "attached_at": _iso_micro(volume.created),
                }
            )
        body: dict[str, Any] = {
            "id": volume.id,
            "name": volume.name,
            "size": volume.size_gib,
            "status": volume.status,
            "metadata": dict(volume.metadata),
            "attachments": attachments,
            "created_at": _iso_micro(volume.created),
            "updated_at": _iso_micro(volume.created),
            "volume_type": "__DEFAULT__",
            "bootable": "false",
            "encrypted": False,
            "multiattach": False,
            "availability_zone": "nova",
            "description": None,
            "snapshot_id": None,
            "source_volid": None,
            "consistencygroup_id": None,
            "replication_status": None,
            "user_id": volume.user_id,
            "os-vol-tenant-attr:tenant_id": volume.project_id,
            "os-vol-mig-status-attr:migstat": None,
            "os-vol-mig-status-attr:name_id": None,
            "links": links,
        }
        if call.token.admin:
            body["os-vol-host-attr:host"] = "cinder-volume@lvm#lvm"
        if call.version >= (3, 13):
            body["group_id"] = None
        if call.version >= (3, 48):
            body["shared_targets"] = False
            body["service_uuid"] = "0b8c8f2a-0000-4000-8000-00000000c1de"
        if call.version >= (3, 63):
            body["volume_type_id"] = "5f0c8f2a-0000-4000-8000-0000000071fe"
        if call.version >= (3, 65):
            body["consumes_quota"] = True
        return body

    # --- Swift ---

    def _object_store(self, call: _Call) -> None:
        rest = call.rest
        if len(rest) < 2 or rest[0] != "v1" or not rest[1].startswith("AUTH_"):
            raise _Reply(404, "The resource could not be found.")
        project_id = rest[1].removeprefix("AUTH_")
        token = call.token
        if project_id not in self.sim._projects_by_id:
            raise _Reply(404, "The resource could not be found.")
        # Swift's keystoneauth: an account is its project's, whatever the role elsewhere.
        if token.project is None or token.project.id != project_id:
            raise _Reply(403, "Access was denied to this resource.")
        store = self.sim._regions[call.region]
        serve: Callable[[], None]
        if len(rest) == 2 and self.command in ("GET", "HEAD"):
            if self.command == "GET":
                self._list_call(call, "containers")
            serve = lambda: self._account(call, store, project_id)  # noqa: E731
        elif len(rest) == 3 and self.command in ("GET", "HEAD"):
            serve = lambda: self._container(call, store, project_id, rest[2])  # noqa: E731
        else:
            raise _Reply(405, "The method is not allowed for this resource.")
        self._run(call, serve)

    def _account(self, call: _Call, store: _Region, project_id: str) -> None:
        query = call.query
        sim = self.sim
        with sim._lock:
            account = store.containers.get(project_id, {})
            names = store.container_names.get(project_id, [])
            headers = {
                "X-Account-Container-Count": str(len(names)),
                "X-Account-Object-Count": str(sum(c.object_count for c in account.values())),
                "X-Account-Bytes-Used": str(sum(c.bytes_used for c in account.values())),
                "X-Timestamp": f"{datetime(2024, 1, 1, tzinfo=UTC).timestamp():.5f}",
                "X-Trans-Id": f"tx{_hex_id()[:21]}-{_hex_id()[:10]}",
                "Accept-Ranges": "bytes",
            }
            if self.command == "HEAD":
                self._send(204, b"", headers)
                return
            raw_limit = query.get("limit")
            limit = sim.max_limit
            if raw_limit:
                try:
                    limit = int(raw_limit)
                except ValueError:
                    raise _Reply(412, "Value of limit must be an integer") from None
                if limit > sim.max_limit:
                    raise _Reply(412, f"Maximum limit is {sim.max_limit}")
            start = 0
            if query.get("marker"):
                start = bisect.bisect_right(names, query["marker"])
            end = len(names)
            if query.get("end_marker"):
                end = bisect.bisect_left(names, query["end_marker"])
            prefix = query.get("prefix", "")
            chosen = (
                [n for n in names[start:end] if n.startswith(prefix)][:limit]
                if prefix
                else (names[start : min(end, start + limit)])
            )
            page = [account[name] for name in chosen]
        if len(page) == limit and page:
            sim._note_next_page(call, page[-1].name)
        wants_json = query.get("format") == "json" or "application/json" in (
            self.headers.get("Accept") or ""
        )
        if wants_json:
            listing = [
                {
                    "name": c.name,
                    "count": c.object_count,
                    "bytes": c.bytes_used,
                    "last_modified": _iso_micro(c.created),
                }
                for c in page
            ]
            self._send(
                200, json.dumps(listing).encode(), headers, "application/json; charset=utf-8"
            )
        else:
            text = "".join(f"{c.name}\n" for c in page).encode()
            self._send(200 if text else 204, text, headers, "text/plain; charset=utf-8")

    def _container(self, call: _Call, store: _Region, project_id: str, name: str) -> None:
        with self.sim._lock:
            container = store.containers.get(project_id, {}).get(name)
        if container is None:
            raise _Reply(404, "The resource could not be found.")
        headers = {
            "X-Container-Object-Count": str(container.object_count),
            "X-Container-Bytes-Used": str(container.bytes_used),
            "X-Timestamp": f"{container.created.timestamp():.5f}",
            "X-Storage-Policy": "Policy-0",
        }
        if self.command == "HEAD":
            self._send(204, b"", headers)
        else:
            self._send(200, b"[]", headers, "application/json; charset=utf-8")

    # --- Placement ---

    def _placement(self, call: _Call) -> None:
        call.version = self._requested_version(("placement",), None, PLACEMENT_VERSIONS)
        rest = call.rest
        if rest[:1] != ["resource_providers"] or self.command not in ("GET", "HEAD"):
            raise _Reply(404, "The resource could not be found.")
        store = self.sim._regions[call.region]
        if len(rest) == 1:
            call.listing = "resource_providers"
            call.page = 1
        serve = lambda: self._resource_providers(call, store, rest[1:])  # noqa: E731
        try:
            self._run(call, serve)
        except _Reply as reply:
            reply.headers = {**self._version_headers("placement", call.version), **reply.headers}
            raise

    def _resource_providers(self, call: _Call, store: _Region, rest: list[str]) -> None:
        if not call.token.admin:
            raise _Reply(
                403, "Policy does not allow placement:resource_providers:list to be performed."
            )
        headers = self._version_headers("placement", call.version)
        with self.sim._lock:
            hypervisors = list(store.hypervisors)
        base = "/resource_providers"

        def provider(h: _Hypervisor) -> dict[str, Any]:
            own = f"{base}/{h.id}"
            return {
                "uuid": h.id,
                "name": h.hostname,
                "generation": 1,
                "parent_provider_uuid": None,
                "root_provider_uuid": h.id,
                "links": [
                    {"rel": "self", "href": own},
                    {"rel": "inventories", "href": f"{own}/inventories"},
                    {"rel": "usages", "href": f"{own}/usages"},
                ],
            }

        if not rest:
            name = call.query.get("name")
            chosen = [h for h in hypervisors if name is None or h.hostname == name]
            self._json({"resource_providers": [provider(h) for h in chosen]}, headers=headers)
            return
        found = next((h for h in hypervisors if h.id == rest[0]), None)
        if found is None:
            raise _Reply(404, f"No resource provider with uuid {rest[0]} found")
        if len(rest) == 1:
            self._json(provider(found), headers=headers)
        elif rest[1:] == ["inventories"]:
            inventories = {
                "VCPU": self._inventory(found.vcpus, 4.0),
                "MEMORY_MB": self._inventory(found.memory_mib, 1.0),
                "DISK_GB": self._inventory(found.local_gb, 1.0),
            }
            self._json(
                {"resource_provider_generation": 1, "inventories": inventories}, headers=headers
            )
        elif rest[1:] == ["usages"]:
            usages = {
                "VCPU": found.vcpus_used,
                "MEMORY_MB": found.memory_mib_used,
                "DISK_GB": found.local_gb_used,
            }
            self._json({"resource_provider_generation": 1, "usages": usages}, headers=headers)
        else:
            raise _Reply(404, "The resource could not be found.")

    @staticmethod
    def _inventory(total: int, ratio: float) -> dict[str, Any]:
        return {
            "total": total,
            "reserved": 0,
            "min_unit": 1,
            "max_unit": total,
            "step_size": 1,
            "allocation_ratio": ratio,
        }

    # --- Trove ---

    def _database(self, call: _Call) -> None:
        rest = call.rest
        if len(rest) < 3 or rest[0] != "v1.0" or self.command not in ("GET", "HEAD"):
            raise _Reply(404, "The resource could not be found.")
        self._project_in_path(call, rest[1])
        store = self.sim._regions[call.region]
        tail = rest[2:]
        serve: Callable[[], None]
        if tail in (["instances"], ["mgmt", "instances"]):
            if tail[0] == "mgmt":
                self._require_admin(call, "trove:mgmt:instance:index")
            self._list_call(call, "instances")
            project_id = None if tail[0] == "mgmt" else rest[1]
            serve = lambda: self._list_databases(call, store, project_id)  # noqa: E731
        elif len(tail) == 2 and tail[0] == "instances":
            serve = lambda: self._show_database(call, store, tail[1])  # noqa: E731
        elif tail == ["flavors"]:
            serve = lambda: self._json(  # noqa: E731
                {"flavors": [self._trove_flavor(call, f) for f in store.flavors.values()]}
            )
        elif len(tail) == 2 and tail[0] == "flavors":
            flavor = store.flavors.get(tail[1])
            if flavor is None:
                raise _Reply(404, f"Resource {tail[1]} could not be found.")
            serve = lambda: self._json({"flavor": self._trove_flavor(call, flavor)})  # noqa: E731
        else:
            raise _Reply(404, "The resource could not be found.")
        self._run(call, serve)

    def _trove_flavor(self, call: _Call, flavor: _Flavor) -> dict[str, Any]:
        href = f"{call.base}/v1.0/{call.rest[1]}/flavors/{flavor.id}"
        return {
            "id": flavor.id,
            "str_id": flavor.id,
            "name": flavor.name,
            "ram": flavor.ram_mib,
            "vcpus": flavor.vcpus,
            "disk": flavor.disk_gib,
            "links": [{"rel": "self", "href": href}],
        }

    def _database_body(self, call: _Call, database: _Database) -> dict[str, Any]:
        href = f"{call.base}/v1.0/{database.project_id}/instances/{database.id}"
        flavor_href = f"{call.base}/v1.0/{database.project_id}/flavors/{database.flavor.id}"
        return {
            "id": database.id,
            "name": database.name,
            "status": database.status,
            "tenant_id": database.project_id,
            "region": call.region,
            "flavor": {"id": database.flavor.id, "links": [{"rel": "self", "href": flavor_href}]},
            "volume": {"size": database.volume_gib},
            "datastore": {"type": "mysql", "version": "8.0.29"},
            "created": _iso(database.created),
            "updated": _iso(database.created),
            "links": [{"rel": "self", "href": href}],
        }

    def _list_databases(self, call: _Call, store: _Region, project_id: str | None) -> None:
        databases, limit = self._paged(
            call, store.databases, project_id=project_id, id_of=lambda d: d.id
        )
        payload: dict[str, Any] = {"instances": [self._database_body(call, d) for d in databases]}
        if len(databases) == limit:
            path = "/".join(["v1.0", *call.rest[1:]])
            payload["links"] = self._next_link(call, path, databases[-1].id)
        self._json(payload)

    def _show_database(self, call: _Call, store: _Region, database_id: str) -> None:
        with self.sim._lock:
            database = store.databases.get(database_id)
        if database is None or database.project_id != call.rest[1]:
            raise _Reply(404, f"Resource {database_id} could not be found.")
        self._json({"instance": self._database_body(call, database)})


class _Done(Exception):
    """The response is already sent."""


def main(argv: list[str] | None = None) -> None:
    """Serve a simulated cloud until interrupted (for benchmarks, demos and the CLI by hand)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="python -m inventory.sim.openstack", description=main.__doc__
    )
    parser.add_argument("--servers", type=int, default=0, help="servers in the admin project")
    parser.add_argument("--max-limit", type=int, default=1000, help="server-side page cap")
    parser.add_argument("--clouds-yaml", help="write a clouds.yaml pointing at the simulator here")
    args = parser.parse_args(argv)
    sim = OpenStackSimulator(max_limit=args.max_limit)
    for index in range(args.servers):
        sim.add_server("admin", name=f"vm-{index:06d}")
    sim.start()
    if args.clouds_yaml:
        sim.write_clouds_yaml(Path(args.clouds_yaml))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    # The first line of output is the auth URL: a parent process waits for it to know we are up.
    print(sim.auth_url, flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
