"""A staff member enrols, signs in with a TOTP code and signs out, in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, PASSWORD, PHONE, add_staff_by_cli, next_code

pytestmark = pytest.mark.slow


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_staff_enrol_sign_in_with_a_code_and_sign_out(browser, live_server, tmp_path, viewport):
    email = "amara.admin@example.gov"
    link = add_staff_by_cli(live_server, email, "admin")
    assert link.startswith(live_server.base_url)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    shots = tmp_path / "screenshots"
    name = "phone" if viewport == PHONE else "desktop"

    # Enrol through the real page: the QR code, the key as text, a password and a code
    page.goto(link)
    assert page.locator("#qr").evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert len(secret) == 32
    assert no_sideways_scroll(page)
    page.screenshot(path=str(shots / f"{name}-1-enrol.png"), full_page=True)
    page.fill("#password", "too short")
    page.fill("#password_confirm", "too short")
    page.fill("#code", next_code(secret))
    page.click("#enrol")
    assert page.locator(".error-summary").is_visible()
    assert "12" in page.locator("#password-error").inner_text()
    page.screenshot(path=str(shots / f"{name}-2-enrol-error.png"), full_page=True)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.fill("#code", next_code(secret))
    page.click("#enrol")
    page.wait_for_url("**/staff/sign-in?enrolled=1")
    assert page.locator("#enrolled").is_visible()
    page.screenshot(path=str(shots / f"{name}-3-sign-in.png"), full_page=True)

    # Sign in: a wrong code first, then the right one
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#code", "000000" if next_code(secret) != "000000" else "111111")
    page.click("#sign-in")
    assert page.locator(".error-summary").is_visible()
    assert not [c for c in context.cookies() if c["name"] == "carepath_staff"]
    page.screenshot(path=str(shots / f"{name}-4-sign-in-refused.png"), full_page=True)
    page.fill("#password", PASSWORD)
    page.fill("#code", next_code(secret))
    page.click("#sign-in")
    page.wait_for_url("**/staff/admin/staff")
    assert page.locator("#signed-in-as").inner_text().startswith("amara.admin")
    assert page.locator("#staff td.wrap-anywhere", has_text=email).is_visible()
    assert no_sideways_scroll(page)
    page.screenshot(path=str(shots / f"{name}-5-admin.png"), full_page=True)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["carepath_staff"]["httpOnly"]
    assert cookies["carepath_staff"]["sameSite"] == "Strict"
    assert cookies["carepath_staff"]["expires"] == -1  # ends with the browser
    assert "carepath_session" not in cookies

    # In French too
    page.goto(live_server.url("/staff/admin/staff?lang=fr"))
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=str(shots / f"{name}-6-admin-fr.png"), full_page=True)
    page.goto(live_server.url("/staff/admin/staff?lang=en"))

    # Sign out: the session ends, and the pages ask for sign-in again
    page.click("#sign-out")
    page.wait_for_url("**/staff/signed-out")
    assert page.locator("#signed-out").is_visible()
    page.screenshot(path=str(shots / f"{name}-7-signed-out.png"), full_page=True)
    page.goto(live_server.url("/staff/admin/staff"))
    assert "/staff/sign-in" in page.url
    assert "carepath_session" not in {c["name"] for c in context.cookies()}
    context.close()


def test_the_reusable_fixtures_enrol_and_sign_in_an_officer(
    browser, live_server, enrol_staff, sign_in_staff
):
    password, secret = enrol_staff(live_server, "olu.officer@example.gov", "officer")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in_staff(page, live_server, "olu.officer@example.gov", password, secret)
    assert page.url.endswith("/staff/board")  # the officers' landing page
    assert "carepath_staff" in {c["name"] for c in context.cookies()}
    context.close()
