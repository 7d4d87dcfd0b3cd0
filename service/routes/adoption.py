"""The adoption KPI (非涉密系统上云率), as `yiyun report adoption --format json` gives it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from inventory.queries import adoption_kpi
from inventory.reports import switches_from
from service.context import CurrentActor, Ledger, needs
from service.schemas_inventory import AdoptionPublic

router = APIRouter(tags=["inventory"])


@router.get(
    "/adoption",
    summary="The KPI overall, and by province, city, department or node.",
    description="The department rows are the reader's departments; the province total and "
    "the city and node rows are for every reader. Classified systems are counted, never named.",
    response_model=AdoptionPublic,
    response_model_exclude_unset=True,
    openapi_extra=needs("read"),
)
def adoption(
    ledger: Ledger,
    actor: CurrentActor,
    by: Literal["province", "city", "department", "node"] | None = None,
    policy: Literal["evidence-v1", "evidence-v2"] | None = None,
    exempt_in_denominator: Annotated[bool | None, Query()] = None,
    trust_declared: Annotated[bool | None, Query()] = None,
) -> Any:
    switches = switches_from(
        ledger.settings, exempt_in_denominator=exempt_in_denominator, trust_declared=trust_declared
    )
    with ledger.session() as session:
        report = adoption_kpi(
            session=session,
            actor=actor,
            settings=ledger.settings,
            switches=switches,
            by=by,
            policy=policy,
        )
    return AdoptionPublic.of(report)
