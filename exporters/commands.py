"""`yiyun exporters`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="exporters", no_args_is_help=True)
