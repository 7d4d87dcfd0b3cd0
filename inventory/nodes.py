"""Node definitions: the node file's schema, its complete and atomic validation, and its upsert."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import sqlalchemy as sa
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, select

from inventory import locks
from inventory.access import Actor
from inventory.audit import record
from inventory.i18n import LANGS, Wording, text
from inventory.models import Node, utcnow
from inventory.node_rows import rename_source_rows, retire_node_rows, source_has_rows
from inventory.registry import CITIES, PROVINCIAL, parse_city
from inventory.secret_shape import AWS_ACCESS_KEY_ID, REDACTED, names_a_secret
from inventory.urls import UrlCredentials, credentials_in_text, mask_url, mask_urls_in

NodeLevel = Literal[
    "province_core", "city_backbone", "department_cloud", "server_room", "external_leased"
]
LEVELS: tuple[str, ...] = get_args(NodeLevel)
AwsService = Literal["ec2", "ebs", "s3", "rds"]
AWS_SERVICES: tuple[str, ...] = get_args(AwsService)
AddressingStyle = Literal["path", "virtual", "auto"]
ADDRESSING_STYLES: tuple[str, ...] = get_args(AddressingStyle)
OpenstackService = Literal["compute", "volume", "object_store", "database"]
OPENSTACK_SERVICES: tuple[str, ...] = get_args(OpenstackService)
SOURCE_KINDS: tuple[str, ...] = ("aws", "kubernetes", "vsphere", "openstack")
# Words people use for a source kind that is not its name, so "did you mean" can still help.
_KIND_SYNONYMS = {
    "k8s": "kubernetes",
    "kube": "kubernetes",
    "s3": "aws",
    "ec2": "aws",
    "minio": "aws",
    "ceph": "aws",
    "vmware": "vsphere",
    "vcenter": "vsphere",
    "esxi": "vsphere",
    "nova": "openstack",
    "huawei": "openstack",
    "hcs": "openstack",
    "incloud": "openstack",
    "easystack": "openstack",
}
DEFAULT_SYSTEM_TAG = "yiyun.io/system"

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NAMESPACE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

# The reason given for a URL with a user, a password or a credential in its query; the message
# itself, in each language, names which of them (_url_refusal).
_URL_WITH_CREDENTIALS = "the value{where} is a URL carrying credentials"
# What a refused value is replaced by before validation, so no later message can echo it.
_REDACTED = REDACTED


def did_you_mean(
    word: str, choices: Sequence[str], synonyms: dict[str, str] | None = None
) -> Wording | str:
    """The suffix " (did you mean 'x'?)" naming the closest choice, or "" when none is close."""
    lowered = word.strip().lower()
    if synonyms and lowered in synonyms:
        return Wording("nf_did_you_mean", name=repr(synonyms[lowered]))
    close = difflib.get_close_matches(lowered, choices, n=1, cutoff=0.6)
    if not close and len(lowered) >= 3:
        # A truncated name ("mlps" for "mlps_level") is not close by ratio but is obvious.
        close = [choice for choice in choices if choice.startswith(lowered)][:1]
    return Wording("nf_did_you_mean", name=repr(close[0])) if close else ""


def normalize_city(value: str) -> str:
    """省级 or a city's canonical name: 南京 and 南京市 both become 南京市. The register's own
    parser decides (one list of aliases); this only words the error for a node file."""
    try:
        return parse_city(value)
    except ValueError:
        text = value.strip()
        name = text if text.endswith("市") else f"{text}市"
        raise Wording(
            "nf_unknown_city",
            value=repr(value),
            hint=did_you_mean(name, CITIES),
            provincial=PROVINCIAL,
            cities=" ".join(CITIES),
        ) from None


# --- source identity: the key of a source's rows, and the endpoint it lists ------------------

# A source id keys its rows (Resource.source, ScopeResult.source) and is written to the node
# file's `id:` (or `name:`, its older spelling), else derived from the source's kind and
# endpoint: never from its place in the list, so adding, removing or reordering sources never
# renames another source's rows. Migration 0005 holds a frozen copy of this derivation.
SOURCE_ID_MAX = 63
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _bounded_id(kind: str, detail: str) -> str:
    """`kind-<slug of detail>`, cut to SOURCE_ID_MAX with a hash of the detail when longer."""
    slug = _slug(detail)
    digest = hashlib.sha256(detail.encode()).hexdigest()[:8]
    if not slug:
        return f"{kind}-{digest}"
    whole = f"{kind}-{slug}"
    if len(whole) <= SOURCE_ID_MAX:
        return whole
    return f"{whole[: SOURCE_ID_MAX - 9].rstrip('-')}-{digest}"


def derived_source_id(source: Mapping[str, Any]) -> str | None:
    """The id of a source that names none: aws-<host[-port][-path]> from its endpoint_url,
    kubernetes-<context>; None when the source lacks what it is derived from."""
    kind = source.get("kind")
    if kind == "aws" and isinstance(source.get("endpoint_url"), str):
        parts = urlsplit(source["endpoint_url"].strip())
        try:
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        detail = parts.hostname.rstrip(".")
        if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
            detail += f"-{port}"
        path = parts.path.strip("/")
        return _bounded_id("aws", f"{detail}-{path}" if path else detail)
    if kind == "kubernetes" and isinstance(source.get("context"), str):
        return _bounded_id("kubernetes", source["context"].strip())
    if kind == "vsphere" and isinstance(source.get("host"), str):
        port = source.get("port", 443)
        host = source["host"].strip().lower().rstrip(".")
        return _bounded_id("vsphere", host if port == 443 else f"{host}-{port}")
    if kind == "openstack" and isinstance(source.get("cloud"), str):
        return _bounded_id("openstack", source["cloud"].strip())
    return None


def source_key(source: Mapping[str, Any]) -> str | None:
    """The id a source's rows are kept under: its own `id:`/`name:`, else the derived one."""
    for given in (source.get("id"), source.get("name")):
        if isinstance(given, str) and given:
            return given
    return derived_source_id(source)


@dataclass(frozen=True)
class Endpoint:
    """What a source lists, for telling two sources that list the same things apart."""

    kind: str
    # How people recognise it: the endpoint URL, or the cluster.
    where: str
    # Two endpoints are the same when they share a key: (host, port, path) for aws; for
    # kubernetes the cluster's server URL when the kubeconfig is readable, and always the
    # (kubeconfig path, context) pair.
    keys: frozenset[tuple[str, ...]]
    # Regions (aws) or namespaces (kubernetes) listed; None is every namespace.
    parts: frozenset[str] | None

    def overlap(self, other: Endpoint) -> frozenset[str] | None:
        """What both list (None: everything), or an empty set when they list different things."""
        if self.parts is None:
            return other.parts
        if other.parts is None:
            return self.parts
        return self.parts & other.parts

    def same_as(self, other: Endpoint) -> bool:
        if self.kind != other.kind or not self.keys & other.keys:
            return False
        overlap = self.overlap(other)
        return overlap is None or bool(overlap)


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    """The files the Kubernetes client would read: the given one, else $KUBECONFIG's, else
    ~/.kube/config."""
    if kubeconfig:
        candidates = [kubeconfig]
    else:
        candidates = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        candidates = candidates or ["~/.kube/config"]
    return [os.path.abspath(os.path.expanduser(path)) for path in candidates]


# A kubeconfig is a few kilobytes; anything far larger is not one and is not read.
_MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024


def kubeconfig_server(kubeconfig: str | None, context: str) -> str | None:
    """The API server URL a kubeconfig context points at, read from the file (no network), or
    None when the file or the context cannot be read. Nothing else of the file is kept."""
    contexts: dict[str, Any] = {}
    clusters: dict[str, Any] = {}
    for path in _kubeconfig_paths(kubeconfig):
        try:
            if os.path.getsize(path) > _MAX_KUBECONFIG_BYTES:
                continue
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(config, dict):
            continue
        # Merged as the client merges $KUBECONFIG: the first file naming an entry wins.
        for entries, key, into in (
            (config.get("contexts"), "context", contexts),
            (config.get("clusters"), "cluster", clusters),
        ):
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get(key), dict):
                    into.setdefault(str(entry.get("name")), entry[key])
    cluster = clusters.get(str(contexts.get(context, {}).get("cluster")), {})
    server = cluster.get("server")
    if not isinstance(server, str) or not server.strip():
        return None
    parts = urlsplit(server.strip())
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.scheme.lower()}://{parts.hostname}:{port}{parts.path.rstrip('/')}"


def source_endpoint(
    source: Mapping[str, Any], servers: dict[tuple[str | None, str], str | None] | None = None
) -> Endpoint | None:
    """The endpoint a (validated or stored) source lists; None for one too broken to tell.

    `servers` caches kubeconfig reads across the sources of one check.
    """
    kind = source.get("kind")
    if kind == "aws" and isinstance(source.get("endpoint_url"), str):
        url = source["endpoint_url"].strip()
        parts = urlsplit(url)
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        except ValueError:
            return None
        host = (parts.hostname or "").rstrip(".")
        regions = source.get("regions")
        listed = frozenset(r for r in regions if isinstance(r, str)) if regions else frozenset()
        key = ("aws", host, str(port), parts.path.rstrip("/"))
        return Endpoint("aws", f"endpoint {mask_url(url)}", frozenset({key}), listed)
    if kind == "kubernetes" and isinstance(source.get("context"), str):
        kubeconfig = source.get("kubeconfig") if isinstance(source.get("kubeconfig"), str) else None
        context = source["context"].strip()
        cache = servers if servers is not None else {}
        if (kubeconfig, context) not in cache:
            cache[kubeconfig, context] = kubeconfig_server(kubeconfig, context)
        server = cache[kubeconfig, context]
        paths = ":".join(_kubeconfig_paths(kubeconfig))
        keys: set[tuple[str, ...]] = {("kubernetes-context", paths, context)}
        if server is not None:
            keys.add(("kubernetes-server", server))
        namespaces = source.get("namespaces")
        scoped = frozenset(namespaces) if isinstance(namespaces, list) else None
        where = (
            f"cluster {server} (context {context!r})"
            if server
            else f"context {context!r} of kubeconfig {kubeconfig or paths}"
        )
        return Endpoint("kubernetes", where, frozenset(keys), scoped)
    if kind == "vsphere" and isinstance(source.get("host"), str):
        host = source["host"].strip().lower().rstrip(".")
        port = source.get("port", 443)
        datacenters = source.get("datacenters")
        named = frozenset(d for d in datacenters if isinstance(d, str)) if datacenters else None
        where = f"vCenter {host}:{port}"
        return Endpoint("vsphere", where, frozenset({("vsphere", host, str(port))}), named)
    if kind == "openstack" and isinstance(source.get("cloud"), str):
        cloud = source["cloud"].strip()
        clouds_yaml = source.get("clouds_yaml")
        where_file = os.path.abspath(clouds_yaml) if isinstance(clouds_yaml, str) else "clouds.yaml"
        regions = source.get("regions")
        in_regions = frozenset(r for r in regions if isinstance(r, str)) if regions else None
        where = f"cloud {cloud!r} of {where_file}"
        os_key: tuple[str, ...] = ("openstack", where_file, cloud)
        return Endpoint("openstack", where, frozenset({os_key}), in_regions)
    return None


@dataclass(frozen=True)
class DuplicateEndpoint:
    """Two nodes whose sources list the same things: scanning both would count them twice."""

    node_id: str
    source: str
    other_node_id: str
    other_source: str
    where: str
    # The regions, namespaces or datacenters both list (None: every namespace).
    overlap: frozenset[str] | None
    kind: str = "aws"

    def describe(self) -> Wording | str:
        if self.overlap is None:
            return self.where
        what = {"kubernetes": "nf_what_namespace", "vsphere": "nf_what_datacenter"}.get(
            self.kind, "nf_what_region"
        )
        return Wording(
            "nf_endpoint_overlap",
            where=self.where,
            what=Wording(what),
            names=", ".join(sorted(self.overlap)),
        )


NodeSources = tuple[str, Sequence[Mapping[str, Any]]]


def duplicate_endpoints(
    nodes: Sequence[NodeSources], against: Sequence[NodeSources] = ()
) -> list[DuplicateEndpoint]:
    """Pairs of sources on different nodes that list the same endpoint (aws: the same
    endpoint_url with a region in common; kubernetes: the same cluster with a namespace in
    common): among `nodes`, and between `nodes` and `against` (nodes kept in the ledger)."""
    servers: dict[tuple[str | None, str], str | None] = {}

    def endpoints(group: Sequence[NodeSources]) -> list[tuple[str, str, Endpoint]]:
        found = []
        for node_id, sources in group:
            for source in sources:
                endpoint = source_endpoint(source, servers)
                if endpoint is not None:
                    found.append((node_id, source_key(source) or str(source.get("kind")), endpoint))
        return found

    mine, theirs = endpoints(nodes), endpoints(against)
    listed = [endpoint for _, _, endpoint in mine + theirs]
    # Every pair of `mine` and every (mine, theirs) pair, in that order, but only those that
    # could be the same: comparing all pairs of 20,000 nodes is 200 million comparisons.
    order = sorted(
        _candidate_pairs(listed, len(mine)), key=lambda pair: (pair[1] >= len(mine), pair)
    )
    everyone = mine + theirs
    pairs = [(everyone[i], everyone[j]) for i, j in order]
    duplicates = []
    seen: set[tuple[str, str]] = set()
    for (node_id, source, endpoint), (other_id, other_source, other) in pairs:
        if node_id == other_id or not endpoint.same_as(other) or (node_id, other_id) in seen:
            continue
        seen.add((node_id, other_id))
        duplicates.append(
            DuplicateEndpoint(
                node_id,
                source,
                other_id,
                other_source,
                endpoint.where,
                endpoint.overlap(other),
                endpoint.kind,
            )
        )
    return duplicates


def _candidate_pairs(endpoints: Sequence[Endpoint], mine: int) -> set[tuple[int, int]]:
    """(i, j), i < j, i among the first `mine` endpoints: the pairs that share a key and a
    region or namespace (or where one lists every namespace) and so may list the same things."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, endpoint in enumerate(endpoints):
        for key in endpoint.keys:
            groups.setdefault(key, []).append(index)
    pairs: set[tuple[int, int]] = set()

    def add(members: Sequence[int], others: Sequence[int]) -> None:
        for i in members:
            for j in others:
                if i != j and min(i, j) < mine:
                    pairs.add((min(i, j), max(i, j)))

    for members in groups.values():
        if len(members) < 2:
            continue
        by_part: dict[str, list[int]] = {}
        for index in members:
            for part in endpoints[index].parts or ():
                by_part.setdefault(part, []).append(index)
        for sharing in by_part.values():
            add(sharing, sharing)
        add([index for index in members if endpoints[index].parts is None], members)
    return pairs


def _no_blank(value: str, what: str) -> str:
    """The value stripped; `what` is the catalog key naming it ("nf_what_value")."""
    if not value.strip():
        raise Wording("nf_empty", what=Wording(what))
    return value.strip()


def _named_once(values: list[str], *, what: str, example: str) -> list[str]:
    """A source's regions or datacenters (`what`, a catalog key): at least one, none blank,
    none twice."""
    names = [_no_blank(name, what) for name in values]
    if not names:
        raise Wording("nf_list_at_least_one", what=Wording(what), example=example)
    if len(set(names)) != len(names):
        raise Wording("nf_listed_twice", what=Wording(what))
    return names


def _known_services(value: Any, known: tuple[str, ...]) -> Any:
    """A source's `services:` (before type checks): known names, at least one, none twice."""
    if not isinstance(value, list):
        return value
    for service in value:
        if isinstance(service, str) and service not in known:
            raise Wording(
                "nf_unknown_service",
                value=repr(service),
                hint=did_you_mean(service, known),
                known=", ".join(known),
            )
    if not value:
        raise Wording("nf_no_service")
    # Only the names can repeat (a nested list is reported by the type checks).
    names = [service for service in value if isinstance(service, str)]
    if len(set(names)) != len(names):
        raise Wording("nf_listed_twice", what=Wording("nf_what_service"))
    return value


def _known_choice(value: Any, choices: Sequence[str], *, what: str) -> Any:
    """A text value among `choices` (before type checks); `what` is the catalog key naming it."""
    if isinstance(value, str) and value not in choices:
        raise Wording(
            "nf_unknown_choice",
            what=Wording(what),
            value=repr(value),
            hint=did_you_mean(value, choices),
            choices=", ".join(choices),
        )
    return value


def _verified_ca_bundle(ca_bundle: str | None, verify_tls: bool) -> None:
    if ca_bundle is not None and not verify_tls:
        raise Wording("nf_ca_bundle_ignored")


# What every source shares; its id keys its rows in Resource.source and ScopeResult.source.
class SourceBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The node file's `id:`, or `name:` (its older spelling, kept: the file is a public
    # contract). Empty until validation settles the id (given, else derived); from then on
    # both hold it. Stored under `name`, where the scan reads it.
    id: str = ""
    name: str = ""

    @field_validator("id", "name")
    @classmethod
    def _slug_name(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise Wording("nf_slug", example="core-s3")
        return value

    @model_validator(mode="after")
    def _settle_id(self) -> SourceBase:
        if self.id and self.name and self.id != self.name:
            raise Wording("nf_id_name_disagree", id=self.id, name=self.name)
        key = self.id or self.name or derived_source_id(self.model_dump()) or ""
        self.id = self.name = key
        return self

    def stored(self) -> dict[str, Any]:
        """The source as Node.sources keeps it: its id under `name`, where the scan reads it."""
        return self.model_dump(mode="json", exclude={"id"})


# Any AWS-compatible API (EC2, EBS, S3, RDS) behind a private endpoint.
class AwsSource(SourceBase):
    kind: Literal["aws"]
    endpoint_url: str
    regions: list[str]
    profile: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    # Private S3-compatible stores rarely have wildcard DNS for virtual-hosted buckets.
    addressing_style: AddressingStyle = "path"
    services: list[AwsService] = Field(default_factory=lambda: list(get_args(AwsService)))
    max_attempts: int = Field(default=5, ge=1, le=50, strict=True)

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Wording("nf_http_url")
        if parts.username is not None:
            raise Wording("nf_url_user")
        # The node file refuses these before validation; a row stored before it did is
        # refused here, so a scan never sends (or logs) the credential.
        carried = credentials_in_text(value).parameters
        if carried:
            named = [repr(n) for n in carried if _PARAMETER_NAME.fullmatch(n)]
            if len(named) == len(carried):
                raise Wording("nf_url_credential", names=", ".join(named))
            raise Wording("nf_url_credential_unnamed")
        try:
            parts.port  # noqa: B018  (urlsplit checks the port only when asked for it)
        except ValueError:
            raise Wording("nf_bad_port") from None
        return value.strip()

    @field_validator("regions")
    @classmethod
    def _some_regions(cls, value: list[str]) -> list[str]:
        return _named_once(value, what="nf_what_region", example="cn-js-1")

    @field_validator("profile", "ca_bundle")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _no_blank(value, "nf_what_value")

    @field_validator("addressing_style", mode="before")
    @classmethod
    def _known_style(cls, value: Any) -> Any:
        return _known_choice(value, ADDRESSING_STYLES, what="nf_what_addressing_style")

    @field_validator("services", mode="before")
    @classmethod
    def _known_services(cls, value: Any) -> Any:
        return _known_services(value, AWS_SERVICES)

    @model_validator(mode="after")
    def _ca_bundle_needs_verification(self) -> AwsSource:
        _verified_ca_bundle(self.ca_bundle, self.verify_tls)
        return self


# A Kubernetes cluster reached through a kubeconfig context.
class KubernetesSource(SourceBase):
    kind: Literal["kubernetes"]
    context: str
    # None is the client's own default: $KUBECONFIG, else ~/.kube/config (or the in-cluster
    # service account when yiyun itself runs in the cluster and neither exists).
    kubeconfig: str | None = None
    # None lists every namespace; a list restricts the scan to those.
    namespaces: list[str] | None = None

    @field_validator("context")
    @classmethod
    def _context_named(cls, value: str) -> str:
        return _no_blank(value, "nf_what_value")

    @field_validator("kubeconfig")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _no_blank(value, "nf_what_value")

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise Wording("nf_namespaces_empty")
        for namespace in value:
            if not _NAMESPACE.fullmatch(namespace):
                raise Wording("nf_not_namespace", value=repr(namespace))
        if len(set(value)) != len(value):
            raise Wording("nf_listed_twice", what=Wording("nf_what_namespace"))
        return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# A date written as the node file asks (YYYY-MM-DD), whether or not the day exists.
_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


# A vCenter (or a standalone ESXi host) reached over its SOAP API with pyvmomi.
class VsphereSource(SourceBase):
    kind: Literal["vsphere"]
    host: str
    port: int = Field(default=443, ge=1, le=65535, strict=True)
    username: str
    # The *name* of the environment variable holding the password; the password itself is
    # refused like every other secret in the node file.
    password_env: str
    # Planning does no I/O, so the datacenters to list are named here: one scope each per kind.
    datacenters: list[str]
    ca_bundle: str | None = None
    verify_tls: bool = True
    # PropertyCollector page size (RetrievePropertiesEx maxObjects).
    max_objects: int = Field(default=500, ge=1, le=10_000, strict=True)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        host = value.strip()
        if "://" in host or "/" in host or "@" in host:
            raise Wording("nf_host_alone")
        if not _HOST.fullmatch(host):
            raise Wording("nf_not_host")
        return host

    @field_validator("username")
    @classmethod
    def _user_named(cls, value: str) -> str:
        return _no_blank(value, "nf_what_value")

    @field_validator("password_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value.strip()):
            raise Wording("nf_password_env")
        return value.strip()

    @field_validator("datacenters")
    @classmethod
    def _some_datacenters(cls, value: list[str]) -> list[str]:
        return _named_once(value, what="nf_what_datacenter", example="DC-Nanjing")

    @field_validator("ca_bundle")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _no_blank(value, "nf_what_value")

    @model_validator(mode="after")
    def _ca_bundle_needs_verification(self) -> VsphereSource:
        _verified_ca_bundle(self.ca_bundle, self.verify_tls)
        return self


# An OpenStack-based cloud (Huawei Cloud Stack, InCloud OS, H3C CloudOS, EasyStack, …) named
# by its entry in the standard clouds.yaml, which holds its auth URL and credentials.
class OpenstackSource(SourceBase):
    kind: Literal["openstack"]
    cloud: str
    # None is openstacksdk's own search: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
    # ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml.
    clouds_yaml: str | None = None
    regions: list[str]
    # None lists what the credentials see (every project for an admin); a list scopes one
    # token to each project, so a project that refuses fails only its own scopes.
    projects: list[str] | None = None
    services: list[OpenstackService] = Field(
        default_factory=lambda: list(get_args(OpenstackService))
    )
    # Compute capacity (Placement, else hypervisor statistics) needs admin credentials; a
    # department's member credentials would be refused on every scan, so they say false.
    hypervisors: bool = True

    @field_validator("cloud")
    @classmethod
    def _cloud_named(cls, value: str) -> str:
        return _no_blank(value, "nf_what_value")

    @field_validator("clouds_yaml")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _no_blank(value, "nf_what_value")

    @field_validator("regions")
    @classmethod
    def _some_regions(cls, value: list[str]) -> list[str]:
        return _named_once(value, what="nf_what_region", example="RegionOne")

    @field_validator("projects")
    @classmethod
    def _project_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        projects = [_no_blank(project, "nf_what_project") for project in value]
        if not projects:
            raise Wording("nf_projects_empty")
        if "*" in projects or any("/" in project for project in projects):
            raise Wording("nf_project_names")
        if len(set(projects)) != len(projects):
            raise Wording("nf_listed_twice", what=Wording("nf_what_project"))
        return projects

    @field_validator("services", mode="before")
    @classmethod
    def _known_services(cls, value: Any) -> Any:
        return _known_services(value, OPENSTACK_SERVICES)


Source = Annotated[
    AwsSource | KubernetesSource | VsphereSource | OpenstackSource, Field(discriminator="kind")
]
SOURCE_MODELS: dict[str, type[SourceBase]] = {
    "aws": AwsSource,
    "kubernetes": KubernetesSource,
    "vsphere": VsphereSource,
    "openstack": OpenstackSource,
}

_Amount = Annotated[float | None, Field(ge=0, strict=True, allow_inf_nan=False)]


# What a node offers to systems moving onto it; any part may be unknown.
class Capacity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vcpu: _Amount = None
    memory_gib: _Amount = None
    storage_gib: _Amount = None


# One cloud node as the node file defines it, validated; sources carry their stable names.
class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    level: NodeLevel
    one_cloud: bool
    city: str | None = None
    owner_department: str | None = None
    mlps_level: int | None = Field(default=None, ge=1, le=5, strict=True)
    dedicated_level4_pool: bool = False
    zones: list[str] = Field(default_factory=list)
    capacity: Capacity | None = None
    frozen_since: date | None = None
    system_tag: str = DEFAULT_SYSTEM_TAG
    sources: list[Source] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _slug_id(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise Wording("nf_slug", example="js-core, edu-dc")
        return value

    @field_validator("name", "owner_department")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return None if value is None else _no_blank(value, "nf_what_value")

    @field_validator("level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        return _known_choice(value, LEVELS, what="nf_what_level")

    @field_validator("city")
    @classmethod
    def _canonical_city(cls, value: str | None) -> str | None:
        return None if value is None else normalize_city(value)

    @field_validator("frozen_since", mode="before")
    @classmethod
    def _calendar_date(cls, value: Any) -> Any:
        # Lax pydantic would read an integer as a Unix timestamp; a freeze is a calendar date.
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                if _DATE_SHAPE.fullmatch(value.strip()):
                    # Written right, but no such day (2022-02-30): say so, not "write a date".
                    raise Wording("err_node_impossible_date", value=value.strip()) from None
        raise ValueError("must be a calendar date written YYYY-MM-DD, e.g. 2022-04-04")

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, value: list[str]) -> list[str]:
        zones = [_no_blank(zone, "nf_what_zone") for zone in value]
        if len(set(zones)) != len(zones):
            raise Wording("nf_listed_twice", what=Wording("nf_what_zone"))
        return zones

    @field_validator("system_tag")
    @classmethod
    def _tag_key(cls, value: str) -> str:
        if not value or len(value) > 128 or any(char.isspace() for char in value):
            raise Wording("nf_tag_key")
        return value

    @field_validator("sources")
    @classmethod
    def _distinct_ids(cls, value: list[SourceBase]) -> list[SourceBase]:
        first: dict[str, int] = {}
        for index, source in enumerate(value):
            if source.id not in first:
                first[source.id] = index
                continue
            other = value[first[source.id]]
            derived = all(
                derived_source_id(each.model_dump()) == each.id for each in (source, other)
            )
            raise Wording(
                "nf_source_id_twice",
                id=repr(source.id),
                first=first[source.id] + 1,
                second=index + 1,
                why=Wording("nf_both_derived") if derived else "",
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NodeSpec:
        if self.dedicated_level4_pool and (self.mlps_level or 0) < 4:
            raise Wording("nf_level4_pool", level=self.mlps_level or Wording("nf_not_set"))
        if self.level == "city_backbone" and self.city in (None, PROVINCIAL):
            raise Wording("nf_backbone_city")
        return self

    def source(self, name: str) -> AwsSource | KubernetesSource | VsphereSource | OpenstackSource:
        """The source with this name (KeyError when the node has none)."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"node {self.id} has no source {name!r}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a node file: where (line, node, field path) and why."""

    message: str
    path: str = ""
    position: int | None = None  # 1-based place of the node in `nodes:`
    node_id: str | None = None
    line: int | None = None
    # The message in each language, (lang, message) pairs, when it has more than English.
    translations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def worded(cls, wording: Wording, **where: Any) -> Problem:
        """A problem whose message is a catalog Wording, kept in every language."""
        return cls(str(wording), translations=wording.translations(), **where)

    def __str__(self) -> str:
        return self.describe("en")

    def describe(self, lang: str) -> str:
        """Where and why, the why in `lang` when the message has that language."""
        message = dict(self.translations).get(lang, self.message)
        parts = []
        if self.line is not None:
            parts.append(text("where_line", lang, line=self.line))
        if self.position is not None:
            node = text("where_node_position", lang, position=self.position)
            parts.append(f"{node} ({self.node_id})" if self.node_id else node)
        elif self.node_id:
            parts.append(text("where_node", lang, node=self.node_id))
        if self.path:
            parts.append(self.path)
        return ": ".join([*parts, message])


class NodeFileError(ValueError):
    """A node file (or stored node definitions) that failed validation; nothing was applied."""

    def __init__(self, origin: str, problems: list[Problem]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(self.describe("en"))

    def describe(self, lang: str) -> str:
        """The origin, how many problems, and each on its own line (in `lang` where it can)."""
        count = text(
            "nf_one_problem" if len(self.problems) == 1 else "nf_problems",
            lang,
            count=len(self.problems),
        )
        lines = [f"  {problem.describe(lang)}" for problem in self.problems]
        return f"{self.origin}: {count}\n" + "\n".join(lines)


KeyPath = tuple[str | int, ...]


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Document:
    """A parsed node file: the data, the line of every key and item, and problems so far."""

    def __init__(self, data: Any, *, parsed: bool) -> None:
        self.data = data
        self.parsed = parsed  # False when the text is not YAML at all
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []

    def line_of(self, path: KeyPath) -> int | None:
        # A missing key has no line of its own: use the nearest enclosing one that exists.
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def nodes(self) -> list[Any]:
        nodes = self.data.get("nodes") if isinstance(self.data, dict) else None
        return nodes if isinstance(nodes, list) else []

    def report(
        self,
        path: KeyPath,
        message: str | Wording,
        translations: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Record a problem at `path` (from the document root), naming the node it is in."""
        if isinstance(message, Wording):
            translations = message.translations()
        position = node_id = None
        inner = path
        if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
            position, inner = path[1] + 1, path[2:]
            nodes = self.nodes()
            raw = nodes[path[1]] if path[1] < len(nodes) else None
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            node_id = raw_id if isinstance(raw_id, str) and _SLUG.fullmatch(raw_id) else None
        self.problems.append(
            Problem(
                str(message), _dotted(inner), position, node_id, self.line_of(path), translations
            )
        )


def _index_yaml(node: yaml.Node, path: KeyPath, document: _Document, active: set[int]) -> None:
    """Record where each key and list item sits, and report keys given twice in one mapping."""
    if id(node) in active:  # a recursive alias; its lines are already recorded
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            document.lines[(*path, key)] = line
            if key in first_line:
                # PyYAML would silently keep the last one, hiding half of the definition.
                document.report(
                    (*path, key),
                    Wording("nf_key_twice", key=repr(key), first=first_line[key], line=line),
                )
            first_line.setdefault(key, line)
            _index_yaml(value_node, (*path, key), document, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            document.lines[(*path, index)] = item.start_mark.line + 1
            _index_yaml(item, (*path, index), document, active)
    active.discard(id(node))


# How many values aliases (*name) may add to a node file when expanded, beyond the values
# written in it. Values written out cost what their text costs (20,000 nodes of a dozen keys
# are ~1,000,000); an alias costs nothing to write but its whole value again to walk and
# validate (1,000,000 expanded values: ~8 s). Sharing a block by alias (capacity: *standard on
# every node of 20,000) adds 140,000; an alias bomb ("billion laughs", 9 aliases of 9 aliases
# …) adds hundreds of millions and would take hours.
MAX_ALIAS_EXPANSION = 1_000_000


class _Unwalkable(Exception):
    """YAML that cannot be walked: an alias inside what it names, or one expanding too far."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _AliasWalk:
    """One walk of a composed YAML document, each value visited once, that counts what the
    aliases in it expand to: an alias is the same node met again, so meeting a node already
    walked adds its whole expanded size, values written once add nothing."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}  # expanded size of every node walked
        self.active: set[int] = set()  # the nodes on the path from the root to here
        self.expansion = 0

    def size(self, node: yaml.Node) -> int:
        """How many values `node` stands for once every alias in it is expanded."""
        line = node.start_mark.line + 1
        if id(node) in self.active:
            raise _Unwalkable("an alias (*name) refers to a value that contains the alias", line)
        self.active.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        total = 1
        for child in children:
            known = self.sizes.get(id(child))
            if known is None:
                total += self.size(child)
                continue
            total += known
            self.expansion += known
            if self.expansion > MAX_ALIAS_EXPANSION:
                raise _Unwalkable(
                    f"aliases (*name) expand the file to more than {MAX_ALIAS_EXPANSION:,} "
                    "values beyond those written in it (an alias bomb?)",
                    line,
                )
        self.active.discard(id(node))
        self.sizes[id(node)] = total
        return total


# libyaml's parser, where PyYAML was built with it: it composes a node file of 20,000 nodes
# (9 MB) about five times faster than the pure-Python one (13 s against 69 s, measured on a
# busy 2-core machine).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """The safe loader, but a date-shaped value that is no day of the calendar (2022-02-30)
    stays the text written, for the field's validator to report with its line: PyYAML's own
    constructor raises a bare ValueError out of the whole document."""


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)
# libyaml's own limit on nesting (1,000 levels), a ScannerError with this problem; Python's
# recursion limit stops the pure-Python parser and the walks that follow it.
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_NESTED_TOO_DEEPLY = "not a node file: the YAML is nested too deeply"


def _parse_yaml(text: str) -> _Document:
    loader: yaml.SafeLoader | yaml.CSafeLoader | None = None
    try:
        # PyYAML's reader checks every character up front: a control character fails right
        # here, its position counted in characters (libyaml's would be in bytes).
        yaml.reader.Reader(text)
        loader = _Loader(text)
        root = loader.get_single_node()
        # An alias is written "*name": a text without "*" has none to count (and its walk
        # takes seconds at 20,000 nodes).
        if root is not None and "*" in text:
            _AliasWalk().size(root)
        data = loader.construct_document(root) if root is not None else None
    except _Unwalkable as error:
        return _unparsed(Problem(f"not a node file: {error}", line=error.line))
    except RecursionError:
        return _unparsed(Problem(_NESTED_TOO_DEEPLY))
    except yaml.YAMLError as error:
        if getattr(error, "problem", None) == _LIBYAML_TOO_DEEP:
            return _unparsed(Problem(_NESTED_TOO_DEEPLY))
        return _unparsed(_yaml_problem(text, error))
    finally:
        if loader is not None:
            loader.dispose()
    document = _Document(data, parsed=True)
    if root is not None:
        _index_yaml(root, (), document, set())
    return document


def _unparsed(problem: Problem) -> _Document:
    document = _Document(None, parsed=False)
    document.problems.append(problem)
    return document


def _yaml_problem(text: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    # Only PyYAML's one-line reason: str(error) quotes the offending line, which may be a
    # secret.
    reason = getattr(error, "problem", None) or "the text cannot be parsed"
    line = mark.line + 1 if mark else None
    if isinstance(error, yaml.reader.ReaderError) and isinstance(error.character, int):
        reason = f"character U+{error.character:04X} is not allowed (a control character)"
        line = text.count("\n", 0, error.position) + 1
    return Problem(f"not valid YAML: {reason}", line=line)


# Keys whose value names an environment variable holding a secret (vsphere's password_env):
# the name is no secret, so the key is allowed while its value reads as a variable's name.
_NAMES_A_VARIABLE = ("password_env",)


def _secret_reason(key: Any, value: Any) -> str | None:
    if key in _NAMES_A_VARIABLE and (value is None or isinstance(value, str)):
        if value is None or _ENV_NAME.fullmatch(value.strip()):
            return None
        return f"key {key!r}{{where}} must name an environment variable, and its value does not"
    if isinstance(key, str) and names_a_secret(key):
        return f"key {key!r}{{where}} looks like a credential"
    if isinstance(value, str):
        if AWS_ACCESS_KEY_ID.search(value):
            return "the value{where} looks like an AWS access key id"
        if credentials_in_text(value):
            return _URL_WITH_CREDENTIALS
    return None


def _redact_secrets(value: Any, path: KeyPath, found: list[tuple[KeyPath, str]]) -> Any:
    """A copy without credential-like keys or values; where they were goes into `found`."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            reason = _secret_reason(key, item if key in _NAMES_A_VARIABLE else None)
            if reason:
                found.append(((*path, key), reason))
                continue
            kept[key] = _redact_secrets(item, (*path, key), found)
        return kept
    if isinstance(value, list):
        return [_redact_secrets(item, (*path, index), found) for index, item in enumerate(value)]
    reason = _secret_reason(None, value)
    if reason:
        found.append((path, reason))
        return _REDACTED
    return value


def _source_context(raw_node: Any, index: int) -> tuple[str | None, str | None]:
    """(id, kind) of a raw source, its id given or derived the way validation will settle it."""
    sources = raw_node.get("sources") if isinstance(raw_node, dict) else None
    if not isinstance(sources, list) or index >= len(sources):
        return None, None
    raw = sources[index] if isinstance(sources[index], dict) else {}
    kind = raw.get("kind") if raw.get("kind") in SOURCE_KINDS else None
    given = [raw[key] for key in ("id", "name") if isinstance(raw.get(key), str)]
    if given:
        # An invalid id is reported on its own; never echo it here.
        return (given[0] if all(_SLUG.fullmatch(name) for name in given) else None), kind
    # An id derived from a refused value would echo part of it; the host, port and path of a
    # URL refused for its user, password or query are no secret, and name the source.
    refused = {
        _secret_reason(None, _urls_masked(raw.get(key))) for key in ("endpoint_url", "context")
    }
    if refused - {None, _URL_WITH_CREDENTIALS}:
        return None, kind
    return derived_source_id(raw), kind


def _urls_masked(value: Any) -> Any:
    return mask_urls_in(value) if isinstance(value, str) else value


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


# A parameter name is echoed only when it reads as one: a name is never the secret, but a
# "name" of 200 random characters may be a value someone wrote without its "=".
_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,39}")


def _url_refusal(credentials: UrlCredentials, source: str | None, kind: str | None) -> list[str]:
    """Why a URL with credentials is refused, in every language (LANGS' order): which source,
    which parts of the URL (never their values), and where credentials belong instead."""
    messages = []
    for lang in LANGS:
        parts = []
        if credentials.password:
            parts.append(text("url_part_password", lang))
        elif credentials.user:
            parts.append(text("url_part_user", lang))
        for name in dict.fromkeys(credentials.parameters):
            if _PARAMETER_NAME.fullmatch(name):
                parts.append(text("url_part_parameter", lang, name=repr(name)))
            else:
                parts.append(text("url_part_unnamed_parameter", lang))
        what = (
            text("url_of_source", lang, source=repr(source)) if source else text("url_value", lang)
        )
        messages.append(
            text(
                "url_credentials_refused",
                lang,
                what=what,
                parts=text("url_parts_separator", lang).join(parts),
                hint=text(f"credentials_hint_{kind or 'any'}", lang),
            )
        )
    return messages


def _report_secrets(document: _Document, found: list[tuple[KeyPath, str]]) -> set[KeyPath]:
    nodes = document.nodes()
    for path, reason in found:
        kind = name = None
        where = ""
        in_source = len(path) >= 4 and path[0] == "nodes" and path[2] == "sources"
        if in_source and isinstance(path[1], int) and isinstance(path[3], int):
            name, kind = _source_context(nodes[path[1]], path[3])
            where = f" of source {name!r}" if name else ""
        if reason == _URL_WITH_CREDENTIALS:
            credentials = credentials_in_text(_value_at(document.data, path))
            messages = _url_refusal(credentials, name, kind)
            english = messages[LANGS.index("en")]
            document.report(path, english, tuple(zip(LANGS, messages, strict=True)))
            continue
        hint = text(f"credentials_hint_{kind or 'any'}", "en")
        document.report(
            path,
            f"{reason.replace('{where}', where)}: refused, the node file must never carry "
            f"credentials. {hint}",
        )
    return {path for path, _ in found}


def _parent_model(loc: KeyPath) -> type[BaseModel] | None:
    """The model whose keys an error at `loc` (pydantic's, inside one node) was checked against."""
    if len(loc) == 2 and loc[0] == "capacity":
        return Capacity
    if len(loc) == 4 and loc[0] == "sources" and isinstance(loc[2], str):
        return SOURCE_MODELS.get(loc[2])
    if len(loc) == 1:
        return NodeSpec
    return None


def _explain(detail: Any) -> tuple[KeyPath, Wording]:
    """A pydantic error as (path in the node's raw data, message a person understands)."""
    loc: KeyPath = tuple(detail["loc"])
    kind_tag = None
    path = loc
    # Inside a discriminated union pydantic inserts the tag: sources.0.aws.endpoint_url.
    if len(loc) > 2 and loc[0] == "sources" and isinstance(loc[2], str):
        kind_tag, path = loc[2], (*loc[:2], *loc[3:])
    key = str(loc[-1]) if loc else ""
    error_type = detail["type"]
    ctx = detail.get("ctx") or {}
    if isinstance(ctx.get("error"), Wording):
        return path, ctx["error"]
    if error_type == "missing":
        needed = Wording("nf_every_source_needs", kind=kind_tag) if kind_tag else ""
        return path, Wording("nf_missing_key", key=repr(key), needed=needed)
    if error_type == "extra_forbidden":
        parent = _parent_model(loc)
        known = sorted(parent.model_fields) if parent else []
        return path, Wording("nf_unknown_key", key=repr(key), hint=did_you_mean(key, known))
    if error_type == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        return (*path, "kind"), Wording(
            "nf_unknown_choice",
            what=Wording("nf_what_source_kind"),
            value=repr(tag),
            hint=did_you_mean(tag, SOURCE_KINDS, _KIND_SYNONYMS),
            choices=", ".join(SOURCE_KINDS),
        )
    if error_type == "union_tag_not_found":
        return path, Wording("nf_source_needs_kind", kinds=", ".join(SOURCE_KINDS))
    if error_type in ("model_attributes_type", "dict_type", "model_type"):
        return path, Wording("nf_expected_mapping")
    if error_type in _PYDANTIC_WORDING:
        key, field = _PYDANTIC_WORDING[error_type]
        return path, Wording(key, **({"limit": ctx.get(field)} if field else {}))
    if error_type == "literal_error":
        return path, Wording("nf_one_of", choices=str(ctx.get("expected", "")))
    # Anything else keeps pydantic's own (English) words inside the sentence.
    message = str(detail["msg"]).removeprefix("Value error, ")
    detail_text = message[0].lower() + message[1:] if message else message
    return path, Wording("nf_invalid", detail=detail_text)


# pydantic's error types a node file meets, worded by the catalog: (key, ctx field to show).
_PYDANTIC_WORDING: dict[str, tuple[str, str | None]] = {
    "string_type": ("nf_expect_text", None),
    "int_type": ("nf_expect_integer", None),
    "int_parsing": ("nf_expect_integer", None),
    "int_from_float": ("nf_expect_integer", None),
    "float_type": ("nf_expect_number", None),
    "float_parsing": ("nf_expect_number", None),
    "finite_number": ("nf_expect_number", None),
    "bool_type": ("nf_expect_bool", None),
    "bool_parsing": ("nf_expect_bool", None),
    "list_type": ("nf_expect_list", None),
    "greater_than_equal": ("nf_at_least", "ge"),
    "greater_than": ("nf_more_than", "gt"),
    "less_than_equal": ("nf_at_most", "le"),
}


def _validate_node(
    raw: Any, index: int, document: _Document, secret_paths: set[KeyPath]
) -> NodeSpec | None:
    base: KeyPath = ("nodes", index)
    if not isinstance(raw, dict):
        document.report(base, Wording("nf_node_mapping"))
        return None
    try:
        return NodeSpec.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors(include_url=False, include_input=False):
            path, message = _explain(detail)
            if (*base, *path) in secret_paths:
                continue  # already refused as a secret; anything more could hint at the value
            document.report((*base, *path), message)
        return None


def _report_nul(document: _Document, value: Any, path: KeyPath) -> None:
    """Report text holding a NUL character (YAML's "\\0" escape): PostgreSQL cannot store one."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                document.report(path, Wording("nf_key_nul"))
            _report_nul(document, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _report_nul(document, item, (*path, index))
    elif isinstance(value, str) and "\x00" in value:
        document.report(path, Wording("nf_value_nul"))


def _check(document: _Document) -> list[NodeSpec]:
    """Validate a parsed document completely, recording every problem in it."""
    data = document.data
    if not isinstance(data, dict):
        found = (
            Wording("nf_found_empty")
            if data is None
            else Wording("nf_found_type", type=type(data).__name__)
        )
        document.report((), Wording("nf_top_level", found=found))
        return []
    _report_nul(document, data, ())
    found_secrets: list[tuple[KeyPath, str]] = []
    data = _redact_secrets(data, (), found_secrets)
    secret_paths = _report_secrets(document, found_secrets)
    for key in data:
        if key != "nodes":
            document.report(
                (key,),
                Wording(
                    "nf_unknown_top_key", key=repr(key), hint=did_you_mean(str(key), ["nodes"])
                ),
            )
    if "nodes" not in data:
        document.report((), Wording("nf_no_nodes"))
        return []
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, list) or not raw_nodes:
        document.report(
            ("nodes",), "`nodes:` must be a non-empty list of nodes, each starting `- id: …`"
        )
        return []
    specs = []
    first_at: dict[str, int] = {}
    for index, raw in enumerate(raw_nodes):
        spec = _validate_node(raw, index, document, secret_paths)
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(raw_id, str):
            if raw_id in first_at:
                document.report(
                    ("nodes", index, "id"),
                    f"duplicate id {raw_id!r}: node #{first_at[raw_id] + 1} already has it",
                )
            first_at.setdefault(raw_id, index)
        if spec is not None:
            specs.append(spec)
    _report_duplicate_endpoints(document, specs, first_at)
    return specs


def _report_duplicate_endpoints(
    document: _Document, specs: Sequence[NodeSpec], first_at: dict[str, int]
) -> None:
    """Two nodes of the file that list the same endpoint: reported at the second one's source."""
    sources = {spec.id: [source.stored() for source in spec.sources] for spec in specs}
    for duplicate in duplicate_endpoints(list(sources.items())):
        at = [source["name"] for source in sources[duplicate.node_id]].index(duplicate.source)
        problem = _duplicate_problem(duplicate, in_ledger=False)
        document.report(("nodes", first_at[duplicate.node_id], "sources", at), problem.message)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.position or 0, p.line or 0))


def parse_node_file(text: str, *, origin: str = "<node file>") -> list[NodeSpec]:
    """Every node of a node file's text, or NodeFileError listing every problem in it."""
    document = _parse_yaml(text)
    specs = _check(document) if document.parsed else []
    if document.problems:
        raise NodeFileError(origin, _sorted(document.problems))
    return specs


def load_node_file(path: str | Path) -> list[NodeSpec]:
    """Every node of the node file at `path`, or NodeFileError listing every problem in it."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise NodeFileError(str(path), [Problem(f"cannot read the file: {reason}")]) from error
    return parse_node_file(text, origin=str(path))


def node_columns(spec: NodeSpec) -> dict[str, Any]:
    """The Node table's columns (all but id and updated_at) for a node definition."""
    capacity = spec.capacity or Capacity()
    return {
        "name": spec.name,
        "level": spec.level,
        "one_cloud": spec.one_cloud,
        "city": spec.city,
        "owner_department": spec.owner_department,
        "mlps_level": spec.mlps_level,
        "dedicated_level4_pool": spec.dedicated_level4_pool,
        "zones": list(spec.zones),
        "capacity_vcpu": capacity.vcpu,
        "capacity_memory_gib": capacity.memory_gib,
        "capacity_storage_gib": capacity.storage_gib,
        "frozen_since": spec.frozen_since,
        "system_tag": spec.system_tag,
        "sources": [source.stored() for source in spec.sources],
    }


@dataclass
class ApplyReport:
    """What applying a node file did (or, in a dry run, would do) to the ledger."""

    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    # node id -> the columns whose value changed
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    # Live nodes in the ledger that the file does not mention: kept, and still scanned, until
    # someone retires them (`yiyun nodes retire`, or `nodes apply --prune`).
    not_in_file: list[str] = field(default_factory=list)
    # Retired nodes the file lists again: back in scans from now on.
    revived: list[str] = field(default_factory=list)
    # Nodes retired by --prune because the file no longer lists them.
    retired: list[str] = field(default_factory=list)
    # Retired nodes the file still lists, left retired (a scan's --config never revives).
    kept_retired: list[str] = field(default_factory=list)
    # node id -> (old id, new id) of each source whose rows moved to the id the file gives it.
    renamed_sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.revived or self.retired)


class NodeError(ValueError):
    """A node action that was refused; nothing was changed."""


class UnknownNode(NodeError):
    """No node with this id in the ledger."""

    def __init__(self, node_id: str, known: Sequence[str]) -> None:
        close = difflib.get_close_matches(node_id, known, n=1, cutoff=0.6)
        self.node_id = node_id
        self.close = close[0] if close else None
        hint = f" (did you mean {self.close!r}?)" if self.close else ""
        super().__init__(f"no node {node_id!r} in the ledger{hint}")


class NodeBusy(NodeError):
    """The node is being scanned right now; retiring it would race the scan."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id!r} is being scanned right now; try again when it ends")


def _duplicate_problem(duplicate: DuplicateEndpoint, *, in_ledger: bool) -> Problem:
    new, old = duplicate.node_id, duplicate.other_node_id
    where = duplicate.describe()
    wording = Wording(
        "nf_duplicate_in_ledger" if in_ledger else "nf_duplicate_in_file",
        new=repr(new),
        old=repr(old),
        old_id=old,
        source=repr(duplicate.source),
        other_source=repr(duplicate.other_source),
        where=where,
    )
    return Problem.worded(wording, node_id=new)


def _endpoints_by_id(
    sources: Sequence[Mapping[str, Any]],
    ids: Sequence[str | None],
    elsewhere: set[str | None],
    servers: dict[tuple[str | None, str], str | None],
) -> dict[str, Endpoint]:
    """id -> endpoint of the sources whose id is not `elsewhere` (the last of an id wins)."""
    found: dict[str, Endpoint | None] = {}
    for source, key in zip(sources, ids, strict=True):
        if key and key not in elsewhere:
            found[key] = source_endpoint(source, servers)
    return {key: endpoint for key, endpoint in found.items() if endpoint}


def carried_sources(
    stored: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """(old id, new id) for each stored source that the node file now lists under another id
    but at the same endpoint (someone wrote an `id:` for it, or its derivation changed): its
    rows follow it. A pairing that is not one-to-one is left alone."""
    servers: dict[tuple[str | None, str], str | None] = {}
    old = [source_key(source) for source in stored]
    new = [source_key(source) for source in wanted]
    # Only an id on one side alone can be a rename: the endpoints of those alone are worked
    # out (a kubeconfig read each), not those of every source of every node on each apply.
    gone = _endpoints_by_id(stored, old, set(new), servers)
    added = _endpoints_by_id(wanted, new, set(old), servers)

    def same(a: Endpoint, b: Endpoint) -> bool:
        return a.kind == b.kind and bool(a.keys & b.keys)

    pairs = []
    for new_key, endpoint in added.items():
        matches = [key for key, end in gone.items() if same(end, endpoint)]
        if len(matches) != 1:
            continue
        rivals = [key for key, end in added.items() if same(gone[matches[0]], end)]
        if rivals == [new_key]:
            pairs.append((matches[0], new_key))
    return pairs


def _engine_of(session: Session) -> sa.Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, sa.Engine) else bind.engine


def _retire(*, session: Session, node: Node, actor: str, note: str) -> int:
    """Tombstone the node's rows and mark it retired, holding its scan lock meanwhile."""
    now = utcnow()
    try:
        with locks.node_lock(_engine_of(session), node.id):
            tombstoned = retire_node_rows(
                session=session, node_id=node.id, actor=actor, note=note, now=now
            )
            node.retired_at, node.retired_by, node.retired_reason = now, actor, note
            session.add(node)
            session.flush()
    except locks.NodeBusy:
        raise NodeBusy(node.id) from None
    return tombstoned


def _required(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise NodeError(f"{what} must be given")
    return value.strip()


def apply_nodes(
    *,
    session: Session,
    specs: Sequence[NodeSpec],
    dry_run: bool = False,
    prune: bool = False,
    actor: str | None = None,
    note: str | None = None,
    revive: bool = True,
) -> ApplyReport:
    """Upsert node definitions by id in the caller's transaction.

    Live nodes not in `specs` are kept and listed in the report, or with `prune` retired (by
    `actor`, with `note`) in the same transaction. A retired node listed again is revived. A
    source listed under a new id at the same endpoint keeps its rows. Raises NodeFileError,
    with nothing applied, when two nodes would list the same endpoint (within `specs`, or
    against a live node kept in the ledger) or a new source id already has rows of its own.
    A node whose definition is unchanged is not touched, so its updated_at stays as it was.
    With `revive` off (a scan applying its --config), a retired node the file still lists
    stays retired and is reported in `kept_retired`: only `nodes apply` brings one back.
    """
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("node ids must be unique; validate with load_node_file first")
    if prune:
        actor = _required(actor, "who prunes the nodes (--by)")
    existing = {node.id: node for node in session.exec(select(Node)).all()}
    listed = set(ids)
    missing = sorted(
        node_id
        for node_id, node in existing.items()
        if node_id not in listed and node.retired_at is None
    )
    wanted = {spec.id: [source.stored() for source in spec.sources] for spec in specs}
    problems = _refusals(
        session=session, existing=existing, wanted=wanted, missing=missing, prune=prune
    )
    if problems:
        raise NodeFileError("the node file against the ledger", problems)

    report = ApplyReport(dry_run=dry_run)
    now = utcnow()
    for spec in specs:
        columns = node_columns(spec)
        node = existing.get(spec.id)
        if node is None:
            report.created.append(spec.id)
            if not dry_run:
                session.add(Node(id=spec.id, updated_at=now, **columns))
            continue
        if node.retired_at is not None and not revive:
            report.kept_retired.append(spec.id)
            continue
        renames = carried_sources(node.sources or [], wanted[spec.id])
        if renames:
            report.renamed_sources[spec.id] = renames
        changed = [name for name, value in columns.items() if getattr(node, name) != value]
        if node.retired_at is not None:
            report.revived.append(spec.id)
        elif not changed:
            report.unchanged.append(spec.id)
            continue
        if changed:
            report.updated[spec.id] = changed
        if dry_run:
            continue
        for old, new in renames:
            rename_source_rows(session=session, node_id=spec.id, old=old, new=new)
        for name in changed:
            setattr(node, name, columns[name])
        node.retired_at = node.retired_by = node.retired_reason = None
        node.updated_at = now
    if prune:
        report.retired = missing
        if not dry_run:
            session.flush()
            for node_id in missing:
                _retire(
                    session=session,
                    node=existing[node_id],
                    actor=str(actor),
                    note=note or "left the node file",
                )
    else:
        report.not_in_file = missing
    if not dry_run:
        session.flush()
    return report


def _refusals(
    *,
    session: Session,
    existing: dict[str, Node],
    wanted: dict[str, list[dict[str, Any]]],
    missing: Sequence[str],
    prune: bool,
) -> list[Problem]:
    """Why the node definitions in `wanted` cannot be applied to the ledger, if they cannot."""
    kept = [] if prune else [(node_id, existing[node_id].sources or []) for node_id in missing]
    problems = [
        _duplicate_problem(duplicate, in_ledger=duplicate.other_node_id not in wanted)
        for duplicate in duplicate_endpoints(list(wanted.items()), kept)
    ]
    for node_id, sources in wanted.items():
        node = existing.get(node_id)
        if node is None:
            continue
        for old, new in carried_sources(node.sources or [], sources):
            if source_has_rows(session=session, node_id=node_id, source=new):
                problems.append(
                    Problem.worded(
                        Wording("nf_source_id_taken", old=repr(old), new=repr(new)),
                        node_id=node_id,
                    )
                )
    return problems


@dataclass(frozen=True)
class RetireResult:
    """What `retire_node` did: how many live rows it tombstoned, or that it was already done."""

    node_id: str
    retired_at: datetime
    retired_by: str | None
    retired_reason: str | None
    tombstoned: int
    already: bool


def retire_node(*, session: Session, actor: str, node_id: str, reason: str) -> RetireResult:
    """Retire a node that left the estate (or was renamed): every live row of it tombstoned
    with a `deleted` event saying who and why, its history kept, and the node out of scans,
    the KPI and freshness from now on. Retiring a retired node changes nothing.

    Raises UnknownNode (with the closest id), NodeBusy while a scan holds the node, and
    NodeError when `actor` or `reason` is blank.
    """
    actor = _required(actor, "who retires the node (--by)")
    reason = _required(reason, "why the node is retired (--reason)")
    node = session.get(Node, node_id)
    if node is None:
        raise UnknownNode(node_id, session.exec(select(Node.id)).all())
    if node.retired_at is not None:
        return RetireResult(
            node_id, node.retired_at, node.retired_by, node.retired_reason, 0, already=True
        )
    tombstoned = _retire(session=session, node=node, actor=actor, note=reason)
    assert node.retired_at is not None
    return RetireResult(node_id, node.retired_at, actor, reason, tombstoned, already=False)


def apply_node_file(
    *,
    session: Session,
    actor: Actor,
    specs: Sequence[NodeSpec],
    dry_run: bool = False,
    prune: bool = False,
    note: str | None = None,
) -> ApplyReport:
    """`nodes apply` for whoever acts: the nodes are the estate's (a province admin's right);
    what changed is audited, a dry run changes and records nothing."""
    actor.require("nodes")
    report = apply_nodes(
        session=session,
        specs=specs,
        dry_run=dry_run,
        prune=prune,
        actor=actor.signature if prune else None,
        note=note,
    )
    if report.changed and not dry_run:
        record(
            session=session,
            actor=actor,
            action="nodes.apply",
            target=",".join(sorted({*report.created, *report.updated, *report.revived}))[:500]
            or ",".join(report.retired)[:500],
            after={
                "created": report.created,
                "updated": report.updated,
                "revived": report.revived,
                "retired": report.retired,
            },
        )
    return report


def retire_node_as(*, session: Session, actor: Actor, node_id: str, reason: str) -> RetireResult:
    """`nodes retire` for whoever acts (a province admin's right), audited."""
    actor.require("nodes")
    result = retire_node(session=session, actor=actor.signature, node_id=node_id, reason=reason)
    if not result.already:
        record(
            session=session,
            actor=actor,
            action="nodes.retire",
            target=node_id,
            before={"retired_at": None},
            after={"retired_at": result.retired_at, "reason": reason, "rows": result.tombstoned},
        )
    return result


def active_nodes(*, session: Session) -> list[Node]:
    """The nodes a scan lists: every node not retired, by id."""
    statement = select(Node).where(col(Node.retired_at).is_(None)).order_by(col(Node.id))
    return list(session.exec(statement).all())


def node_spec_from_row(node: Node) -> NodeSpec:
    """A stored node as a validated NodeSpec (its sources typed, with their stored names)."""
    capacities = (node.capacity_vcpu, node.capacity_memory_gib, node.capacity_storage_gib)
    return NodeSpec.model_validate(
        {
            "id": node.id,
            "name": node.name,
            "level": node.level,
            "one_cloud": node.one_cloud,
            "city": node.city,
            "owner_department": node.owner_department,
            "mlps_level": node.mlps_level,
            "dedicated_level4_pool": node.dedicated_level4_pool,
            "zones": node.zones or [],
            "capacity": None
            if all(value is None for value in capacities)
            else dict(zip(("vcpu", "memory_gib", "storage_gib"), capacities, strict=True)),
            "frozen_since": node.frozen_since,
            "system_tag": node.system_tag,
            "sources": node.sources or [],
        }
    )


def node_specs_from_db(*, session: Session, ids: Sequence[str] | None = None) -> list[NodeSpec]:
    """The ledger's node definitions (all, or those in `ids`), validated, ordered by id.

    Raises NodeFileError when a stored row no longer validates, or when an id is unknown.
    """
    statement = select(Node).order_by(col(Node.id))
    if ids is not None:
        statement = statement.where(col(Node.id).in_(list(ids)))
    rows = session.exec(statement).all()
    problems = []
    specs = []
    for row in rows:
        try:
            specs.append(node_spec_from_row(row))
        except ValidationError as error:
            for detail in error.errors(include_url=False, include_input=False):
                path, message = _explain(detail)
                problems.append(Problem.worded(message, path=_dotted(path), node_id=row.id))
    missing = sorted(set(ids or ()) - {row.id for row in rows})
    if missing:
        known = sorted(session.exec(select(Node.id)).all())
        for node_id in missing:
            problems.append(
                Problem.worded(
                    Wording(
                        "nf_no_such_node", node=repr(node_id), hint=did_you_mean(node_id, known)
                    )
                )
            )
    if problems:
        raise NodeFileError("the ledger's nodes", problems)
    return specs


def list_nodes(*, session: Session) -> list[dict[str, Any]]:
    """One row per stored node for `yiyun nodes list`, retired ones too (with when, who and
    why): sources as their ids (also under `name`, as before) and kinds, nothing more."""
    rows = []
    for node in session.exec(select(Node).order_by(col(Node.id))).all():
        rows.append(
            {
                "id": node.id,
                "name": node.name,
                "level": node.level,
                "one_cloud": node.one_cloud,
                "city": node.city,
                "owner_department": node.owner_department,
                "mlps_level": node.mlps_level,
                "dedicated_level4_pool": node.dedicated_level4_pool,
                "zones": node.zones or [],
                "frozen_since": node.frozen_since,
                "capacity_vcpu": node.capacity_vcpu,
                "capacity_memory_gib": node.capacity_memory_gib,
                "capacity_storage_gib": node.capacity_storage_gib,
                "system_tag": node.system_tag,
                "sources": [
                    {
                        "id": source.get("name"),
                        "name": source.get("name"),
                        "kind": source.get("kind"),
                    }
                    for source in node.sources or []
                ],
                "updated_at": node.updated_at,
                "retired_at": node.retired_at,
                "retired_by": node.retired_by,
                "retired_reason": node.retired_reason,
            }
        )
    return rows
