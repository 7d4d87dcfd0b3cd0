"""Advancing a system from its page: the gates' words in place, CSRF, roles, htmx."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from inventory.access import Actor
from inventory.i18n import text
from inventory.models import Resource, System, utcnow
from migrate.models import MigrationEvent, SystemMigration
from migrate.tracking import advance_system
from service.portal.web import CSRF_FIELD
from tests.migrate.estate import add_resource
from tests.portal.conftest import Portal

EDU = "department:JS-EDU"
TO_TRIAL = ("provisioning", "migrating", "testing", "cutover", "trial_run")


def state_of(portal: Portal, code: str) -> str:
    with Session(portal.engine) as session:
        row = session.exec(
            select(SystemMigration).where(col(SystemMigration.system_code) == code)
        ).one()
        return row.state


def events_of(portal: Portal, code: str) -> int:
    with Session(portal.engine) as session:
        query = select(MigrationEvent).where(col(MigrationEvent.system_code) == code)
        return len(session.exec(query).all())


def walk(portal: Portal, code: str, states: tuple[str, ...]) -> None:
    """Steps taken earlier by the department (through the use case, as the CLI would)."""
    with Session(portal.engine) as session:
        for state in states:
            advance_system(
                session=session,
                actor=Actor.local("tests"),
                code=code,
                to_state=state,
                now=datetime.now(tz=UTC),
                today=portal.settings.today(),
            )
        session.commit()


def rebuilt_on_core(portal: Portal, code: str) -> None:
    """The inventory now sees the system only on the unified cloud (as a rescan would)."""
    with Session(portal.engine) as session:
        for row in session.exec(select(Resource).where(col(Resource.system_code) == code)):
            row.deleted_at = utcnow()
            session.add(row)
        add_resource(session, code, "core", "vm", vcpu=2)
        session.commit()


def test_department_it_advances_with_the_button_and_the_log_says_so(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    page = user.get("/systems/A01").text
    assert 'id="advance-button"' in page
    answer = user.post("/systems/A01/advance", {"to": "provisioning", "expected_state": "planned"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/systems/A01?advanced=1"
    assert state_of(portal, "A01") == "provisioning"
    shown = user.get(answer.headers["location"]).text
    assert 'id="advance-verdict"' in shown
    history = portal.served.client.get(
        "/api/v1/systems/A01/history", headers=portal.served.headers("viewer", EDU)
    ).json()["items"]
    assert [(h["from_state"], h["to_state"], h["by"]) for h in history][-1] == (
        "planned",
        "provisioning",
        "department_it@department:JS-EDU",
    )
    assert "department_it@department:JS-EDU" in shown
    # The next button is the next state, with the state now shown expected.
    assert 'name="to" value="migrating"' in shown
    assert 'name="expected_state" value="provisioning"' in shown


def test_acceptance_is_refused_before_the_move_and_accepted_after(portal: Portal) -> None:
    walk(portal, "A01", TO_TRIAL)
    logged = events_of(portal, "A01")
    user = portal.login("department_it", EDU)
    waiting = user.get("/systems/A01").text
    # The inventory does not see it on the cloud: the step is a scan, no button to accept.
    assert 'id="advance-button"' not in waiting
    assert "yiyun scan" in waiting

    refused = user.post("/systems/A01/advance", {"to": "accepted", "expected_state": "trial_run"})
    assert refused.status_code == 409
    assert 'id="advance-refusal"' in refused.text
    assert "A01 不能验收：资源清单未见其在一朵云上" in refused.text
    assert state_of(portal, "A01") == "trial_run"
    assert events_of(portal, "A01") == logged

    rebuilt_on_core(portal, "A01")
    ready = user.get("/systems/A01").text
    assert 'name="to" value="accepted"' in ready
    accepted = user.post("/systems/A01/advance", {"to": "accepted", "expected_state": "trial_run"})
    assert accepted.status_code == 303
    assert state_of(portal, "A01") == "accepted"
    verdict = user.get(accepted.headers["location"]).text
    # The gate's verdict: what the inventory said when it let the step through.
    assert 'id="advance-verdict"' in verdict and "core" in verdict


def test_a_level_3_system_asks_for_the_acceptance_document(portal: Portal) -> None:
    with Session(portal.engine) as session:
        system = session.exec(select(System).where(col(System.code) == "A02")).one()
        system.crypto_assessed_on = date(2026, 1, 5)
        session.add(system)
        session.commit()
    walk(portal, "A02", TO_TRIAL)
    rebuilt_on_core(portal, "A02")
    user = portal.login("department_it", EDU)
    page = user.get("/systems/A02").text
    assert 'id="advance-evidence"' in page and 'name="evidence"' in page
    missing = user.post("/systems/A02/advance", {"to": "accepted", "expected_state": "trial_run"})
    assert missing.status_code == 409
    assert text("mig_no_acceptance_document", "zh", code="A02", level=3) in missing.text
    assert text("portal_workspace_refused_document", "zh") in missing.text
    assert state_of(portal, "A02") == "trial_run"
    given = user.post(
        "/systems/A02/advance",
        {"to": "accepted", "expected_state": "trial_run", "evidence": "苏验〔2026〕12号"},
    )
    assert given.status_code == 303
    assert state_of(portal, "A02") == "accepted"
    assert "苏验〔2026〕12号" in user.get("/systems/A02").text


def test_no_csrf_token_is_403_and_nothing_changes(portal: Portal) -> None:
    logged = events_of(portal, "A01")
    user = portal.login("department_it", EDU)
    bare = user.client.post("/systems/A01/advance", data={"to": "provisioning"})
    forged = user.client.post(
        "/systems/A01/advance", data={"to": "provisioning", CSRF_FIELD: "x" * 40}
    )
    assert bare.status_code == forged.status_code == 403
    assert state_of(portal, "A01") == "planned" and events_of(portal, "A01") == logged


def test_a_viewer_sees_why_not_and_a_viewers_post_is_refused(portal: Portal) -> None:
    logged = events_of(portal, "A01")
    user = portal.login("viewer", EDU)
    page = user.get("/systems/A01").text
    assert 'id="advance-button"' not in page and 'id="advance-form"' not in page
    assert 'id="advance-not-allowed"' in page
    answer = user.post("/systems/A01/advance", {"to": "provisioning"})
    assert answer.status_code == 403
    assert state_of(portal, "A01") == "planned" and events_of(portal, "A01") == logged


def test_another_departments_system_is_403_and_untouched(portal: Portal) -> None:
    user = portal.login("department_it", EDU)
    answer = user.post("/systems/A12/advance", {"to": "provisioning"})
    assert answer.status_code == 403
    assert "系统A12" not in answer.text and 'id="step-panel"' not in answer.text
    assert state_of(portal, "A12") == "planned"


def test_a_stale_page_is_told_the_system_moved_meanwhile(portal: Portal) -> None:
    walk(portal, "A01", ("provisioning",))
    logged = events_of(portal, "A01")
    user = portal.login("department_it", EDU)
    answer = user.post("/systems/A01/advance", {"to": "provisioning", "expected_state": "planned"})
    assert answer.status_code == 409
    assert text("mig_changed_meanwhile", "zh", code="A01").split("：")[0] in answer.text
    # The panel shows the state as it is now, and its next step.
    assert 'name="expected_state" value="provisioning"' in answer.text
    assert events_of(portal, "A01") == logged


def test_htmx_swaps_the_step_panel_and_the_history(portal: Portal) -> None:
    user = portal.login("department_it", EDU, lang="en")
    headers = {"HX-Request": "true", "X-CSRF-Token": user.csrf}
    done = user.client.post(
        "/systems/A01/advance",
        data={"to": "provisioning", "expected_state": "planned"},
        headers=headers,
    )
    assert done.status_code == 200
    assert done.text.lstrip().startswith('<section class="card" id="step-panel"')
    assert 'id="history" aria-labelledby="history-title" hx-swap-oob="true"' in done.text
    assert "Moved to" in done.text and "<html" not in done.text
    refused = user.client.post(
        "/systems/A01/advance",
        data={"to": "accepted", "expected_state": "provisioning"},
        headers=headers,
    )
    # The refusal keeps its status; base.html's htmx-config swaps 409 answers into the panel.
    assert refused.status_code == 409
    assert 'id="advance-refusal"' in refused.text
    assert state_of(portal, "A01") == "provisioning"
