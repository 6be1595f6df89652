"""The invited applicant's journey through the HTML pages: details, uploads, send, receipt."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup

from tests.e2e.test_allocation_status import submit_one
from tests.forms import error_summary, hidden_fields, post_form, text_of
from tests.stage_two_helpers import case_id_of, invited_client, pdf_bytes, png_bytes, settle

SECTIONS = {
    "work_history": {
        "employer_name": "The Tremblay family",
        "job_title": "Home child care provider",
        "start_date": "2021-03-01",
        "end_date": "",
        "hours_per_week": "40",
        "duties": "Care of two children aged 3 and 6: meals, school runs, homework.",
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
        "year_completed": "2012",
        "assessment_number": "",
    },
    "job_offer": {
        "employer_name": "The Tremblay family",
        "employer_phone": "+1 416 555 0100",
        "province": "ON",
        "job_start": "2026-09-01",
        "hours_per_week": "40",
    },
}
ITEMS = ("identity", "language_test", "education", "care_work", "police")


def upload(client, item, content, name, **extra):
    page = client.get("/application/complete")
    soup = BeautifulSoup(page.text, "html.parser")
    form = soup.find("form", action=f"/application/documents/items/{item}")
    assert form is not None, f"no upload form for {item}"
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}
    return client.post(
        f"/application/documents/items/{item}",
        data={**fields, **extra, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def complete_sections(client):
    for section, answers in SECTIONS.items():
        response = post_form(client, f"/application/complete/{section}", answers)
        assert response.status_code == 302, (section, error_summary(response.text))


def send(client):
    page = client.get("/application/complete")
    soup = BeautifulSoup(page.text, "html.parser")
    form = soup.find("form", action="/application/complete/send")
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}
    return client.post("/application/complete/send", data=fields)


def test_an_invited_applicant_completes_uploads_sends_and_sees_every_digest_on_the_receipt(
    app, sqlite_env
):
    client = invited_client(app, sqlite_env)
    status = client.get("/application/status").text
    assert "Complete your application" in text_of(status, "allocation")

    complete_sections(client)
    files = {item: pdf_bytes(f"{item} of Maria Santos") for item in ITEMS[:-1]}
    files["police"] = png_bytes(8, 8)
    for item, content in files.items():
        name = "police.png" if item == "police" else f"{item}.pdf"
        response = upload(client, item, content, name)
        assert response.status_code == 302, error_summary(client.get("/application/complete").text)
    overview = client.get("/application/complete").text
    assert "police.png" in text_of(overview, "item-police")

    sent = send(client)

    assert sent.status_code == 302
    assert sent.headers["Location"].endswith("/application/complete/receipt")
    receipt = client.get("/application/complete/receipt").text
    table = text_of(receipt, "documents")
    for content in files.values():
        assert hashlib.sha256(content).hexdigest() in table
    assert "Application sent" in text_of(client.get("/application/status").text, "status")


def test_sending_with_a_required_document_missing_names_the_missing_item(app, sqlite_env):
    client = invited_client(app, sqlite_env)
    complete_sections(client)
    for item in ITEMS:
        if item != "police":
            assert upload(client, item, pdf_bytes(), f"{item}.pdf").status_code == 302

    refused = send(client)

    assert refused.status_code == 409
    assert error_summary(refused.text) == {"file-police": "Upload a file for: Police certificate"}
    case = app.extensions["carepath.registry"].get_case(case_id_of(client))
    assert case.application_submitted_at is None


def test_a_refused_file_shows_why_beside_its_item_and_keeps_nothing(app, sqlite_env):
    client = invited_client(app, sqlite_env)
    store = app.extensions["carepath.documents"].store

    refused = upload(client, "identity", b"<html><script>alert(1)</script></html>", "passport.pdf")

    assert refused.status_code == 422
    assert "must be a PDF, JPG or PNG" in error_summary(refused.text)["file-identity"]
    assert list(store.digests()) == []
    assert app.extensions["carepath.registry"].get_case(case_id_of(client)).documents == ()


def test_an_applicant_replaces_and_removes_a_document(app, sqlite_env):
    client = invited_client(app, sqlite_env)
    assert upload(client, "identity", pdf_bytes("old"), "old.pdf").status_code == 302
    registry = app.extensions["carepath.registry"]
    case_id = case_id_of(client)
    old = registry.get_case(case_id).documents[0]

    replaced = upload(client, "identity", pdf_bytes("new"), "new.pdf", replaces=old.document_id)

    assert replaced.status_code == 302
    (current,) = registry.get_case(case_id).documents
    assert current.name == "new.pdf"
    assert current.digest == hashlib.sha256(pdf_bytes("new")).hexdigest()
    page = client.get("/application/complete").text
    form = BeautifulSoup(page, "html.parser").find(
        "form", action=f"/application/documents/{current.document_id}/remove"
    )
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}
    assert client.post(form["action"], data=fields).status_code == 302
    assert registry.get_case(case_id).documents == ()


def test_a_person_not_invited_cannot_upload(app, sqlite_env):
    client = submit_one(app, 1)  # registered, but the allocator has not run: no invitation

    page = client.get("/application/complete")

    assert "You have no invitation to apply yet" in page.text
    response = client.post(
        "/application/documents/items/identity",
        data={**hidden_fields(page.text), "file": (io.BytesIO(pdf_bytes()), "passport.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (400, 409)
    assert app.extensions["carepath.registry"].get_case(case_id_of(client)).documents == ()


def test_after_the_deadline_the_applicant_sees_the_invitation_expired_and_cannot_send(
    app, sqlite_env
):
    client = invited_client(app, sqlite_env)
    complete_sections(client)
    registry = app.extensions["carepath.registry"]
    registry.check_deadlines("test", datetime.now(UTC) + timedelta(days=29), actor="test")
    settle(sqlite_env)

    page = client.get("/application/complete")

    assert "Your invitation has expired" in page.text
    assert "went to the next person" in text_of(page.text, "expired")
    late = client.post("/application/complete/send", data=hidden_fields(page.text))
    assert late.status_code in (302, 400)
    assert registry.get_case(case_id_of(client)).application_submitted_at is None


def test_a_section_with_a_mistake_keeps_the_input_and_says_what_is_wrong(app, sqlite_env):
    client = invited_client(app, sqlite_env)
    answers = {**SECTIONS["work_history"], "end_date": "2020-01-01", "hours_per_week": "99"}

    response = post_form(client, "/application/complete/work_history", answers)

    assert response.status_code == 422
    errors = error_summary(response.text)
    assert errors["end_date"] == "The end date must be after the start date"
    assert "from 1 to 80" in errors["hours_per_week"]
    assert 'value="The Tremblay family"' in response.text


def test_the_json_api_saves_sections_names_what_is_missing_and_sends(app, sqlite_env):
    client = invited_client(app, sqlite_env)
    documents = app.extensions["carepath.documents"]
    case_id = case_id_of(client)
    before = client.get("/api/v1/case/application").get_json()
    assert before["open"] is True
    assert before["deadline"]
    assert before["missing_documents"] == list(ITEMS)

    bad = client.put(
        "/api/v1/case/application/sections/job_offer",
        json={"version": before["version"], "answers": {**SECTIONS["job_offer"], "province": "XX"}},
        headers={"Idempotency-Key": "k" * 20},
    )
    assert bad.status_code == 422
    assert "answers.province" in bad.get_json()["errors"]
    version = before["version"]
    for n, (section, answers) in enumerate(SECTIONS.items()):
        sent = {k: v for k, v in answers.items() if v != ""}
        saved = client.put(
            f"/api/v1/case/application/sections/{section}",
            json={"version": version, "answers": sent},
            headers={"Idempotency-Key": f"section-key-{n:08d}"},
        )
        assert saved.status_code == 200, saved.get_json()
        version = saved.get_json()["version"]
    early = client.post(
        "/api/v1/case/application/submission",
        json={"version": version},
        headers={"Idempotency-Key": "s" * 20},
    )
    assert early.status_code == 409
    assert early.get_json()["missing_documents"] == list(ITEMS)
    for n, item in enumerate(ITEMS):
        documents.add_document(
            case_id, item, io.BytesIO(pdf_bytes(item)), f"{item}.pdf", idempotency_key=f"u{n:020d}"
        )
    version = client.get("/api/v1/case/application").get_json()["version"]

    done = client.post(
        "/api/v1/case/application/submission",
        json={"version": version},
        headers={"Idempotency-Key": "t" * 20},
    )

    assert done.status_code == 200
    receipt = done.get_json()["receipt"]
    assert receipt["status"] == "application_submitted"
    assert {d["digest"] for d in receipt["documents"]} == {
        hashlib.sha256(pdf_bytes(item)).hexdigest() for item in ITEMS
    }
    again = client.post(
        "/api/v1/case/application/submission",
        json={"version": version},
        headers={"Idempotency-Key": "t" * 20},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
