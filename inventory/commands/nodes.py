"""`yiyun nodes`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="nodes", no_args_is_help=True)
