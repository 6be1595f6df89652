"""The applicant's journey through the HTML pages, as a browser would walk it."""

from __future__ import annotations

from bs4 import BeautifulSoup

from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.forms import error_summary, form_values, hidden_fields, post_form, text_of


def register(client, n=1, action="continue"):
    response = post_form(client, "/intakes/test/register", {**about_you(n), "action": action})
    assert response.status_code == 302, response.text
    credentials = client.get(response.headers["Location"])
    return text_of(credentials.text, "reference"), text_of(credentials.text, "access-code")


def test_register_over_steps_resume_on_another_client_and_submit(app):
    # given a browser that registers and saves the contact step, then is closed
    first = app.test_client()
    reference, access_code = register(first)
    saved = post_form(first, "/application/steps/contact", {**CONTACT, "action": "later"})
    assert saved.headers["Location"].endswith("/application/saved")

    # when the applicant signs in from another client with reference and access code
    other = app.test_client()
    signed_in = post_form(
        other, "/sign-in", {"reference": reference.lower(), "access_code": access_code}
    )
    assert signed_in.status_code == 302
    landing = other.get(signed_in.headers["Location"], follow_redirects=True)

    # then they land on the first unfinished step, and every saved value is there
    assert landing.request.path == "/application/steps/eligibility"
    contact_page = other.get("/application/steps/contact")
    values = form_values(contact_page.text)
    assert {k: values[k] for k in CONTACT} == CONTACT
    about = other.get("/application/steps/about_you").text
    assert form_values(about)["family_name"] == "Santos"
    assert "P00000001" in about  # identity is shown, locked

    # and they finish, review, submit, and see the receipt and the status
    done = post_form(other, "/application/steps/eligibility", {**ELIGIBILITY, "action": "continue"})
    assert done.headers["Location"].endswith("/application/review")
    review = other.get("/application/review")
    assert "maria@example.org" in review.text
    submitted = other.post("/application/submit", data=hidden_fields(review.text))
    assert submitted.headers["Location"].endswith("/application/receipt")
    receipt = other.get("/application/receipt")
    assert text_of(receipt.text, "reference") == reference
    assert "First come, first served" in receipt.text
    status = other.get("/application/status")
    assert text_of(status.text, "status") == "Registration submitted"


def test_second_registration_of_same_person_is_refused_and_creates_nothing(app):
    register(app.test_client(), n=7)
    registry = app.extensions["carepath.registry"]
    events_before = registry.recorder.max_notification_id()

    again = post_form(
        app.test_client(), "/intakes/test/register", about_you(7, family_name="Other")
    )

    assert again.status_code == 409
    assert "already registered in this intake" in again.text
    assert registry.recorder.max_notification_id() == events_before


def test_double_submitted_step_form_writes_one_event_and_answers_the_same(app):
    client = app.test_client()
    register(client)
    registry = app.extensions["carepath.registry"]
    page = client.get("/application/steps/contact")
    data = {**hidden_fields(page.text), **CONTACT, "action": "continue"}

    first = client.post("/application/steps/contact", data=data)
    events_after_first = registry.recorder.max_notification_id()
    second = client.post("/application/steps/contact", data=data)

    assert (first.status_code, first.headers["Location"]) == (
        second.status_code,
        second.headers["Location"],
    )
    assert registry.recorder.max_notification_id() == events_after_first


def test_stale_form_gets_a_conflict_message_and_does_not_overwrite(app):
    client = app.test_client()
    register(client)
    old_tab = client.get("/application/steps/contact")
    post_form(client, "/application/steps/contact", {**CONTACT, "action": "continue"})

    stale = client.post(
        "/application/steps/contact",
        data={**hidden_fields(old_tab.text), **CONTACT, "email": "x@example.org"},
    )

    assert stale.status_code == 409
    assert "changed in another tab" in stale.text
    assert form_values(client.get("/application/steps/contact").text)["email"] == CONTACT["email"]


def conflict_rows(html):
    table = BeautifulSoup(html, "html.parser").find(id="conflict")
    return {
        row.th.get_text(" ", strip=True).removesuffix(" Different"): (
            [td.get_text(strip=True) for td in row.find_all("td")],
            "differs" in (row.get("class") or []),
        )
        for row in table.tbody.find_all("tr")
    }


def test_a_stale_save_shows_saved_and_typed_answers_and_a_second_click_cannot_overwrite(app):
    client = app.test_client()
    register(client)
    old_tab = client.get("/application/steps/contact")  # opened before the other tab saved
    post_form(client, "/application/steps/contact", {**CONTACT, "action": "continue"})

    stale = client.post(
        "/application/steps/contact",
        data={**hidden_fields(old_tab.text), **CONTACT, "email": "old@example.org"},
    )
    assert stale.status_code == 409
    rows = conflict_rows(stale.text)
    assert rows["Email address"] == ([CONTACT["email"], "old@example.org"], True)
    assert rows["Phone number"][1] is False
    assert "Error:" in BeautifulSoup(stale.text, "html.parser").title.get_text()
    # the page has no editable form with the stale answers: only the two choices
    soup = BeautifulSoup(stale.text, "html.parser")
    assert not soup.find("input", attrs={"type": ["text", "email", "tel"]})
    assert soup.find(id="keep-saved")["href"].endswith("/application/steps/contact")

    # posting the old page again (the same click, a reload) is refused again
    again = client.post(
        "/application/steps/contact",
        data={**hidden_fields(old_tab.text), **CONTACT, "email": "old@example.org"},
    )
    assert again.status_code == 409
    assert form_values(client.get("/application/steps/contact").text)["email"] == CONTACT["email"]

    # "Use the answers I typed" is refused too if the answers changed once more meanwhile
    choice = hidden_fields(stale.text)
    post_form(client, "/application/steps/contact", {**CONTACT, "email": "third@example.org"})
    refused = client.post("/application/steps/contact", data={**choice, "action": "continue"})
    assert refused.status_code == 409
    assert (
        form_values(client.get("/application/steps/contact").text)["email"] == "third@example.org"
    )

    # chosen knowingly, on a page showing the current answers, the typed ones are saved
    choice = hidden_fields(refused.text)
    chosen = client.post("/application/steps/contact", data={**choice, "action": "continue"})
    assert chosen.status_code == 302
    assert form_values(client.get("/application/steps/contact").text)["email"] == "old@example.org"


def test_invalid_step_keeps_typed_values_and_links_each_error_to_its_field(app):
    client = app.test_client()
    register(client)
    registry = app.extensions["carepath.registry"]
    events_before = registry.recorder.max_notification_id()

    bad = post_form(
        client,
        "/application/steps/contact",
        {"email": "not-an-email", "phone": "12", "country_of_residence": "XX"},
    )

    assert bad.status_code == 422
    assert set(error_summary(bad.text)) == {"email", "phone", "country_of_residence"}
    assert form_values(bad.text)["email"] == "not-an-email"
    assert registry.recorder.max_notification_id() == events_before


def test_withdrawn_application_shows_on_status_and_cannot_change(app):
    client = app.test_client()
    register(client)
    withdrawn = post_form(
        client, "/application/withdraw", {"confirm": "yes", "reason": "found work"}
    )
    assert withdrawn.headers["Location"].endswith("/application/status")
    assert text_of(client.get("/application/status").text, "status") == "Withdrawn"
    assert client.get("/application/steps/contact").headers["Location"].endswith("/status")


def test_sign_out_ends_the_server_side_session(app):
    client = app.test_client()
    register(client)
    cookie = client.get_cookie("carepath_session").value
    client.post("/sign-out", data=hidden_fields(client.get("/application/status").text))

    replay = app.test_client()
    replay.set_cookie("carepath_session", cookie)
    assert replay.get("/application/status").status_code == 401


def test_withdrawal_reason_may_span_several_lines(app):
    client = app.test_client()
    register(client)
    withdrawn = post_form(
        client, "/application/withdraw", {"confirm": "yes", "reason": "Found work.\r\nThank you"}
    )
    assert withdrawn.status_code == 302


def test_a_refused_change_of_names_still_shows_the_stored_identity(client):
    # given a registered applicant changing their names after registering
    register(client)
    # when the change is refused (no family name)
    refused = post_form(
        client, "/application/steps/about_you", {"family_name": "", "given_names": "Maria"}
    )
    # then the page shows the error, the typed name, and the locked identity as stored
    assert refused.status_code == 422
    assert error_summary(refused.text)
    assert form_values(refused.text)["given_names"] == "Maria"
    assert "P00000001" in refused.text
    assert "Philippines" in refused.text
    assert "None" not in refused.text


def test_a_forged_identity_in_a_refused_post_is_not_shown(client):
    register(client)
    forged = {"family_name": "", "given_names": "Maria", "passport_number": "X99999999"}
    refused = post_form(client, "/application/steps/about_you", forged)
    assert refused.status_code == 422
    assert "X99999999" not in refused.text
    assert "P00000001" in refused.text


def test_a_second_registration_is_refused_with_a_way_to_sign_in(app):
    register(app.test_client())
    again = post_form(app.test_client(), "/intakes/test/register", about_you(1))
    assert again.status_code == 409
    assert "already registered" in again.text
    assert 'href="/sign-in"' in again.text


def test_the_register_page_of_a_closed_intake_offers_no_form(app, client):
    opened = client.get("/intakes/test/register")  # a form opened before the close
    app.extensions["carepath.registry"].close_intake("test", actor="test")
    page = client.get("/intakes/test/register")
    assert page.status_code == 200
    assert "has closed" in page.text
    assert 'name="family_name"' not in page.text
    assert 'href="/sign-in"' in page.text
    posted = client.post(
        "/intakes/test/register", data={**hidden_fields(opened.text), **about_you(2)}
    )
    assert posted.status_code == 409
    assert "has closed" in posted.text


def test_the_register_page_of_an_intake_not_yet_open_says_so(app, client):
    registry = app.extensions["carepath.registry"]
    registry.define_intake(
        code="later",
        name="Later intake",
        stream="outside",
        capacity=5,
        policy="first_come",
        actor="test",
    )
    page = client.get("/intakes/later/register")
    assert page.status_code == 200
    assert "has not opened yet" in page.text
    assert 'name="family_name"' not in page.text
    french = client.get("/intakes/later/register", headers={"Accept-Language": "fr"})
    assert "ne sont pas encore ouvertes" in french.text
