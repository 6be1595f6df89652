"""What screen-reader users are told (issue 11, WCAG 2.2 AA): hints and errors read with their
field, labelled step navigation with the current step, page titles that say what went wrong."""

from __future__ import annotations

from bs4 import BeautifulSoup

from tests.e2e.test_registration_journey import register
from tests.forms import post_form


def described_by(html: str, field_id: str) -> list[str]:
    element = BeautifulSoup(html, "html.parser").find(id=field_id)
    assert element is not None, field_id
    return str(element.get("aria-describedby", "")).split()


def title(html: str) -> str:
    found = BeautifulSoup(html, "html.parser").title
    assert found is not None
    return found.get_text(strip=True)


def test_a_hint_is_read_with_its_field_and_an_error_after_it(client):
    page = client.get("/intakes/test/register").text
    soup = BeautifulSoup(page, "html.parser")
    hinted = [hint["id"].removesuffix("-hint") for hint in soup.select("p.hint[id$='-hint']")]
    assert "date_of_birth" in hinted
    for name in hinted:
        if soup.find(id=name) is not None and soup.find(id=name).name != "fieldset":
            assert described_by(page, name) == [f"{name}-hint"], name

    refused = post_form(client, "/intakes/test/register", {"action": "continue"})
    assert refused.status_code == 422
    assert described_by(refused.text, "date_of_birth") == [
        "date_of_birth-hint",
        "date_of_birth-error",
    ]
    assert described_by(refused.text, "passport_country") == ["passport_country-error"]
    assert title(refused.text).startswith("Error: ")


def test_the_steps_are_a_labelled_list_naming_each_step_and_the_current_one(client):
    register(client)
    page = client.get("/application/steps/contact").text
    nav = BeautifulSoup(page, "html.parser").select_one("nav.steps")
    assert nav is not None
    assert nav["aria-label"] == "Steps of your registration"
    items = [li.get_text(" ", strip=True) for li in nav.select("li")]
    assert items == [
        "1. About you (saved)",
        "2. How we contact you (this step)",
        "3. Your eligibility (not started)",
    ], items
    assert nav.select_one("[aria-current=step]").get_text(" ", strip=True).startswith("2.")
    assert [a["href"] for a in nav.select("a")] == ["/application/steps/about_you"]


def test_refused_sign_in_and_error_pages_have_titles_that_say_what_went_wrong(client):
    refused = post_form(client, "/sign-in", {"reference": "", "access_code": ""})
    assert refused.status_code in (400, 401, 422)
    assert title(refused.text).startswith("Error: Sign in to your application")
    assert described_by(refused.text, "reference") == ["reference-hint", "reference-error"]

    missing = client.get("/application/steps/nowhere")
    assert missing.status_code in (401, 404)
    heading = BeautifulSoup(missing.text, "html.parser").h1.get_text(strip=True)
    assert title(missing.text) == f"Error: {heading} – carepath"
