"""The applicant journey through the JSON API, and its OpenAPI document."""

from __future__ import annotations

import secrets

from openapi_spec_validator import validate

from tests.conftest import about_you

CONTACT = {"email": "maria@example.org", "phone": "+63 917 123 4567", "country_of_residence": "CA"}
ELIGIBILITY = {"language_level": 5, "care_months": 24, "education": "secondary", "consent": True}


def key() -> dict[str, str]:
    return {"Idempotency-Key": secrets.token_urlsafe(24)}


def register(client, n=1):
    response = client.post("/api/v1/intakes/test/registrations", json=about_you(n), headers=key())
    assert response.status_code == 201, response.json
    return response.json


def test_openapi_document_is_valid_and_lists_the_journey(client):
    document = client.get("/api/v1/openapi.json").json
    validate(document)
    assert {
        "/intakes/{code}/registrations",
        "/session",
        "/case",
        "/case/steps/contact",
        "/case/submission",
        "/case/withdrawal",
    } <= set(document["paths"])
    about = document["components"]["schemas"]["AboutYou"]
    assert {"family_name", "date_of_birth", "passport_number"} <= set(about["required"])


def test_openapi_document_lists_every_stage_two_route_the_app_serves(app, client):
    document = client.get("/api/v1/openapi.json").json
    served = {
        rule.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/v1/case/application", "/api/v1/case/documents"))
        or rule.rule.startswith("/api/v1/case/uploads")
    }
    described = {p for p in document["paths"] if p.startswith("/case/")}
    sections = {p for p in described if p.startswith("/case/application/sections/")}
    assert len(sections) == 4
    assert "/case/application/submission" in described
    assert {s for s in served if "{section}" not in s and "{" not in s} <= described


def test_whole_journey_over_the_api_from_two_clients(app):
    first = app.test_client()
    assert [i["code"] for i in first.get("/api/v1/intakes").json["intakes"]] == ["test"]
    registered = register(first)
    saved = first.put(
        "/api/v1/case/steps/contact", json={"version": 1, "answers": CONTACT}, headers=key()
    )
    assert saved.json == {"command": "save_step", "version": 2}

    second = app.test_client()
    assert second.get("/api/v1/case").status_code == 401
    signed_in = second.post(
        "/api/v1/session",
        json={"reference": registered["reference"], "access_code": registered["access_code"]},
    )
    assert signed_in.status_code == 200
    assert signed_in.json["answers"]["contact"]["email"] == CONTACT["email"]
    assert signed_in.json["next_step"] == "eligibility"

    second.put(
        "/api/v1/case/steps/eligibility", json={"version": 2, "answers": ELIGIBILITY}, headers=key()
    )
    submitted = second.post("/api/v1/case/submission", json={"version": 3}, headers=key())
    assert submitted.json == {"command": "submit", "version": 4}
    case = second.get("/api/v1/case").json
    assert case["status"] == "submitted"
    assert case["submitted_at"]


def test_replayed_request_returns_the_same_response_and_writes_one_event(client, app):
    register(client)
    registry = app.extensions["carepath.registry"]
    headers = key()
    first = client.put(
        "/api/v1/case/steps/contact", json={"version": 1, "answers": CONTACT}, headers=headers
    )
    events = registry.recorder.max_notification_id()
    again = client.put(
        "/api/v1/case/steps/contact", json={"version": 1, "answers": CONTACT}, headers=headers
    )
    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == (
        "false",
        "true",
    )
    assert registry.recorder.max_notification_id() == events


def test_replayed_registration_returns_the_same_access_code(app):
    headers = key()
    first = app.test_client().post(
        "/api/v1/intakes/test/registrations", json=about_you(3), headers=headers
    )
    again = app.test_client().post(
        "/api/v1/intakes/test/registrations", json=about_you(3), headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json == again.json


def test_stale_version_is_a_409_and_the_case_is_unchanged(client):
    register(client)
    client.put("/api/v1/case/steps/contact", json={"version": 1, "answers": CONTACT}, headers=key())
    stale = client.put(
        "/api/v1/case/steps/contact",
        json={"version": 1, "answers": {**CONTACT, "email": "x@example.org"}},
        headers=key(),
    )
    assert stale.status_code == 409
    assert stale.json["code"] == "StaleVersion"
    assert stale.json["current_version"] == 2
    assert client.get("/api/v1/case").json["answers"]["contact"]["email"] == CONTACT["email"]


def test_duplicate_person_is_a_409_over_the_api(app):
    register(app.test_client(), 5)
    again = app.test_client().post(
        "/api/v1/intakes/test/registrations", json=about_you(5, given_names="Ana"), headers=key()
    )
    assert again.status_code == 409
    assert again.json["code"] == "DuplicateRegistration"


def test_invalid_answers_name_each_field(client):
    register(client)
    bad = client.put(
        "/api/v1/case/steps/contact",
        json={"version": 1, "answers": {"email": "nope", "phone": 7}},
        headers=key(),
    )
    assert bad.status_code == 422
    assert {"answers.email", "answers.phone", "answers.country_of_residence"} <= set(
        bad.json["errors"]
    )
