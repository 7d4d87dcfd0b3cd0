"""`yiyun demo`: a sample Jiangsu estate on simulated endpoints, scanned and reported end to end."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.text import Text
from sqlmodel import Session, col, func, select

from commands.common import EXIT_PROBLEM, fail, fail_to_open
from commands.lang import cli_lang
from inventory.db import get_engine, mask_url, upgrade
from inventory.i18n import text
from inventory.output import Commands, message_text
from inventory.settings import get_settings, set_settings

if TYPE_CHECKING:
    from inventory.settings import Settings
    from inventory.sim.estate import RunningEstate
    from inventory.sim.migration import SampleMigration

console = Console()
DEFAULT_DB = "sqlite:///yiyun.db"


def _demo_database(directory: Path) -> str:
    """The demo's own SQLite file, unless the user named a database."""
    configured = get_settings().database_url
    if configured != DEFAULT_DB:
        return configured
    path = directory / "yiyun.db"
    # It is the demo's own file: start from a clean slate every run.
    for leftover in directory.glob("yiyun.db*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    return f"sqlite:///{path}"


def available_stacks(lang: str) -> tuple[str, ...]:
    """The stacks the demo can simulate here: vSphere only when vcsim is built or buildable
    (Go present); when it is not, say so plainly and go on without the VMware rooms."""
    from inventory.sim.estate import STACKS
    from inventory.sim.vsphere import VcsimUnavailable, vcsim_binary

    try:
        vcsim_binary()  # builds it on first use (~20 s) when Go and govmomi's source are here
    except VcsimUnavailable as error:
        if error.missing_go:
            message = text("demo_vsphere_skipped", lang)
        else:
            message = text("demo_vsphere_unavailable", lang, reason=str(error).splitlines()[0])
        Console(stderr=True).print(message_text(message))
        return tuple(stack for stack in STACKS if stack != "vsphere")
    return STACKS


def _refuse_populated(url: str, lang: str) -> None:
    from inventory.models import Node, System

    engine = get_engine(url)
    with Session(engine) as session:
        systems = session.exec(select(func.count()).select_from(System)).one()
        nodes = session.exec(select(func.count()).select_from(Node)).one()
    if systems or nodes:
        fail(
            text("demo_populated", lang, url=mask_url(url), systems=systems, nodes=nodes),
            lang=lang,
        )


def _run_sample_migration(
    engine: sa.Engine, running: RunningEstate, settings: Settings, lang: str
) -> SampleMigration:
    """The demo's sample plan, moved for real by migrate/ (the command line sits above it)."""
    from migrate.sample import run_sample_migration

    return run_sample_migration(engine, running, settings, lang)


def _migration_line(migration: SampleMigration, lang: str) -> str:
    """One line on the sample plan: how far its systems got, and any gate that said no."""
    from inventory.i18n import STATE_ORDER, state_label
    from inventory.sim.migration import SOURCES, TARGET

    if migration.skipped is not None:
        return text("demo_migration_skipped", lang, plan=migration.plan, reason=migration.skipped)
    separator = "、" if lang == "zh" else ", "
    states = separator.join(
        f"{state_label(state, lang)} {migration.states[state]}"
        for state in STATE_ORDER
        if migration.states[state]
    )
    line = text(
        "demo_migration_done",
        lang,
        plan=migration.plan,
        sources=separator.join(SOURCES),
        target=TARGET,
        placed=migration.placed,
        waves=migration.waves,
        accepted=migration.accepted,
        states=states,
    )
    refusals = [
        text("demo_migration_refused", lang, system=code, reason=reason)
        for code, reason in sorted(migration.refusals.items())
    ]
    return "\n".join([line, *refusals])


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo writes its files and database.")
    ] = Path(".demo"),
    systems: Annotated[
        int,
        typer.Option(
            "--systems", min=20, max=5000, help="How many systems the sample register has."
        ),
    ] = 300,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the simulated endpoints up to scan again.")
    ] = False,
) -> None:
    """Seed a sample Jiangsu estate into local simulators, scan it for real, report the KPI."""
    from commands.report import print_adoption_table
    from commands.scan import execute_scan
    from inventory.models import Node
    from inventory.nodes import apply_nodes, load_node_file
    from inventory.registry import import_register
    from inventory.reports import adoption_report, switches_from, take_snapshot
    from inventory.sim.estate import DEMO_VC_PASSWORD_ENV, RunningEstate, plan_estate
    from inventory.sim.vsphere import SIM_PASSWORD
    from inventory.violations import freeze_violations, unattributed_counts

    lang = cli_lang()
    directory.mkdir(parents=True, exist_ok=True)
    url = _demo_database(directory)
    settings = get_settings().model_copy(update={"database_url": url})
    set_settings(settings)
    try:
        engine = get_engine(url)
        upgrade(engine)
        _refuse_populated(url, lang)
    except (sa.exc.DBAPIError, sa.exc.ArgumentError) as error:
        fail_to_open(error, url, lang)

    stacks = available_stacks(lang)
    estate = plan_estate(today=settings.today(), systems=systems, stacks=stacks)
    intro = text(
        "demo_intro", lang, systems=len(estate.systems), nodes=len(estate.nodes), url=mask_url(url)
    )
    console.print(Text.assemble(("yiyun demo", "bold"), ": ", message_text(intro)))
    console.print(message_text(text("demo_stacks", lang, stacks=", ".join(stacks))))
    with RunningEstate(estate, directory) as running:
        files = running.write_files()
        # The simulated AWS-compatible nodes are reached through the standard credential
        # chain, exactly as real ones are: a profile in a shared credentials file.
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(files["credentials"].resolve())
        os.environ["AWS_CONFIG_FILE"] = str((directory / "aws-config").resolve())
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        # The vSphere sources name the variable holding their password, as real ones do.
        os.environ[DEMO_VC_PASSWORD_ENV] = SIM_PASSWORD
        with Session(engine) as session:
            report = import_register(session=session, path=files["register"])
            if not report.ok:
                fail(text("demo_register_failed", lang, problems=report.problems[:3]), lang=lang)
            apply_nodes(session=session, specs=load_node_file(files["nodes"]))
            session.commit()
            nodes = list(session.exec(select(Node).order_by(col(Node.id))))
        loaded = text(
            "demo_loaded",
            lang,
            register=files["register"],
            systems=report.created,
            node_file=files["nodes"],
            nodes=len(nodes),
        )
        console.print(message_text(loaded))
        summary = execute_scan(engine, nodes, lang=lang, concurrency=4)
        # Before the KPI: the systems it moves count where the inventory now sees them.
        migration = _run_sample_migration(engine, running, settings, lang)
        with Session(engine) as session:
            kpi = adoption_report(
                session=session, settings=settings, switches=switches_from(settings), by="city"
            )
            take_snapshot(session=session, settings=settings, switches=switches_from(settings))
            frozen = freeze_violations(session=session, tz=settings.tz)
            orphans = unattributed_counts(session=session)
        print_adoption_table(kpi, lang)
        console.print(
            text("demo_violations", lang, frozen=len(frozen), unattributed=sum(orphans.values())),
            markup=False,
        )
        console.print(message_text(_migration_line(migration, lang)))
        # What to type next carries the database URL, its secrets masked (the user has them).
        db_flag = f"--db {mask_url(url)}"
        # The paths come from --dir: shown as typed, never read as markup.
        console.print(Text.assemble("\n", (text("demo_try_next", lang), "bold")))
        # Each command whole on an 80-column terminal (output.Commands), the curl note too.
        then_curl = text("cli_demo_then_curl", lang, url="127.0.0.1:9464/metrics")
        console.print(
            Commands(
                [
                    *(
                        (f"yiyun {db_flag} {command}", None)
                        for command in (
                            "report adoption --by department",
                            "report adoption --format json",
                            "report violations --details",
                            "report scans",
                            "registry list",
                            "nodes list",
                            "migrate status",
                            f"migrate plan show {migration.plan}",
                        )
                    ),
                    (f"yiyun {db_flag} exporter serve", then_curl),
                    (
                        f"yiyun {db_flag} serve --demo-login",
                        text("cli_demo_then_login", lang),
                    ),
                ]
            )
        )
        if serve:
            console.print(
                message_text(
                    f"\n{text('demo_serve', lang)}\n"
                    f"  AWS_SHARED_CREDENTIALS_FILE={files['credentials']} "
                    f"yiyun {db_flag} --config {files['nodes']} scan"
                )
            )
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    if not summary.ok:
        raise typer.Exit(EXIT_PROBLEM)
