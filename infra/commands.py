"""`yiyun infra`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="infra", no_args_is_help=True)
