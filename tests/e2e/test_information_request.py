"""What an applicant sees of officers' work: a request for information they answer, a decision."""

from __future__ import annotations

import secrets
from uuid import UUID

from domain.casework import Casework
from tests.casework_fakes import Roster, staff_member
from tests.conftest import send_application
from tests.e2e.test_allocation_status import submit_one
from tests.forms import hidden_fields, text_of


def officer_work(app):
    officer = staff_member()
    registry = app.extensions["carepath.registry"]
    return registry, officer, Casework(registry, Roster(officer), holds_place=lambda c: True)


def key():
    return secrets.token_urlsafe(24)


def test_the_applicant_sees_an_officers_request_answers_it_and_sees_the_answer(app):
    client = submit_one(app, 1)
    registry, officer, work = officer_work(app)
    case_id = case_id_of(client)
    work.request_information(
        case_id,
        "Send a letter from your employer.",
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(),
    )

    page = client.get("/application/status")
    assert "Send a letter from your employer." in text_of(page.text, "information-request")
    form = hidden_fields(page.text)
    empty = client.post("/application/requests/r1", data={**form, "answer": "   "})
    assert empty.status_code == 422
    assert "Enter your answer" in empty.text
    sent = client.post("/application/requests/r1", data={**form, "answer": "Attached below."})

    assert sent.status_code == 302
    case = registry.get_case(case_id)
    assert case.requests[0].answer == "Attached below."
    after = client.get("/application/status").text
    assert "Attached below." in after
    assert 'id="information-request"' not in after
    again = client.post("/application/requests/r1", data={**form, "answer": "Twice"})
    assert again.status_code == 302  # the same form again: its idempotency key replays
    assert registry.get_case(case_id).version == case.version


def test_a_stale_answer_form_changes_nothing_and_says_so(app):
    client = submit_one(app, 1)
    registry, officer, work = officer_work(app)
    case_id = case_id_of(client)
    asked = work.request_information(
        case_id,
        "Explain the gap.",
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(),
    )
    form = hidden_fields(client.get("/application/status").text)
    work.assign(
        case_id,
        officer.id,
        officer=officer,
        expected_version=asked.version,
        idempotency_key=key(),
    )

    stale = client.post("/application/requests/r1", data={**form, "answer": "It was…"})

    assert stale.status_code == 409
    assert registry.get_case(case_id).requests[0].answer is None


def test_the_api_answers_a_request_and_shows_requests_and_decisions(app):
    client = app.test_client()
    registered = client.post(
        "/api/v1/intakes/test/registrations",
        json={
            "family_name": "Reyes",
            "given_names": "Ana",
            "date_of_birth": "1980-02-03",
            "passport_number": "P1234567",
            "passport_country": "PH",
        },
        headers={"Idempotency-Key": key()},
    )
    assert registered.status_code == 201
    version = registered.json["version"]
    for step, answers in (
        (
            "contact",
            {"email": "ana@example.org", "phone": "+63 917 123 4567", "country_of_residence": "CA"},
        ),
        (
            "eligibility",
            {"language_level": 5, "care_months": 24, "education": "secondary", "consent": True},
        ),
    ):
        saved = client.put(
            f"/api/v1/case/steps/{step}",
            json={"version": version, "answers": answers},
            headers={"Idempotency-Key": key()},
        )
        assert saved.status_code == 200, saved.text
        version = saved.json["version"]
    submitted = client.post(
        "/api/v1/case/submission", json={"version": version}, headers={"Idempotency-Key": key()}
    )
    assert submitted.status_code == 200
    registry, officer, work = officer_work(app)
    case_id = registry.sign_in(registered.json["reference"], registered.json["access_code"])
    asked = work.request_information(
        case_id,
        "Which agency?",
        officer=officer,
        expected_version=submitted.json["version"],
        idempotency_key=key(),
    )

    shown = client.get("/api/v1/case").json
    assert shown["information_requests"][0]["message"] == "Which agency?"
    bad = client.post(
        "/api/v1/case/information",
        json={"version": asked.version, "request_id": "nope", "answer": "x"},
        headers={"Idempotency-Key": key()},
    )
    assert bad.status_code == 422
    assert "request_id" in bad.json["errors"]
    answered = client.post(
        "/api/v1/case/information",
        json={"version": asked.version, "request_id": "r1", "answer": "Care Co."},
        headers={"Idempotency-Key": key()},
    )
    assert answered.status_code == 200, answered.text
    assert client.get("/api/v1/case").json["information_requests"][0]["answer"] == "Care Co."


def test_a_decision_is_shown_on_the_status_page(app):
    client = submit_one(app, 1)
    registry, officer, work = officer_work(app)
    case_id = case_id_of(client)
    send_application(registry, case_id)
    accepted = work.accept_for_processing(
        case_id,
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(),
    )
    assert "accepted for processing" in text_of(client.get("/application/status").text, "decision")

    work.refuse(
        case_id,
        ["other"],
        "The employer letter was not genuine.",
        officer=officer,
        expected_version=accepted.version,
        idempotency_key=key(),
    )

    shown = text_of(client.get("/application/status").text, "decision")
    assert "refused" in shown
    assert "The employer letter was not genuine." in shown
    assert "Withdraw" not in client.get("/application/status").text


def case_id_of(client):
    """The case the test client's applicant session opens."""
    with client.session_transaction() as session:
        return UUID(session["case_id"])
