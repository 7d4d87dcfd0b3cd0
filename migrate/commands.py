"""`yiyun migrate`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="migrate", no_args_is_help=True)
