"""`yiyun migrate plan` on both databases: create, show, export, import of edits."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from inventory.models import System, utcnow
from inventory.settings import Settings
from migrate.models import MigrationEvent, Plan, SystemMigration
from migrate.planner import Parameters
from migrate.plans import create_plan
from tests.migrate.conftest import invoke
from tests.migrate.estate import add_resource

DATA = Path(__file__).parent.parent / "data" / "migrate"
EXPECTED_WAVES = {"A01": 1, "A12": 2, "A13": 2, "A02": 3, "A07": 3, "A14": 4}
NOT_PLACED = {"A03", "A04", "A06", "A08", "A09", "A11"}


def shown(name: str = "p1") -> dict:
    code, out, err = invoke("migrate", "plan", "show", name, "--format", "json")
    assert code == 0, out + err
    return json.loads(out)


def waves(plan: dict) -> dict[str, int]:
    return {s["system_code"]: s["wave"] for s in plan["systems"] if s["wave"] is not None}


def exported_csv(name: str = "p1") -> list[dict[str, str]]:
    code, out, _ = invoke("migrate", "plan", "export", name, "--format", "csv")
    assert code == 0
    return list(csv.DictReader(io.StringIO(out)))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def snapshot(engine: sa.Engine) -> tuple[list[tuple], int]:
    with Session(engine) as session:
        rows = session.exec(select(SystemMigration).order_by(col(SystemMigration.system_code)))
        state = [(m.system_code, m.wave, m.state, m.explanation, m.risk) for m in rows]
        return state, len(session.exec(select(MigrationEvent)).all())


def test_plan_places_every_placeable_system_and_explains_all(planned: Settings) -> None:
    plan = shown()

    assert waves(plan) == EXPECTED_WAVES
    states = {s["system_code"]: s["state"] for s in plan["systems"]}
    assert {c for c, s in states.items() if s == "planned"} == set(EXPECTED_WAVES)
    assert states["A09"] == "exempted"
    assert {c for c, s in states.items() if s == "assessed"} == NOT_PLACED - {"A09"}
    assert all(s["explanation"] for s in plan["systems"])
    by_code = {s["system_code"]: s for s in plan["systems"]}
    assert by_code["A12"]["move_group"] == by_code["A13"]["move_group"] == "A12"
    assert "shared infrastructure" in by_code["A13"]["explanation"]
    assert "dev/test waves go first" in by_code["A02"]["explanation"]
    assert "R2 blocked" in by_code["A03"]["explanation"]
    assert by_code["A08"]["explanation"].startswith("not placed: strategy retire")
    # Free capacity: 100 vCPU minus the 10 the inventory sees allocated on core.
    assert plan["parameters"]["free_capacity"] == {
        "vcpu": 90.0,
        "memory_gib": 380.0,
        "storage_gib": 10_000.0,
    }
    assert plan["review"]["excluded"]["classified"] == 1
    assert "A05" not in json.dumps(plan, ensure_ascii=False)


def test_plan_creation_logs_the_initial_state_of_every_system(
    planned: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        events = session.exec(select(MigrationEvent)).all()

    assert {(e.system_code, e.from_state, e.to_state, e.by) for e in events} >= {
        ("A01", None, "planned", "planner"),
        ("A09", None, "exempted", "planner"),
        ("A03", None, "assessed", "planner"),
    }
    assert len(events) == 12


def test_json_export_for_landing_zones(planned: Settings) -> None:
    code, out, _ = invoke("migrate", "plan", "export", "p1", "--format", "json")

    document = json.loads(out)
    assert code == 0
    assert (document["plan"], document["target_node"]) == ("p1", "core")
    assert [(w["number"], w["start"], w["end"]) for w in document["waves"]] == [
        (1, "2027-01-04", "2027-01-17"),
        (2, "2027-01-18", "2027-01-31"),
        (3, "2027-02-01", "2027-02-14"),
        (4, "2027-02-15", "2027-02-28"),
    ]
    a02 = next(s for w in document["waves"] for s in w["systems"] if s["code"] == "A02")
    assert a02 == {
        "code": "A02",
        "department_code": "JS-EDU",
        "city": "省级",
        "environment": "production",
        "strategy": "replatform",
        "target_node": "core",
        "sizing": {"vcpu": 12.0, "memory_gib": 48.0, "storage_gib": 500.0},
        "labels": {"yiyun.io/system": "A02", "yiyun.io/department": "JS-EDU"},
    }
    placed = {s["code"] for w in document["waves"] for s in w["systems"]}
    assert placed == set(EXPECTED_WAVES)


def test_json_export_is_what_infra_reads(planned: Settings) -> None:
    wave_plan = pytest.importorskip("infra.wave_plan")
    _, out, _ = invoke("migrate", "plan", "export", "p1", "--format", "json")

    parsed = wave_plan.parse_plan_export(json.loads(out), source="p1")

    assert [len(w.systems) for w in parsed.waves] == [1, 2, 2, 1]


def test_csv_round_trip_changes_nothing(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    target = tmp_path / "p1.csv"
    code, _, _ = invoke("migrate", "plan", "export", "p1", "--format", "csv", "-o", str(target))
    before = snapshot(engine)

    code, out, err = invoke("migrate", "plan", "import", "p1", str(target), "--by", "李工")

    assert code == 0, out + err
    assert "0 system(s) change wave" in out
    assert snapshot(engine) == before
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A01")).one()
        system.name = '=HYPERLINK("http://x")'
        session.add(system)
        session.commit()

    rows = exported_csv()
    code, out, err = invoke(
        "migrate", "plan", "import", "p1", str(write_csv(tmp_path / "p.csv", rows)), "--by", "x"
    )

    assert next(r for r in rows if r["system_code"] == "A01")["name"].startswith("'=")
    assert code == 0, out + err


def test_a_bad_edit_is_refused_whole_with_row_numbers(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))
    rows = exported_csv()
    row_of = {r["system_code"]: n for n, r in enumerate(rows, start=2)}
    edits = {"A03": "1", "A01": "4", "A12": "1", "A13": "3", "A14": "two"}
    for row in rows:
        row["wave"] = edits.get(row["system_code"], row["wave"])
    rows.append({**rows[0], "system_code": "NOPE"})
    rows.append({**rows[1]})
    before = snapshot(engine)

    code, _, err = invoke(
        "migrate", "plan", "import", "p1", str(write_csv(tmp_path / "bad.csv", rows)), "--by", "x"
    )

    assert code == 1
    assert "the plan is unchanged" in err
    for expected in (
        f"row {row_of['A03']}, wave: A03 is placed in wave 1 but cannot move (readiness blocked",
        # A12 calls A01 (dependencies.csv): A01 may not move after it.
        f"row {row_of['A01']}, wave: A12 (wave 1) depends on A01 (wave 4)",
        f"row {row_of['A12']}, wave: move group A12 must stay whole",
        f"row {row_of['A14']}, wave 'two': wave must be a whole number",
        f"row {len(rows)}, system_code 'NOPE': unknown system",
        f"row {len(rows) + 1}, system_code '{rows[1]['system_code']}': listed twice",
    ):
        assert expected in err, expected
    assert snapshot(engine) == before


def test_a_good_edit_is_re_explained_and_re_scored(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    rows = exported_csv()
    assert next(r for r in rows if r["system_code"] == "A07")["risk"] == "low"
    for row in rows:
        row["wave"] = {"A07": "1", "A14": ""}.get(row["system_code"], row["wave"])

    code, out, err = invoke(
        "migrate", "plan", "import", "p1", str(write_csv(tmp_path / "ok.csv", rows)),
        "--by", "李工",
    )  # fmt: skip
    plan = shown()

    assert code == 0, out + err
    assert "2 system(s) change wave" in out
    assert waves(plan) == {**{k: v for k, v in EXPECTED_WAVES.items() if k != "A14"}, "A07": 1}
    by_code = {s["system_code"]: s for s in plan["systems"]}
    assert by_code["A07"]["explanation"].startswith(
        "wave 1 (production wave), set by hand in plan import by 李工"
    )
    # Production alone was low risk; sharing a wave with a dev system raises it.
    assert by_code["A07"]["risk"] == "medium"
    assert by_code["A14"]["state"] == "assessed"
    kinds = {c["kind"] for c in plan["review"]["constraints"]}
    assert {"mixed_wave", "placed_out_by_hand"} <= kinds
    with Session(engine) as session:
        event = session.exec(
            select(MigrationEvent).where(
                col(MigrationEvent.system_code) == "A14", col(MigrationEvent.by) == "李工"
            )
        ).one()
    assert (event.from_state, event.to_state) == ("planned", "assessed")


def test_dry_run_import_writes_nothing(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    rows = exported_csv()
    for row in rows:
        row["wave"] = {"A14": "1"}.get(row["system_code"], row["wave"])
    before = snapshot(engine)

    code, out, _ = invoke(
        "migrate", "plan", "import", "p1", str(write_csv(tmp_path / "d.csv", rows)), "--by", "x",
        "--dry-run",
    )  # fmt: skip

    assert code == 0
    assert "dry run" in out and "A14: 4 → 1" in out
    assert snapshot(engine) == before


def test_same_inputs_give_the_same_plan(estate: Settings, engine: sa.Engine) -> None:
    invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))
    results = []
    for _ in range(2):
        with Session(engine) as session:
            _, result = create_plan(
                session=session, name="same", sources=["room", "edu-dc"], target="core",
                by="x", now=utcnow(), today=estate.today(), parameters=Parameters(2),
            )  # fmt: skip
            results.append((result.wave_of, result.unplaced, result.notes))
            session.rollback()

    assert results[0] == results[1]


def test_capacity_comes_from_what_the_inventory_sees_allocated(
    estate: Settings, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        add_resource(session, "A10", "core", "vm", vcpu=85, memory_gib=8)
        session.commit()

    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--source", "room", "--target", "core",
        "--name", "tight", "--max-systems-per-wave", "5",
    )  # fmt: skip
    plan = shown("tight")

    assert code == 0, out + err
    # 5 vCPU left: A01 (2) and the A12+A13 group (2) fit, A02 (12) and A07 (2) do not.
    assert waves(plan) == {"A01": 1, "A12": 1, "A13": 1, "A14": 2}
    by_code = {s["system_code"]: s for s in plan["systems"]}
    assert "target core has only 1 vCPU" in by_code["A02"]["explanation"]
    assert "capacity" in {c["kind"] for c in plan["review"]["constraints"]}


def test_strict_order_puts_dependencies_in_earlier_waves(estate: Settings) -> None:
    invoke("migrate", "deps", "import", str(DATA / "dependencies.csv"))

    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--source", "room", "--target", "core",
        "--name", "strict", "--strict-order", "--max-systems-per-wave", "10",
    )  # fmt: skip
    plan = shown("strict")

    assert code == 0, out + err
    placed = waves(plan)
    assert placed["A01"] < placed["A12"]  # A12 calls A01
    assert placed["A02"] == placed["A07"]  # a hard dependency one way, a call back
    assert plan["review"]["cross_wave"]


def test_systems_moving_in_another_plan_stay_there(planned: Settings) -> None:
    # Issue #16: a draft plan locks nothing; only a system past `planned` stays with its plan.
    moved = invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "x")
    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--target", "core4", "--name", "p2"
    )
    plan = shown("p2")

    assert moved[0] == 0 and code == 0, out + err
    assert "1 system(s) are already moving in another plan" in out
    in_p2 = {s["system_code"] for s in plan["systems"]}
    assert "A01" not in in_p2
    # A14 is on the server room, not a source of p2; the others are only planned in p1.
    assert set(EXPECTED_WAVES) - {"A01", "A14"} <= in_p2
    # On core4 the level-4 system is placeable.
    assert "A03" in waves(plan)


def test_plan_create_refuses_bad_requests(planned: Settings) -> None:
    cases = [
        (["--source", "edu-dc", "--target", "nowhere"], "unknown node(s): nowhere"),
        (["--source", "edu-dc", "--target", "edu-dc"], "not part of the unified cloud"),
        (["--source", "core", "--target", "core"], "is also a source"),
        (["--source", "edu-dc", "--target", "core", "--name", "p1"], "exists already"),
        (["--source", "nj", "--target", "core"], "is the unified cloud itself"),
    ]
    for args, message in cases:
        code, _, err = invoke("migrate", "plan", "create", *args)
        assert (code, message in err) == (2, True), err


def test_plan_list_and_table_views(planned: Settings) -> None:
    listed = invoke("migrate", "plan", "list", "--format", "json")
    table = invoke("migrate", "plan", "show", "p1")
    unknown = invoke("migrate", "plan", "show", "nope")

    assert json.loads(listed[1])[0]["placed"] == 6
    assert table[0] == 0 and "why each system is where it is" in table[1]
    assert unknown[0] == 2 and "no plan named nope (plans: p1)" in unknown[2]


def test_plan_rows_are_stored_with_dates(planned: Settings, engine: sa.Engine) -> None:
    with Session(engine) as session:
        plan = session.exec(select(Plan)).one()

    assert plan.parameters is not None
    assert date.fromisoformat(plan.parameters["start"]) == date(2027, 1, 4)
    assert plan.source_nodes == ["edu-dc", "room"]


def plan_status(name: str) -> str:
    code, out, _ = invoke("migrate", "plan", "list", "--format", "json")
    assert code == 0
    return next(p["status"] for p in json.loads(out) if p["name"] == name)


def test_a_plan_is_archived_once_nothing_in_it_is_under_way(
    planned: Settings, engine: sa.Engine
) -> None:
    # Issue #16: a plan can be dropped; never while a system in it is being moved.
    started = invoke("migrate", "advance", "A01", "--to", "provisioning", "--by", "x")
    refused = invoke("migrate", "plan", "archive", "p1", "--by", "planner")
    back = invoke("migrate", "advance", "A01", "--to", "planned", "--by", "x")
    archived = invoke("migrate", "plan", "archive", "p1", "--by", "planner")
    again = invoke("migrate", "plan", "archive", "p1", "--by", "planner")
    unknown = invoke("migrate", "plan", "archive", "nope", "--by", "planner")

    assert started[0] == 0 and back[0] == 0, started[2] + back[2]
    assert refused[0] == 1 and "A01" in refused[2] and "--to planned" in refused[2]
    assert archived[0] == 0, archived[2]
    assert plan_status("p1") == "archived"
    assert again[0] == 1 and unknown[0] == 2
    # Its systems are free: a new plan over the same source takes every one p1 had placed.
    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--target", "core4", "--name", "p2"
    )
    assert code == 0, out + err
    assert set(EXPECTED_WAVES) - {"A14"} <= {s["system_code"] for s in shown("p2")["systems"]}


def test_a_plan_whose_moves_have_finished_can_be_archived(
    planned: Settings, engine: sa.Engine
) -> None:
    # An accepted system cannot go back to planned: a finished move must not keep its plan
    # in force for ever.
    from tests.migrate.test_tracking import move_to_cloud, set_state

    set_state(engine, "A01", "trial_run")
    move_to_cloud(engine, "A01")
    accepted = invoke("migrate", "advance", "A01", "--to", "accepted", "--by", "x")
    archived = invoke("migrate", "plan", "archive", "p1", "--by", "planner")

    assert accepted[0] == 0, accepted[2]
    assert archived[0] == 0, archived[2]
    assert plan_status("p1") == "archived"
    history = invoke("migrate", "history", "A01", "--format", "json")
    assert history[0] == 0 and "accepted" in history[1]
