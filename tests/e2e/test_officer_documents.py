"""Officers see an invited applicant's documents and details, download them safely, and do the
completeness check once the application is sent; other callers cannot download anything."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup

from domain.documents import Documents
from domain.errors import ScannerUnavailable
from domain.inspection import ContentInspector
from domain.storage import Verdict
from tests.conftest import make_app
from tests.e2e.test_staff_roles import bearer_for
from tests.officer_helpers import caught_up
from tests.staff_helpers import enrolled_staff, staff_client, staff_csrf
from tests.stage_two_helpers import case_id_of, invited_client, pdf_bytes, png_bytes, settle

PASSPORT = pdf_bytes("Passport of Maria Santos")
NAME = "Pasaporte de María.pdf"
DETAILS = {
    "work_history": {
        "employer_name": "The Tremblay family",
        "job_title": "Home child care provider",
        "start_date": "2021-03-01",
        "hours_per_week": 40,
        "duties": "Care of two children aged 3 and 6.",
    },
    "language_test": {
        "test": "celpip",
        "test_date": "2024-05-11",
        "registration_number": "CP-2024-77812",
        "level": "5",
    },
    "education": {
        "credential": "Diploma in Caregiving",
        "institution": "TESDA Manila",
        "country": "PH",
        "year_completed": 2012,
    },
    "job_offer": {
        "employer_name": "The Tremblay family",
        "employer_phone": "+1 416 555 0100",
        "province": "ON",
        "job_start": "2026-09-01",
        "hours_per_week": 40,
    },
}


class Scanner:
    """A virus scanner that is down until given verdicts (a fake, not a mock)."""

    def __init__(self) -> None:
        self.verdict: Verdict | None = None

    def scan(self, path: Path) -> Verdict:
        if self.verdict is None:
            raise ScannerUnavailable("clamd is not answering")
        return self.verdict


class Case:
    """An invited applicant's case, seen from the service side."""

    def __init__(self, app: Any, env: dict[str, str], n: int = 1) -> None:
        self.app, self.env = app, env
        self.client = invited_client(app, env, n)
        self.id = case_id_of(self.client)
        self.reference = self.registry.get_case(self.id).reference

    @property
    def registry(self) -> Any:
        return self.app.extensions["carepath.registry"]

    @property
    def documents(self) -> Documents:
        found: Documents = self.app.extensions["carepath.documents"]
        return found

    def add(self, item: str, content: bytes, name: str, **extra: Any) -> str:
        done = self.documents.add_document(
            self.id, item, io.BytesIO(content), name, idempotency_key=f"{item}-{name}", **extra
        )
        return done.document_id

    def send_application(self) -> None:
        case = self.registry.get_case(self.id)
        for section in case.intake.sections:
            self.documents.save_details(
                self.id,
                section,
                DETAILS[section],
                expected_version=self.registry.get_case(self.id).version,
                language="en",
                idempotency_key=f"details-{section}",
            )
        present = {d.item for d in self.registry.get_case(self.id).documents}
        for item in case.intake.checklist:
            if item.required and item.key not in present:
                self.add(item.key, pdf_bytes(f"{item.key} of Maria Santos"), f"{item.key}.pdf")
        self.documents.submit_application(
            self.id,
            expected_version=self.registry.get_case(self.id).version,
            language="en",
            idempotency_key="send",
        )

    def settle(self) -> None:
        settle(self.env)


@pytest.fixture
def office(sqlite_env):
    app = make_app(sqlite_env, capacity=3)
    yield app, sqlite_env
    app.extensions["carepath.registry"].close()


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def download_path(case: Case, document_id: str) -> str:
    return f"/staff/cases/{case.reference}/documents/{document_id}"


def assert_attachment(response: Any, content: bytes, media_type: str, name: str) -> None:
    assert response.status_code == 200, response.text
    body = response.get_data()
    response.close()  # as a WSGI server does: closes the streamed file
    assert body == content
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Content-Length"] == str(len(content))
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_an_officer_sees_each_checklist_item_and_downloads_the_document_with_safe_headers(office):
    # Given an invited applicant who uploaded a passport, then replaced a photo of their police
    # certificate with a PDF, and removed a proof of care work
    app, env = office
    case = Case(app, env)
    passport = case.add("identity", PASSPORT, NAME)
    photo = case.add("police", png_bytes(), "police.png")
    police = case.add("police", pdf_bytes("Police certificate"), "police.pdf", replaces=photo)
    care = case.add("care_work", pdf_bytes("Employer letter"), "letter.pdf")
    case.documents.remove_document(case.id, care, idempotency_key="remove-care")
    case.settle()
    officer = staff_client(app, "officer")

    # When the officer opens the case
    page = officer.get(f"/staff/cases/{case.reference}")

    # Then each checklist item lists its current document with type, size, digest and scan state
    assert page.status_code == 200
    html = soup(page.text)
    row = html.find(id=f"document-{passport}")
    assert row is not None
    cells = [td.get_text(" ", strip=True) for td in row.find_all("td")]
    assert cells[0] == NAME
    assert cells[1] == "application/pdf"
    assert cells[3].startswith(hashlib.sha256(PASSPORT).hexdigest()[:12])
    assert "Not scanned" in cells[4]
    link = row.find("a")
    assert link["href"] == download_path(case, passport)
    assert link.has_attr("download")
    # and the history: the replaced photo and the removed letter, without download links
    assert html.find(id=f"document-{police}") is not None
    replaced = html.find(id=f"history-{photo}")
    assert replaced is not None
    assert "Replaced" in replaced.get_text()
    assert replaced.find("a") is None
    removed = html.find(id=f"history-{care}")
    assert removed is not None
    assert "Removed" in removed.get_text()
    assert "Missing" in html.find(id="item-education").get_text()
    timeline = html.find(id="timeline").get_text(" ", strip=True)
    assert f"Document uploaded · identity {passport}" in timeline
    assert f"Document removed · {care}" in timeline

    # And the download is an attachment of the detected type with the exact bytes
    got = officer.get(link["href"])
    assert_attachment(got, PASSPORT, "application/pdf", NAME)
    assert 'filename="Pasaporte de Mar_a.pdf"' in got.headers["Content-Disposition"]
    # but a replaced document is no longer served
    assert officer.get(download_path(case, photo)).status_code == 404


def test_an_auditor_downloads_and_lists_through_the_api_and_an_admin_is_refused(office):
    app, env = office
    case = Case(app, env)
    passport = case.add("identity", PASSPORT, NAME)
    photo = case.add("police", png_bytes(), "police.png")
    case.add("police", pdf_bytes("Police certificate"), "police.pdf", replaces=photo)
    case.settle()
    auditor = staff_client(app, "auditor")
    admin = staff_client(app, "admin")

    assert_attachment(auditor.get(download_path(case, passport)), PASSPORT, "application/pdf", NAME)
    assert admin.get(download_path(case, passport)).status_code == 403
    assert admin.get(f"/staff/cases/{case.reference}").status_code == 403

    # The staff API lists current and earlier documents and serves the same bytes and headers
    email, password, secret = enrolled_staff(app, "auditor")
    bearer = {"Authorization": f"Bearer {bearer_for(app, email, password, secret)}"}
    client = app.test_client()
    listed = client.get(f"/api/v1/staff/cases/{case.reference}/documents", headers=bearer)
    assert listed.status_code == 200, listed.text
    by_id = {d["document_id"]: d for d in listed.json["documents"]}
    assert by_id[passport]["digest"] == hashlib.sha256(PASSPORT).hexdigest()
    assert by_id[passport]["state"] == "current"
    assert by_id[photo]["state"] == "replaced"
    assert by_id[photo]["download"] is None
    assert "education" in listed.json["missing_items"]
    api_download = client.get(by_id[passport]["download"], headers=bearer)
    assert_attachment(api_download, PASSPORT, "application/pdf", NAME)

    email, password, secret = enrolled_staff(app, "admin")
    admin_bearer = {"Authorization": f"Bearer {bearer_for(app, email, password, secret)}"}
    assert client.get(by_id[passport]["download"], headers=admin_bearer).status_code == 403
    assert client.get(f"/api/v1/staff/cases/{case.reference}/documents").status_code == 401


def test_without_a_staff_session_nothing_is_downloaded(office):
    app, env = office
    case = Case(app, env)
    passport = case.add("identity", PASSPORT, NAME)
    path = download_path(case, passport)

    nobody = app.test_client().get(path)
    applicant = case.client.get(path)  # the applicant's own session is not a staff session

    for refused in (nobody, applicant):
        assert refused.status_code == 302
        assert "/staff/sign-in" in refused.headers["Location"]
        assert PASSPORT not in refused.get_data()
    assert (
        app.test_client()
        .get(f"/api/v1/staff/cases/{case.reference}/documents/{passport}")
        .status_code
        == 401
    )


def test_an_infected_missing_or_unknown_document_is_not_found_and_a_pending_one_waits(office):
    # Given a document recorded while the scanner was down, then found infected, and a clean
    # document whose blob has gone from the store
    app, env = office
    case = Case(app, env)
    scanner = Scanner()
    scanning = Documents(
        case.registry,
        case.documents.store,
        ContentInspector(),
        app.extensions["carepath.allocations"],
        scanner=scanner,
    )
    infected = scanning.add_document(
        case.id, "identity", io.BytesIO(PASSPORT), "passport.pdf", idempotency_key="pending"
    ).document_id
    scanner.verdict = Verdict(clean=False, signature="Carepath.Test.Signature")
    assert scanning.rescan(case.id, infected).value == "infected"
    scanner.verdict = None
    pending = scanning.add_document(
        case.id, "police", io.BytesIO(pdf_bytes("Police")), "police.pdf", idempotency_key="p2"
    ).document_id
    content = pdf_bytes("Education credential")
    lost = case.add("education", content, "diploma.pdf")
    digest = hashlib.sha256(content).hexdigest()
    root = Path(case.documents.store.root)
    (root / "blobs" / digest[:2] / digest[2:4] / digest).unlink()
    case.settle()
    officer = staff_client(app, "officer")

    # Then none of them is served, and the page shows the infected one without a link
    assert officer.get(download_path(case, infected)).status_code == 404
    assert officer.get(download_path(case, lost)).status_code == 404
    assert officer.get(download_path(case, "d99")).status_code == 404
    assert officer.get(f"/staff/cases/XXXX-XXXX-X/documents/{lost}").status_code == 404
    page = soup(officer.get(f"/staff/cases/{case.reference}").text)
    row = page.find(id=f"document-{infected}")
    assert row is not None
    assert row.find("a") is None
    assert "Virus found" in row.get_text()

    # And a document still waiting for the scanner is not handed out either (fails closed)
    waiting = officer.get(download_path(case, pending))
    assert waiting.status_code == 409
    assert pdf_bytes("Police") not in waiting.get_data()
    row = page.find(id=f"document-{pending}")
    assert row is not None
    assert row.find("a") is None
    assert "Waiting for the virus scan" in row.get_text()


def test_a_sent_application_shows_its_details_and_is_accepted_for_processing(office):
    # Given an applicant who completed every section, uploaded every required item and sent it
    app, env = office
    case = Case(app, env)
    case.send_application()
    case.settle()
    officer = staff_client(app, "officer")
    caught_up(app)

    # When the officer filters the queue for applications awaiting the completeness check
    queue = officer.get("/staff/queue?status=application_submitted")
    assert f"/staff/cases/{case.reference}" in queue.text
    assert "completeness check due" in queue.text
    page = officer.get(f"/staff/cases/{case.reference}")

    # Then the case shows the details by section and the completeness check's two actions
    html = soup(page.text)
    details = html.find(id="details").get_text(" ", strip=True)
    assert "The Tremblay family" in details
    assert "CELPIP-General (English)" in details
    assert html.find(id="completeness-due") is not None
    accept = html.find("form", action=f"/staff/cases/{case.reference}/actions/accept")
    assert accept is not None
    assert html.find("form", action=f"/staff/cases/{case.reference}/actions/return_incomplete")

    # And accepting it for processing works for the sent application
    fields = {i["name"]: i.get("value", "") for i in accept.find_all("input", type="hidden")}
    fields["staff_csrf"] = staff_csrf(officer, f"/staff/cases/{case.reference}")
    done = officer.post(accept["action"], data=fields)
    assert done.status_code == 302, done.text
    assert case.registry.get_case(case.id).status.value == "accepted"


def test_a_case_not_yet_sent_offers_no_completeness_check(office):
    app, env = office
    case = Case(app, env)
    case.add("identity", PASSPORT, NAME)
    case.settle()
    officer = staff_client(app, "officer")

    html = soup(officer.get(f"/staff/cases/{case.reference}").text)

    assert html.find("form", action=f"/staff/cases/{case.reference}/actions/accept") is None
    assert html.find(id="completeness-due") is None


def test_the_openapi_document_lists_the_staff_document_operations(office):
    app, _ = office
    spec = app.test_client().get("/api/v1/openapi.json").json

    for path in (
        "/staff/cases/{reference}/documents",
        "/staff/cases/{reference}/documents/{document_id}",
    ):
        operation = spec["paths"][path]["get"]
        assert operation["security"] == [{"staffBearer": []}], path
        assert {"401", "403", "404"} <= set(operation["responses"]), path
