"""What counts as a secret in a label or tag: credential-named keys, credential-shaped values,
random-looking tokens; and the ordinary values of an estate that must never count."""

from __future__ import annotations

import random
import string

import pytest

from inventory.secret_shape import (
    REDACTED,
    looks_random,
    names_a_secret,
    redact_labels,
    secret_shaped,
)

SYSTEM_TAG = "yiyun.io/system"
# Values an estate carries every day, under ordinary keys: none may be redacted, or reports
# and `infra import-spec` would lose what they read.
ORDINARY = [
    "nginx",
    "1.2.3",
    "v1.28.9",
    "production",
    "5d59d67564",  # pod-template-hash
    "web-7c9d8f6b5",  # controller-revision-hash
    "4b5e2c1a-8d3f-4e2a-9c1b-2f3e4d5c6b7a",  # controller-uid
    "9fceb02d0ae598e95dc970b74767f19372d61af8",  # a git commit
    "sha256:dc501abcdd3c3c24a3802c426eff3004426572ae88f2e3c4d5b6a7980a1b2c3d",
    "ingress-nginx-4.10.1",
    "kube-prometheus-stack-58.2.1",
    "ip-10-0-1-23.ec2.internal",
    "arn:aws:iam::123456789012:user/alice",
    "arn:aws:cloudformation:us-east-1:123456789012:stack/MyStack/1e2d3c4b-5a6f-7e8d-9c0b",
    "eks-ng-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    "ami-0a1b2c3d4e5f60718",
    "i-0a1b2c3d4e5f60001",
    "2024-05-01T10:00:00Z",
    "ci-2024-05-01T10-00-00Z",
    "JS-EDU-0001",
    "社保核心-app-01",
    "省人社厅",
    "MyApplicationServer2024",
    "MonthlyReportJob20240501",
    "AmazonLinux2023x86_64",
    "Standard_D16ads_v5",
    "Standard_NC24ads_A100_v4",
    "EduPortal2024Phase2",
    "ProvinceEduCloud2024Q2Migration",
    "PostgreSQL15-HighAvailability-Cluster",
    "MyStack-MyRole-1ABCDEFGHIJKL",  # CloudFormation's unique suffix
    "MyStack2-MyBucket-1a2b3c4d5e6f",
    "Prod-EduPortal-Web-ALB-1V2X3Y4Z5A6B",
    "Api2GwStage3Prod",
    "JiangSuZhengWuYun",
    "HighAvailabilityPostgresCluster",
    "alice@example.gov.cn",
    "s3://MyBucket2024/Reports/Q1",
    "Web server for the EDU portal, deployed 2024-05-01 by Jenkins job EDU-Portal-Deploy #1234",
    "auth-mode-password",  # a key word alone names nothing
    "",
]
RANDOM_TOKENS = [
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "Zq3x9LmP2vR7tY8wK1nB4cD6fG0hJ5sA",
    "dGhpcyBpcyBhIHNlY3JldCBwYXNzd29yZA==",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


@pytest.mark.parametrize("value", ORDINARY)
@pytest.mark.parametrize("key", ["app", "version", "pod-template-hash", "Name", "owner"])
def test_ordinary_values_are_no_secret(key: str, value: str) -> None:
    assert not secret_shaped(key, value)


@pytest.mark.parametrize(
    "key",
    ["db_password", "DB-PASSWORD", "example.com/api-token", "x-secret", "aws_access_key",
     "ssh.private.key", "passwd", "Bearer", "service-credentials"],
)  # fmt: skip
def test_a_key_that_names_a_credential_hides_any_value(key: str) -> None:
    assert names_a_secret(key)
    assert secret_shaped(key, "anything")
    assert not secret_shaped(key, ""), "an empty value hides nothing"


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "backup to postgresql://yiyun:hunter2@db.example/yiyun",
        "password=hunter2",
        "api_key: 12345",
        "Bearer abcdefgh12345678",
        *RANDOM_TOKENS,
    ],
)
def test_credential_shaped_values_are_secrets_under_any_key(value: str) -> None:
    assert secret_shaped("note", value)


@pytest.mark.parametrize("length", [24, 32, 40])
def test_most_random_tokens_look_random(length: int) -> None:
    """The rate the module's comment states, on a fixed sample (so the test cannot flake)."""
    generator = random.Random(length)
    alphabet = string.ascii_letters + string.digits
    tokens = ["".join(generator.choice(alphabet) for _ in range(length)) for _ in range(1000)]

    caught = sum(looks_random(token) for token in tokens)

    assert caught >= {24: 940, 32: 950, 40: 980}[length]


def test_redact_labels_replaces_secret_values_and_keeps_the_rest() -> None:
    labels = {
        "app": "nginx",
        "version": "1.2.3",
        "pod-template-hash": "5d59d67564",
        "db_password": "hunter2",
        "build-key": RANDOM_TOKENS[2],
        SYSTEM_TAG: "JS-EDU-0001",
    }

    assert redact_labels(labels, keep=SYSTEM_TAG) == {
        **labels,
        "db_password": REDACTED,
        "build-key": REDACTED,
    }


def test_the_system_tag_is_never_redacted() -> None:
    """Attribution reads it: a system code that happens to look random still attributes."""
    odd_code = RANDOM_TOKENS[2]

    assert redact_labels({SYSTEM_TAG: odd_code}, keep=SYSTEM_TAG) == {SYSTEM_TAG: odd_code}
    assert redact_labels({SYSTEM_TAG: odd_code}) == {SYSTEM_TAG: REDACTED}
