"""Times in a real browser: an intake in Vancouver shows its close and the applicant's receipt in
Pacific time, the zone named, in English and in French."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE
from tests.browser.test_journey_edges import shoot, shots  # noqa: F401 - shots is a fixture
from tests.browser.test_rough_edges import submit_in_pages
from tests.integration.servers import run_carepath

pytestmark = pytest.mark.slow


def test_a_vancouver_intake_shows_pacific_time_in_both_languages(
    browser,
    live_server,
    shots,  # noqa: F811 - the fixture imported above
):
    run_carepath(
        live_server.env,
        "intake",
        "create",
        *("--code", "west", "--name", "West pilot", "--capacity", "5"),
        *("--time-zone", "America/Vancouver", "--closes-at", "2099-07-15T12:00"),
    )
    run_carepath(live_server.env, "intake", "open", "west")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        # the list of intakes: the summer close at noon, Pacific Daylight Time, in each language
        page.goto(live_server.url("/?lang=en"))
        listing = page.locator("main").inner_text()
        assert "Jul 15, 2099, 12:00\u202fp.m. Pacific Daylight Time" in listing, listing
        page.goto(live_server.url("/?lang=fr"))
        listing = page.locator("main").inner_text()
        assert "15 juill. 2099, 12 h 00 heure avancée du Pacifique" in listing, listing
        assert "Volet : ·" not in listing  # an intake without a stream names none
        shoot(page, shots, "time-zone-intakes-fr")

        # a registration submitted in French: the receipt's time is Pacific, named in French
        submit_in_pages(page, live_server, 70, code="west", language="fr")
        receipt = page.locator("main").inner_text()
        assert "du Pacifique" in receipt, receipt  # normale in winter, avancée in summer
        assert "UTC" not in receipt
        shoot(page, shots, "time-zone-receipt-fr")
    finally:
        context.close()
