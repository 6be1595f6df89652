"""A hostile corpus sent the way applicants send files (the HTML form and the JSON API): each is
refused with a 4xx and its reason beside the field, and nothing is stored or recorded."""

from __future__ import annotations

import io
from urllib.parse import quote

from bs4 import BeautifulSoup
from werkzeug.test import EnvironBuilder

from tests.forms import error_summary
from tests.stage_two_helpers import case_id_of, invited_client, pdf_bytes, png_bytes
from tests.unit.test_inspection import (
    encrypted_pdf,
    html_in_pdf_head,
    image_bytes,
    jpeg_declaring,
    open_action_javascript,
    pdf_with,
    plain_pdf,
    png_bomb,
    zip_archive,
)

MB = 1024 * 1024
CORPUS = [
    # (what, content, file name, the message's words)
    ("one byte over the limit", plain_pdf() + b"%" * (10 * MB - len(plain_pdf()) + 1), "big.pdf",
     "must be smaller than 10 MB"),
    ("a PNG named .pdf where PDF is fine", b"GIF89a" + b"\0" * 64, "photo.pdf",
     "must be a PDF, JPG or PNG"),
    ("HTML disguised as PDF", b"<html><script>alert(document.cookie)</script></html>",
     "passport.pdf", "must be a PDF, JPG or PNG"),
    ("a shell script disguised as PDF", b"#!/bin/sh\nrm -rf /\n", "passport.pdf",
     "must be a PDF, JPG or PNG"),
    ("a PDF with JavaScript", pdf_with(open_action_javascript), "letter.pdf", "active content"),
    ("an encrypted PDF", encrypted_pdf(user="secret"), "letter.pdf", "password protected"),
    ("a polyglot PDF and ZIP", plain_pdf() + zip_archive(), "letter.pdf",
     "contains another kind of file"),
    ("HTML in a PDF's head", html_in_pdf_head(), "letter.pdf", "contains another kind of file"),
    ("a PNG with HTML after it", image_bytes("png") + b"<script>alert(1)</script>", "scan.png",
     "contains another kind of file"),
    ("a decompression bomb", png_bomb(), "scan.png", "too large in pixels"),
    ("a JPEG declaring 60,000 x 60,000 pixels", jpeg_declaring(60_000, 60_000), "scan.jpg",
     "too large in pixels"),
    ("an empty file", b"", "empty.pdf", "is empty"),
    ("path traversal in the name", pdf_bytes(), "../../etc/passwd", "file name cannot be used"),
    ("a NUL byte in the name", pdf_bytes(), "passport\x00.pdf", "file name cannot be used"),
    ("a right-to-left override in the name", pdf_bytes(), "invoice\u202efdp.exe",
     "file name cannot be used"),
    ("a very long name", pdf_bytes(), "a" * 300 + ".pdf", "file name cannot be used"),
]  # fmt: skip


def nothing_stored(app, client) -> None:
    store = app.extensions["carepath.documents"].store
    assert list(store.digests()) == []
    assert list((store.root / "tmp").iterdir()) == []
    assert app.extensions["carepath.registry"].get_case(case_id_of(client)).documents == ()


def upload_form(client, item: str) -> dict[str, str]:
    page = BeautifulSoup(client.get("/application/complete").text, "html.parser")
    form = page.find("form", action=f"/application/documents/items/{item}")
    return {i["name"]: i.get("value", "") for i in form.find_all("input", type="hidden")}


def test_every_hostile_file_is_refused_through_the_form_with_its_reason_and_nothing_kept(
    app, sqlite_env
):
    client = invited_client(app, sqlite_env)
    for what, content, name, words in CORPUS:
        # The test client spools a large body to a temporary file: close it once sent.
        builder = EnvironBuilder(
            path="/application/documents/items/identity",
            method="POST",
            data={**upload_form(client, "identity"), "file": (io.BytesIO(content), name)},
            content_type="multipart/form-data",
        )
        environ = builder.get_environ()
        try:
            response = client.open(environ)
        finally:
            environ["wsgi.input"].close()
            builder.close()

        assert 400 <= response.status_code < 500, what
        message = error_summary(response.text).get("file-identity", "")
        assert words in message, (what, message)
        nothing_stored(app, client)


def test_every_hostile_file_is_refused_through_the_api_with_its_reason_and_nothing_kept(
    app, sqlite_env
):
    client = invited_client(app, sqlite_env)
    for n, (what, content, name, words) in enumerate(CORPUS):
        response = client.put(
            "/api/v1/case/documents/items/identity",
            data=content,
            headers={
                "Idempotency-Key": f"hostile-upload-{n:04d}",
                "Upload-Filename": quote(name),
                "Content-Type": "application/pdf",
            },
            # as every HTTP client sends it, 0 included (the test client leaves out a 0)
            environ_overrides={"CONTENT_LENGTH": str(len(content))},
        )

        body = response.get_json()
        if len(content) > MB:  # over the whole-file threshold: resumable uploads take it
            assert response.status_code == 413, what
            assert body["resumable"] == "/api/v1/case/uploads"
        else:
            assert 400 <= response.status_code < 500, what
            assert any(words in m for m in body["errors"]["file"]), (what, body)
        nothing_stored(app, client)
    # and a good file afterwards is taken: the refusals left the case usable
    done = client.put(
        "/api/v1/case/documents/items/identity",
        data=png_bytes(),
        headers={"Idempotency-Key": "good-upload-after-all", "Upload-Filename": "ok.png"},
    )
    assert done.status_code == 201, done.get_json()
