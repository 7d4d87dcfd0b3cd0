"""scrub stored secrets: every resource's raw cut to its kind's allowlist, secret-shaped tags
redacted, and the same tags redacted in the history

Until now `resource.raw` held the whole API object — a pod template's env values, command
lines, annotations such as an api token — and `tags` every label and tag value as listed,
so a database dump could give a secret back. The collectors now store only each kind's
allowlist (inventory/collectors/allowlist.py) with secret-shaped label and tag values as
`<redacted>` (inventory/secret_shape.py). This migration applies the same to the rows
already kept:

- resource: `raw` → its kind's allowlist (a kind without a declaration keeps nothing);
  `tags` redacted, the node's system tag never; for VMs and volumes, whose name is their
  `Name` tag, a redacted `Name` redacts the name too; `content_hash` recomputed where tags
  or name changed, so the next scan finds the row unchanged (it hashes what it now
  produces) and records no `updated` event.
- resourceevent: the `tags` (and VM/volume `name`) before/after of `updated` and
  `reappeared` diffs, redacted the same way.
- node: an `endpoint_url` stored before `nodes apply` refused URLs carrying credentials is
  kept masked (`inventory/urls.py`); the masked URL still carries its user or parameter
  names, so the scan still refuses the source until a clean node file is applied.

Rows are read and written in batches by id, so a ledger of millions of rows is never held
in memory at once; the whole migration is one transaction (a failure leaves the ledger as
it was, and `db upgrade` runs it again).

Unlike 0005, this migration uses the collectors' own rules rather than a frozen copy: its
purpose is that the stored rows equal what a scan now writes, and a copy that drifted from
the collectors would make the next scan record every row as changed. It only ever removes
information, so running it under a later, stricter allowlist is still a scrub.

Downgrade changes nothing: what was scrubbed is gone, and that is the point.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from inventory.collectors.allowlist import allowed_raw
from inventory.collectors.base import ResourceRow
from inventory.models import UTCDateTime
from inventory.secret_shape import redact_labels, redacted
from inventory.urls import mask_url, url_credentials

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Written back: None stays SQL NULL rather than becoming JSON null.
JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
DEFAULT_SYSTEM_TAG = "yiyun.io/system"
# Rows per read and write: a batch of full Kubernetes objects is a few MiB at most.
BATCH = 1000
# Kinds whose `name` is their `Name` tag (inventory/collectors/aws.py).
NAMED_BY_TAG = frozenset({"vm", "volume"})

NODE = sa.table("node", sa.column("id", sa.String()), sa.column("system_tag", sa.String()))
# The columns ResourceRow.content_hash reads, plus what is scrubbed.
HASHED = (
    "scope",
    "name",
    "namespace",
    "region",
    "state",
    "replicas",
    "vcpu",
    "memory_gib",
    "storage_gib",
    "system_code",
    "created_at_source",
)
RESOURCE = sa.table(
    "resource",
    sa.column("id", sa.Integer()),
    sa.column("node_id", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("native_id", sa.String()),
    sa.column("scope", sa.String()),
    sa.column("name", sa.String()),
    sa.column("namespace", sa.String()),
    sa.column("region", sa.String()),
    sa.column("state", sa.String()),
    sa.column("replicas", sa.Integer()),
    sa.column("vcpu", sa.Float()),
    sa.column("memory_gib", sa.Float()),
    sa.column("storage_gib", sa.Float()),
    sa.column("system_code", sa.String()),
    sa.column("created_at_source", UTCDateTime()),
    sa.column("tags", JSON),
    sa.column("raw", JSON),
    sa.column("content_hash", sa.String()),
)
EVENT = sa.table(
    "resourceevent",
    sa.column("id", sa.Integer()),
    sa.column("resource_id", sa.Integer()),
    sa.column("type", sa.String()),
    sa.column("diff", JSON),
)


def _system_tags(connection: sa.Connection) -> dict[str, str]:
    return {
        node_id: tag or DEFAULT_SYSTEM_TAG
        for node_id, tag in connection.execute(sa.select(NODE.c.id, NODE.c.system_tag))
    }


def _scrubbed_name(kind: str, name: Any, tags: Mapping[str, Any], clean: Mapping[str, Any]) -> Any:
    """A VM's or volume's name after its Name tag was redacted: redacted with it."""
    if kind in NAMED_BY_TAG and clean.get("Name") != tags.get("Name") and name == tags.get("Name"):
        return clean.get("Name")
    return name


def _batches(
    connection: sa.Connection, query: sa.Select[Any], key: sa.ColumnElement[int]
) -> Iterator[Sequence[sa.Row[Any]]]:
    """`query`'s rows in batches of BATCH by ascending `key` (keyset: no OFFSET rescans)."""
    after = 0
    while batch := connection.execute(query.where(key > after).order_by(key).limit(BATCH)).all():
        yield batch
        after = batch[-1].id


def _scrub_resources(connection: sa.Connection, system_tags: dict[str, str]) -> None:
    columns = [RESOURCE.c[name] for name in ("id", "node_id", "kind", "native_id", *HASHED)]
    query = sa.select(*columns, RESOURCE.c.tags, RESOURCE.c.raw, RESOURCE.c.content_hash)
    update = (
        sa.update(RESOURCE)
        .where(RESOURCE.c.id == sa.bindparam("b_id"))
        .values(
            raw=sa.bindparam("b_raw", type_=JSON_OR_NULL),
            tags=sa.bindparam("b_tags", type_=JSON_OR_NULL),
            name=sa.bindparam("b_name"),
            content_hash=sa.bindparam("b_hash"),
        )
    )
    for batch in _batches(connection, query, RESOURCE.c.id):
        changes = []
        for row in batch:
            system_tag = system_tags.get(row.node_id, DEFAULT_SYSTEM_TAG)
            raw = allowed_raw(row.kind, row.raw, system_tag=system_tag) if row.raw else row.raw
            tags = row.tags or {}
            clean = redact_labels(tags, keep=system_tag) if isinstance(tags, dict) else {}
            name = _scrubbed_name(row.kind, row.name, tags, clean)
            content_hash = row.content_hash
            if clean != tags or name != row.name:
                hashed = {column: getattr(row, column) for column in HASHED}
                hashed["name"] = name
                content_hash = ResourceRow(
                    kind=row.kind, native_id=row.native_id, tags=clean, **hashed
                ).content_hash()
            if raw != row.raw or clean != tags or name != row.name:
                changes.append(
                    {
                        "b_id": row.id,
                        "b_raw": raw,
                        "b_tags": clean if row.tags is not None else None,
                        "b_name": name,
                        "b_hash": content_hash,
                    }
                )
        if changes:
            connection.execute(update, changes)


def _scrub_diff(diff: dict[str, Any], kind: str | None, system_tag: str) -> dict[str, Any]:
    scrubbed = dict(diff)
    change = diff.get("tags")
    if isinstance(change, dict):
        scrubbed["tags"] = {
            side: redact_labels(value, keep=system_tag) if isinstance(value, dict) else value
            for side, value in change.items()
        }
    change = diff.get("name")
    if isinstance(change, dict) and kind in NAMED_BY_TAG:
        scrubbed["name"] = {
            side: redacted("Name", value, keep=system_tag) if isinstance(value, str) else value
            for side, value in change.items()
        }
    return scrubbed


def _scrub_events(connection: sa.Connection, system_tags: dict[str, str]) -> None:
    # A purged resource's events remain: they are scrubbed under the default system tag.
    query = (
        sa.select(EVENT.c.id, EVENT.c.diff, RESOURCE.c.kind, RESOURCE.c.node_id)
        .select_from(EVENT.outerjoin(RESOURCE, RESOURCE.c.id == EVENT.c.resource_id))
        .where(EVENT.c.type.in_(("updated", "reappeared")))
    )
    update = (
        sa.update(EVENT)
        .where(EVENT.c.id == sa.bindparam("b_id"))
        .values(diff=sa.bindparam("b_diff", type_=JSON_OR_NULL))
    )
    for batch in _batches(connection, query, EVENT.c.id):
        changes = []
        for event in batch:
            if not isinstance(event.diff, dict):
                continue
            system_tag = system_tags.get(event.node_id, DEFAULT_SYSTEM_TAG)
            diff = _scrub_diff(event.diff, event.kind, system_tag)
            if diff != event.diff:
                changes.append({"b_id": event.id, "b_diff": diff})
        if changes:
            connection.execute(update, changes)


def _scrub_node_sources(connection: sa.Connection) -> None:
    """Mask endpoint URLs that carry credentials; a province has thousands of nodes, not
    millions, so they are read at once."""
    nodes = sa.table("node", sa.column("id", sa.String()), sa.column("sources", JSON))
    for node_id, sources in connection.execute(sa.select(nodes.c.id, nodes.c.sources)).all():
        if not isinstance(sources, list):
            continue
        changed = False
        for source in sources:
            url = source.get("endpoint_url") if isinstance(source, dict) else None
            if isinstance(url, str) and url_credentials(url):
                source["endpoint_url"] = mask_url(url)
                changed = True
        if changed:
            connection.execute(nodes.update().where(nodes.c.id == node_id).values(sources=sources))


def upgrade() -> None:
    connection = op.get_bind()
    system_tags = _system_tags(connection)
    _scrub_resources(connection, system_tags)
    _scrub_events(connection, system_tags)
    _scrub_node_sources(connection)


def downgrade() -> None:
    pass
