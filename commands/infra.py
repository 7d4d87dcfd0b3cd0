"""`yiyun infra`: 纳管 import specs from the ledger, and stack-config checks, without Pulumi."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated

import typer

from commands.common import err_console, fail
from commands.disclosure import IncludeClassifiedOption, disclosure_for, note_withheld
from inventory.output import echo

app = typer.Typer(
    help="The unified cloud's Pulumi programs: import specs for 纳管, stack config checks.",
    no_args_is_help=True,
)


@app.command("import-spec")
def import_spec(
    node: Annotated[
        str, typer.Option("--node", help="Node id whose unmanaged resources to adopt.")
    ],
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only these kinds (repeatable), e.g. vm, deployment."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the import file here instead of stdout."),
    ] = None,
    include_classified: IncludeClassifiedOption = False,
) -> None:
    """Write a `pulumi import --file` spec for the node's live resources not yet under Pulumi.

    A classified (涉密) system's resources are left out (and counted) unless
    --include-classified is given; even then their Pulumi names carry no system code.
    """
    from sqlmodel import Session, col, select

    from commands.common import open_ledger
    from commands.lang import cli_lang
    from infra.import_spec import UnknownKind, build_import_spec, check_kinds
    from inventory.i18n import text as say_in
    from inventory.models import Node, Resource

    lang = cli_lang()
    engine = open_ledger()
    with Session(engine) as session:
        node_ids = list(session.exec(select(Node.id)).all())
        if node not in node_ids:
            close = difflib.get_close_matches(node, node_ids, n=1)
            hint = say_in("did_you_mean", lang, names=repr(close[0])) if close else ""
            known = ", ".join(sorted(node_ids)) or say_in("known_nodes_none", lang)
            fail(
                say_in("unknown_node", lang, node=node)
                + hint
                + say_in("known_nodes", lang, nodes=known),
                lang=lang,
            )
        if kinds:
            known_kinds = session.exec(select(Resource.kind).distinct()).all()
            try:
                check_kinds(kinds, known_kinds)
            except UnknownKind as error:
                fail(str(error), lang=lang)
        disclosure = disclosure_for(include_classified)
        spec = build_import_spec(session=session, node_id=node, kinds=kinds, disclosure=disclosure)
        scanned = session.exec(
            select(Resource.id).where(col(Resource.node_id) == node).limit(1)
        ).first()

    text = json.dumps(spec.document(), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as error:
            reason = error.strerror or error
            fail(say_in("cannot_write", lang, path=output, error=reason), lang=lang)
    say = err_console.print
    if scanned is None:
        say(say_in("node_not_scanned", lang, node=node), markup=False, highlight=False)
    summary = say_in(
        "import_spec_summary", lang, count=len(spec.resources), node=node, managed=spec.managed
    )
    if output:
        summary += "; " + say_in("written", lang, path=output)
    say(summary, markup=False, highlight=False)
    for reason, counts in sorted(spec.left_out.items()):
        listed = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        say(
            say_in("import_spec_left_out", lang, listed=listed, reason=reason),
            markup=False,
            highlight=False,
        )
    note_withheld(disclosure, lang)


@app.command("check")
def check(
    stack_file: Annotated[
        Path,
        typer.Argument(
            help="A Pulumi.<stack>.yaml from infra/ (plans are resolved beside it).",
            metavar="STACK_FILE",
            show_default=False,
        ),
    ],
) -> None:
    """Validate a stack file (and the plan exports it names) the way `pulumi up` would."""
    from commands.lang import cli_lang
    from infra.stack_config import StackConfigError, read_stack_file
    from inventory.i18n import text as say_in

    lang = cli_lang()
    try:
        config = read_stack_file(stack_file)
    except StackConfigError as error:
        fail(f"{stack_file}: {error}", lang=lang)
    echo(say_in("stack_valid", lang, node=config.node.id, name=config.node.name))
    for tenant in config.tenants:
        bucket = say_in("stack_bucket", lang, bucket=tenant.bucket) if tenant.bucket else ""
        department = tenant.rules.department.code
        echo(
            say_in(
                "stack_tenant",
                lang,
                department=department,
                namespace=tenant.namespace,
                bucket=bucket,
            )
        )
    for zone in config.landing_zones:
        count = len(zone.namespaces)
        echo(say_in("stack_landing_zone", lang, plan=zone.plan, wave=zone.wave, count=count))
        for namespace in zone.namespaces:
            hard = namespace.quota.hard()
            echo(
                say_in(
                    "cli_stack_quota",
                    lang,
                    namespace=namespace.namespace,
                    system=namespace.system_code,
                    cpu=hard["requests.cpu"],
                    memory=hard["requests.memory"],
                    storage=hard["requests.storage"],
                )
            )
    if config.agent:
        exporter = say_in("with_exporter" if config.agent.exporter else "no_exporter", lang)
        echo(say_in("stack_agent", lang, namespace=config.agent.namespace, exporter=exporter))
