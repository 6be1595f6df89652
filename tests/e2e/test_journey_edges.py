"""Rough edges of the applicant's journey (issue 11): second tabs, "Change", hints, error summary,
and a session cookie that ends with the browser."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from uuid import UUID

from bs4 import BeautifulSoup

from domain.values import DEFAULT_TIME_ZONE
from tests.conftest import CONTACT, ELIGIBILITY, about_you, make_app
from tests.e2e.test_registration_journey import register
from tests.forms import error_summary, form_values, hidden_fields, post_form, text_of
from web.times import local_time

ALREADY = "Your registration was already submitted on"
STEPS = ("about_you", "contact", "eligibility")


def ready_to_submit(client):
    register(client)
    post_form(client, "/application/steps/contact", {**CONTACT, "action": "continue"})
    post_form(client, "/application/steps/eligibility", {**ELIGIBILITY, "action": "continue"})


def signed_in_case(app, client):
    with client.session_transaction() as session:
        case_id = session["case_id"]
    return app.extensions["carepath.registry"].get_case(UUID(case_id))


def test_a_second_tab_submit_of_a_submitted_registration_lands_on_the_receipt_with_a_message(app):
    # given two tabs on the review page, and the registration submitted from the first
    client = app.test_client()
    ready_to_submit(client)
    first_tab = client.get("/application/review")
    second_tab = client.get("/application/review")
    step_tab = client.get("/application/steps/contact")
    assert client.post("/application/submit", data=hidden_fields(first_tab.text)).status_code == 302
    registry = app.extensions["carepath.registry"]
    events = registry.recorder.max_notification_id()

    # when the second tab submits (its version is older), and a form of the current version too
    stale = client.post("/application/submit", data=hidden_fields(second_tab.text))
    current = {
        **hidden_fields(second_tab.text),
        "idempotency_key": "a-fresh-key-for-a-second-submit",
        "version": str(signed_in_case(app, client).version),
    }
    closed = client.post("/application/submit", data=current)

    # then both land on the receipt, which says when it was sent, and nothing is written
    for response in (stale, closed):
        assert response.status_code == 302, response.text
        assert response.headers["Location"] == "/application/receipt?already=1"
    receipt = client.get("/application/receipt?already=1")
    assert receipt.status_code == 200
    assert ALREADY in text_of(receipt.text, "banner")
    sent_at = signed_in_case(app, client).submitted_at
    assert local_time(sent_at, DEFAULT_TIME_ZONE, "en") in text_of(receipt.text, "banner")
    assert "Submit my registration" not in receipt.text
    assert registry.recorder.max_notification_id() == events
    # and the review page and a step form of the submitted case send there too, never to sign-in
    assert client.get("/application/review").headers["Location"] == "/application/receipt?already=1"
    saved_step = client.post(
        "/application/steps/contact", data={**form_values(step_tab.text), "action": "continue"}
    )
    assert saved_step.headers["Location"] == "/application/status?already=1"
    status = client.get("/application/status?already=1")
    assert ALREADY in text_of(status.text, "banner")
    # a plain visit to the receipt or the status page has no banner
    plain_receipt = BeautifulSoup(client.get("/application/receipt").text, "html.parser")
    assert plain_receipt.find(id="banner") is None
    assert ALREADY not in client.get("/application/status").text


def test_change_on_the_review_page_returns_to_review_after_saving(app):
    # given an applicant on the review page
    client = app.test_client()
    ready_to_submit(client)
    review = BeautifulSoup(client.get("/application/review").text, "html.parser")
    links = [a["href"] for a in review.find_all("a") if a.get_text().startswith("Change")]
    assert links == [f"/application/steps/{s}?return=review" for s in STEPS]

    # when they change the first step, and a refused post of the contact step comes in between
    about = client.get(links[0])
    saved = client.post(
        links[0], data={**form_values(about.text), "family_name": "Reyes", "action": "continue"}
    )
    contact = client.get(links[1])
    refused = client.post(
        "/application/steps/contact",
        data={**form_values(contact.text), "email": "not an email", "action": "continue"},
    )
    fixed = client.post(
        "/application/steps/contact",
        data={**form_values(refused.text), "email": "maria@example.net", "action": "continue"},
    )

    # then each save goes back to review, not on to the next step
    assert saved.headers["Location"] == "/application/review"
    assert refused.status_code == 422
    assert fixed.headers["Location"] == "/application/review"
    assert "Reyes" in client.get("/application/review").text
    # and without the marker, saving still walks on to the next step
    about = client.get("/application/steps/about_you")
    plain = client.post(
        "/application/steps/about_you", data={**form_values(about.text), "action": "continue"}
    )
    assert plain.headers["Location"] == "/application/steps/contact"


def test_the_date_of_birth_hint_asks_for_no_typed_format_the_date_picker_does_not_show(client):
    page = BeautifulSoup(client.get("/intakes/test/register").text, "html.parser")

    field = page.find(id="date_of_birth")
    hint = page.find(id="date_of_birth-hint").get_text(strip=True)

    assert field["type"] == "date"
    assert not re.search(r"\d{4}-\d{2}-\d{2}|YYYY|DD/MM|MM/DD", hint), hint
    assert hint == "For example, 27 April 1985"
    french = BeautifulSoup(client.get("/intakes/test/register?lang=fr").text, "html.parser")
    assert french.find(id="date_of_birth-hint").get_text(strip=True) == "Par exemple, 27 avril 1985"


def test_the_error_summary_lists_errors_in_the_order_of_the_fields_and_the_envelope_last(client):
    # given a registration whose date of birth fails a rule checked after the field itself
    response = post_form(
        client,
        "/intakes/test/register",
        {
            **about_you(date_of_birth="2020-01-01", passport_country="", family_name=""),
            "idempotency_key": "",
        },
    )

    # then the summary follows the page: family name, date of birth, country; the envelope last
    assert response.status_code == 422
    assert list(error_summary(response.text)) == [
        "family_name",
        "date_of_birth",
        "passport_country",
        "idempotency_key",
    ]
    page = BeautifulSoup(response.text, "html.parser")
    fields_on_page = [
        i["id"] for i in page.find("form").find_all(["input", "select"]) if i.get("id")
    ]
    summary = [f for f in error_summary(response.text) if f in fields_on_page]
    assert summary == [f for f in fields_on_page if f in summary]


def test_a_refused_post_focuses_the_error_summary_and_its_title_starts_with_error(client):
    response = post_form(client, "/intakes/test/register", {"action": "continue"})

    page = BeautifulSoup(response.text, "html.parser")
    summary = page.find(class_="error-summary")
    assert response.status_code == 422
    assert summary["tabindex"] == "-1"
    assert summary.has_attr("autofocus")
    assert page.title.get_text().startswith("Error:")
    assert len(page.find_all(attrs={"autofocus": True})) == 1


def test_the_applicant_session_cookie_ends_with_the_browser_and_the_stored_session_expires(
    sqlite_env,
):
    # given an app whose stored sessions live three seconds after their last write (one was
    # too tight on a loaded machine: the CSRF session could expire between GET and POST)
    app = make_app(sqlite_env, PERMANENT_SESSION_LIFETIME=timedelta(seconds=3))
    try:
        client = app.test_client()
        page = client.get("/intakes/test/register")
        response = client.post(
            "/intakes/test/register",
            data={**hidden_fields(page.text), **about_you(), "action": "continue"},
        )

        # then the session cookie set at sign-in is a browser-session cookie
        cookies = [c for c in response.headers.getlist("Set-Cookie") if "carepath_session=" in c]
        assert cookies, (response.status_code, response.text[:2000])
        for cookie in cookies:
            assert "expires=" not in cookie.lower(), cookie
            assert "max-age=" not in cookie.lower(), cookie
        assert client.get("/application/status").status_code == 200

        # and once its idle time has passed, the server no longer knows it
        time.sleep(3.6)
        assert client.get("/application/status").status_code == 401
    finally:
        app.extensions["carepath.registry"].close()
