"""Rough edges of the applicant's journey (issue 11) in a real browser: focus after a refused post,
"Change" from the review page, a second tab's submit, the focus indicator, the session cookie."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import CONTACT, ELIGIBILITY, about_you

pytestmark = pytest.mark.slow

YELLOW = "rgb(255, 221, 0)"
NEAR_BLACK = "rgb(11, 12, 12)"


@pytest.fixture
def shots(tmp_path) -> Path:
    """Screenshots go to CAREPATH_SCREENSHOTS when set (to look at them), else to tmp_path."""
    folder = Path(os.environ.get("CAREPATH_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, shots: Path, name: str) -> None:
    """A full-page screenshot at phone and at desktop width (then back to the page's own size)."""
    own = page.viewport_size
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(own)


def save(page) -> None:
    page.click("button[value=continue]")
    page.wait_for_load_state()


def register_and_fill(page, live_server, n: int) -> None:
    """Register person n in the demo intake through the pages and save every step."""
    page.goto(live_server.url("/intakes/demo/register"))
    answers = about_you(n)
    for name in ("family_name", "given_names", "date_of_birth", "passport_number"):
        page.fill(f"#{name}", answers[name])
    page.select_option("#passport_country", answers["passport_country"])
    save(page)
    page.click("main a.button")  # "Continue" on the reference and access code page
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
    assert page.url.endswith("/application/review"), page.url


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_refused_post_moves_focus_to_the_error_summary(browser, live_server, javascript, shots):
    context = browser.new_context(viewport=PHONE, java_script_enabled=javascript)
    page = context.new_page()
    try:
        # given the registration form, sent with a date of birth and a country missing
        page.goto(live_server.url("/intakes/demo/register"))
        page.fill("#family_name", "Santos")
        page.fill("#passport_number", "P12345678")
        save(page)

        # then focus is on the error summary, whose links follow the fields' order
        assert page.title().startswith("Error:")
        assert page.evaluate("document.activeElement.classList.contains('error-summary')")
        links = page.locator(".error-summary a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert links == ["#date_of_birth", "#passport_country"]
        outline = page.locator(".error-summary").evaluate("e => getComputedStyle(e).outlineColor")
        assert outline == YELLOW
        if javascript:
            shoot(page, shots, "register-refused")
    finally:
        context.close()


def test_change_on_the_review_page_saves_and_lands_back_on_review(page, live_server, shots):
    # given an applicant with every step saved, on the review page
    register_and_fill(page, live_server, 1)
    shoot(page, shots, "review")
    change = "a[href='/application/steps/contact?return=review']"
    page.focus(change)
    assert page.locator(change).evaluate("e => getComputedStyle(e).backgroundColor") == YELLOW
    shoot(page, shots, "review-change-focused")

    # when they change their email address from the review page and save
    page.click(change)
    page.wait_for_url("**/application/steps/contact?return=review")
    page.fill("#email", "not an email")
    save(page)
    assert page.locator(".error-summary").count() == 1  # a refused post keeps the way back
    page.fill("#email", "maria.new@example.org")
    save(page)

    # then they are back on the review page, with the new answer
    assert page.url.endswith("/application/review"), page.url
    assert "maria.new@example.org" in page.locator("main").inner_text()


def test_a_second_tab_that_submits_again_lands_on_the_receipt_with_a_message(
    browser, live_server, shots
):
    context = browser.new_context(viewport=PHONE)
    first = context.new_page()
    try:
        # given two tabs on the review page
        register_and_fill(first, live_server, 2)
        second = context.new_page()
        second.goto(live_server.url("/application/review"))

        # when the first tab submits, and then the second
        first.click("form[action$='/application/submit'] button")
        first.wait_for_url("**/application/receipt")
        second.click("form[action$='/application/submit'] button")
        second.wait_for_load_state()

        # then the second lands on the receipt, says when it was sent, and offers no sign-in
        assert second.url.endswith("/application/receipt?already=1"), second.url
        banner = second.locator("#banner").inner_text()
        assert "Your registration was already submitted on" in banner
        assert second.locator("#reference").count() == 1
        assert second.locator("main a[href='/sign-in']").count() == 0
        shoot(second, shots, "receipt-already")
        # and a step form opened before submitting goes to the status page, with the same message
        second.goto(live_server.url("/application/steps/contact"))
        assert second.url.endswith("/application/status?already=1"), second.url
        assert "already submitted" in second.locator("#banner").inner_text()
        shoot(second, shots, "status-already")
        # the applicant's cookie ends with the browser: Chromium keeps no expiry for it
        cookie = next(c for c in context.cookies() if c["name"] == "carepath_session")
        assert cookie["expires"] == -1, cookie
    finally:
        context.close()


def test_links_buttons_and_inputs_show_a_yellow_and_dark_focus_indicator(page, live_server, shots):
    page.goto(live_server.url("/intakes/demo/register"))

    def focused_style(selector: str) -> dict[str, str]:
        page.focus(selector)
        return page.locator(selector).evaluate(
            "e => { const s = getComputedStyle(e); return {background: s.backgroundColor,"
            " shadow: s.boxShadow, outline: s.outlineColor, focused: document.activeElement === e};}"
        )

    link = focused_style("header a.brand")
    button = focused_style("button[value=continue]")
    secondary = focused_style("button[value=later]")
    field = focused_style("#family_name")

    for style in (link, button, secondary):
        assert style["focused"]
        assert style["background"] == YELLOW, style
        assert NEAR_BLACK in style["shadow"], style
    assert field["focused"]
    assert field["outline"] == YELLOW, field
    assert NEAR_BLACK in field["shadow"], field
    assert "inset" in field["shadow"], field
    page.focus("button[value=continue]")
    shoot(page, shots, "focus-button")
    page.focus("#date_of_birth")
    shoot(page, shots, "focus-date")


def test_a_stale_tab_shows_both_answers_and_never_overwrites_the_newer_ones(
    browser, live_server, shots
):
    context = browser.new_context(viewport=PHONE)
    first = context.new_page()
    try:
        # given two tabs on the contact step
        register_and_fill(first, live_server, 3)
        first.goto(live_server.url("/application/steps/contact"))
        second = context.new_page()
        second.goto(live_server.url("/application/steps/contact"))

        # when the first saves a new email, and the stale second saves another
        first.fill("#email", "newer@example.org")
        save(first)
        second.fill("#email", "older@example.org")
        save(second)

        # then the second shows the saved and the typed answers side by side, saving nothing
        assert second.title().startswith("Error:")
        row = second.locator("#conflict tr.differs")
        assert row.count() == 1
        assert "newer@example.org" in row.inner_text()
        assert "older@example.org" in row.inner_text()
        assert second.locator("main input[type=email]").count() == 0  # no stale form to resend
        shoot(second, shots, "stale-conflict")

        # and if the answers change once more, "Use the answers I typed" is refused again
        first.goto(live_server.url("/application/steps/contact"))
        first.fill("#email", "newest@example.org")
        save(first)
        second.click("#use-mine")
        second.wait_for_load_state()
        assert "newest@example.org" in second.locator("#conflict tr.differs").inner_text()
        # and "Keep the saved answers" opens the step with the newest answers in it
        second.click("#keep-saved")
        second.wait_for_url("**/application/steps/contact")
        assert second.input_value("#email") == "newest@example.org"
    finally:
        context.close()


def test_save_and_come_back_later_keeps_a_partly_filled_step(browser, live_server, shots):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        # given a registered person on the eligibility step, who fills in one answer of four
        page.goto(live_server.url("/intakes/demo/register"))
        answers = about_you(4)
        for name in ("family_name", "given_names", "date_of_birth", "passport_number"):
            page.fill(f"#{name}", answers[name])
        page.select_option("#passport_country", answers["passport_country"])
        save(page)
        page.click("main a.button")
        page.wait_for_url("**/application/steps/contact")
        page.fill("#email", CONTACT["email"])
        page.fill("#phone", CONTACT["phone"])
        page.select_option("#country_of_residence", CONTACT["country_of_residence"])
        save(page)
        page.wait_for_url("**/application/steps/eligibility")
        page.fill("#care_months", "30")

        # when they choose "Save and come back later"
        page.click("button[value=later]")
        page.wait_for_url("**/application/saved**")

        # then nothing is refused: the page says the answers are kept as a draft
        assert page.locator("#draft-kept").is_visible()
        shoot(page, shots, "saved-draft")
        # and coming back opens the step with the answer kept and what is left marked
        page.get_by_role("link", name="Continue now").click()
        page.wait_for_url("**/application/steps/eligibility")
        assert page.input_value("#care_months") == "30"
        links = page.locator(".error-summary a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert "#consent" in links
        assert "#language_level" in links
        shoot(page, shots, "draft-returned")
    finally:
        context.close()
