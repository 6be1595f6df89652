"""An officer opens a case with an uploaded document in a real browser: the document is listed
under its checklist item, and its link downloads it as an attachment with the safe headers
(screenshots under the test's tmp folder)."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest

from projections.allocation import AllocationQueries
from projections.views import make_engine
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_officer_pages import no_sideways_scroll, register_and_submit
from tests.stage_two_helpers import pdf_bytes
from web.settings import Settings

pytestmark = pytest.mark.slow

PASSPORT = pdf_bytes("Passport of Maria Santos")
NAME = "passport of María.pdf"


def upload_as_the_applicant(env: dict[str, str], reference: str) -> str:
    """Record a document on the invited case through the documents service, as the upload pages
    do, once the server's worker has invited it: the document's id."""
    settings = Settings.from_environ({"ENV": env})
    registry = settings.build_registry(create_table=False)
    engine = make_engine(settings.environ)
    try:
        allocations = AllocationQueries(engine)
        case_id = registry.find_case(reference)
        deadline = time.monotonic() + 20
        while allocations.offer_deadline(case_id) is None:
            assert time.monotonic() < deadline, "the case was never invited"
            time.sleep(0.2)
        documents = settings.build_documents(registry, allocations)
        done = documents.add_document(
            case_id, "identity", io.BytesIO(PASSPORT), NAME, idempotency_key="browser-passport"
        )
        return done.document_id
    finally:
        registry.close()
        engine.dispose()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_an_officer_sees_an_uploaded_document_and_its_link_downloads_an_attachment(
    browser: Any, live_server: Any, enrol_staff: Any, sign_in_staff: Any, tmp_path: Any, viewport
) -> None:
    # Given an invited applicant who uploaded their passport
    reference = register_and_submit(live_server.base_url, 1)
    document_id = upload_as_the_applicant(live_server.env, reference)
    email = f"doc.officer.{viewport['width']}@example.gov"
    password, secret = enrol_staff(live_server, email, "officer")
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    shots = tmp_path / "screenshots"
    name = "phone" if viewport == PHONE else "desktop"

    # When the officer signs in and opens the case
    sign_in_staff(page, live_server, email, password, secret)
    page.goto(live_server.url(f"/staff/cases/{reference}"))

    # Then the passport is listed under the identity item, with its type, digest and scan state
    row = page.locator(f"#document-{document_id}")
    row.scroll_into_view_if_needed()
    assert NAME in row.inner_text()
    assert "application/pdf" in row.inner_text()
    assert hashlib.sha256(PASSPORT).hexdigest()[:12] in row.inner_text()
    assert "Not scanned" in row.inner_text()
    assert "Missing" in page.locator("#item-education").inner_text()
    page.locator("#documents-title").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"officer-documents-{name}.png"), full_page=True)
    assert no_sideways_scroll(page)

    # And its link downloads the file as an attachment, never shown in the page
    link = row.locator("a")
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == NAME
    with open(download.path(), "rb") as saved:
        assert saved.read() == PASSPORT
    answer = context.request.get(live_server.url(link.get_attribute("href")))
    assert answer.status == 200
    headers = answer.headers
    assert headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''passport%20of%20Mar%C3%ADa.pdf" in headers["content-disposition"]
    assert headers["content-type"] == "application/pdf"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["content-security-policy"] == "sandbox"
    assert answer.body() == PASSPORT
    context.close()
