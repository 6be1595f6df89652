"""Every applicant page, in English and French, checked with axe-core for WCAG 2.2 A and AA (issue 11).

axe-core runs inside Debian's Chromium on the page as an applicant sees it, refused posts and
their error summaries included. The script is the one bundled with axe-playwright-python (axe-core
4.12), injected into the page; nothing is fetched from the network.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE
from tests.conftest import CONTACT, ELIGIBILITY, about_you

pytestmark = pytest.mark.slow

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
AXE_SCRIPT = None


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG A/AA violations on the page as it is now: rule, impact and where."""
    global AXE_SCRIPT
    if AXE_SCRIPT is None:
        from axe_playwright_python import sync_playwright as axe_module

        AXE_SCRIPT = (Path(axe_module.__file__).parent / "axe.min.js").read_text()
    page.evaluate(AXE_SCRIPT)
    options = {"runOnly": {"type": "tag", "values": WCAG_A_AA}, "resultTypes": ["violations"]}
    results = page.evaluate("options => axe.run(document, options)", options)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in results["violations"]
    ]


class Audit:
    """Visits pages, checking each with axe-core; the violations found, by page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.found: dict[str, list[str]] = {}
        self.checked: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state()
        self.checked.append(name)
        violations = axe_violations(self.page)
        if violations:
            self.found[f"{name} ({self.page.url})"] = violations

    def save(self) -> None:
        self.page.click("button[value=continue]")
        self.page.wait_for_load_state()


def walk_the_journey(audit: Audit, live_server: Any, n: int) -> None:
    """Every page an applicant meets, with the refused versions of the forms."""
    page = audit.page
    page.goto(live_server.url("/"))
    audit.check("start page")
    page.goto(live_server.url("/intakes/demo"))
    audit.check("public intake page")

    page.goto(live_server.url("/intakes/demo/register"))
    audit.check("register: about you")
    audit.save()
    audit.check("register: about you, refused")
    answers = about_you(n)
    for name in ("family_name", "given_names", "date_of_birth", "passport_number"):
        page.fill(f"#{name}", answers[name])
    page.select_option("#passport_country", answers["passport_country"])
    audit.save()
    audit.check("reference and access code")

    page.click("main a.button")
    page.wait_for_url("**/application/steps/contact")
    audit.check("contact step")
    page.fill("#email", "not an email")
    audit.save()
    audit.check("contact step, refused")
    page.fill("#email", CONTACT["email"])
    page.fill("#phone", CONTACT["phone"])
    page.select_option("#country_of_residence", CONTACT["country_of_residence"])
    audit.save()
    audit.check("eligibility step")
    audit.save()
    audit.check("eligibility step, refused")
    page.select_option("#language_level", ELIGIBILITY["language_level"])
    page.fill("#care_months", ELIGIBILITY["care_months"])
    page.check(f"#education-{ELIGIBILITY['education']}")
    page.check("#consent")
    audit.save()
    audit.check("review")

    page.goto(live_server.url("/application/steps/contact"))
    page.click("button[value=later]")
    page.wait_for_load_state()
    audit.check("saved for later")

    page.goto(live_server.url("/application/withdraw"))
    audit.check("withdraw (not sent)")

    page.goto(live_server.url("/application/review"))
    page.click("form[action$='/application/submit'] button")
    page.wait_for_url("**/application/receipt")
    audit.check("receipt")
    page.goto(live_server.url("/application/status"))
    for _ in range(100):  # the allocator invites this first-come applicant within moments
        if page.locator("a[href='/application/complete']").count():
            break
        time.sleep(0.1)
        page.reload()
    audit.check("status")

    page.click("a[href='/application/complete']")
    audit.check("complete your application")
    page.locator("main a[href^='/application/complete/']").first.click()
    audit.check("stage-two section")
    page.locator("main form button[type=submit]").first.click()
    audit.check("stage-two section, refused")

    page.goto(live_server.url("/application/withdraw"))
    audit.check("withdraw")

    page.click("form[action$='/sign-out'] button")
    page.wait_for_load_state()
    audit.check("signed out")
    page.goto(live_server.url("/sign-in"))
    audit.check("sign in")
    page.fill("#reference", "AAAA-AAAA-A")
    page.fill("#access_code", "nope")
    page.click("main form button[type=submit]")
    audit.check("sign in, refused")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_applicant_page_has_no_wcag_a_or_aa_violation(browser, live_server, language):
    context = browser.new_context(viewport=PHONE, locale="fr-CA" if language == "fr" else "en-CA")
    page = context.new_page()
    try:
        page.goto(live_server.url(f"/?lang={language}"))
        assert page.locator("html").get_attribute("lang") == language
        audit = Audit(page)
        walk_the_journey(audit, live_server, 1 if language == "en" else 2)
        assert len(audit.checked) == 21, audit.checked
        assert audit.found == {}, "\n".join(
            f"{where}:\n  " + "\n  ".join(violations) for where, violations in audit.found.items()
        )
    finally:
        context.close()


def test_the_check_finds_a_violation_when_there_is_one(browser, live_server):
    """The check can fail: an image without a text alternative and an unlabelled field."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(live_server.url("/intakes/demo/register"))
        page.evaluate(
            """() => {
              const main = document.querySelector('main');
              main.insertAdjacentHTML('beforeend',
                '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                + '<input type="text" name="unlabelled">');
            }"""
        )
        found = " ".join(axe_violations(page))
        assert "image-alt" in found
        assert "label" in found
    finally:
        context.close()
