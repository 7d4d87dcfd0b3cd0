"""History through the real scan with the AWS-compatible collector: events and revival."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from inventory.models import Resource, ResourceEvent
from inventory.sim.aws import delete_buckets, seed_buckets, seed_instances, stop_instances
from tests.inventory.collectors.test_aws import REGION, SYSTEM_TAG, live, node_id, scan


def events(engine: Any) -> list[tuple[str, str, dict | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Resource.native_id, ResourceEvent.type, ResourceEvent.diff)
            .join(Resource, Resource.id == ResourceEvent.resource_id)
            .order_by(ResourceEvent.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_events_record_creation_and_a_diff_of_what_changed(engine: Any, aws_endpoint: str) -> None:
    [vm] = seed_instances(aws_endpoint, REGION, count=1, tags={SYSTEM_TAG: "JS-A"})
    node = node_id()
    scan(engine, node, aws_endpoint)
    stop_instances(aws_endpoint, REGION, [vm])

    scan(engine, node, aws_endpoint)
    scan(engine, node, aws_endpoint)  # nothing changed: nothing written

    history = [(n, t, d) for n, t, d in events(engine) if n == vm]
    assert [t for _, t, _ in history] == ["created", "updated"]
    assert history[1][2]["state"] == {"from": "running", "to": "stopped"}


def test_revival_of_a_bucket_that_comes_back(engine: Any, aws_endpoint: str) -> None:
    seed_buckets(aws_endpoint, REGION, ["js-a-archive"], tags={SYSTEM_TAG: "JS-A"})
    node = node_id()
    scan(engine, node, aws_endpoint)
    delete_buckets(aws_endpoint, REGION, ["js-a-archive"])
    scan(engine, node, aws_endpoint)
    assert live(engine, "bucket") == set()

    seed_buckets(aws_endpoint, REGION, ["js-a-archive"], tags={SYSTEM_TAG: "JS-A"})
    scan(engine, node, aws_endpoint)

    assert live(engine, "bucket") == {("js-a-archive", "JS-A")}
    assert [t for n, t, _ in events(engine) if n == "js-a-archive"] == [
        "created",
        "deleted",
        "reappeared",
    ]
