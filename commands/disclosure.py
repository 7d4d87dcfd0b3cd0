"""`--include-classified`, the same on every command, and the note saying what was withheld."""

from __future__ import annotations

from typing import Annotated

import typer

from inventory.confidentiality import Disclosure
from inventory.i18n import text

IncludeClassifiedOption = Annotated[
    bool,
    typer.Option(
        "--include-classified",
        # Chinese comes from the help catalog, like every --help (commands/localize.py).
        help="Also name classified (涉密) systems and their resources, which are otherwise "
        "counted, never named.",
    ),
]


def disclosure_for(include_classified: bool) -> Disclosure:
    return Disclosure(include_classified=include_classified)


def note_withheld(disclosure: Disclosure, lang: str) -> None:
    """One line on stderr when the output left something classified out: machine formats on
    stdout stay as they are, and the reader learns that there is more and how to see it."""
    note_withheld_counts(
        lang,
        systems=len(disclosure.withheld_systems),
        resources=len(disclosure.withheld_resources),
        scopes=len(disclosure.withheld_scopes),
        mentions=disclosure.redacted_mentions,
    )


def note_withheld_counts(
    lang: str, *, systems: int = 0, resources: int = 0, scopes: int = 0, mentions: int = 0
) -> None:
    counts = {
        "withheld_systems": systems,
        "withheld_resources": resources,
        "withheld_scopes": scopes,
        "withheld_mentions": mentions,
    }
    parts = [text(key, lang, count=count) for key, count in counts.items() if count]
    if not parts:
        return
    from commands.common import err_console

    err_console.print(
        text("classified_withheld", lang, parts=text("withheld_separator", lang).join(parts)),
        markup=False,
        highlight=False,
    )
