"""Invited applicants upload documents through the JSON API: whole files, and tus 1.0 uploads."""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.conftest import make_app
from tests.e2e.test_allocation_status import submit_one
from tests.stage_two_helpers import case_id_of, invited_client, pdf_bytes, png_bytes

THRESHOLD = 4096  # the raw PUT takes files up to this size; larger ones go through tus
TUS = {"Tus-Resumable": "1.0.0"}
APPEND = "application/offset+octet-stream"


def padded_pdf(size: int, text: str = "Police certificate") -> bytes:
    """A valid one-page PDF of exactly `size` bytes, padded with comment lines in its page's
    content stream (as a scan would fill it)."""

    def build(padding: int) -> bytes:
        lines, rest = divmod(padding, 64)
        pad = b"\n%" + b"%" * rest + b"".join(b"\n%" + b"p" * 62 for _ in range(lines))
        return pdf_bytes(text, pad)

    padding = 0
    for _ in range(5):  # the lengths written inside the file grow by a digit now and then
        made = build(padding)
        if len(made) == size:
            return made
        padding += size - len(made)
    raise ValueError(f"cannot pad a PDF to {size} bytes")


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def put_file(client: Any, item: str, content: bytes, name: str, key: str, **query: str) -> Any:
    return client.put(
        f"/api/v1/case/documents/items/{item}",
        data=content,
        query_string=query,
        headers={
            "Idempotency-Key": key,
            "Upload-Filename": quote(name),
            "Content-Type": "application/octet-stream",
        },
    )


def create_upload(client: Any, item: str, name: str, length: int, **extra: str) -> Any:
    return client.post(
        "/api/v1/case/uploads",
        headers={
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(item=item, filename=name, **extra),
        },
    )


def patch(client: Any, location: str, offset: int, chunk: bytes) -> Any:
    return client.patch(
        location,
        data=chunk,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": APPEND,
        },
        environ_overrides={"CONTENT_LENGTH": str(len(chunk))},  # "0" too, which werkzeug drops
    )


def head(client: Any, location: str) -> Any:
    return client.head(location, headers=TUS)


def upload_in_chunks(client: Any, item: str, content: bytes, name: str, chunks: int = 3) -> Any:
    created = create_upload(client, item, name, len(content))
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    step = -(-len(content) // chunks)
    answer = None
    for start in range(0, len(content), step):
        answer = patch(client, location, start, content[start : start + step])
        assert answer.status_code in (204, 422), answer.text
    return location, answer


def blob_count(app: Any) -> int:
    return len(list(app.extensions["carepath.documents"].store.digests()))


def staging_files(app: Any) -> list[Path]:
    root = app.extensions["carepath.settings"].documents_dir / "uploads"
    return sorted(root.iterdir()) if root.exists() else []


def documents_of(app: Any, client: Any) -> list[Any]:
    return list(app.extensions["carepath.registry"].get_case(case_id_of(client)).documents)


@pytest.fixture
def env(sqlite_env: dict[str, str]) -> dict[str, str]:
    return {**sqlite_env, "CAREPATH_TUS_THRESHOLD": str(THRESHOLD)}


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Any]:
    app = make_app(env)
    yield app
    app.extensions["carepath.registry"].close()


@pytest.fixture
def applicant(app: Any, env: dict[str, str]) -> Any:
    return invited_client(app, env, 1)


# Whole files


def test_invited_applicant_uploads_lists_downloads_replaces_and_removes_a_document(app, applicant):
    content = pdf_bytes()
    added = put_file(applicant, "identity", content, "passeport é.pdf", "upload-identity-0001")
    assert added.status_code == 201, added.text
    document = added.json
    assert document["item"] == "identity"
    assert document["size"] == len(content)
    assert document["media_type"] == "application/pdf"
    assert document["name"] == "passeport é.pdf"
    assert added.headers["Location"] == f"/api/v1/case/documents/{document['document_id']}"

    again = put_file(applicant, "identity", content, "passeport é.pdf", "upload-identity-0001")
    assert again.status_code == 200
    assert again.json == document
    assert again.headers["Idempotent-Replayed"] == "true"

    listed = applicant.get("/api/v1/case/documents").json
    assert [d["document_id"] for d in listed["documents"]] == [document["document_id"]]
    identity = next(i for i in listed["checklist"] if i["key"] == "identity")
    assert identity["documents"] == [document["document_id"]]
    assert not identity["missing"]
    assert "identity" not in listed["missing"]
    assert "police" in listed["missing"]

    with applicant.get(added.headers["Location"]) as download:
        assert download.status_code == 200
        assert download.data == content
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"] == (
            "attachment; filename=\"passeport _.pdf\"; filename*=UTF-8''passeport%20%C3%A9.pdf"
        )
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Cache-Control"] == "no-store"

    replaced = put_file(
        applicant,
        "identity",
        png_bytes(),
        "scan.png",
        "upload-identity-0002",
        replaces=document["document_id"],
    )
    assert replaced.status_code == 201, replaced.text
    assert replaced.json["media_type"] == "image/png"
    current = applicant.get("/api/v1/case/documents").json["documents"]
    assert [d["document_id"] for d in current] == [replaced.json["document_id"]]

    removed = applicant.delete(
        replaced.headers["Location"], headers={"Idempotency-Key": "remove-identity-0001"}
    )
    assert removed.status_code == 200, removed.text
    assert applicant.get("/api/v1/case/documents").json["documents"] == []
    assert applicant.get(replaced.headers["Location"]).status_code == 404


def test_a_whole_file_over_the_threshold_is_sent_to_the_resumable_upload(app, applicant):
    answer = put_file(
        applicant, "identity", padded_pdf(THRESHOLD + 1), "big.pdf", "big-upload-00001"
    )
    assert answer.status_code == 413
    assert "/api/v1/case/uploads" in answer.json["error"]
    assert documents_of(app, applicant) == []
    assert blob_count(app) == 0


def test_a_whole_file_without_content_length_or_name_is_refused(app, applicant):
    environ = EnvironBuilder(
        "/api/v1/case/documents/items/identity",
        method="PUT",
        input_stream=io.BytesIO(pdf_bytes()),
        headers={"Idempotency-Key": "no-length-000001", "Upload-Filename": "a.pdf"},
    ).get_environ()
    del environ["CONTENT_LENGTH"]  # as a chunked request would come
    no_length = applicant.open(Request(environ))
    assert no_length.status_code == 411
    no_name = applicant.put(
        "/api/v1/case/documents/items/identity",
        data=pdf_bytes(),
        headers={"Idempotency-Key": "no-name-00000001"},
    )
    assert no_name.status_code == 422
    assert "Upload-Filename" in no_name.json["errors"]
    assert documents_of(app, applicant) == []


def test_refused_content_answers_422_with_the_reason_and_stores_nothing(app, applicant):
    disguised = b"<html><script>alert(1)</script></html>"
    answer = put_file(applicant, "identity", disguised, "passport.pdf", "html-as-pdf-00001")
    assert answer.status_code == 422
    assert answer.json["errors"]["file"]
    assert answer.json["reason"] == "wrong_type"
    assert documents_of(app, applicant) == []
    assert blob_count(app) == 0


def test_an_applicant_without_an_invitation_cannot_upload(app):
    waiting = submit_one(app, 2)  # submitted, but the allocator has not run: no invitation
    answer = put_file(waiting, "identity", pdf_bytes(), "p.pdf", "not-invited-00001")
    assert answer.status_code == 409
    assert answer.json["code"] == "NotInvited"
    created = create_upload(waiting, "identity", "p.pdf", 10_000)
    assert created.status_code == 409
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert blob_count(app) == 0
    assert staging_files(app) == []


# tus


def test_tus_upload_in_three_chunks_records_one_document(app, applicant):
    options = applicant.options("/api/v1/case/uploads")
    assert options.headers["Tus-Version"] == "1.0.0"
    assert options.headers["Tus-Extension"] == "creation"
    assert int(options.headers["Tus-Max-Size"]) >= 10 * 2**20
    content = padded_pdf(3 * THRESHOLD + 123)

    created = create_upload(applicant, "police", "certificat de police.pdf", len(content))
    assert created.status_code == 201
    assert created.headers["Tus-Resumable"] == "1.0.0"
    location = created.headers["Location"]
    assert location.startswith("/api/v1/case/uploads/")
    assert "police" not in location
    start = head(applicant, location)
    assert (start.headers["Upload-Offset"], start.headers["Upload-Length"]) == (
        "0",
        str(len(content)),
    )
    assert start.headers["Cache-Control"] == "no-store"

    third = len(content) // 3
    for offset in (0, third, 2 * third):
        end = len(content) if offset == 2 * third else offset + third
        answer = patch(applicant, location, offset, content[offset:end])
        assert answer.status_code == 204, answer.text
        assert answer.headers["Upload-Offset"] == str(end)
        assert answer.headers["Tus-Resumable"] == "1.0.0"

    document_id = answer.headers["Carepath-Document-Id"]
    (document,) = documents_of(app, applicant)
    assert document.document_id == document_id
    assert document.item == "police"
    assert document.size == len(content)
    assert document.name == "certificat de police.pdf"
    assert head(applicant, location).headers["Upload-Offset"] == str(len(content))
    shown = applicant.get(location).json
    assert shown["complete"]
    assert shown["document_id"] == document_id
    with applicant.get(f"/api/v1/case/documents/{document_id}") as download:
        assert download.data == content
    assert [p.name for p in staging_files(app)] == [location.rsplit("/", 1)[1] + ".json"]


# gunicorn sets wsgi.input_terminated: its body stream then just ends early when the client goes
# away, where werkzeug's own limit raises ClientDisconnected. Both must count as a cut body.
SERVERS = pytest.mark.parametrize("terminated", [False, True], ids=["werkzeug", "gunicorn"])


def server_environ(terminated: bool, length: int) -> dict[str, Any]:
    extra: dict[str, Any] = {"CONTENT_LENGTH": str(length)}
    if terminated:
        extra["wsgi.input_terminated"] = True
    return extra


@SERVERS
def test_a_whole_file_cut_short_records_nothing(app, applicant, terminated):
    content = pdf_bytes()
    cut = applicant.put(
        "/api/v1/case/documents/items/identity",
        input_stream=io.BytesIO(content[:-10]),  # the PDF's end never arrives
        headers={"Idempotency-Key": "cut-short-000001", "Upload-Filename": "a.pdf"},
        environ_overrides=server_environ(terminated, len(content)),
    )
    assert cut.status_code == 400
    assert documents_of(app, applicant) == []
    assert blob_count(app) == 0
    retried = put_file(applicant, "identity", content, "a.pdf", "cut-short-000001")
    assert retried.status_code == 201  # nothing was recorded under the key


@SERVERS
def test_an_interrupted_patch_resumes_from_the_stored_offset(app, applicant, terminated):
    content = padded_pdf(2 * THRESHOLD)
    location = create_upload(applicant, "education", "diploma.pdf", len(content)).headers[
        "Location"
    ]
    # the client goes away after 1,000 of the 5,000 bytes it announced
    cut = applicant.patch(
        location,
        input_stream=io.BytesIO(content[:1000]),
        headers={**TUS, "Upload-Offset": "0", "Content-Type": APPEND},
        environ_overrides=server_environ(terminated, 5000),
    )
    assert cut.status_code == 400
    assert head(applicant, location).headers["Upload-Offset"] == "1000"
    assert documents_of(app, applicant) == []

    assert patch(applicant, location, 0, content).status_code == 409  # from the start: refused
    rest = patch(applicant, location, 1000, content[1000:])
    assert rest.status_code == 204, rest.text
    (document,) = documents_of(app, applicant)
    assert document.size == len(content)
    with applicant.get(f"/api/v1/case/documents/{document.document_id}") as download:
        assert download.data == content


def test_a_retried_final_patch_records_exactly_one_document(app, applicant):
    content = padded_pdf(THRESHOLD + 500)
    location, first = upload_in_chunks(applicant, "care_work", content, "proof.pdf", chunks=2)
    document_id = first.headers["Carepath-Document-Id"]

    # the answer was lost: the client sends the final chunk again, then asks where it stands
    again = patch(
        applicant, location, len(content) - len(content) // 2, content[-len(content) // 2 :]
    )
    assert again.status_code == 409
    assert again.headers["Upload-Offset"] == str(len(content))
    at_end = patch(applicant, location, len(content), b"")
    assert at_end.status_code == 204
    assert at_end.headers["Carepath-Document-Id"] == document_id
    assert head(applicant, location).headers["Carepath-Document-Id"] == document_id
    assert [d.document_id for d in documents_of(app, applicant)] == [document_id]


def test_a_head_after_a_crash_before_the_event_records_the_document_once(app, applicant):
    content = padded_pdf(THRESHOLD + 10)
    location = create_upload(applicant, "identity", "id.pdf", len(content)).headers["Location"]
    # every byte was fsynced, then the process died before recording the event
    (staged,) = [p for p in staging_files(app) if p.suffix != ".json"]
    staged.write_bytes(content)

    first = head(applicant, location)
    second = head(applicant, location)
    assert first.headers["Upload-Offset"] == second.headers["Upload-Offset"] == str(len(content))
    assert first.headers["Carepath-Document-Id"] == second.headers["Carepath-Document-Id"]
    assert len(documents_of(app, applicant)) == 1


def test_tus_refuses_a_wrong_offset_a_missing_version_and_a_wrong_content_type(app, applicant):
    location = create_upload(applicant, "identity", "id.pdf", 6000).headers["Location"]
    wrong = patch(applicant, location, 10, b"x" * 10)
    assert wrong.status_code == 409
    assert wrong.headers["Upload-Offset"] == "0"

    for method in ("head", "patch"):
        bare = getattr(applicant, method)(
            location, headers={"Upload-Offset": "0", "Content-Type": APPEND}
        )
        assert bare.status_code == 412
        assert bare.headers["Tus-Version"] == "1.0.0"
        assert bare.headers["Tus-Resumable"] == "1.0.0"
    not_created = applicant.post(
        "/api/v1/case/uploads",
        headers={"Upload-Length": "10", "Upload-Metadata": metadata(item="identity", filename="a")},
    )
    assert not_created.status_code == 412
    typed = applicant.patch(
        location,
        data=b"%PDF",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/pdf"},
    )
    assert typed.status_code == 415
    assert head(applicant, location).headers["Upload-Offset"] == "0"


def test_tus_refuses_an_upload_larger_than_the_item_allows_at_creation(app, applicant):
    limit = app.extensions["carepath.registry"].get_case(case_id_of(applicant)).intake
    max_bytes = limit.checklist_item("identity").max_bytes
    answer = create_upload(applicant, "identity", "huge.pdf", max_bytes + 1)
    assert answer.status_code == 413
    assert answer.json["reason"] == "too_large"
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    unknown = create_upload(applicant, "horoscope", "a.pdf", 100)
    assert unknown.status_code == 404
    assert unknown.json["code"] == "ChecklistItemNotFound"
    assert staging_files(app) == []


def test_tus_refused_content_answers_422_and_leaves_nothing_behind(app, applicant):
    disguised = b"%PDF-1.4\n<script>alert(1)</script>" + zlib.compress(b"x" * 20_000)
    location, last = upload_in_chunks(applicant, "identity", disguised, "id.pdf")
    assert last.status_code == 422
    assert last.json["errors"]["file"]
    assert last.headers["Tus-Resumable"] == "1.0.0"
    assert blob_count(app) == 0
    assert staging_files(app) == []
    assert documents_of(app, applicant) == []
    assert head(applicant, location).status_code == 404


def test_another_applicant_gets_404_for_the_upload_and_the_document(app, env, applicant):
    other = invited_client(app, env, 2)
    content = padded_pdf(THRESHOLD + 1)
    location = create_upload(applicant, "identity", "id.pdf", len(content)).headers["Location"]
    assert patch(applicant, location, 0, content[:100]).status_code == 204
    added = put_file(applicant, "police", pdf_bytes(), "p.pdf", "a-police-0000001")

    assert head(other, location).status_code == 404
    assert other.get(location).status_code == 404
    assert patch(other, location, 100, content[100:]).status_code == 404
    assert other.get(added.headers["Location"]).status_code == 404
    gone = other.delete(added.headers["Location"], headers={"Idempotency-Key": "b-removes-000001"})
    assert gone.status_code == 404
    assert head(applicant, location).headers["Upload-Offset"] == "100"
    assert len(documents_of(app, applicant)) == 1
    assert documents_of(app, other) == []
