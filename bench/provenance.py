"""Where a benchmark result came from: when, which commit, on what machine."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measured_commit() -> str | None:
    """The commit measured ("-dirty": with uncommitted changes), to compare runs over time."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def provenance() -> dict[str, Any]:
    """The fields every bench/results/*.json starts with."""
    return {
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "commit": measured_commit(),
        "machine": os.uname().nodename,
        "cpus": os.cpu_count(),
    }
