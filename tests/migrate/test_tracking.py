"""Tracking on both databases: every transition, every gate, the append-only log, discrepancies."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import Resource, System, utcnow
from inventory.settings import Settings
from migrate.metrics import migration_state_counts
from migrate.models import AppendOnlyViolation, MigrationEvent, SystemMigration
from migrate.tracking import STATES, TransitionRefused, advance
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource

# The allowed transitions, written out independently of migrate.tracking.TRANSITIONS.
ALLOWED_TEXT = """
surveyed:       assessed on_hold exempted cancelled
assessed:       planned surveyed on_hold exempted cancelled
planned:        provisioning assessed on_hold exempted cancelled
provisioning:   migrating planned on_hold cancelled
migrating:      testing rolled_back on_hold
testing:        cutover migrating rolled_back on_hold
cutover:        trial_run rolled_back
trial_run:      accepted rolled_back
accepted:       decommissioned
decommissioned:
on_hold:        surveyed assessed planned provisioning migrating testing exempted cancelled
rolled_back:    migrating planned on_hold cancelled
exempted:       assessed cancelled
cancelled:
"""
ALLOWED = {
    line.split(":")[0]: set(line.split(":")[1].split())
    for line in ALLOWED_TEXT.strip().splitlines()
}


def set_state(engine: sa.Engine, code: str, state: str) -> None:
    with Session(engine) as session:
        row = session.exec(
            select(SystemMigration).where(col(SystemMigration.system_code) == code)
        ).one()
        row.state = state
        session.add(row)
        session.commit()


def state_of(engine: sa.Engine, code: str) -> str:
    with Session(engine) as session:
        return session.exec(
            select(SystemMigration.state).where(col(SystemMigration.system_code) == code)
        ).one()


def event_count(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(MigrationEvent)).all())


def move_to_cloud(engine: sa.Engine, code: str) -> None:
    """Tombstone the system's rows on the department cloud and show it running on core."""
    with Session(engine) as session:
        for row in session.exec(select(Resource).where(col(Resource.system_code) == code)):
            row.deleted_at = utcnow()
            session.add(row)
        add_resource(session, code, "core", "vm", vcpu=2, memory_gib=4)
        session.commit()


def test_the_table_in_code_is_the_documented_one() -> None:
    from migrate.tracking import TRANSITIONS

    assert set(ALLOWED) == set(STATES)
    assert {k: set(v) for k, v in TRANSITIONS.items()} == ALLOWED


@pytest.mark.parametrize("from_state", STATES)
def test_every_transition_is_allowed_or_refused_as_the_table_says(
    planned: Settings, engine: sa.Engine, from_state: str
) -> None:
    # Open every gate for A01: on the cloud by evidence, nothing left on the source.
    move_to_cloud(engine, "A01")
    allowed: set[str] = set()
    for to_state in STATES:
        with Session(engine) as session:
            row = session.exec(
                select(SystemMigration).where(col(SystemMigration.system_code) == "A01")
            ).one()
            row.state = from_state
            session.add(row)
            session.flush()
            try:
                advance(
                    session=session, code="A01", to_state=to_state, by="t", now=utcnow(),
                    today=planned.today(),
                )  # fmt: skip
                allowed.add(to_state)
            except TransitionRefused:
                pass
            session.rollback()

    assert allowed == ALLOWED[from_state]


def test_allowed_transition_updates_state_and_logs_it(planned: Settings, engine: sa.Engine) -> None:
    code, out, err = invoke(
        "migrate", "advance", "A01", "--to", "provisioning", "--by", "王工",
        "--note", "资源申请已批", "--evidence", "工单 2026-118",
    )  # fmt: skip
    _, history, _ = invoke("migrate", "history", "A01", "--format", "json")

    assert code == 0, out + err
    assert state_of(engine, "A01") == "provisioning"
    last = json.loads(history)[-1]
    assert (last["from_state"], last["to_state"], last["by"]) == ("planned", "provisioning", "王工")
    assert (last["note"], last["evidence"]) == ("资源申请已批", "工单 2026-118")


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [("planned", "accepted"), ("provisioning", "cutover"), ("decommissioned", "planned"),
     ("cancelled", "assessed"), ("accepted", "rolled_back")],
)  # fmt: skip
def test_refused_transition_exits_1_and_writes_nothing(
    planned: Settings, engine: sa.Engine, from_state: str, to_state: str
) -> None:
    set_state(engine, "A01", from_state)
    before = event_count(engine)

    code, _, err = invoke("migrate", "advance", "A01", "--to", to_state, "--by", "x")

    assert code == 1
    assert f"cannot go from {from_state} to {to_state}" in err
    assert (state_of(engine, "A01"), event_count(engine)) == (from_state, before)


def test_accepted_needs_the_system_on_the_cloud_by_evidence(
    planned: Settings, engine: sa.Engine
) -> None:
    set_state(engine, "A01", "trial_run")

    refused = invoke("migrate", "advance", "A01", "--to", "accepted", "--by", "x")
    move_to_cloud(engine, "A01")
    accepted = invoke("migrate", "advance", "A01", "--to", "accepted", "--by", "x")

    assert refused[0] == 1
    assert (
        "does not see it on the unified cloud (status off_cloud; evidence on: edu-dc)"
        in (refused[2])
    )
    assert accepted[0] == 0, accepted[2]
    with Session(engine) as session:
        event = session.exec(
            select(MigrationEvent).where(col(MigrationEvent.to_state) == "accepted")
        ).one()
    assert event.checks == {
        "wave": 1,
        "evidence_status": "on_cloud",
        "evidence_nodes": ["core"],
        "mlps_level": 2,
        "crypto_assessed_on": None,
    }


def test_partial_evidence_is_not_enough_for_acceptance(
    planned: Settings, engine: sa.Engine
) -> None:
    set_state(engine, "A01", "trial_run")
    with Session(engine) as session:
        add_resource(session, "A01", "core", "vm", vcpu=2)
        session.commit()

    code, _, err = invoke("migrate", "advance", "A01", "--to", "accepted", "--by", "x")

    assert code == 1 and "status partial" in err


def test_level_3_needs_a_crypto_assessment_record_before_acceptance(
    planned: Settings, engine: sa.Engine
) -> None:
    set_state(engine, "A02", "trial_run")
    move_to_cloud(engine, "A02")

    without = invoke("migrate", "advance", "A02", "--to", "accepted", "--by", "x")
    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        system.crypto_assessed_on = planned.today() + timedelta(days=3)
        session.add(system)
        session.commit()
    future = invoke("migrate", "advance", "A02", "--to", "accepted", "--by", "x")
    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        system.crypto_assessed_on = planned.today()
        session.add(system)
        session.commit()
    no_document = invoke("migrate", "advance", "A02", "--to", "accepted", "--by", "x")
    accepted = invoke(
        "migrate", "advance", "A02", "--to", "已验收", "--by", "x", "--evidence", "苏验〔2027〕8号"
    )

    assert without[0] == 1 and "needs a 密评" in without[2]
    assert "Re-import the register with 密评日期 filled in" in without[2]
    assert future[0] == 1 and "is in the future" in future[2]
    # Issue #16: at MLPS level 3 acceptance also needs the acceptance document number.
    assert no_document[0] == 1 and "acceptance document number" in no_document[2]
    assert accepted[0] == 0, accepted[2]
    with Session(engine) as session:
        event = session.exec(
            select(MigrationEvent).where(col(MigrationEvent.to_state) == "accepted")
        ).one()
    assert event.checks and event.checks["acceptance_document"] == "苏验〔2027〕8号"


def test_decommissioning_needs_nothing_left_on_the_source(
    planned: Settings, engine: sa.Engine
) -> None:
    set_state(engine, "A01", "accepted")

    refused = invoke("migrate", "advance", "A01", "--to", "decommissioned", "--by", "x")
    move_to_cloud(engine, "A01")
    done = invoke("migrate", "advance", "A01", "--to", "decommissioned", "--by", "x")

    assert refused[0] == 1
    assert "still sees 2 live resource(s) of it on edu-dc, room" in refused[2]
    assert done[0] == 0, done[2]


def test_planning_needs_a_wave(planned: Settings, engine: sa.Engine) -> None:
    code, _, err = invoke("migrate", "advance", "A06", "--to", "planned", "--by", "x")

    assert code == 1 and "has no wave in plan p1" in err


def test_a_held_system_resumes_where_it_stopped_or_earlier(
    planned: Settings, engine: sa.Engine
) -> None:
    for state in ("provisioning", "migrating", "on_hold"):
        assert invoke("migrate", "advance", "A01", "--to", state, "--by", "x")[0] == 0

    too_far = invoke("migrate", "advance", "A01", "--to", "testing", "--by", "x")
    resumed = invoke("migrate", "advance", "A01", "--to", "migrating", "--by", "x")

    assert too_far[0] == 1 and "put on hold while migrating" in too_far[2]
    assert resumed[0] == 0


def test_the_plan_is_found_or_must_be_named(planned: Settings, engine: sa.Engine) -> None:
    # p2 takes A03 (blocked on core, placeable on core4); A04 is blocked in both plans.
    invoke("migrate", "plan", "create", "--source", "edu-dc", "--target", "core4", "--name", "p2")

    moving = invoke("migrate", "advance", "A03", "--to", "provisioning", "--by", "x")
    ambiguous = invoke("migrate", "advance", "A04", "--to", "on_hold", "--by", "x")
    named = invoke("migrate", "advance", "A04", "--to", "on_hold", "--by", "x", "--plan", "p2")

    assert moving[0] == 0, moving[2]
    assert ambiguous[0] == 1 and "is in plans p1, p2: say which with --plan" in ambiguous[2]
    assert named[0] == 0


def test_two_people_advancing_at_once_cannot_both_succeed(
    planned: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as slow:
        # The slow session has read A01 as planned ...
        seen = slow.exec(
            select(SystemMigration).where(col(SystemMigration.system_code) == "A01")
        ).one()
        assert seen.state == "planned"
        # ... when someone else moves it on.
        assert invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "fast")[0] == 0
        before = event_count(engine)

        with pytest.raises(TransitionRefused, match="changed while this ran"):
            advance(
                session=slow, code="A01", to_state="on_hold", by="slow", now=utcnow(),
                today=planned.today(),
            )  # fmt: skip
        slow.rollback()

    assert (state_of(engine, "A01"), event_count(engine)) == ("provisioning", before)


def test_unknown_system_classified_system_and_unknown_state(planned: Settings) -> None:
    for args, message in (
        (["NOPE", "--to", "planned"], "unknown system NOPE"),
        (["A05", "--to", "planned"], "unknown system A05"),
        (["A01", "--to", "planned"], "already planned"),
    ):
        code, _, err = invoke("migrate", "advance", *args, "--by", "x")
        assert (code, message in err) == (1, True), err
    # An unknown state is a usage error that names the choices.
    code, _, err = invoke("migrate", "advance", "A01", "--to", "flying", "--by", "x")
    assert code == 2 and "flying" in err and "provisioning" in err, err


# ---------------------------------------------------------------- append-only log


def test_events_cannot_be_changed_or_removed_through_the_orm(
    planned: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        event = session.exec(select(MigrationEvent)).first()
        assert event is not None
        event.by = "someone else"
        session.add(event)
        with pytest.raises(AppendOnlyViolation):
            session.flush()
        session.rollback()
        event = session.exec(select(MigrationEvent)).first()
        session.delete(event)
        with pytest.raises(AppendOnlyViolation):
            session.flush()
        session.rollback()
        with pytest.raises(AppendOnlyViolation):
            session.exec(sa.update(MigrationEvent).values(by="x"))  # type: ignore[call-overload]
        with pytest.raises(AppendOnlyViolation):
            session.exec(sa.delete(MigrationEvent))  # type: ignore[call-overload]


def test_events_cannot_be_changed_or_removed_in_sql(planned: Settings, engine: sa.Engine) -> None:
    before = event_count(engine)

    for statement in ("UPDATE migrationevent SET by = 'x'", "DELETE FROM migrationevent"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))

    assert event_count(engine) == before


# ---------------------------------------------------------------- status and discrepancies


def status(*args: str) -> dict:
    code, out, err = invoke("migrate", "status", "--format", "json", *args)
    assert code == 0, out + err
    return json.loads(out)


def test_status_shows_progress_by_wave_and_department(planned: Settings) -> None:
    by_wave = status("--plan", "p1")
    by_department = status("--by", "department")

    assert by_wave["plans"] == [
        {
            "plan": "p1",
            "systems": 12,
            "accepted_or_done": 0,
            "progress": 0.0,
            "states": {"assessed": 5, "planned": 6, "exempted": 1},
        }
    ]
    assert [(g["wave"], g["systems"]) for g in by_wave["groups"]] == [
        ("1", 1), ("2", 2), ("3", 2), ("4", 1), ("none", 6),
    ]  # fmt: skip
    assert {g["department"]: g["systems"] for g in by_department["groups"]} == {
        "JS-EDU": 10,
        "JS-HEA": 2,
    }
    assert by_wave["discrepancies"] == []


def test_claims_and_evidence_that_disagree_are_listed(planned: Settings, engine: sa.Engine) -> None:
    set_state(engine, "A01", "cutover")  # but still only on the department cloud
    move_to_cloud(engine, "A02")  # fully on the cloud, still "planned"
    set_state(engine, "A07", "decommissioned")
    move_to_cloud(engine, "A07")
    with Session(engine) as session:  # a leftover on the source that proves nothing
        add_resource(session, "A07", "edu-dc", "namespace", name="a07")
        for row in session.exec(select(Resource).where(col(Resource.system_code) == "A12")):
            row.deleted_at = utcnow()
            session.add(row)
        session.commit()
    set_state(engine, "A12", "trial_run")  # and the inventory sees it nowhere
    set_state(engine, "A09", "cutover")  # an exemption does not hide where it really is

    found = {(d["system_code"], d["kind"]) for d in status()["discrepancies"]}
    code, table, _ = invoke("migrate", "status")

    assert found == {
        ("A01", "claimed_but_off_cloud"),
        ("A02", "on_cloud_not_claimed"),
        ("A07", "decommissioned_but_live"),
        ("A12", "claimed_without_evidence"),
        ("A09", "claimed_but_off_cloud"),
    }
    assert code == 0 and "discrepancies between claimed states" in table


def test_migration_state_counts_for_the_exporter(planned: Settings, engine: sa.Engine) -> None:
    invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "x")

    with Session(engine) as session:
        counts = migration_state_counts(session=session)

    assert counts == {
        ("p1", "1", "provisioning"): 1,
        ("p1", "2", "planned"): 2,
        ("p1", "3", "planned"): 2,
        ("p1", "4", "planned"): 1,
        ("p1", "none", "assessed"): 5,
        ("p1", "none", "exempted"): 1,
    }


def test_migration_progress_reaches_the_exporter(planned: Settings, engine: sa.Engine) -> None:
    from datetime import UTC, datetime

    from exporters.snapshot import build_snapshot

    invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "x")

    with Session(engine) as session:
        snapshot = build_snapshot(
            session=session,
            settings=planned,
            now=datetime.now(tz=UTC),
            migration_counts=migration_state_counts,
        )

    series = snapshot.migration_systems  # (plan, wave, state) -> systems
    assert series[("p1", "1", "provisioning")] == 1
    assert series[("p1", "none", "assessed")] == 5
