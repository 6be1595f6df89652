"""'Save and come back later' keeps a partly filled step as a draft (issue 11): nothing typed is
lost, validation applies when continuing or submitting, and a draft never counts as done."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from domain.errors import IncompleteRegistration, InvalidValue
from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.forms import error_summary, form_values, hidden_fields, post_form


def register(client):
    response = post_form(client, "/intakes/test/register", {**about_you(1), "action": "continue"})
    assert response.status_code == 302, response.text
    client.get(response.headers["Location"])


def test_a_partly_filled_step_saved_for_later_is_kept_as_typed_and_checked_on_return(app):
    client = app.test_client()
    register(client)
    post_form(client, "/application/steps/contact", {**CONTACT, "action": "continue"})
    later = post_form(
        client,
        "/application/steps/eligibility",
        {"care_months": "24", "language_level": "", "action": "later"},  # no level, no consent
    )
    assert later.status_code == 302
    saved = client.get(later.headers["Location"])
    assert "draft-kept" in saved.text

    # back on the step: it opens with the draft and says what is left to do
    page = client.get("/application/steps/eligibility")
    assert form_values(page.text)["care_months"] == "24"
    assert "language_level" in error_summary(page.text)
    assert "consent" in error_summary(page.text)
    assert "You saved this page before it was complete" in page.text
    # the draft does not count as done: resume lands there, review says so, submit refuses
    assert client.get("/application").headers["Location"].endswith("/application/steps/eligibility")
    review = client.get("/application/review")
    assert BeautifulSoup(review.text, "html.parser").find(id="draft-eligibility") is not None
    assert "Submit my registration" not in review.text

    # "Save and continue" still checks everything
    refused = post_form(client, "/application/steps/eligibility", {"care_months": "24"})
    assert refused.status_code == 422
    done = post_form(
        client, "/application/steps/eligibility", {**ELIGIBILITY, "action": "continue"}
    )
    assert done.status_code == 302
    page = client.get("/application/steps/eligibility")
    assert "You saved this page before it was complete" not in page.text  # the draft is gone


def test_a_valid_step_saved_for_later_is_saved_for_real(app):
    client = app.test_client()
    register(client)
    later = post_form(client, "/application/steps/contact", {**CONTACT, "action": "later"})
    assert later.status_code == 302
    assert "draft-kept" not in client.get(later.headers["Location"]).text
    assert client.get("/application").headers["Location"].endswith("/application/steps/eligibility")


def test_a_draft_without_its_form_envelope_or_from_a_stale_page_is_not_kept(app):
    client = app.test_client()
    register(client)
    page = client.get("/application/steps/contact")
    envelope = hidden_fields(page.text)
    registry = app.extensions["carepath.registry"]
    before = registry.recorder.max_notification_id()
    missing_key = {k: v for k, v in envelope.items() if k != "idempotency_key"}
    refused = client.post(
        "/application/steps/contact", data={**missing_key, "email": "x", "action": "later"}
    )
    assert refused.status_code in {400, 422}
    too_long = client.post(
        "/application/steps/contact", data={**envelope, "email": "x" * 5000, "action": "later"}
    )
    assert too_long.status_code == 422
    assert registry.recorder.max_notification_id() == before
    post_form(client, "/application/steps/contact", {**CONTACT, "action": "continue"})
    stale = client.post(
        "/application/steps/contact", data={**envelope, "email": "half", "action": "later"}
    )
    assert stale.status_code == 409  # the newer answers stay
    assert form_values(client.get("/application/steps/contact").text)["email"] == CONTACT["email"]


def test_the_registry_keeps_drafts_apart_from_answers(registry):
    done = registry.register("test", about_you(1), language="en", idempotency_key="r")
    outcome = registry.save_draft(
        done.case_id,
        "contact",
        {"email": "half@"},
        expected_version=1,
        language="en",
        idempotency_key="d1",
    )
    again = registry.save_draft(
        done.case_id, "contact", {"email": "half@"}, expected_version=1, language="en",
        idempotency_key="d1",
    )  # fmt: skip
    assert again.replayed
    assert again.version == outcome.version
    case = registry.get_case(done.case_id)
    assert case.drafts == {"contact": {"email": "half@"}}
    assert "contact" not in case.answers
    with pytest.raises(InvalidValue):
        registry.save_draft(
            done.case_id, "contact", {"email": "x" * 1001}, expected_version=2, language="en",
            idempotency_key="d2",
        )  # fmt: skip
    with pytest.raises(IncompleteRegistration):
        registry.submit(done.case_id, expected_version=2, language="en", idempotency_key="s")
    registry.save_step(
        done.case_id, "contact", {"email": "a@example.org"}, expected_version=2, language="en",
        idempotency_key="c",
    )  # fmt: skip
    assert registry.get_case(done.case_id).drafts == {}
