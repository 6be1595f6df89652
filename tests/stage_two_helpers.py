"""Invited applicants for stage-two tests, and small valid files of each allowed type."""

from __future__ import annotations

import io
import zlib
from typing import Any
from uuid import UUID

from projections.worker import Worker
from tests.e2e.test_allocation_status import submit_one


def settle(env: dict[str, str]) -> None:
    """Run the allocator and the read models over everything logged so far, once."""
    Worker(env, env["CAREPATH_SECRET"].encode()).settle()


def invited_client(app: Any, env: dict[str, str], n: int = 1) -> Any:
    """A test client signed in as person n, registered in intake `test` and invited."""
    client = submit_one(app, n)
    settle(env)
    return client


def case_id_of(client: Any) -> UUID:
    """The case the client's session opens."""
    with client.session_transaction() as session:
        return UUID(session["case_id"])


def pdf_bytes(text: str = "Passport of Maria Santos", pad: bytes = b"") -> bytes:
    """A small valid one-page PDF, written by hand so tests need no PDF library; `pad` (comment
    lines) goes at the end of its page's content stream, to make it larger."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() + pad
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A small valid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
