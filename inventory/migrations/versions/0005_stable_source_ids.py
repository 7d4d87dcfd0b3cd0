"""stable source ids: sources keyed by kind and endpoint, never by their place in the list

Until now a source without a `name:` was keyed by its kind when alone of that kind on its
node, else `kind-N` by position, so adding a second aws source renamed `aws` to `aws-1` and
duplicated every row. From now on such a source's id is derived from its kind and endpoint
(aws-<host[-port][-path]>, kubernetes-<context>). This migration moves every ledger to that:
for each stored source whose name was defaulted (its kind, or kind-N), Resource.source and
ScopeResult.source rows and the stored name move to the derived id, so the next scan finds
its rows where it writes them and nothing is duplicated.

A source is left as it was (its old name stays its id, which the node file may then write as
`id:`) when its derived id would collide with another source of the node, or when rows are
already kept under the derived id.

The derivation is a frozen copy of inventory.nodes.derived_source_id as of this revision:
a migration must not change meaning when the code does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:00:00
"""

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NODE = sa.table("node", sa.column("id", sa.String()), sa.column("sources", JSON))
RESOURCE = sa.table(
    "resource",
    sa.column("id", sa.Integer()),
    sa.column("node_id", sa.String()),
    sa.column("source", sa.String()),
)
SCOPE_RESULT = sa.table(
    "scoperesult", sa.column("node_id", sa.String()), sa.column("source", sa.String())
)

# --- frozen copy of the derivation (inventory.nodes, revision 0005) --------------------------
_MAX = 63
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _bounded_id(kind: str, detail: str) -> str:
    slug = _slug(detail)
    digest = hashlib.sha256(detail.encode()).hexdigest()[:8]
    if not slug:
        return f"{kind}-{digest}"
    whole = f"{kind}-{slug}"
    if len(whole) <= _MAX:
        return whole
    return f"{whole[: _MAX - 9].rstrip('-')}-{digest}"


def _derived_id(source: dict[str, Any]) -> str | None:
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
    return None


# --- the move -----------------------------------------------------------------------------


def _old_key(source: dict[str, Any]) -> str:
    # What the scan keyed rows by: the stored name, else the kind.
    return str(source.get("name") or source.get("kind"))


def _was_defaulted(source: dict[str, Any]) -> bool:
    kind, name = source.get("kind"), source.get("name")
    if not isinstance(kind, str):
        return False
    return not name or name == kind or re.fullmatch(rf"{re.escape(kind)}-\d+", name) is not None


def _positional_names(sources: list[dict[str, Any]]) -> list[str]:
    """The names the old rule gave: the kind when alone of it, else kind-N by position."""
    totals = Counter(source.get("kind") for source in sources)
    seen: Counter[Any] = Counter()
    names = []
    for source in sources:
        kind = source.get("kind")
        seen[kind] += 1
        names.append(str(kind) if totals[kind] == 1 else f"{kind}-{seen[kind]}")
    return names


def _has_rows(connection: sa.Connection, node_id: str, source: str) -> bool:
    query = sa.select(RESOURCE.c.id).where(
        RESOURCE.c.node_id == node_id, RESOURCE.c.source == source
    )
    return connection.execute(query.limit(1)).first() is not None


def _settle(
    connection: sa.Connection, node_id: str, current: list[str], proposed: list[str | None]
) -> list[str]:
    """The final key of each source: its proposal, unless that collides with another final key
    or rows are already kept under it, in which case it keeps its current key."""
    final = [new or old for old, new in zip(current, proposed, strict=True)]
    while True:
        counts = Counter(final)
        # Rows under a key that another source is moving away from are no obstacle.
        leaving = {old for old, key in zip(current, final, strict=True) if key != old}
        clashes = [
            index
            for index, (old, key) in enumerate(zip(current, final, strict=True))
            if key != old
            and (counts[key] > 1 or (key not in leaving and _has_rows(connection, node_id, key)))
        ]
        if not clashes:
            return final
        for index in clashes:
            final[index] = current[index]


def _move(connection: sa.Connection, node_id: str, renames: dict[str, str]) -> None:
    # Through a placeholder, so swapping two keys (aws-1 ↔ aws-2) can never meet itself.
    staged = {old: f"~yiyun-0005~{old}" for old in renames}
    for table in (RESOURCE, SCOPE_RESULT):
        for old, temporary in staged.items():
            connection.execute(
                sa.update(table)
                .where(table.c.node_id == node_id, table.c.source == old)
                .values(source=temporary)
            )
        for old, new in renames.items():
            connection.execute(
                sa.update(table)
                .where(table.c.node_id == node_id, table.c.source == staged[old])
                .values(source=new)
            )


def _rekey(propose: Any) -> None:
    """For every node, move each source to the key `propose(sources, index)` gives it."""
    connection = op.get_bind()
    nodes = connection.execute(sa.select(NODE.c.id, NODE.c.sources).order_by(NODE.c.id)).all()
    for node_id, sources in nodes:
        if not sources:
            continue
        current = [_old_key(source) for source in sources]
        proposed = [propose(sources, index) for index in range(len(sources))]
        final = _settle(connection, node_id, current, proposed)
        renames = {old: new for old, new in zip(current, final, strict=True) if old != new}
        if not renames and all(source.get("name") for source in sources):
            continue
        _move(connection, node_id, renames)
        stored = [{**source, "name": key} for source, key in zip(sources, final, strict=True)]
        connection.execute(sa.update(NODE).where(NODE.c.id == node_id).values(sources=stored))


def upgrade() -> None:
    def derived(sources: list[dict[str, Any]], index: int) -> str | None:
        source = sources[index]
        return _derived_id(source) if _was_defaulted(source) else None

    _rekey(derived)


def downgrade() -> None:
    # Back to positional names for the sources whose key is their derived id.
    def positional(sources: list[dict[str, Any]], index: int) -> str | None:
        source = sources[index]
        if source.get("name") != _derived_id(source):
            return None
        return _positional_names(sources)[index]

    _rekey(positional)
