"""An invited applicant completes the application and uploads documents in a real browser, with
plain HTML forms (no JavaScript needed), and sees each file's SHA-256 on the receipt."""

from __future__ import annotations

import hashlib
import secrets
import time

import pytest
import requests

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import CONTACT, about_you
from tests.e2e.test_stage_two import SECTIONS
from tests.stage_two_helpers import pdf_bytes, png_bytes

pytestmark = pytest.mark.slow

ITEMS = ("identity", "language_test", "education", "care_work", "police")


def register_by_api(base_url: str, n: int) -> tuple[str, str]:
    """One applicant registered and submitted through the JSON API: (reference, access code)."""
    client = requests.Session()

    def call(method: str, path: str, body: dict) -> dict:
        response = client.request(
            method,
            f"{base_url}/api/v1{path}",
            json=body,
            headers={"Idempotency-Key": secrets.token_urlsafe(24)},
            timeout=10,
        )
        assert response.status_code in {200, 201}, response.text
        return response.json()

    done = call("POST", "/intakes/demo/registrations", about_you(n))
    version = call("PUT", "/case/steps/contact", {"version": done["version"], "answers": CONTACT})
    eligibility = {
        "language_level": 5,
        "care_months": 24,
        "education": "secondary",
        "consent": True,
    }
    version = call(
        "PUT", "/case/steps/eligibility", {"version": version["version"], "answers": eligibility}
    )
    call("POST", "/case/submission", {"version": version["version"]})
    return done["reference"], done["access_code"]


def fill_section(page, section: str, answers: dict[str, str]) -> None:
    page.click(f"#section-{section} a")
    for name, value in answers.items():
        field = page.locator(f"[name={name}]")
        kind = field.first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
        if kind.startswith("select"):
            field.select_option(value)
        elif kind == "input:radio":
            page.check(f"#{name}-{value}")
        else:
            field.fill(value)
    page.click(f"form[action$='/application/complete/{section}'] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".error-summary").count() == 0, page.locator(".error-summary").inner_text()
    assert page.url.endswith(f"/application/complete#section-{section}"), page.url


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_an_invited_applicant_uploads_through_the_html_form_and_sees_it_on_the_receipt(
    browser, live_server, tmp_path, viewport
):
    n = 1 if viewport is PHONE else 2
    reference, access_code = register_by_api(live_server.base_url, n)
    context = browser.new_context(viewport=viewport, java_script_enabled=False)
    page = context.new_page()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    name = "phone" if viewport is PHONE else "desktop"

    page.goto(live_server.url("/sign-in"))
    page.fill("#reference", reference)
    page.fill("#access_code", access_code)
    page.click("main button[type=submit]")
    deadline = time.monotonic() + 20
    page.goto(live_server.url("/application/status"))
    while page.locator("text=Complete your application").count() == 0:
        assert time.monotonic() < deadline, "never invited"
        time.sleep(0.3)
        page.reload()
    page.click("#allocation a.button")
    page.wait_for_url("**/application/complete")
    page.screenshot(path=str(shots / f"{name}-1-overview.png"), full_page=True)

    for section, answers in SECTIONS.items():
        fill_section(page, section, {k: v for k, v in answers.items() if v})
    files = {item: (f"{item}.pdf", "application/pdf", pdf_bytes(item)) for item in ITEMS[:-1]}
    files["police"] = ("police certificate.png", "image/png", png_bytes(6, 6))
    for item, (file_name, mime, content) in files.items():
        page.set_input_files(
            f"#file-{item}", files=[{"name": file_name, "mimeType": mime, "buffer": content}]
        )
        page.click(f"#item-{item} form[enctype] button[type=submit]")
        page.wait_for_url(f"**/application/complete?added=*#item-{item}")
        assert file_name in page.locator(f"#item-{item}").inner_text()
    page.screenshot(path=str(shots / f"{name}-2-uploaded.png"), full_page=True)
    wrong = ("not really.pdf", "application/pdf", b"<html><script>alert(1)</script>")
    page.set_input_files(
        "#file-identity", files=[{"name": wrong[0], "mimeType": wrong[1], "buffer": wrong[2]}]
    )
    page.click("#item-identity form[enctype] button[type=submit]")
    assert "must be a PDF, JPG or PNG" in page.locator(".error-summary").inner_text()
    page.screenshot(path=str(shots / f"{name}-3-refused.png"), full_page=True)
    page.goto(live_server.url("/application/complete?lang=fr"))
    assert page.locator("h1").inner_text() == "Remplissez votre demande"
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=str(shots / f"{name}-3b-french.png"), full_page=True)
    page.goto(live_server.url("/application/complete?lang=en"))

    page.click("form[action$='/send'] button")
    page.wait_for_url("**/application/complete/receipt")
    table = page.locator("#documents").inner_text()
    for _, _, content in files.values():
        assert hashlib.sha256(content).hexdigest() in table
    assert "police certificate.png" in table
    page.screenshot(path=str(shots / f"{name}-4-receipt.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    context.close()
