"""AWS-compatible collector: EC2 instances, EBS volumes, S3 buckets and RDS instances of a node."""

from __future__ import annotations

import difflib
import functools
import html
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, NamedTuple

import jmespath
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from inventory.collectors.allowlist import allowed_raw
from inventory.collectors.base import (
    DENIED,
    ERROR,
    PARTIAL,
    THROTTLED,
    ResourceRow,
    Scope,
    ScopeFailed,
    ScopeStats,
)
from inventory.secret_shape import redact_labels
from inventory.urls import credentials_in_text, mask_urls_in

DEFAULT_SYSTEM_TAG = "yiyun.io/system"
# ListBuckets returns every bucket of the endpoint whatever region signs the call, so S3 is
# one scope per source. "*" rather than the first region keeps that scope's key (and so the
# rows it owns) stable when the node file's region list is reordered or extended.
GLOBAL_SCOPE = "*"
ADDRESSING_STYLES = ("path", "virtual", "auto")

# Error codes after botocore's own retries. Anything else is `error`, or `partial` once
# pages have been handed out.
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "Forbidden",
    }
)
THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequests",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
    }
)
# An endpoint that does not implement DescribeInstanceTypes (many EC2-compatible stacks):
# sizes then come from the built-in table instead of failing the listing of the machines.
UNSUPPORTED_CODES = frozenset(
    {"InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperation"}
)
# GetBucketTagging on a bucket without tags; Ceph RGW spells it with an "Error" suffix.
NO_TAGS_CODES = frozenset({"NoSuchTagSet", "NoSuchTagSetError"})
# The error code of a scope whose answer was not shaped like the operation's result: an error
# document or an empty body under HTTP 200, a page without its result key.
MALFORMED = "malformed_response"

VM_TERMINAL_STATES = frozenset({"shutting-down", "terminated"})
# DESIGN names EC2 and RDS only; a volume being deleted or deleted holds nothing any more,
# so it is not live either. `error` volumes still occupy the node and stay live.
VOLUME_TERMINAL_STATES = frozenset({"deleting", "deleted"})
DB_TERMINAL_STATES = frozenset({"deleting"})

_SOURCE_KEYS = frozenset(
    {
        "name",
        "kind",
        "endpoint_url",
        "regions",
        "profile",
        "ca_bundle",
        "verify_tls",
        "addressing_style",
        "services",
        "max_attempts",
        # Not in the node file (its schema forbids them): knobs for tests and benchmarks.
        "page_size",
        "connect_timeout",
        "read_timeout",
    }
)
_CREDENTIAL_KEY = re.compile(r"(?i)(secret|password|token|access_?key|credential)")


class InstanceSize(NamedTuple):
    vcpu: float
    memory_gib: float


@dataclass(frozen=True)
class AwsSourceConfig:
    """One `kind: aws` source of a node, checked. Credentials are never part of it."""

    name: str
    endpoint_url: str
    regions: tuple[str, ...]
    services: tuple[str, ...]
    profile: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    addressing_style: str = "path"
    max_attempts: int = 5
    page_size: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def verify(self) -> str | bool:
        return self.ca_bundle or self.verify_tls


@dataclass
class ListingContext:
    """What normalizing needs beyond the item: where it was listed and what enrichment looked up."""

    region: str
    scope: str
    system_tag: str = DEFAULT_SYSTEM_TAG
    # Instance type → size from DescribeInstanceTypes; None when the endpoint does not know it.
    instance_sizes: dict[str, InstanceSize | None] = field(default_factory=dict)
    instance_types_api: bool = True


Normalize = Callable[[dict[str, Any], ListingContext], ResourceRow]
Enrich = Callable[[Any, list[dict[str, Any]], ListingContext], None]


@dataclass(frozen=True)
class Listing:
    """One resource kind: which call lists it, where its items sit, and how they become rows."""

    kind: str
    client: str  # botocore service name
    operation: str  # paginator name (the operation in snake_case)
    result_key: str  # the key every page of the answer carries, even when it lists nothing
    items: str  # JMESPath from one page to its items
    id_field: str  # the item field that becomes native_id
    normalize: Normalize
    enrich: Enrich | None = None
    regional: bool = True
    # ListBuckets must never carry MaxBuckets: S3-compatible stores (moto included) truncate
    # to it without a continuation token, and the listing would look complete.
    sized_pages: bool = True


# --- normalize: pure, raw API item → row ----------------------------------------------------


def normalize_instance(raw: dict[str, Any], ctx: ListingContext) -> ResourceRow:
    """An EC2 instance (a Reservations[].Instances[] item) as a `vm` row."""
    tags = _tags(raw.get("Tags"), ctx.system_tag)
    state = raw["State"]["Name"]
    instance_type = raw["InstanceType"]
    size = ctx.instance_sizes.get(instance_type) or fallback_size(instance_type)
    return ResourceRow(
        kind="vm",
        native_id=raw["InstanceId"],
        scope=ctx.scope,
        name=tags.get("Name"),
        region=ctx.region,
        state=state,
        vcpu=size.vcpu if size else None,
        memory_gib=size.memory_gib if size else None,
        tags=tags,
        raw=_stored("vm", raw, ctx),
        system_code=_system_code(tags, ctx.system_tag),
        created_at_source=_instance_created_at(raw),
        terminal=state in VM_TERMINAL_STATES,
    )


def normalize_volume(raw: dict[str, Any], ctx: ListingContext) -> ResourceRow:
    """An EBS volume (a Volumes[] item) as a `volume` row."""
    tags = _tags(raw.get("Tags"), ctx.system_tag)
    state = raw["State"]
    return ResourceRow(
        kind="volume",
        native_id=raw["VolumeId"],
        scope=ctx.scope,
        name=tags.get("Name"),
        region=ctx.region,
        state=state,
        storage_gib=float(raw["Size"]),
        tags=tags,
        raw=_stored("volume", raw, ctx),
        system_code=_system_code(tags, ctx.system_tag),
        created_at_source=_utc(raw.get("CreateTime")),
        terminal=state in VOLUME_TERMINAL_STATES,
    )


def normalize_bucket(raw: dict[str, Any], ctx: ListingContext) -> ResourceRow:
    """An S3 bucket (a Buckets[] item plus the TagSet GetBucketTagging returned) as a `bucket` row.

    The name is the id: it is unique per endpoint, and the natural key already holds node and
    source. Buckets report no state.
    """
    tags = _tags(raw.get("TagSet"), ctx.system_tag)
    return ResourceRow(
        kind="bucket",
        native_id=raw["Name"],
        scope=ctx.scope,
        name=raw["Name"],
        region=raw.get("BucketRegion") or ctx.region,
        tags=tags,
        raw=_stored("bucket", raw, ctx),
        system_code=_system_code(tags, ctx.system_tag),
        created_at_source=_utc(raw.get("CreationDate")),
    )


def normalize_db_instance(raw: dict[str, Any], ctx: ListingContext) -> ResourceRow:
    """An RDS instance (a DBInstances[] item) as a `db_instance` row, keyed by its ARN.

    Not DBInstanceIdentifier: it is unique only per region, and the natural key has no
    region. Not DbiResourceId either, though it survives renames: compatible endpoints do not
    keep it unique (moto gives every instance the same one), and a shared id would merge
    distinct databases into one row and lose evidence. A rename costs a delete and a create.
    """
    tags = _tags(raw.get("TagList"), ctx.system_tag)
    status = raw["DBInstanceStatus"]
    instance_class = raw["DBInstanceClass"]
    # A db.<type> class has the CPU and memory of the EC2 type it runs on.
    size = fallback_size(instance_class.removeprefix("db."))
    storage = raw.get("AllocatedStorage")
    return ResourceRow(
        kind="db_instance",
        native_id=raw["DBInstanceArn"],
        scope=ctx.scope,
        name=raw["DBInstanceIdentifier"],
        region=ctx.region,
        state=status,
        vcpu=size.vcpu if size else None,
        memory_gib=size.memory_gib if size else None,
        storage_gib=float(storage) if storage is not None else None,
        tags=tags,
        raw=_stored("db_instance", raw, ctx),
        system_code=_system_code(tags, ctx.system_tag),
        created_at_source=_utc(raw.get("InstanceCreateTime")),
        terminal=status in DB_TERMINAL_STATES,
    )


def _tags(pairs: list[dict[str, str]] | None, system_tag: str) -> dict[str, str]:
    """The tags as a map, secret-shaped values redacted (the system tag never is)."""
    tags = {pair["Key"]: pair.get("Value", "") for pair in pairs or []}
    return redact_labels(tags, keep=system_tag)


def _stored(kind: str, raw: dict[str, Any], ctx: ListingContext) -> dict[str, Any]:
    """What the ledger keeps of the item: its kind's allowlist, as JSON (UTC ISO times)."""
    return json_safe(allowed_raw(kind, raw, system_tag=ctx.system_tag))


def _system_code(tags: Mapping[str, str], system_tag: str) -> str | None:
    return tags.get(system_tag, "").strip() or None


def _utc(value: datetime | str | None) -> datetime | None:
    # botocore parses timestamps to aware datetimes; stored raw payloads hold ISO strings.
    if value is None:
        return None
    return _as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _instance_created_at(raw: dict[str, Any]) -> datetime | None:
    # LaunchTime moves on every stop/start; the root volume's attach time stays at the
    # instance's creation. The earlier of the two is when the machine came to exist, which
    # the freeze rule needs (a restarted old VM is not a new one).
    times = [_utc(raw.get("LaunchTime"))]
    root = raw.get("RootDeviceName")
    for mapping in raw.get("BlockDeviceMappings") or []:
        if root and mapping.get("DeviceName") == root:
            times.append(_utc((mapping.get("Ebs") or {}).get("AttachTime")))
    known = [moment for moment in times if moment is not None]
    return min(known) if known else None


def json_safe(value: Any) -> Any:
    """The API item with datetimes as UTC ISO strings, so it can be stored as JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, datetime):
        return _as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# Instance sizes for endpoints without DescribeInstanceTypes. The general (m), compute (c)
# and memory (r) families follow one rule: medium = 1 vCPU, large = 2, xlarge = 4,
# Nxlarge = 4N, with 4, 2 and 8 GiB per vCPU. Burstable types do not, so they are listed.
_GIB_PER_VCPU = {
    **dict.fromkeys(
        ("m5", "m5a", "m5d", "m6i", "m6a", "m6g", "m6gd", "m6id", "m7i", "m7a", "m7g"), 4.0
    ),
    **dict.fromkeys(("c5", "c5a", "c5d", "c6i", "c6a", "c6g", "c6gd", "c7i", "c7a", "c7g"), 2.0),
    **dict.fromkeys(("r5", "r5a", "r5d", "r6i", "r6a", "r6g", "r6gd", "r7i", "r7a", "r7g"), 8.0),
}
_BURSTABLE = {
    "t2": {"nano": (1, 0.5), "micro": (1, 1), "small": (1, 2), "medium": (2, 4), "large": (2, 8)},
    "t3": {"nano": (2, 0.5), "micro": (2, 1), "small": (2, 2), "medium": (2, 4), "large": (2, 8)},
}
_BURSTABLE["t3a"] = _BURSTABLE["t4g"] = _BURSTABLE["t3"]
_LISTED_SIZES = {
    "m1.small": (1, 1.7),
    "m1.medium": (1, 3.75),
    "m1.large": (2, 7.5),
    "m1.xlarge": (4, 15.0),
    **{
        f"{family}.{size}": cpu_gib
        for family, sizes in _BURSTABLE.items()
        for size, cpu_gib in sizes.items()
    },
    **{f"{family}.xlarge": (4, 16.0) for family in _BURSTABLE},
    **{f"{family}.2xlarge": (8, 32.0) for family in _BURSTABLE},
}


def fallback_size(instance_type: str) -> InstanceSize | None:
    """vCPU and memory of a common instance type from the built-in table; None if unknown."""
    if instance_type in _LISTED_SIZES:
        vcpu, memory = _LISTED_SIZES[instance_type]
        return InstanceSize(float(vcpu), float(memory))
    family, _, size = instance_type.partition(".")
    if family not in _GIB_PER_VCPU:
        return None
    if size == "medium":
        vcpu = 1
    elif size == "large":
        vcpu = 2
    elif size == "xlarge":
        vcpu = 4
    elif (match := re.fullmatch(r"(\d+)xlarge", size)) is not None:
        vcpu = 4 * int(match.group(1))
    else:
        return None  # metal and odd sizes: better unknown than wrong
    return InstanceSize(float(vcpu), vcpu * _GIB_PER_VCPU[family])


# --- enrich: per-page lookups the listing call does not return (I/O) ------------------------


def _size_instance_types(ec2: Any, instances: list[dict[str, Any]], ctx: ListingContext) -> None:
    """Look up the sizes of the page's not-yet-seen instance types, once per scope."""
    wanted = sorted(
        {instance["InstanceType"] for instance in instances} - ctx.instance_sizes.keys()
    )
    if not wanted or not ctx.instance_types_api:
        return
    try:
        ctx.instance_sizes.update(_describe_instance_types(ec2, wanted))
    except ClientError as error:
        code = _error_code(error)
        if code in UNSUPPORTED_CODES:
            ctx.instance_types_api = False
        elif code == "InvalidInstanceType" and len(wanted) > 1:
            # One type the endpoint does not know fails the whole batch: ask one by one.
            for instance_type in wanted:
                try:
                    ctx.instance_sizes.update(_describe_instance_types(ec2, [instance_type]))
                except ClientError as single:
                    if _error_code(single) != "InvalidInstanceType":
                        raise
        elif code != "InvalidInstanceType":
            raise
    for instance_type in wanted:
        ctx.instance_sizes.setdefault(instance_type, None)


def _describe_instance_types(ec2: Any, instance_types: list[str]) -> dict[str, InstanceSize]:
    sizes = {}
    for start in range(0, len(instance_types), 100):  # the API takes at most 100 names
        chunk = instance_types[start : start + 100]
        paginator = ec2.get_paginator("describe_instance_types")
        for page in paginator.paginate(InstanceTypes=chunk):
            for described in result(page, "InstanceTypes", "DescribeInstanceTypes"):
                sizes[described["InstanceType"]] = InstanceSize(
                    float(described["VCpuInfo"]["DefaultVCpus"]),
                    described["MemoryInfo"]["SizeInMiB"] / 1024,
                )
    return sizes


def _bucket_tags(s3: Any, buckets: list[dict[str, Any]], ctx: ListingContext) -> None:
    """Add each bucket's TagSet to its item; a bucket without tags has an empty one.

    Any other failure (a bucket policy denying GetBucketTagging) fails the scope: recording the
    bucket untagged would silently take its system's evidence away.
    """
    for bucket in buckets:
        try:
            tagging = s3.get_bucket_tagging(Bucket=bucket["Name"])
            bucket["TagSet"] = result(tagging, "TagSet", "GetBucketTagging")
        except ClientError as error:
            if _error_code(error) not in NO_TAGS_CODES:
                raise
            bucket["TagSet"] = []


# --- the registry: one declaration per kind, keyed by the node file's service name ----------

LISTINGS: dict[str, Listing] = {
    "ec2": Listing(
        kind="vm",
        client="ec2",
        operation="describe_instances",
        result_key="Reservations",
        items="Reservations[].Instances[]",
        id_field="InstanceId",
        normalize=normalize_instance,
        enrich=_size_instance_types,
    ),
    "ebs": Listing(
        kind="volume",
        client="ec2",
        operation="describe_volumes",
        result_key="Volumes",
        items="Volumes",
        id_field="VolumeId",
        normalize=normalize_volume,
    ),
    "s3": Listing(
        kind="bucket",
        client="s3",
        operation="list_buckets",
        result_key="Buckets",
        items="Buckets",
        id_field="Name",
        normalize=normalize_bucket,
        enrich=_bucket_tags,
        regional=False,
        sized_pages=False,
    ),
    "rds": Listing(
        kind="db_instance",
        client="rds",
        operation="describe_db_instances",
        result_key="DBInstances",
        items="DBInstances",
        id_field="DBInstanceArn",
        normalize=normalize_db_instance,
    ),
}
_ITEM_PATHS = {service: jmespath.compile(listing.items) for service, listing in LISTINGS.items()}


# --- planning -------------------------------------------------------------------------------


def parse_source(source: Mapping[str, Any]) -> AwsSourceConfig:
    """Check a source dict (as the node file stores it); a bad one raises ValueError."""
    name = source.get("name") or "aws"
    problems = []
    for key in sorted(set(source) - _SOURCE_KEYS):
        if _CREDENTIAL_KEY.search(key):
            problems.append(
                f"{key!r} looks like a credential: AWS sources take credentials from the standard"
                " chain (a `profile:`, AWS_* environment variables or an instance role), never"
                " from the node file"
            )
        else:
            close = difflib.get_close_matches(key, _SOURCE_KEYS, n=1)
            problems.append(
                f"unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            )
    if source.get("kind", "aws") != "aws":
        problems.append(f"kind is {source['kind']!r}, not 'aws'")
    if not source.get("endpoint_url"):
        problems.append("endpoint_url is missing")
    elif credentials_in_text(str(source["endpoint_url"])):
        # A node stored before `nodes apply` refused these: never sent, never echoed.
        problems.append("endpoint_url carries credentials (a user, a password or a token)")
    regions = source.get("regions")
    if not isinstance(regions, list | tuple) or not regions:
        problems.append("regions must list at least one region")
    services = source.get("services") or list(LISTINGS)
    for service in services:
        if service not in LISTINGS:
            close = difflib.get_close_matches(service, LISTINGS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"unknown service {service!r}{hint} (known: {', '.join(LISTINGS)})")
    style = source.get("addressing_style") or "path"
    if style not in ADDRESSING_STYLES:
        problems.append(f"addressing_style must be one of {', '.join(ADDRESSING_STYLES)}")
    max_attempts = source.get("max_attempts", 5)
    if not isinstance(max_attempts, int) or max_attempts < 1:
        problems.append("max_attempts must be a whole number ≥ 1")
    if problems:
        raise ValueError(f"aws source {name!r}: " + "; ".join(problems))
    return AwsSourceConfig(
        name=name,
        endpoint_url=source["endpoint_url"],
        regions=tuple(regions or ()),
        services=tuple(service for service in LISTINGS if service in services),
        profile=source.get("profile"),
        ca_bundle=os.path.expanduser(source["ca_bundle"]) if source.get("ca_bundle") else None,
        verify_tls=source.get("verify_tls", True),
        addressing_style=style,
        max_attempts=max_attempts,
        page_size=source.get("page_size"),
        connect_timeout=source.get("connect_timeout", 10.0),
        read_timeout=source.get("read_timeout", 60.0),
    )


def plan_scopes(
    *, node_id: str, source: dict[str, Any], system_tag: str = DEFAULT_SYSTEM_TAG
) -> list[Scope]:
    """One scope per (kind, region) of the source, plus one bucket scope ("*") for S3.

    Planning does no I/O: clients are created when a scope's pages are first asked for, so a
    node that is down fails only its own scopes, each with its own error.
    """
    config = parse_source(source)
    scopes = []
    for service in config.services:
        listing = LISTINGS[service]
        # The endpoint-wide S3 listing is signed for the first region.
        units = (
            [(region, region) for region in config.regions]
            if listing.regional
            else [(config.regions[0], GLOBAL_SCOPE)]
        )
        for region, scope in units:
            pages = partial(
                scope_pages, service, config, region=region, scope=scope, system_tag=system_tag
            )
            scopes.append(
                Scope(
                    node_id=node_id, source=config.name, kind=listing.kind, scope=scope, pages=pages
                )
            )
    return scopes


def scope_pages(
    service: str,
    source: AwsSourceConfig,
    stats: ScopeStats,
    *,
    region: str,
    scope: str,
    system_tag: str,
) -> Iterator[list[ResourceRow]]:
    """The rows of one scope, page by page as the API returns them."""
    listing = LISTINGS[service]
    ctx = ListingContext(region=region, scope=scope, system_tag=system_tag)
    for items in list_items(service, source, stats, region=region, ctx=ctx):
        yield [listing.normalize(item, ctx) for item in items]


# --- list: the one generic paginate-and-retry helper (I/O only) -----------------------------


def list_items(
    service: str,
    source: AwsSourceConfig,
    stats: ScopeStats,
    *,
    region: str,
    ctx: ListingContext,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of raw, enriched items of one kind in one region; failures become ScopeFailed.

    botocore retries each call (standard mode, `max_attempts`); `stats` counts pages, API
    calls (enrichment included) and the retries botocore made. A page is trusted only when
    it carries its result key and the 2xx answer behind it was no error document and not
    empty; anything else fails the scope as `malformed_response`, never as an empty page.
    """
    listing = LISTINGS[service]
    handed_out = False
    try:
        client = make_client(source, listing.client, region, stats)
        config = {"PageSize": source.page_size} if source.page_size and listing.sized_pages else {}
        operation = client.meta.method_to_api_mapping[listing.operation]
        seen: set[str] = set()
        for page in client.get_paginator(listing.operation).paginate(PaginationConfig=config):
            result(page, listing.result_key, operation)
            items = []
            for item in _ITEM_PATHS[service].search(page) or []:
                # Offset-style pagination over a changing estate can repeat an item; one row
                # each, so a batch upsert never meets the same key twice.
                if item[listing.id_field] not in seen:
                    seen.add(item[listing.id_field])
                    items.append(item)
            if listing.enrich is not None:
                listing.enrich(client, items, ctx)
            stats.pages += 1
            handed_out = True
            yield items
    except (ClientError, BotoCoreError, ResponseParserError) as error:
        raise scope_failure(error, after_pages=handed_out) from error


def make_client(source: AwsSourceConfig, service: str, region: str, stats: ScopeStats) -> Any:
    """A botocore client for the source's endpoint, counting its calls and retries into `stats`."""
    # botocore loads on the first listing, not when the collector is imported or planned.
    import botocore.session
    from botocore.config import Config

    # A session per scope: sessions are not thread-safe, and scopes may run in parallel.
    # Credentials come only from the standard chain (environment, the profile, instance role).
    # botocore rather than boto3.Session: same chain, but boto3 would append its data path to
    # the shared loader on every session.
    session = botocore.session.Session(profile=source.profile)
    session.register_component("data_loader", _shared_loader())
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url=source.endpoint_url,
        verify=source.verify,
        config=Config(
            # total_max_attempts counts the first try, as `max_attempts` does in the AWS
            # config file; botocore's own `max_attempts` key would count only the retries.
            retries={"mode": "standard", "total_max_attempts": source.max_attempts},
            connect_timeout=source.connect_timeout,
            read_timeout=source.read_timeout,
            s3={"addressing_style": source.addressing_style},
            # S3-compatible stores (Ceph, MinIO, vendor OSS) reject or ignore the CRC
            # checksums botocore now adds by default; send and check them only when required.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            user_agent_extra="yiyun-inventory",
        ),
    )
    _count_calls(client, stats)
    client.meta.events.register("before-parse", _refuse_disguised_failure)
    return client


@functools.cache
def _shared_loader() -> Any:
    # Parsing EC2's service model takes ~0.15 s, and every scope's session would parse the
    # same files again; one loader serves them all (its cache is only read once filled).
    from botocore.loaders import create_loader

    return create_loader()


def _count_calls(client: Any, stats: ScopeStats) -> None:
    events = client.meta.events

    def before_call(**kwargs: Any) -> None:
        stats.api_calls += 1

    def before_send(request: Any, **kwargs: Any) -> None:
        request.context["yiyun_attempts"] = request.context.get("yiyun_attempts", 0) + 1

    def after_call(parsed: dict[str, Any], **kwargs: Any) -> None:
        stats.retries += parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)

    def after_call_error(context: dict[str, Any], **kwargs: Any) -> None:
        # A transport failure (refused, reset, timed out) leaves no response to carry
        # RetryAttempts; the attempts counted on the way out tell the same.
        stats.retries += max(context.get("yiyun_attempts", 0) - 1, 0)

    events.register("before-call", before_call)
    events.register("before-send", before_send)
    events.register("after-call", after_call)
    events.register("after-call-error", after_call_error)


# --- failures -------------------------------------------------------------------------------


class MalformedResponse(BotoCoreError):
    """A 2xx answer that is not the operation's result, which must not be read as "nothing"."""

    fmt = "{operation}: {problem}"


# The root element of an XML body, past a BOM, the declaration and comments.
_XML_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<(?:[\w.-]+:)?([\w.-]+)", re.S
)
# Error documents: EC2 (<Response><Errors>), the query protocol (RDS), S3 (rest-xml).
_ERROR_ROOTS = frozenset({b"Response", b"ErrorResponse", b"Error"})


def _element(body: bytes, name: str) -> str:
    found = re.search(rb"<" + name.encode() + rb">([^<]*)</" + name.encode() + rb">", body)
    return html.unescape(found.group(1).decode("utf-8", "replace")).strip() if found else ""


def disguised_failure(status: int, body: bytes, result_wrapper: str | None = None) -> str | None:
    """Why the body of a 2xx answer cannot be the operation's result; None when it may be.

    Left alone, botocore reads an EC2 error document under 200 as a result with nothing in
    it, an empty body as an empty result for S3, and fails with a KeyError on a query
    document without its result element. Any of them would pass for an empty listing.
    """
    if not body.strip():
        return f"HTTP {status} with an empty body"
    root = _XML_ROOT.match(body)
    if root is None:
        return None  # not XML at all: botocore's parser says so (ResponseParserError)
    if root.group(1) in _ERROR_ROOTS:
        code, message = _element(body, "Code"), _element(body, "Message")
        return f"HTTP {status} with an error document: {code or '?'}: {message or '?'}"
    wrapper = (result_wrapper or "").encode()
    if wrapper and not re.search(rb"<(?:[\w.-]+:)?" + re.escape(wrapper) + rb"[\s/>]", body):
        return f"HTTP {status} without its {result_wrapper} element"
    return None


def _refuse_disguised_failure(
    operation_model: Any, response_dict: dict[str, Any], **kwargs: Any
) -> None:
    """botocore's before-parse hook: a disguised failure leaves as MalformedResponse.

    S3 never gets here with an error document: botocore's own hook turns one into a 500
    first, which is retried and then fails with the document's code.
    """
    status = response_dict["status_code"]
    output = operation_model.output_shape
    if not 200 <= status < 300 or output is None or operation_model.has_streaming_output:
        return
    problem = disguised_failure(
        status, response_dict["body"], output.serialization.get("resultWrapper")
    )
    if problem is not None:
        raise MalformedResponse(operation=operation_model.name, problem=problem)


def result(answer: dict[str, Any], key: str, operation: str) -> Any:
    """The answer's `key` (Reservations, Buckets…), which an answer that lists nothing still
    carries (as an empty list); an answer without it, or with an Error, is no result."""
    if "Error" in answer:
        error = answer["Error"]
        detail = (
            f"{error.get('Code') or '?'}: {error.get('Message') or '?'}"
            if isinstance(error, dict)
            else str(error)
        )
        raise MalformedResponse(
            operation=operation, problem=f"an answer carrying an error: {detail}"
        )
    if key not in answer or answer[key] is None:
        found = ", ".join(sorted(k for k in answer if k != "ResponseMetadata")) or "nothing"
        raise MalformedResponse(
            operation=operation, problem=f"an answer without {key} (it holds {found})"
        )
    return answer[key]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def scope_failure(
    error: ClientError | BotoCoreError | ResponseParserError, *, after_pages: bool
) -> ScopeFailed:
    """The ScopeFailed a botocore error means, with the real code and a credential-free message."""
    broken = PARTIAL if after_pages else ERROR
    if isinstance(error, MalformedResponse | ResponseParserError):
        # A 2xx answer that is not a result: not retried, and never read as an empty listing.
        # The parser's message goes on with the whole body: its first line says enough.
        detail = str(error).partition("\n")[0]
        after = " (after a complete page)" if after_pages else ""
        return ScopeFailed(broken, MALFORMED, redact(f"{detail}{after}"))
    if isinstance(error, ClientError):
        http_status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = _error_code(error) or str(http_status or type(error).__name__)
        detail = error.response.get("Error", {}).get("Message") or str(error)
        message = f"{error.operation_name} (HTTP {http_status}): {detail}"
        if code in DENIED_CODES or http_status in (401, 403):
            status = DENIED
        elif code in THROTTLED_CODES or http_status == 429:
            status = THROTTLED
        else:
            status = broken
        return ScopeFailed(status, code, redact(message))
    return ScopeFailed(broken, type(error).__name__, redact(str(error)))


_SECRETS = (
    # Access key ids (long-term AKIA…, temporary ASIA…) as they appear in signing errors.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"), "<access-key-id>"),
    (re.compile(r"(?i)(Credential=)[^,&\s\"']+"), r"\1<redacted>"),
    (re.compile(r"(?i)(Signature=)[^,&\s\"']+"), r"\1<redacted>"),
    (re.compile(r"(?i)(X-Amz-Security-Token=)[^,&\s\"']+"), r"\1<redacted>"),
)


def redact(message: str, limit: int = 1000) -> str:
    """The message without access key ids, signatures or tokens, cut to a storable length."""
    message = mask_urls_in(message)
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message if len(message) <= limit else message[: limit - 1] + "…"
