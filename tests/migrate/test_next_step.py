"""Every hint names a step the system's state allows: taken as printed, it is accepted."""

from __future__ import annotations

import csv
import itertools
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from inventory.models import System
from inventory.settings import Settings
from migrate.models import SystemMigration
from migrate.next_step import OUTSIDE, QUIET, NextStep, next_step
from migrate.tracking import STARTED, STATES
from tests.migrate.conftest import invoke
from tests.migrate.test_tracking import move_to_cloud, set_state

# The estate's systems a hint may be about (A05 is classified: nothing names it).
CODES = ("A01", "A02", "A03", "A04", "A06", "A07", "A08", "A09", "A10", "A12", "A13", "A14")
_names = itertools.count(1)


def step_of(engine: sa.Engine, code: str) -> NextStep | None:
    with Session(engine) as session:
        return next_step(session=session, code=code, today=Settings().today())


def take(step: NextStep, tmp: Path) -> tuple[int, str]:
    """Do what the hint says, filling only the blanks a person fills; (exit code, output)."""
    assert step.command is not None
    if step.kind == "plan_import":
        # Export, set the wave the hint names for the systems it names, import.
        export = tmp / f"export-{next(_names)}.csv"
        code, out, err = invoke("migrate", "plan", "export", step.plan or "", "-o", str(export))
        assert code == 0, out + err
        with export.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            if row["system_code"] in step.systems:
                row["wave"] = str(step.wave)
        with export.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        argv = step.command.argv(file=str(export), by="tester")
    else:
        argv = step.command.argv(
            by="tester", rationale="approved in review", plan=f"hint-{next(_names)}",
            doc="苏政验〔2026〕1号", file="register.csv",
        )  # fmt: skip
    code, out, err = invoke(*argv)
    return code, out + err


def advance(code: str, to: str) -> tuple[int, str]:
    exit_code, out, err = invoke("migrate", "advance", code, "--to", to, "--by", "tester")
    return exit_code, out + err


def check_the_step_is_accepted(engine: sa.Engine, code: str, tmp: Path) -> NextStep | None:
    step = step_of(engine, code)
    if step is None or step.kind in QUIET:
        return step
    if step.kind in OUTSIDE:
        # Done outside the ledger (a scan, the register): the gate it waits on is really shut.
        if step.kind in ("scan_on_cloud", "crypto"):
            assert advance(code, "accepted")[0] == 1
        if step.kind == "source_live":
            assert advance(code, "decommissioned")[0] == 1
        return step
    exit_code, output = take(step, tmp)
    assert exit_code == 0, f"{step.kind}: {step.render('en')}\n{output}"
    return step


def wave_of(engine: sa.Engine, code: str) -> int | None:
    with Session(engine) as session:
        rows = session.exec(
            select(SystemMigration.wave).where(col(SystemMigration.system_code) == code)
        ).all()
    return next((w for w in rows if w is not None), None)


@hypothesis_settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    code=st.sampled_from(CODES),
    state=st.sampled_from(STATES),
    override=st.sampled_from([None, "blocked", "ready"]),
    on_cloud=st.booleans(),
    crypto=st.sampled_from([None, date(2026, 1, 5)]),
    follow=st.integers(min_value=1, max_value=3),
)
def test_every_hint_is_accepted_when_taken(
    planned: Settings,
    engine: sa.Engine,
    tmp_path: Path,
    code: str,
    state: str,
    override: str | None,
    on_cloud: bool,
    crypto: date | None,
    follow: int,
) -> None:
    # Put the system in the drawn situation (the ledger keeps what earlier examples did).
    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == code)).one()
        assert system is not None
        system.crypto_assessed_on = crypto
        session.add(system)
        session.commit()
    if override is not None:
        invoke(
            "migrate", "assess", "override", code, "--readiness", override,
            "--strategy", "rehost" if override == "ready" else "retain",
            "--by", "tester", "--rationale", "drawn",
        )  # fmt: skip
    has_wave = wave_of(engine, code) is not None
    in_plan = step_of(engine, code) is not None and _in_a_plan(engine, code)
    if in_plan and (has_wave or state not in STARTED | {"planned", "rolled_back"}):
        set_state(engine, code, state) if _one_row(engine, code) else None
    if on_cloud:
        move_to_cloud(engine, code)
    # Follow the hints a few steps: each one is accepted as printed.
    for _ in range(follow):
        step = check_the_step_is_accepted(engine, code, tmp_path)
        if step is None or step.kind in QUIET | OUTSIDE:
            break


def _in_a_plan(engine: sa.Engine, code: str) -> bool:
    with Session(engine) as session:
        query = select(SystemMigration.id).where(col(SystemMigration.system_code) == code)
        return session.exec(query).first() is not None


def _one_row(engine: sa.Engine, code: str) -> bool:
    with Session(engine) as session:
        query = select(SystemMigration.id).where(col(SystemMigration.system_code) == code)
        return len(session.exec(query).all()) == 1


def test_a_blocked_system_is_told_to_override_never_to_import(
    planned: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    # A06 holds core data (R4 blocked): plan p1 left it out of every wave.
    exit_code, output = advance("A06", "provisioning")
    assert exit_code == 1
    assert "assess override A06 --readiness ready --strategy rehost" in output
    assert "plan import" not in output.split("Next:")[-1]
    step = step_of(engine, "A06")
    assert step is not None and step.kind == "override"

    assert take(step, tmp_path)[0] == 0
    placed = check_the_step_is_accepted(engine, "A06", tmp_path)
    assert placed is not None and placed.kind == "plan_import"
    assert wave_of(engine, "A06") == placed.wave
    exit_code, output = advance("A06", "provisioning")
    assert exit_code == 0, output
    assert "Next:" in output and "--to migrating" in output


def test_advance_prints_the_next_step_in_chinese(planned: Settings, engine: sa.Engine) -> None:
    code, out, err = invoke("--lang", "zh", "migrate", "advance", "A06", "--to", "provisioning",
                            "--by", "tester")  # fmt: skip
    assert code == 1
    assert "下一步：" in err and "经审批调整评估结论" in err
    assert "--by 操作人 --rationale 理由" in err

    code, out, err = invoke("--lang", "zh", "migrate", "advance", "A02", "--to", "provisioning",
                            "--by", "tester")  # fmt: skip
    assert code == 0, out + err
    assert "下一步：当前为资源开通中，下一步改为迁移中：" in out
    assert "`yiyun migrate advance A02 --to migrating --by 操作人`" in out


def test_acceptance_at_level_3_names_the_acceptance_document(
    planned: Settings, engine: sa.Engine
) -> None:
    for to in ("provisioning", "migrating", "testing", "cutover", "trial_run"):
        assert advance("A02", to)[0] == 0
    step = step_of(engine, "A02")
    assert step is not None and step.kind == "scan_on_cloud"  # not yet seen on the cloud
    move_to_cloud(engine, "A02")
    step = step_of(engine, "A02")
    assert step is not None and step.kind == "crypto"  # level 3 with no 密评 record
    with Session(engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        assert system is not None
        system.crypto_assessed_on = date(2026, 1, 5)
        session.add(system)
        session.commit()
    step = step_of(engine, "A02")
    assert step is not None and step.command is not None
    assert step.command.render("zh").endswith("--to accepted --by 操作人 --evidence 验收文号")


def test_a_system_already_on_the_cloud_has_nothing_to_move(
    planned: Settings, engine: sa.Engine
) -> None:
    # A10 runs on core, a unified-cloud node: no plan, no move, whatever rules its node breaks.
    step = step_of(engine, "A10")
    assert step is not None and step.kind == "nothing" and step.quiet
    assert step_of(engine, "A05") is None  # classified: no hint names it


def test_override_to_ready_lets_plan_create_place_the_system(
    estate: Settings, engine: sa.Engine
) -> None:
    # With and without --strategy: the override makes the planner place A06 (R4 blocked).
    code, out, err = invoke(
        "migrate", "assess", "override", "A06", "--readiness", "ready",
        "--by", "director", "--rationale", "core data cleared by review",
    )  # fmt: skip
    assert code == 0, out + err
    code, out, err = invoke(
        "migrate", "assess", "override", "A07", "--readiness", "ready", "--strategy", "replatform",
        "--by", "director", "--rationale", "approved",
    )  # fmt: skip
    assert code == 0, out + err
    code, out, err = invoke(
        "migrate", "plan", "create", "--source", "edu-dc", "--target", "core4", "--name", "p2",
        "--by", "planner",
    )  # fmt: skip
    assert code == 0, out + err
    assert wave_of(engine, "A06") is not None
    assert wave_of(engine, "A07") is not None


def test_history_names_the_plan_and_reads_its_gate_facts(
    planned: Settings, engine: sa.Engine
) -> None:
    for to in ("provisioning", "migrating"):
        assert advance("A02", to)[0] == 0
    for lang, wave in (("zh", "波次"), ("en", "wave")):
        code, out, err = invoke("--lang", lang, "migrate", "history", "A02", "-f", "csv")
        assert code == 0, out + err
        rows = list(csv.DictReader(out.splitlines()))
        assert len(rows) == 3
        for row in rows:
            assert row["plan"] == "p1"
            assert "{" not in row["checks"] and "}" not in row["checks"]
            assert wave.lower() in row["checks"].lower()
    code, out, err = invoke("--lang", "zh", "migrate", "history", "A02")
    assert "p1" in out and "{" not in out and "波次" in out


def test_status_shows_progress_as_a_percentage(planned: Settings, engine: sa.Engine) -> None:
    set_state(engine, "A01", "trial_run")
    move_to_cloud(engine, "A01")
    assert advance("A01", "accepted")[0] == 0
    code, out, err = invoke("--lang", "zh", "migrate", "status", "--plan", "p1")
    assert code == 0, out + err
    assert "100%" in out or "50%" in out
    assert "0/1" not in out and "1/1" not in out
