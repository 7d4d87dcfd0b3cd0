"""The core install works without the `infra` extra: Pulumi is never imported by `yiyun`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]

# Runs in a fresh interpreter where every pulumi* import fails, as after `pip install .`.
SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoPulumi(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes"):
                raise ImportError(f"No module named {name!r} (blocked: core install)")
            return None

    sys.meta_path.insert(0, NoPulumi())
    from datetime import UTC, datetime
    from sqlmodel import Session
    from typer.testing import CliRunner
    from cli import app
    from inventory.db import make_engine
    from inventory.models import Node, Resource

    url, stack_file = sys.argv[1], sys.argv[2]
    runner = CliRunner()
    outcome = {}
    for key, args in {
        "help": ["--help"],
        "infra_help": ["infra", "--help"],
        "upgrade": ["--db", url, "db", "upgrade"],
        "check": ["infra", "check", stack_file],
    }.items():
        outcome[key] = runner.invoke(app, args).exit_code
    now = datetime.now(tz=UTC)
    with Session(make_engine(url)) as session:
        session.add(Node(id="edu-dc", name="edu", level="department_cloud", one_cloud=False))
        session.add(Resource(node_id="edu-dc", source="aws", kind="vm", native_id="i-1",
                             name="web", tags={}, content_hash="x", first_seen_at=now,
                             last_seen_at=now))
        session.commit()
    spec = runner.invoke(app, ["--db", url, "infra", "import-spec", "--node", "edu-dc"])
    outcome["import_spec"] = spec.exit_code
    outcome["spec"] = json.loads(spec.stdout) if spec.exit_code == 0 else spec.output
    outcome["pulumi_modules"] = sorted(m for m in sys.modules if m.startswith("pulumi"))
    print(json.dumps(outcome))
    """
)


def test_yiyun_runs_import_spec_and_check_with_pulumi_unimportable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'yiyun.db'}"
    stack_file = ROOT / "infra" / "Pulumi.js-core.yaml"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, str(stack_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["pulumi_modules"] == []
    assert {k: outcome[k] for k in ("help", "infra_help", "upgrade", "check", "import_spec")} == {
        "help": 0, "infra_help": 0, "upgrade": 0, "check": 0, "import_spec": 0
    }  # fmt: skip
    assert outcome["spec"] == {
        "resources": [
            {"type": "aws:ec2/instance:Instance", "name": "unattributed-vm-web", "id": "i-1"}
        ]
    }


def test_importing_the_cli_loads_no_pulumi_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys, cli; print([m for m in sys.modules if 'pulumi' in m])"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
