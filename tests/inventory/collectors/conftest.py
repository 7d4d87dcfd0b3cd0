"""Fixtures for collector tests: real protocol peers on loopback, and no real credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.retries.standard import ExponentialBackoff

from inventory.sim.aws import make_self_signed_cert, reset_moto, start_moto_server
from inventory.sim.faults import FaultProxy
from inventory.sim.k8s import KubernetesSimulator

# --- AWS-compatible nodes: moto's HTTP server, one per simulated node -----------------------

# Settings that would let the developer's own AWS setup leak into a test.
AWS_ENV_LEAKS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
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
    "MOTO_ACCOUNT_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials through the standard chain only, and botocore's backoff made tiny.

    Tests still see every retry botocore makes (the count is what they assert); they just do
    not wait up to seconds between them.
    """
    for name in AWS_ENV_LEAKS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    scales = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG
    monkeypatch.setitem(scales, "throttling_base_scale", 0.001)
    monkeypatch.setitem(scales, "non_throttling_base_scale", 0.001)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def aws_nodes() -> Iterator[list[str]]:
    """Endpoint URLs of two simulated nodes: separate moto servers, each with its own estate."""
    started = [start_moto_server() for _ in range(2)]
    yield [url for _, url in started]
    for server, _ in started:
        server.stop()


@pytest.fixture
def aws_endpoint(aws_nodes: list[str], aws_env: None) -> str:
    """The first simulated node, emptied (moto's reset empties every node)."""
    reset_moto(aws_nodes[0])
    return aws_nodes[0]


@pytest.fixture
def other_aws_endpoint(aws_nodes: list[str], aws_endpoint: str) -> str:
    """A second, separate simulated node (already emptied by `aws_endpoint`)."""
    return aws_nodes[1]


@pytest.fixture
def aws_faults(aws_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the first simulated node."""
    with FaultProxy(aws_endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def aws_tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A simulated node serving https with a self-signed certificate: (URL, CA bundle path)."""
    cert, key = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    server, url = start_moto_server(tls=(cert, key))
    yield url, cert
    server.stop()


# --- Kubernetes clusters: yiyun's API simulator ----------------------------------------------


class Sleeps(list[float]):
    """Stands in for time.sleep: records the waits, so no test ever sleeps."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sim() -> Iterator[KubernetesSimulator]:
    with KubernetesSimulator(cluster_uid="5e1f0a7c-0000-4000-8000-00000000c0de") as simulator:
        yield simulator


@pytest.fixture
def kubeconfig(sim: KubernetesSimulator, tmp_path: Path) -> str:
    return str(sim.write_kubeconfig(tmp_path / "kubeconfig", context="js-core-k8s"))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
