"""Fixtures for the hardening suite: simulators on loopback, no real credentials, the CLI."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
import typer.testing
from botocore.retries.standard import ExponentialBackoff
from typer.testing import CliRunner

from inventory.sim.aws import reset_moto, start_moto_server

# Settings that would let the developer's own AWS or Kubernetes setup leak into a test.
ENV_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CA_BUNDLE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "YIYUN_DATABASE_URL",
    "YIYUN_CONFIG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)
# The installed `yiyun` command beside this interpreter (as CI's venv has it), else the module.
_SCRIPT = Path(sys.executable).with_name("yiyun")
YIYUN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cli"]
# Hypothesis example counts: small in CI, raise YIYUN_FUZZ_EXAMPLES for a long local run.
FUZZ_EXAMPLES = int(os.environ.get("YIYUN_FUZZ_EXAMPLES", "50"))


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a `yiyun` subprocess gets: no developer credentials, no real config."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_LEAKS}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
        COLUMNS="200",
    )
    env.update(extra)
    return env


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials through the standard chain only; botocore's backoff made tiny, so
    retries are still made and counted but never waited for."""
    for name in ENV_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    scales = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    monkeypatch.setitem(scales, "throttling_base_scale", 0.001)
    monkeypatch.setitem(scales, "non_throttling_base_scale", 0.001)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the suite (each test resets it)."""
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def moto(moto_url: str, aws_env: None) -> str:
    """The moto server, emptied (moto's reset is process-wide, so tests never share state)."""
    reset_moto(moto_url)
    return moto_url


class Cli:
    """Runs `yiyun …` in this process and refuses any outcome that is a traceback."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str) -> tuple[int, str, str]:
        app, command = _command()
        # Typer rebuilds the whole command tree on every invoke (40 ms); the fuzz tests invoke
        # thousands of times, so the tree is built once and handed back.
        with mock.patch.object(typer.testing, "_get_command", lambda _: command):
            result = self.runner.invoke(app, list(args), catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(
                f"`yiyun {' '.join(args)}` crashed with a traceback instead of a clear error"
            ) from result.exception
        return result.exit_code, result.stdout, result.stderr


@functools.cache
def _command() -> tuple[typer.Typer, Any]:
    # Imported late: collecting the suite should not pay for the whole command tree. Never
    # under a test's FORCE_COLOR: a console made at import (err_console) would keep it for
    # every later test, as if stderr were a terminal.
    with mock.patch.dict(os.environ):
        os.environ.pop("FORCE_COLOR", None)
        from cli import app

    return app, typer.main.get_command(app)


@pytest.fixture
def cli() -> Iterator[Cli]:
    from inventory.settings import set_settings

    yield Cli()
    # The CLI's global options install settings for the process; later tests must not see them.
    set_settings(None)
