"""Recovery of a lost access code in a real browser (issue 11), in English and French: ask with
the reference and date of birth, follow the link (computed here from the recorded event and the
server's key: sending it is the notifier's part), set a new code, sign in with it."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_accessibility import axe_violations
from tests.browser.test_journey_edges import shoot, shots  # noqa: F401 - shots is a fixture
from tests.conftest import CONTACT, about_you
from tests.recovery_helpers import recovery_link_of
from web.settings import Settings

pytestmark = pytest.mark.slow

TEXT = {
    "en": {
        "forgot": "Forgot your access code?",
        "sent": "If these details match an application, we have sent a link",
        "minutes": "The link works for 30 minutes.",
        "set": "Set a new access code",
        "new": "Your new access code",
        "spent": "This link cannot be used",
        "used": "This link was already used",
        "missing": "Enter your reference, or your passport number and country",
        "sign_in_failed": "We could not find an application",
    },
    "fr": {
        "forgot": "Code d'accès oublié?",
        "sent": "Si ces renseignements correspondent à une demande, nous avons envoyé un lien",
        "minutes": "Le lien fonctionne pendant 30 minutes.",
        "set": "Choisir un nouveau code d'accès",
        "new": "Votre nouveau code d'accès",
        "spent": "Ce lien ne peut pas être utilisé",
        "used": "Ce lien a déjà été utilisé",
        "missing": "Entrez votre numéro de référence, ou votre numéro et pays de passeport",
        "sign_in_failed": "Nous n'avons trouvé aucune demande",
    },
}


def register(page, live_server, n: int, language: str) -> tuple[str, str]:
    """Person n registers through the pages and gives an email address; signs out."""
    page.goto(live_server.url(f"/intakes/demo/register?lang={language}"))
    answers = about_you(n)
    for name in ("family_name", "given_names", "date_of_birth", "passport_number"):
        page.fill(f"#{name}", answers[name])
    page.select_option("#passport_country", answers["passport_country"])
    page.click("button[value=continue]")
    reference = page.locator("#reference").inner_text()
    code = page.locator("#access-code").inner_text()
    page.click("main a.button")
    page.wait_for_url("**/application/steps/contact")
    page.fill("#email", CONTACT["email"])
    page.fill("#phone", CONTACT["phone"])
    page.select_option("#country_of_residence", CONTACT["country_of_residence"])
    page.click("button[value=continue]")
    page.wait_for_url("**/application/steps/eligibility")
    page.click("header button.link")  # sign out
    page.wait_for_url("**/signed-out")
    return reference, code


def link_for(live_server, reference: str) -> str:
    settings = Settings.from_environ({"ENV": live_server.env})
    registry = settings.build_registry(create_table=False)
    try:
        return live_server.url(
            recovery_link_of(registry, settings.secret, registry.find_case(reference))
        )
    finally:
        registry.close()


def sign_in(page, live_server, reference: str, code: str) -> None:
    page.goto(live_server.url("/sign-in"))
    page.fill("#reference", reference)
    page.fill("#access_code", code)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def checked(page, shots, name: str) -> None:  # noqa: F811 - shots is the fixture's value
    assert axe_violations(page) == [], name
    shoot(page, shots, name)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_lost_access_code_is_recovered_through_the_link(
    browser,
    live_server,
    page,
    language,
    shots,  # noqa: F811
):
    text = TEXT[language]
    reference, old_code = register(page, live_server, 40 if language == "en" else 41, language)

    # the sign-in page offers recovery; a request without a reference is refused field by field
    page.goto(live_server.url("/sign-in"))
    page.click("#forgot")
    page.wait_for_url("**/recover")
    assert page.locator("h1").inner_text() == text["forgot"]
    checked(page, shots, f"recover-form-{language}")
    page.fill("#date_of_birth", "1985-04-27")
    page.click("main button[type=submit]")
    assert page.title().startswith("Error:" if language == "en" else "Erreur\xa0:")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert text["missing"] in page.locator(".error-summary").inner_text()
    checked(page, shots, f"recover-refused-{language}")

    # a wrong date of birth and the right one get the very same page
    page.fill("#reference", reference)
    page.fill("#date_of_birth", "1985-04-28")
    page.click("main button[type=submit]")
    page.wait_for_url("**/recover/sent")
    wrong = page.locator("main").inner_text()
    page.goto(live_server.url("/recover"))
    page.fill("#reference", reference.lower().replace("-", ""))
    page.fill("#date_of_birth", "1985-04-27")
    page.click("main button[type=submit]")
    page.wait_for_url("**/recover/sent")
    assert page.locator("main").inner_text() == wrong
    assert text["sent"] in wrong
    assert text["minutes"] in wrong
    checked(page, shots, f"recover-sent-{language}")

    # the emailed link opens a page that changes nothing until its button is pressed
    link = link_for(live_server, reference)
    page.goto(link)
    assert page.locator("h1").inner_text() == text["set"]
    checked(page, shots, f"recover-link-{language}")
    page.click("main button[type=submit]")
    page.wait_for_url("**/recover/done")
    assert page.locator("h1").inner_text() == text["new"]
    assert page.locator("#reference").inner_text() == reference
    new_code = page.locator("#access-code").inner_text()
    assert new_code != old_code
    checked(page, shots, f"recover-done-{language}")
    page.click("main a.button")
    page.wait_for_url("**/application/steps/eligibility")  # signed in, where they stopped

    # the link works once, the old code no longer, the new one does
    page.goto(link)
    assert page.locator("h1").inner_text() == text["spent"]
    assert text["used"] in page.locator("main").inner_text()
    checked(page, shots, f"recover-spent-{language}")
    page.click("header button.link")
    page.wait_for_url("**/signed-out")
    sign_in(page, live_server, reference, old_code)
    assert text["sign_in_failed"] in page.locator("main").inner_text()
    sign_in(page, live_server, reference, new_code)
    assert "/application/" in page.url


def test_a_device_signed_in_with_the_old_code_is_signed_out_by_the_reset(
    browser,
    live_server,
    shots,  # noqa: F811
):
    # given a person signed in in French on a shared computer, with the code they then lose
    shared = browser.new_context(viewport=DESKTOP)
    phone = browser.new_context(viewport=PHONE)
    try:
        computer = shared.new_page()
        reference, old_code = register(computer, live_server, 42, "fr")
        sign_in(computer, live_server, reference, old_code)
        assert "/application/" in computer.url

        # when they set a new code through the emailed link, on their phone
        own = phone.new_page()
        own.goto(live_server.url("/recover?lang=fr"))
        own.fill("#reference", reference)
        own.fill("#date_of_birth", "1985-04-27")
        own.click("main button[type=submit]")
        own.wait_for_url("**/recover/sent")
        own.goto(link_for(live_server, reference))
        own.click("main button[type=submit]")
        own.wait_for_url("**/recover/done")

        # then the shared computer's next page is sign-in, saying why, in French
        computer.goto(live_server.url("/application/status"))
        computer.wait_for_url("**/sign-in?ended=code_changed")
        banner = computer.locator("#banner").inner_text()
        assert "Votre code d’accès a été changé. Connectez-vous avec le nouveau code." in banner
        checked(computer, shots, "session-ended-fr")
        # (both fields look like fields: the reference one had no type, so no border)
        heights = computer.locator("#reference, #access_code").evaluate_all(
            "fields => fields.map(f => f.getBoundingClientRect().height)"
        )
        assert heights[0] == heights[1], heights
        # and the phone that changed the code is still signed in
        own.goto(live_server.url("/application/status"))
        assert "/application/status" in own.url
        assert own.locator("main h1").count() == 1
    finally:
        shared.close()
        phone.close()
