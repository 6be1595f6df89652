"""The rest of issue 11's rough edges, each in a real browser, as the applicant sees it: the
duplicate refusal's links, the registration email, the stored identity after a refused post, a
lottery's "not drawn", the date-of-birth hint, the error summary's order, a closed intake's
register page, "Change" from review, and the session cookie."""

from __future__ import annotations

import re
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.browser.conftest import PHONE
from tests.browser.test_journey_edges import register_and_fill, save
from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.integration.servers import run_carepath

pytestmark = pytest.mark.slow

TIMEOUT = 30.0
OPERATOR_VALUE = "5eed" * 16


def register(page, live_server, n: int, code: str = "demo", language: str = "en") -> None:
    """Person n fills in About you and registers; stays on the reference and access code page."""
    page.goto(live_server.url(f"/intakes/{code}/register?lang={language}"))
    answers = about_you(n)
    for name in ("family_name", "given_names", "date_of_birth", "passport_number"):
        page.fill(f"#{name}", answers[name])
    page.select_option("#passport_country", answers["passport_country"])
    save(page)


def summary_links(page) -> list[str]:
    return page.locator(".error-summary a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )


def test_a_second_registration_links_to_sign_in_and_to_recovery(browser, live_server):
    # given a person who registered and signed out
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        register(page, live_server, 60)
        page.click("header button.link")
        page.wait_for_url("**/signed-out")

        # when they register again with the same passport
        register(page, live_server, 60)

        # then the refusal links to sign-in and to the recovery of a lost code
        banner = page.locator("#banner")
        assert "already registered" in banner.inner_text()
        hrefs = banner.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert "/sign-in" in hrefs, hrefs
        assert "/recover" in hrefs, hrefs
        banner.get_by_role("link", name="Forgot your access code?").click()
        page.wait_for_url("**/recover")
        assert page.locator("#date_of_birth").count() == 1
    finally:
        context.close()


def test_the_registration_confirmation_lands_in_the_outbox_in_the_persons_language(
    browser, live_server
):
    outbox = Path(live_server.env["CAREPATH_DATA_DIR"]) / "outbox"
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        # given a person who registers in French through the pages and gives an email address
        register(page, live_server, 61, language="fr")
        reference = page.locator("#reference").inner_text()
        code = page.locator("#access-code").inner_text()
        page.click("main a.button")
        page.wait_for_url("**/application/steps/contact")
        page.fill("#email", "ana.reyes@example.org")
        page.fill("#phone", CONTACT["phone"])
        page.select_option("#country_of_residence", CONTACT["country_of_residence"])
        save(page)
        page.wait_for_url("**/application/steps/eligibility")
    finally:
        context.close()

    # then one confirmation is written to them, in French, with the reference and not the code
    deadline = time.monotonic() + TIMEOUT
    while not (letters := sorted(outbox.glob("*.eml")) if outbox.is_dir() else []):
        assert time.monotonic() < deadline, f"no email in {outbox} after {TIMEOUT} s"
        time.sleep(0.2)
    assert len(letters) == 1, letters
    letter = message_from_bytes(letters[0].read_bytes(), policy=policy.default)
    assert "ana.reyes@example.org" in str(letter["To"])
    text = letter.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert reference in text
    assert code not in letter.as_string()
    assert "inscription" in (str(letter["Subject"]) + text).lower()


def test_a_refused_post_on_about_you_after_registering_shows_the_stored_identity(page, live_server):
    # given a registered person back on the About you step
    register(page, live_server, 62)
    page.goto(live_server.url("/application/steps/about_you"))

    # when they clear their family name and save
    page.fill("#family_name", "")
    save(page)

    # then the refused page still shows the stored date of birth, passport number and country
    assert page.locator(".error-summary").count() == 1
    main = page.locator("main").inner_text()
    assert "None" not in main, main
    assert "P00000062" in main
    assert "Philippines" in main
    assert re.search(r"1985|27 April", main), main


def enter_lottery(browser, live_server, n: int):
    """Person n registers in the lottery `lot` through the pages and submits; their context."""
    context = browser.new_context(viewport=PHONE)
    submit_in_pages(context.new_page(), live_server, n, code="lot")
    return context


def submit_in_pages(page, live_server, n: int, code: str = "demo", language: str = "en") -> None:
    """Person n registers in intake `code`, fills every step and submits; ends on the receipt."""
    register(page, live_server, n, code=code, language=language)
    page.click("main a.button")
    page.wait_for_url("**/application/steps/contact")
    page.fill("#email", CONTACT["email"])
    page.fill("#phone", CONTACT["phone"])
    page.select_option("#country_of_residence", CONTACT["country_of_residence"])
    save(page)
    page.select_option("#language_level", ELIGIBILITY["language_level"])
    page.fill("#care_months", ELIGIBILITY["care_months"])
    page.check(f"#education-{ELIGIBILITY['education']}")
    page.check("#consent")
    save(page)
    page.click("form[action$='/application/submit'] button")
    page.wait_for_url("**/application/receipt**")


def test_a_person_a_lottery_did_not_draw_is_told_so(browser, live_server):
    # given a lottery of one place and a waitlist of one, which three people enter
    env = {**live_server.env, "CAREPATH_DRAW_BEACON": "none", "DRAW_BEACON": "none"}
    run_carepath(env, "intake", "create", "--code", "lot", "--name", "Lottery", "--capacity", "1",
                 "--policy", "lottery", "--waitlist-length", "1")  # fmt: skip
    opened = run_carepath(env, "intake", "open", "lot").stdout
    contexts = [enter_lottery(browser, live_server, n) for n in (63, 64, 65)]
    try:
        # when it closes and is drawn (from an operator's value where the intake asks for one)
        run_carepath(env, "intake", "close", "lot")
        if "--operator-value" in opened:
            run_carepath(env, "intake", "draw", "lot", "--operator-value", OPERATOR_VALUE)

        # then the one neither drawn nor waitlisted is told they were not drawn
        pages = [c.pages[0] for c in contexts]
        deadline = time.monotonic() + TIMEOUT
        while True:
            texts = []
            for page in pages:
                page.goto(live_server.url("/application/status"))
                texts.append(page.locator("#allocation").inner_text())
            if not any("being recorded" in t for t in texts):
                break
            assert time.monotonic() < deadline, texts
            time.sleep(0.5)
        refused = [t for t in texts if "will not go further" in t]
        assert len(refused) == 1, texts
        assert "You were not drawn" in refused[0], refused[0]
        assert "All places are given" not in refused[0], refused[0]
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_date_of_birth_hint_agrees_with_the_date_picker(page, live_server, language):
    page.goto(live_server.url(f"/intakes/demo/register?lang={language}"))

    # the field is the browser's date picker, whose format follows the device's language
    assert page.locator("#date_of_birth").get_attribute("type") == "date"
    # so the hint gives a date in words, not a typed format the picker would contradict
    hint = page.locator(".group:has(#date_of_birth) .hint").inner_text()
    assert re.search(r"\d", hint), hint  # an example is given
    assert not re.search(r"\d+\s*[-/.]\s*\d+", hint), hint
    assert not re.search(r"[AJMY]{2,4}\b", hint), hint  # no YYYY-MM-DD or JJ/MM/AAAA


def test_the_error_summary_follows_the_fields_order(page, live_server):
    # given a registered person who sends the contact step with every answer wrong or missing
    # (a missing answer and a wrong one were listed in different orders on 143c745)
    register(page, live_server, 66)
    page.goto(live_server.url("/application/steps/contact"))
    page.fill("#email", "not an email")
    page.fill("#phone", "not a phone")
    save(page)

    # then the summary lists the refused fields in the order the fields appear on the page
    links = summary_links(page)
    assert len(links) == 3, links
    # each link's target (a field, or a group of radios) follows the one before it on the page
    in_order = page.evaluate(
        """links => links.map(h => document.getElementById(h.slice(1)) || document.querySelector(`[name=${h.slice(1)}]`))
            .every((e, i, all) => i === 0 || (all[i - 1].compareDocumentPosition(e)
                & Node.DOCUMENT_POSITION_FOLLOWING))""",
        links,
    )
    assert in_order, links


def test_the_register_page_of_a_closed_intake_shows_no_form(page, live_server):
    # given an intake that opened and closed
    env = live_server.env
    run_carepath(env, "intake", "create", "--code", "shut", "--name", "Closed intake",
                 "--capacity", "5")  # fmt: skip
    run_carepath(env, "intake", "open", "shut")
    run_carepath(env, "intake", "close", "shut")

    # when someone opens its register page
    page.goto(live_server.url("/intakes/shut/register"))

    # then it says registration has closed, and offers no form to fill in
    assert (
        "closed"
        in page.locator("h1").inner_text().lower() + page.locator("main").inner_text().lower()
    )
    assert page.locator("main form #family_name").count() == 0
    assert page.locator("main input:not([type=hidden])").count() == 0


def test_change_on_the_review_page_returns_to_review(page, live_server):
    # given an applicant with every step saved, on the review page
    register_and_fill(page, live_server, 67)

    # when they follow "Change" for their contact details and save
    page.locator("main a", has_text="Change").nth(1).click()
    page.wait_for_url("**/application/steps/contact**")
    page.fill("#email", "changed@example.org")
    save(page)

    # then they are back on the review page, not walked through the later steps
    assert page.url.endswith("/application/review") or "/application/review?" in page.url, page.url
    assert "changed@example.org" in page.locator("main").inner_text()


def test_the_applicant_session_cookie_ends_with_the_browser(browser, live_server):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        register(page, live_server, 68)
        cookie = next(c for c in context.cookies() if c["name"] == "carepath_session")
        assert cookie["expires"] == -1, cookie  # a session cookie: no Expires, no Max-Age
    finally:
        context.close()
