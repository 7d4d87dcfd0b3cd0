"""Cloud nodes: capacity, what is allocated on them, and their last complete scan."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from inventory.queries import find_nodes
from service.context import CurrentActor, Ledger, needs
from service.schemas_inventory import NodePublic

router = APIRouter(tags=["inventory"])


@router.get(
    "/nodes",
    summary="Every node of the ledger (retired ones too), ordered by id.",
    response_model=list[NodePublic],
    openapi_extra=needs("read"),
)
def nodes(ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        found = find_nodes(session=session, actor=actor, settings=ledger.settings)
    return [NodePublic.of(node) for node in found]


@router.get(
    "/nodes/{node_id}",
    summary="One node.",
    response_model=NodePublic,
    openapi_extra=needs("read"),
)
def node(node_id: str, ledger: Ledger, actor: CurrentActor) -> Any:
    with ledger.session() as session:
        found = find_nodes(session=session, actor=actor, settings=ledger.settings, node_id=node_id)
    return NodePublic.of(found[0])
