"""`yiyun demo`: a sample Jiangsu estate on simulated endpoints, scanned and reported end to end."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session, col, func, select

from inventory.commands.common import EXIT_PROBLEM, fail
from inventory.db import get_engine, mask_url, upgrade
from inventory.settings import get_settings, set_settings

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


def _refuse_populated(url: str) -> None:
    from inventory.models import Node, System

    engine = get_engine(url)
    with Session(engine) as session:
        systems = session.exec(select(func.count()).select_from(System)).one()
        nodes = session.exec(select(func.count()).select_from(Node)).one()
    if systems or nodes:
        fail(
            f"{mask_url(url)} already holds {systems} systems and {nodes} nodes; the demo only "
            "writes into an empty database (leave out --db to use .demo/yiyun.db)"
        )


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
    from inventory.commands.report import print_adoption_table
    from inventory.commands.scan import execute_scan
    from inventory.models import Node
    from inventory.nodes import apply_nodes, load_node_file
    from inventory.registry import import_register
    from inventory.reports import adoption_report, switches_from, take_snapshot
    from inventory.sim.estate import RunningEstate, plan_estate
    from inventory.violations import freeze_violations, unattributed_counts

    directory.mkdir(parents=True, exist_ok=True)
    url = _demo_database(directory)
    settings = get_settings().model_copy(update={"database_url": url})
    set_settings(settings)
    engine = get_engine(url)
    upgrade(engine)
    _refuse_populated(url)

    estate = plan_estate(today=settings.today(), systems=systems)
    console.print(
        f"[bold]yiyun demo[/bold]: {len(estate.systems)} systems, "
        f"{len(estate.nodes)} nodes, database {mask_url(url)}",
        highlight=False,
    )
    with RunningEstate(estate, directory) as running:
        files = running.write_files()
        # The simulated AWS-compatible nodes are reached through the standard credential
        # chain, exactly as real ones are: a profile in a shared credentials file.
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(files["credentials"].resolve())
        os.environ["AWS_CONFIG_FILE"] = str((directory / "aws-config").resolve())
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        with Session(engine) as session:
            report = import_register(session=session, path=files["register"])
            if not report.ok:
                fail(f"the sample register did not import: {report.problems[:3]}")
            apply_nodes(session=session, specs=load_node_file(files["nodes"]))
            session.commit()
            nodes = list(session.exec(select(Node).order_by(col(Node.id))))
        console.print(
            f"register {files['register']} imported ({report.created} systems); "
            f"node file {files['nodes']} applied ({len(nodes)} nodes)",
            highlight=False,
        )
        summary = execute_scan(engine, nodes, concurrency=4)
        with Session(engine) as session:
            kpi = adoption_report(
                session=session, settings=settings, switches=switches_from(settings), by="city"
            )
            take_snapshot(session=session, settings=settings, switches=switches_from(settings))
            frozen = freeze_violations(session=session, tz=settings.tz)
            orphans = unattributed_counts(session=session)
        print_adoption_table(kpi)
        console.print(
            f"policy violations: {len(frozen)} new resource(s) on frozen nodes "
            f"(不再新建或外租), {sum(orphans.values())} unattributed resource(s)"
        )
        db_flag = f"--db {url}"
        console.print(
            "\n[bold]try next[/bold]\n"
            f"  yiyun {db_flag} report adoption --by department\n"
            f"  yiyun {db_flag} report adoption --format json\n"
            f"  yiyun {db_flag} report violations --details\n"
            f"  yiyun {db_flag} report scans\n"
            f"  yiyun {db_flag} registry list\n"
            f"  yiyun {db_flag} nodes list\n"
            f"  yiyun {db_flag} exporter serve   # then curl 127.0.0.1:9464/metrics",
            highlight=False,
        )
        if serve:
            console.print(
                "\nsimulated endpoints stay up until Ctrl-C; scan them again with\n"
                f"  AWS_SHARED_CREDENTIALS_FILE={files['credentials']} "
                f"yiyun {db_flag} --config {files['nodes']} scan",
                highlight=False,
            )
            try:
                import threading

                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    if not summary.ok:
        raise typer.Exit(EXIT_PROBLEM)
