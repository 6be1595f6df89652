"""An officer signs in with TOTP, reads the board, filters the queue, decides a case and exports
CSV, in a real browser at phone and desktop sizes (screenshots under the test's tmp folder)."""

from __future__ import annotations

import csv
import io
import secrets
import time

import pytest
import requests

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import CONTACT, about_you, send_application
from web.settings import Settings

pytestmark = pytest.mark.slow


def register_and_submit(base_url: str, n: int) -> str:
    """One applicant through the JSON API, as a phone app would: the reference."""
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
    version = call("PUT", "/case/steps/contact", {"version": done["version"], "answers": CONTACT})[
        "version"
    ]
    eligibility = {
        "language_level": 5,
        "care_months": 24,
        "education": "secondary",
        "consent": True,
    }
    version = call("PUT", "/case/steps/eligibility", {"version": version, "answers": eligibility})[
        "version"
    ]
    call("POST", "/case/submission", {"version": version})
    return str(done["reference"])


def application_sent(env: dict[str, str], reference: str) -> None:
    """Record the case's stage two as sent (what the stage-two pages end with), so officers
    can do the completeness check."""
    registry = Settings.from_environ({"ENV": env}).build_registry(create_table=False)
    try:
        send_application(registry, registry.find_case(reference))
    finally:
        registry.close()


def wait_for_text(page, selector: str, text: str, timeout: float = 15) -> None:
    """Reload until the read models show `text` (the worker runs beside the server)."""
    deadline = time.monotonic() + timeout
    while text not in page.locator(selector).inner_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in {selector}"
        time.sleep(0.3)
        page.reload()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_an_officer_works_the_queue_and_decides_a_case_in_a_browser(
    browser, live_server, enrol_staff, sign_in_staff, tmp_path, viewport
):
    references = [register_and_submit(live_server.base_url, n) for n in range(1, 4)]
    email = f"olu.officer.{viewport['width']}@example.gov"
    password, secret = enrol_staff(live_server, email, "officer")
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    shots = tmp_path / "screenshots"
    name = "phone" if viewport == PHONE else "desktop"

    # Sign in with the second factor; the quota board
    sign_in_staff(page, live_server, email, password, secret)
    page.goto(live_server.url("/staff/board"))
    wait_for_text(page, "#board", "3")
    assert page.locator("svg.chart").count() == 2
    assert page.locator("td[data-metric=submitted][data-pool=general]").inner_text() == "3"
    assert page.locator("td[data-metric=granted][data-pool=general]").inner_text() == "3"
    page.screenshot(path=str(shots / f"{name}-1-board.png"), full_page=True)

    # The queue, filtered
    page.click("text=Queue")
    page.select_option("#state", "granted")
    page.click("text=Apply filters")
    assert "3 cases match" in page.locator("#total").inner_text()
    page.screenshot(path=str(shots / f"{name}-2-queue.png"), full_page=True)

    # A case whose applicant has sent the application: assign to me, accept, approve
    application_sent(live_server.env, references[0])
    page.click(f"text={references[0]}")
    assert page.locator("h1").inner_text().endswith(references[0])
    page.screenshot(path=str(shots / f"{name}-3-case.png"), full_page=True)
    page.select_option("#assignee", "me")
    page.click("button:has-text('Assign')")
    assert "Assigned" in page.locator("#done").inner_text()
    page.click("button:has-text('Accept for processing')")
    assert page.locator("#case-status").inner_text() == "Accepted for processing"
    page.fill("#approve-note", "Complete and eligible.")
    page.click("#approve")
    assert page.locator("#case-status").inner_text() == "Approved"
    assert "Approved" in page.locator("#timeline").inner_text()
    assert no_sideways_scroll(page)
    page.screenshot(path=str(shots / f"{name}-4-decided.png"), full_page=True)

    # The CSV export of the filtered queue
    page.goto(live_server.url("/staff/queue?status=approved"))
    assert "1 case matches" in page.locator("#total").inner_text()
    with page.expect_download() as download:
        page.click("#export")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["reference"] for r in rows] == [references[0]]
    assert rows[0]["status"] == "approved"
    page.screenshot(path=str(shots / f"{name}-5-queue-approved.png"), full_page=True)
    context.close()
