"""What happens to a node's ledger rows when the node file changes whose they are: a source
given a new id keeps its rows under it, and a retired node's rows are tombstoned with their
history kept."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from inventory.models import JSONType, Resource, ResourceEvent, ScopeResult, UTCDateTime

RESOURCE = Resource.__table__  # type: ignore[attr-defined]
EVENT = ResourceEvent.__table__  # type: ignore[attr-defined]
SCOPE_RESULT = ScopeResult.__table__  # type: ignore[attr-defined]

# The reason a retirement's `deleted` events carry (see ResourceEvent.diff).
NODE_RETIRED = "node_retired"


def source_has_rows(*, session: Session, node_id: str, source: str) -> bool:
    """Whether any resource row (live or tombstoned) is kept under this node and source id."""
    query = sa.select(RESOURCE.c.id).where(
        RESOURCE.c.node_id == node_id, RESOURCE.c.source == source
    )
    return session.execute(query.limit(1)).first() is not None


def rename_source_rows(*, session: Session, node_id: str, old: str, new: str) -> int:
    """Move a source's resources and scope results from id `old` to `new`, so a source that
    got an explicit id keeps its rows and history instead of starting over beside them.

    The caller makes sure nothing is kept under `new` yet (see source_has_rows).
    """
    moved = session.execute(
        sa.update(RESOURCE)
        .where(RESOURCE.c.node_id == node_id, RESOURCE.c.source == old)
        .values(source=new)
    )
    session.execute(
        sa.update(SCOPE_RESULT)
        .where(SCOPE_RESULT.c.node_id == node_id, SCOPE_RESULT.c.source == old)
        .values(source=new)
    )
    return int(getattr(moved, "rowcount", 0) or 0)


def retire_node_rows(
    *, session: Session, node_id: str, actor: str, note: str, now: datetime
) -> int:
    """Tombstone every live resource of a node, each with a `deleted` event saying who retired
    the node and why; nothing is deleted. Returns how many rows were tombstoned.

    Set-based: one INSERT … SELECT for the events and one UPDATE, whatever the node's size.
    """
    live = (RESOURCE.c.node_id == node_id, RESOURCE.c.deleted_at.is_(None))
    diff = {"reason": NODE_RETIRED, "by": actor, "note": note}
    session.execute(
        sa.insert(EVENT).from_select(
            ["resource_id", "run_id", "at", "type", "diff"],
            sa.select(
                RESOURCE.c.id,
                sa.null(),
                sa.literal(now, UTCDateTime()),
                sa.literal("deleted"),
                sa.literal(diff, JSONType),
            ).where(*live),
        )
    )
    tombstoned = session.execute(sa.update(RESOURCE).where(*live).values(deleted_at=now))
    return int(getattr(tombstoned, "rowcount", 0) or 0)
