"""History through the real scan with the Kubernetes collector: events and revival."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from inventory.models import Resource, ResourceEvent
from inventory.sim.k8s import KubernetesSimulator, make_deployment, make_namespace
from tests.inventory.collectors.conftest import Sleeps
from tests.inventory.collectors.test_kubernetes import fast, live, scan


def events(engine: Any, name: str) -> list[tuple[str, dict | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(ResourceEvent.type, ResourceEvent.diff)
            .join(Resource, Resource.id == ResourceEvent.resource_id)
            .where(Resource.name == name)
            .order_by(ResourceEvent.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_events_record_a_scale_down_as_a_diff(
    engine: Any, sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    sim.add("deployment", make_deployment("edu", "portal", replicas=3))
    scan(engine, kubeconfig, fast(sleeps))
    sim.update(
        "deployment",
        "edu",
        "portal",
        spec={**sim.get("deployment", "edu", "portal")["spec"], "replicas": 0},
    )  # type: ignore[index]

    scan(engine, kubeconfig, fast(sleeps))
    scan(engine, kubeconfig, fast(sleeps))

    history = events(engine, "portal")
    assert [t for t, _ in history] == ["created", "updated"]
    assert history[1][1]["replicas"] == {"from": 3, "to": 0}  # type: ignore[index]


def test_revival_when_a_workload_reappears(
    engine: Any, sim: KubernetesSimulator, kubeconfig: str, sleeps: Sleeps
) -> None:
    sim.add("namespace", make_namespace("edu", system="JS-EDU-0001"))
    original = sim.add("deployment", make_deployment("edu", "portal"))
    scan(engine, kubeconfig, fast(sleeps))
    sim.delete("deployment", "edu", "portal")
    scan(engine, kubeconfig, fast(sleeps))
    assert live(engine, "deployment") == set()

    # Restored from backup with its identity (uid) intact.
    restored = make_deployment("edu", "portal")
    restored["metadata"]["uid"] = original["metadata"]["uid"]
    sim.add("deployment", restored)
    scan(engine, kubeconfig, fast(sleeps))

    assert live(engine, "deployment") == {("portal", "JS-EDU-0001")}
    assert [t for t, _ in events(engine, "portal")] == ["created", "deleted", "reappeared"]
