"""Every form in which a URL carries a credential, masked by the one function yiyun prints URLs
through; what it keeps (user, host, port, database, other parameters); and garbage, masked
whole rather than shown or crashed on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from inventory import db
from inventory.logs import redact
from inventory.urls import (
    MASK,
    UrlCredentials,
    credentials_in_text,
    encode_password_at,
    mask_url,
    mask_urls_in,
    scrub,
    url_credentials,
)

# Fixed, not random: parametrized ids carry it, and every xdist worker must collect the same ids.
CANARY = "yiyunCanary7e3f9a01c5d2"
HOST = "db.example:5432"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        pytest.param(
            f"postgresql://yiyun:{CANARY}@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="userinfo-password",
        ),
        pytest.param(
            f"postgresql+psycopg://yiyun:p%40{CANARY}@{HOST}/ledger",
            f"postgresql+psycopg://yiyun:***@{HOST}/ledger",
            id="percent-encoded-at",
        ),
        pytest.param(
            f"postgresql://yiyun:p@{CANARY}@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="unencoded-at",
        ),
        pytest.param(
            f"postgresql://yiyun:a@b@{CANARY}@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="two-unencoded-at",
        ),
        pytest.param(
            f"postgresql://yiyun:x/{CANARY}@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="unencoded-slash",
        ),
        pytest.param(
            f"postgresql://yiyun:x?{CANARY}#z@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="unencoded-question-and-hash",
        ),
        pytest.param(
            f"postgresql://yiyun:x@{CANARY}/y@{HOST}/ledger",
            f"postgresql://yiyun:***@{HOST}/ledger",
            id="unencoded-at-then-slash",
        ),
        pytest.param(
            f"postgresql://yiyun@{HOST}/ledger?password={CANARY}",
            f"postgresql://yiyun@{HOST}/ledger?password=***",
            id="query-password",
        ),
        pytest.param(
            f"postgresql://{HOST}/ledger?application_name=yiyun&sslpassword={CANARY}&"
            f"options=-csearch_path%3Dt1",
            f"postgresql://{HOST}/ledger?application_name=yiyun&sslpassword=***&"
            f"options=-csearch_path%3Dt1",
            id="query-sslpassword-among-others",
        ),
        pytest.param(
            f"postgresql://u:{CANARY}@{HOST}/ledger?passwd={CANARY}&pwd={CANARY}",
            f"postgresql://u:***@{HOST}/ledger?passwd=***&pwd=***",
            id="password-twice",
        ),
        pytest.param(
            f"https://s3.example/b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA{CANARY}"
            f"%2F20261126%2Fcn-js-1%2Fs3%2Faws4_request&X-Amz-Security-Token={CANARY}&"
            f"X-Amz-Signature={CANARY}",
            "https://s3.example/b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&"
            "X-Amz-Security-Token=***&X-Amz-Signature=***",
            id="presigned-s3",
        ),
        pytest.param(
            f"https://s3.example/b?AWSAccessKeyId=AKIA{CANARY}&Signature={CANARY}&Expires=1",
            "https://s3.example/b?AWSAccessKeyId=***&Signature=***&Expires=1",
            id="presigned-s3-v2",
        ),
        pytest.param(
            f"https://api.example/?token={CANARY}&access_token={CANARY}&key={CANARY}&"
            f"secret={CANARY}&client_secret={CANARY}&api_key={CANARY}&sig={CANARY}&page=2",
            "https://api.example/?token=***&access_token=***&key=***&secret=***&"
            "client_secret=***&api_key=***&sig=***&page=2",
            id="token-key-secret",
        ),
        pytest.param(
            f"https://api.example/cb?state=1#access_token={CANARY}&expires_in=3600",
            "https://api.example/cb?state=1#access_token=***&expires_in=3600",
            id="fragment-token",
        ),
        pytest.param(
            f"https://api.example/?X%2DAmz%2DSecurity%2DToken={CANARY}",
            "https://api.example/?X%2DAmz%2DSecurity%2DToken=***",
            id="percent-encoded-parameter-name",
        ),
    ],
)
def test_every_credential_form_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert CANARY not in mask_url(url)
    assert mask_url(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///yiyun.db",
        "sqlite:////var/lib/yiyun/yiyun.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://yiyun@db.example:5432/ledger",
        "postgresql+psycopg://db.example/ledger?options=-csearch_path%3Dt_1&sslmode=require",
        "postgresql://[::1]:5432/ledger",
        "postgresql://yiyun@h1:5432,h2:5433/ledger?target_session_attrs=read-write",
        "postgresql://db.example:5432/ledger?application_name=a@b",
        "https://ecs.core.example:8443",
        "http://10.1.2.3:9000/",
    ],
)
def test_a_url_without_credentials_is_shown_as_it_is(url: str) -> None:
    assert mask_url(url) == url


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a url",
        f"host=db.example dbname=ledger password={CANARY}",
        f"postgres:{CANARY}@db.example/ledger",  # "//" forgotten
        f"postgresql://yiyun:x?a={CANARY}@db.example/ledger",  # an "@" after a query
        f"postgresql://yiyun:x?a={CANARY}",
        "\x00\x7f://@@@",
    ],
)
def test_garbage_is_masked_whole_and_never_raises(garbage: str) -> None:
    shown = mask_url(garbage)

    assert CANARY not in shown
    assert shown in (MASK, garbage)


@settings(max_examples=300, deadline=None)
@given(
    password=st.text(
        alphabet=st.sampled_from("abcXYZ019@/?#:%!$*+-._~[]"), min_size=1, max_size=24
    ),
    query=st.sampled_from(["", "?sslmode=require", "?application_name=a@b"]),
)
def test_no_password_of_any_shape_is_shown(password: str, query: str) -> None:
    """Passwords that hold every URL delimiter unencoded. A "=" after a "?" in the password is
    left out: "u:x?a=b@h" cannot be told from a query, and is masked whole (the case above)."""
    secret = f"Qz{password}"
    url = f"postgresql://yiyun:{secret}@db.example:5432/ledger{query}"

    shown = mask_url(url)

    assert "Qz" not in shown
    assert shown == MASK or shown.startswith("postgresql://yiyun:***@")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_masked_without_raising(text: str) -> None:
    assert isinstance(mask_url(text), str)
    assert isinstance(mask_urls_in(text), str)
    assert isinstance(url_credentials(text), UrlCredentials)


def test_the_database_module_masks_with_the_same_function() -> None:
    assert db.mask_url is mask_url


def test_an_unencoded_at_in_the_password_reaches_the_driver_as_written() -> None:
    """SQLAlchemy splits at the first "@" (password "p", host "CANARY@db.example"), so a
    driver's "cannot resolve host" error would print the rest of the password."""
    url = db.normalize_url(f"postgresql://yiyun:p@{CANARY}@db.example:5432/ledger")
    parsed = make_url(url)

    assert (parsed.password, parsed.host, parsed.database) == (
        f"p@{CANARY}",
        "db.example",
        "ledger",
    )
    assert encode_password_at("postgresql://u:p%40ss@h/db") == "postgresql://u:p%40ss@h/db"
    assert encode_password_at("sqlite:///a@b.db") == "sqlite:///a@b.db"


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://s3.example/", UrlCredentials()),
        ("https://admin@s3.example/", UrlCredentials(user=True)),
        ("https://admin:pw@s3.example/", UrlCredentials(user=True, password=True)),
        (
            "https://s3.example/?X-Amz-Security-Token=t&region=r&token=u",
            UrlCredentials(parameters=("X-Amz-Security-Token", "token")),
        ),
        ("https://a:b?c=d@s3.example/", UrlCredentials(user=True, password=True)),
    ],
)
def test_which_parts_carry_credentials_is_told_without_values(
    url: str, found: UrlCredentials
) -> None:
    assert url_credentials(url) == found
    assert bool(found) == (found != UrlCredentials())


def test_credentials_in_text_looks_at_every_url_in_it() -> None:
    text = "primary https://a.example/ and backup https://b.example/?token=x"

    assert credentials_in_text(text) == UrlCredentials(parameters=("token",))
    assert not credentials_in_text("no URL here, token=x")


def test_scrub_takes_every_form_of_the_secrets_out_of_a_drivers_error() -> None:
    url = f"postgresql://yiyun:p@{CANARY}@db.example/ledger?sslpassword=s%20{CANARY}"
    error = (
        f'connection to "db.example" failed for password "p@{CANARY}" (p%40{CANARY}), '
        f"sslpassword 's {CANARY}' while reading {url}"
    )

    scrubbed = scrub(error, url)

    assert CANARY not in scrubbed
    assert 'connection to "db.example" failed' in scrubbed


@pytest.mark.parametrize(
    "line",
    [
        f"could not connect to postgresql://yiyun:p@{CANARY}@db.example/ledger",
        f'Could not connect to the endpoint URL: "https://s3.example/?token={CANARY}"',
        f"GET https://s3.example/b?X-Amz-Signature={CANARY}&X-Amz-Date=1 HTTP/1.1",
        f"conninfo: host=db.example password='{CANARY} with spaces' dbname=ledger",
        f"conninfo: host=db.example password={CANARY} dbname=ledger",
        f"url='postgresql://yiyun:{CANARY}@db.example/ledger'",
    ],
    ids=["unencoded-at", "botocore-endpoint", "signed-request", "dsn-quoted", "dsn", "quoted"],
)
def test_the_log_redactor_masks_urls_inside_messages(line: str) -> None:
    assert CANARY not in redact(line)
    assert "db.example" in redact(line) or "s3.example" in redact(line)
