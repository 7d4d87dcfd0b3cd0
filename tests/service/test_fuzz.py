"""Every operation of the OpenAPI document, fuzzed as each role: no 5xx, all as documented."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import ROLES, Served
from tests.service.uvicorn_peer import start_service

# Each role at a department's scope and at the province's: a token per principal.
PRINCIPALS = [(role, scope) for role in ROLES for scope in ("department:JS-EDU", "province")]
# Cases per operation: the province's admin passes every access check and so reaches deepest;
# each other principal gets the simplest case, enough to meet its role's and scope's refusals.
# 15 cases an operation keep the run well under a minute per database on two idle cores.
EXAMPLES = {("admin", "province"): 4}
EXAMPLES_OTHERWISE = 1
CHECKS: list[Callable[..., bool | None]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(
    operation: APIOperation,
    client: requests.Session,
    headers: dict[str, str],
    *,
    examples: int,
    run_seed: int,
) -> str | None:
    """The first failing case as schemathesis describes it (with a curl line), or None."""
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    # Seeded: the same cases on every run, so a failure is reproducible as reported, while each
    # principal still gets cases of its own.
    @seed(run_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(session=client, headers=headers, checks=CHECKS)

    try:
        run()
    except (Failure, FailureGroup) as found:  # reported with the others, not stopped at
        return str(found)
    return None


def test_every_operation_as_every_role_answers_as_documented(
    served: Served, tmp_path: Path
) -> None:
    # Over the real process: a crash is the 500 a client would get, reported with a curl line.
    live = start_service(served.settings.database_url, tmp_path / "serve")
    try:
        schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
        failures: dict[str, str] = {}
        operations: list[APIOperation] = []
        for result in schema.get_all_operations():
            if isinstance(result, Ok):
                operations.append(result.ok())
            else:  # an operation schemathesis cannot read is a defect of the document
                failures[f"unreadable operation {result.err().path}"] = str(result.err())
        tokens = {principal: served.token(*principal) for principal in PRINCIPALS}
        with requests.Session() as client:
            for operation in operations:
                for run_seed, ((role, scope), token) in enumerate(tokens.items()):
                    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
                    examples = EXAMPLES.get((role, scope), EXAMPLES_OTHERWISE)
                    failure = fuzz(operation, client, headers, examples=examples, run_seed=run_seed)
                    if failure is not None:
                        failures[f"{operation.label} as {role}@{scope}"] = failure
    finally:
        assert live.stop() == 0, live.stderr()

    assert any(operation.path.startswith("/api/v1/") for operation in operations)
    assert failures == {}, "\n\n".join(f"{where}\n{what}" for where, what in failures.items())
