"""The service end to end: the real `yiyun serve`, the real identity provider, real sockets."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, col, func, select

from inventory.db import alembic_config, head_revision, upgrade
from inventory.models import AuditEntry
from migrate.models import SystemMigration
from tests.conftest import require_binary
from tests.migrate.conftest import invoke
from tests.service import oidc_peer, uvicorn_peer
from tests.service.conftest import Served
from tests.service.oidc_peer import OidcProvider, new_rsa_key
from tests.service.test_identity import hs256_token, resigned, unverified_claims
from tests.service.uvicorn_peer import YIYUN, LiveService, start_service, wait_for

# The peers' fixtures, made visible to pytest in this module.
oidc_keys = oidc_peer.oidc_keys
estate_provider = uvicorn_peer.estate_provider
live_service = uvicorn_peer.live_service

ADVANCE_A01 = "/systems/A01/advance"
TO_PROVISIONING = {"to": "provisioning"}


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def state_of(served: Served, code: str) -> str:
    with Session(served.engine) as session:
        return session.exec(
            select(SystemMigration.state).where(col(SystemMigration.system_code) == code)
        ).one()


def audit_entries(served: Served, action: str | None = None) -> list[AuditEntry]:
    with Session(served.engine) as session:
        query = select(AuditEntry).order_by(col(AuditEntry.id))
        if action is not None:
            query = query.where(col(AuditEntry.action) == action)
        return list(session.exec(query))


def audit_count(served: Served) -> int:
    with Session(served.engine) as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


def identity_probe(live: LiveService, token: str) -> httpx.Response:
    """A read that only an accepted js-edu-it token gets 200 for (a rejected one gets 401)."""
    return httpx.get(live.api("/systems/A01"), headers=bearer(token), timeout=10)


def test_a_provider_token_acts_with_its_claims_and_the_audit_names_its_subject(
    served: Served, estate_provider: OidcProvider, live_service: LiveService
) -> None:
    token = estate_provider.token("js-edu-it")
    before = state_of(served, "A01")

    advanced = httpx.post(
        live_service.api(ADVANCE_A01),
        json=TO_PROVISIONING,
        headers=bearer(token, **{"X-Request-ID": "e2e-edu-0001"}),
        timeout=10,
    )
    # The token's planner and viewer grants over 南京市 read N01 but do not advance it.
    refused = httpx.post(
        live_service.api("/systems/N01/advance"), json=TO_PROVISIONING, headers=bearer(token)
    )

    assert advanced.status_code == 201, advanced.text
    assert advanced.headers["x-request-id"] == "e2e-edu-0001"
    assert (advanced.json()["from_state"], advanced.json()["to_state"]) == (before, "provisioning")
    assert advanced.json()["by"] == "js-edu-it"
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "access_denied"
    [entry] = audit_entries(served, "migration.advance")
    assert (entry.principal, entry.principal_kind, entry.request_id, entry.target) == (
        "js-edu-it",
        "oidc",
        "e2e-edu-0001",
        "A01",
    )
    assert state_of(served, "N01") == "planned"


def test_another_departments_it_reads_a01_as_unknown_until_the_ledger_grants_it(
    served: Served, estate_provider: OidcProvider, live_service: LiveService
) -> None:
    token = estate_provider.token("nj-d1-it")
    outside = httpx.post(
        live_service.api(ADVANCE_A01), json=TO_PROVISIONING, headers=bearer(token), timeout=10
    )
    assert outside.status_code == 404, outside.text
    assert outside.headers["content-type"] == "application/problem+json"
    assert outside.json()["code"] == "mig_unknown_system"
    assert state_of(served, "A01") == "planned"

    code, out, err = invoke(
        "access", "grant", "nj-d1-it", "department_it", "department:JS-EDU", "--by", "e2e"
    )
    assert code == 0, out + err
    # The same token, the same running process: the ledger's grant is added to the claim's.
    granted = httpx.post(
        live_service.api(ADVANCE_A01), json=TO_PROVISIONING, headers=bearer(token), timeout=10
    )

    assert granted.status_code == 201, granted.text
    assert state_of(served, "A01") == "provisioning"
    [entry] = audit_entries(served, "migration.advance")
    assert (entry.principal, entry.principal_kind) == ("nj-d1-it", "oidc")


def forged_tokens(provider: OidcProvider) -> dict[str, str]:
    """Tokens a caller without the provider's private key can make or obtain, by attack."""
    key = provider.keys.signing
    claims = unverified_claims(provider.token("js-edu-it"))
    now = int(time.time())
    return {
        "alg-none": jwt.encode(claims, "", algorithm="none", headers={"kid": key.kid}),
        "hs256-public-key": hs256_token(claims, key.public_pem(), key.kid),
        "wrong-key": jwt.encode(claims, new_rsa_key(), algorithm="RS256", headers={"kid": key.kid}),
        "expired": resigned(provider, exp=now - 120, iat=now - 600, nbf=now - 600),
        "wrong-audience": provider.token("js-edu-it", audience="https://other-app.example.gov.cn/"),
        "wrong-issuer": resigned(provider, iss="http://idp.elsewhere.example"),
    }


def test_forged_and_foreign_tokens_are_401_and_write_nothing(
    served: Served, estate_provider: OidcProvider, live_service: LiveService
) -> None:
    entries_before = audit_count(served)
    answers = {
        attack: httpx.post(
            live_service.api(ADVANCE_A01), json=TO_PROVISIONING, headers=bearer(token), timeout=10
        )
        for attack, token in forged_tokens(estate_provider).items()
    }

    reasons = {attack: (r.status_code, r.json().get("reason")) for attack, r in answers.items()}
    assert reasons == {
        "alg-none": (401, "algorithm"),
        "hs256-public-key": (401, "algorithm"),
        "wrong-key": (401, "signature"),
        "expired": (401, "expired"),
        "wrong-audience": (401, "audience"),
        "wrong-issuer": (401, "issuer"),
    }
    for response in answers.values():
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "api_unauthenticated"
    assert state_of(served, "A01") == "planned"
    assert audit_count(served) == entries_before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_keys_rotated_at_the_provider_are_picked_up_without_a_restart(
    estate_provider: OidcProvider, live_service: LiveService
) -> None:
    old_token = estate_provider.token("js-edu-it")
    assert identity_probe(live_service, old_token).status_code == 200  # the old keys are cached

    estate_provider.rotate(keep_old=False)
    new_token = estate_provider.token("js-edu-it")
    # The service refetches the key set for the unknown kid, at most once per 10 s: poll.
    wait_for(
        lambda: identity_probe(live_service, new_token).status_code == 200,
        what="the service to accept a token signed with the rotated key",
        seconds=40,
    )
    dropped = identity_probe(live_service, old_token)

    assert live_service.process.poll() is None  # the same process all along
    assert (dropped.status_code, dropped.json()["reason"]) == (401, "unknown_key")


def printed_curl_lines(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line.strip().startswith("curl ")]


def run_curl(arguments: list[str]) -> tuple[int, str]:
    """The command as printed, plus -w to learn the status; (status, body)."""
    done = subprocess.run(
        [*arguments, "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_demo_login_prints_curl_lines_that_really_work(served: Served, tmp_path: Path) -> None:
    require_binary("curl")
    live = start_service(served.settings.database_url, tmp_path / "demo", options=["--demo-login"])
    try:
        login, use = printed_curl_lines(live.stdout())
        status, body = run_curl(login)
        assert status == 201, body
        token = json.loads(body)["token"]
        assert (json.loads(body)["role"], json.loads(body)["scope"]) == ("admin", "province")
        advanced = httpx.post(
            live.api(ADVANCE_A01), json=TO_PROVISIONING, headers=bearer(token), timeout=10
        )
        used_status, used_body = run_curl([part.replace("TOKEN", token) for part in use])
    finally:
        assert live.stop() == 0, live.stderr()

    assert login[0] == use[0] == "curl"
    assert advanced.status_code == 201, advanced.text
    assert advanced.json()["by"] == "demo"
    assert used_status == 200, used_body


def test_demo_login_on_a_public_address_is_refused_with_exit_2(tmp_path: Path) -> None:
    ledger = f"sqlite:///{tmp_path / 'y.db'}"
    done = subprocess.run(
        [str(YIYUN), "--db", ledger, "--lang", "en", "serve", "--demo-login", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "0.0.0.0" in done.stderr and "--demo-login" in done.stderr
    assert "serving" not in done.stdout


def test_readyz_is_503_one_migration_behind_head_and_200_at_head(
    served: Served, live_service: LiveService
) -> None:
    head = head_revision()
    assert head is not None
    head_script = ScriptDirectory.from_config(alembic_config(served.engine)).get_revision(head)
    command.downgrade(alembic_config(served.engine), "-1")
    behind = httpx.get(f"{live_service.url}/readyz", timeout=10)
    upgrade(served.engine)
    at_head = httpx.get(f"{live_service.url}/readyz", timeout=10)

    assert behind.status_code == 503
    assert behind.json() == {
        "status": "schema",
        "current": head_script.down_revision,
        "needed": head,
    }
    assert at_head.status_code == 200
    assert at_head.json() == {"status": "ready", "schema": head}


def latency_samples(exposition: str) -> list[dict[str, Any]]:
    return [
        {"name": sample.name, **sample.labels}
        for family in text_string_to_metric_families(exposition)
        if family.name == "yiyun_api_request_duration_seconds"
        for sample in family.samples
    ]


def test_metrics_label_requests_by_route_template_never_by_system_code(
    served: Served, live_service: LiveService
) -> None:
    headers = served.headers("admin", "province")
    for code in ("A01", "N01", "NO-SUCH-SYSTEM"):
        httpx.post(live_service.api(f"/systems/{code}/advance"), json={}, headers=headers)
    httpx.get(live_service.api("/no-such-route/A01"), headers=headers)
    exposition = httpx.get(f"{live_service.url}/metrics", timeout=10).text

    counts = {
        (s["method"], s["route"], s["status"])
        for s in latency_samples(exposition)
        if s["name"] == "yiyun_api_request_duration_seconds_count"
    }
    assert ("POST", "/api/v1/systems/{code}/advance", "422") in counts
    assert ("GET", "unmatched", "404") in counts
    for code in ("A01", "N01", "NO-SUCH-SYSTEM"):
        assert code not in exposition
