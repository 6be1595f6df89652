"""The applicant's documents over the JSON API: raw uploads, tus 1.0 resumable uploads, downloads.

Small files go in one `PUT /case/documents/items/<item>`; files over the tus threshold go through the
tus core protocol with the creation extension (https://tus.io/protocols/resumable-upload):
`POST /case/uploads` creates an upload bound to the case, `PATCH` appends to its staging file
and `HEAD` says how much is stored. Every chunk is fsynced before its offset is acknowledged,
so an acknowledged offset survives a crash; the stored offset is always the staging file's size.
When the last byte arrives the file goes to `Documents.add_document` with the idempotency key
`tus:<upload id>`, so a retried final PATCH, or a HEAD after a crash, records exactly one document.

Nothing lives in memory between requests (several gunicorn workers serve one upload): the
staging file and its JSON metadata, under `<documents dir>/uploads/`, named by a random id,
never by anything the client chose. Staging files are never served.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast
from urllib.parse import quote, unquote
from uuid import UUID

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import wrap_file

from domain.documents import Documents, StageTwo
from domain.errors import (
    ChecklistItemNotFound,
    DeadlinePassed,
    DocumentNotFound,
    DocumentRefused,
    NotInvited,
)
from domain.registry import Registry
from domain.values import CaseStatus, CaseView, DocumentView
from web.api import Invalid, idempotency_key, outcome_json
from web.auth import signed_in_case_id
from web.errors import document_message, error_response
from web.i18n import current_language
from web.settings import Settings

bp = Blueprint("uploads_api", __name__)

TUS_VERSION = "1.0.0"
TUS_CONTENT_TYPE = "application/offset+octet-stream"
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 64 * 1024  # bytes read from the request at a time: memory per upload stays this small


@bp.errorhandler(Invalid)
def _invalid(error: Invalid) -> tuple[Response, int]:
    return jsonify(
        {"error": _("Some of the information is not valid."), "errors": error.errors}
    ), 422


@bp.after_request
def _tus_resumable(response: Response) -> Response:
    if "/uploads" in request.path:
        response.headers["Tus-Resumable"] = TUS_VERSION
        response.headers["Cache-Control"] = "no-store"
    return response


def documents() -> Documents:
    service: Documents = current_app.extensions["carepath.documents"]
    return service


def settings() -> Settings:
    found: Settings = current_app.extensions["carepath.settings"]
    return found


def staging() -> Staging:
    return Staging(documents().store.staging)


def document_json(document: DocumentView) -> dict[str, Any]:
    return {
        "document_id": document.document_id,
        "item": document.item,
        "digest": document.digest,
        "size": document.size,
        "media_type": document.media_type,
        "name": document.name,
        "scan": document.scan.value,
        "present": document.present,
        "uploaded_at": document.uploaded_at.isoformat(),
    }


def recorded_document(case_id: UUID, outcome_version: int, document_id: str) -> DocumentView:
    """The document as its event recorded it (a replayed one may since have been replaced)."""
    registry: Registry = current_app.extensions["carepath.registry"]
    found = registry.get_case(case_id, version=outcome_version).document(document_id)
    if found is None:
        raise DocumentNotFound(f"no document {document_id}")
    return found


def too_large(message: str, **extra: Any) -> tuple[Response | str, int]:
    return error_response(413, message, code="TooLarge", **extra)


def content_length() -> int | None:
    return request.content_length


# Whole-file uploads, the list, downloads and removal


@bp.put("/documents/items/<item>")
def put_document(item: str) -> tuple[Response | str, int] | Response:
    """One file in the body, for a checklist item (or in place of `?replaces=`)."""
    case_id = signed_in_case_id()
    key = idempotency_key()
    name = upload_filename()
    length = content_length()
    if length is None:
        return error_response(411, _("Send a Content-Length header with the file's size."))
    threshold = settings().tus_threshold
    if length > threshold:
        return too_large(
            _(
                "Files over %(mb)s MB go through the resumable upload at /api/v1/case/uploads "
                "(tus 1.0).",
                mb=f"{threshold / 2**20:g}",
            ),
            resumable="/api/v1/case/uploads",
        )
    done = documents().add_document(
        case_id,
        item,
        cast(BinaryIO, ExactBody(length)),
        name,
        idempotency_key=key,
        replaces=request.args.get("replaces") or None,
    )
    document = recorded_document(case_id, done.outcome.version, done.document_id)
    response = jsonify(document_json(document))
    response.headers["Location"] = url_for(".get_document", document_id=done.document_id)
    response.headers["Idempotent-Replayed"] = "true" if done.outcome.replayed else "false"
    return response, 200 if done.outcome.replayed else 201


class ExactBody:
    """The request body as a file that ends after exactly Content-Length bytes, and raises
    ClientDisconnected if the client stops sooner.

    Under gunicorn (which sets wsgi.input_terminated) werkzeug's stream simply ends early when
    the client goes away, so an end of file alone would pass a cut file off as a whole one.
    """

    def __init__(self, length: int) -> None:
        request.max_content_length = length  # the global limit is for forms, not for files
        self._stream = request.stream
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        wanted = self.left if size < 0 else min(size, self.left)
        chunk = self._stream.read(wanted)
        if not chunk:
            raise ClientDisconnected()
        self.left -= len(chunk)
        return chunk


def upload_filename() -> str:
    raw = request.headers.get("Upload-Filename", "")
    try:
        name = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        name = ""
    if not name:
        raise Invalid({"Upload-Filename": [_("Send the file's name, percent-encoded UTF-8.")]})
    return name


@bp.get("/documents")
def list_documents() -> Response:
    """The case's current documents, and each checklist item with what is present or missing."""
    stage = documents().stage_two(signed_in_case_id())
    return jsonify(documents_json(stage, current_language()))


def documents_json(stage: StageTwo, language: str) -> dict[str, Any]:
    case = stage.case
    missing = set(case.missing_items)
    return {
        "open": stage.open,
        "deadline": stage.deadline.isoformat() if stage.deadline else None,
        "documents": [document_json(d) for d in case.documents],
        "checklist": [
            {
                "key": item.key,
                "name": item.name(language),
                "required": item.required,
                "types": list(item.types),
                "max_bytes": item.max_bytes,
                "max_files": item.max_files,
                "documents": [d.document_id for d in case.documents_for(item.key)],
                "missing": item.key in missing,
            }
            for item in case.intake.checklist
        ],
        "missing": list(case.missing_items),
    }


@bp.get("/documents/<document_id>")
def get_document(document_id: str) -> Response:
    """The applicant's own copy: an attachment of the detected type, never rendered inline."""
    document, content = documents().open_document(signed_in_case_id(), document_id)
    response = Response(
        wrap_file(request.environ, content, CHUNK),
        mimetype=document.media_type,
        direct_passthrough=True,
    )
    response.headers["Content-Length"] = str(document.size)
    response.headers["Content-Disposition"] = attachment(document.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "sandbox"  # if a browser renders it anyway
    return response


def attachment(name: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name (RFC 8187), nothing a header could misread."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip() or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.delete("/documents/<document_id>")
def delete_document(document_id: str) -> Response:
    case_id = signed_in_case_id()
    key = idempotency_key()
    return outcome_json(documents().remove_document(case_id, document_id, idempotency_key=key))


# tus 1.0: core protocol and the creation extension


@dataclass(frozen=True)
class Upload:
    """What the staging area keeps beside an upload's bytes (its JSON file)."""

    upload_id: str
    case_id: str
    item: str
    filename: str
    length: int
    created: str
    replaces: str | None = None
    document_id: str | None = None  # once the document is recorded


class Staging:
    """Uploads in progress on disk: `<id>` holds the bytes so far, `<id>.json` the metadata.

    The metadata is written to a temporary file, fsynced and renamed; the bytes are appended
    and fsynced before their offset is acknowledged. One PATCH at a time holds an upload's lock
    (flock on its bytes), so two workers never append to the same file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, upload: Upload) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(
            self._data(upload.upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.save(upload)

    def save(self, upload: Upload) -> None:
        draft = self.root / f"{upload.upload_id}.json.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with os.fdopen(os.open(draft, flags, 0o600), "w", encoding="utf-8") as out:
            json.dump(asdict(upload), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(draft, self._meta(upload.upload_id))
        _fsync_dir(self.root)

    def find(self, upload_id: str, case_id: UUID) -> Upload:
        """The case's upload; 404 for an unknown id and for another case's (never 403)."""
        if not UPLOAD_ID.match(upload_id):
            raise DocumentNotFound("no such upload")
        try:
            upload = Upload(**json.loads(self._meta(upload_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DocumentNotFound("no such upload") from None
        if upload.case_id != str(case_id):
            raise DocumentNotFound("no such upload")
        return upload

    def offset(self, upload: Upload) -> int:
        if upload.document_id is not None:
            return upload.length
        try:
            return self._data(upload.upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def locked(self, upload: Upload) -> Iterator[IO[bytes] | None]:
        """The upload's bytes open for appending under its lock; None while another request
        holds it, or once the upload is over (its bytes are gone)."""
        try:
            descriptor = os.open(self._data(upload.upload_id), os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            yield None
            return
        with os.fdopen(descriptor, "ab") as data:
            try:
                fcntl.flock(data.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield data  # the lock goes with the descriptor when the file closes

    def open_bytes(self, upload: Upload) -> BinaryIO:
        return open(self._data(upload.upload_id), "rb")

    def discard(self, upload: Upload, *, keep_metadata: bool) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._data(upload.upload_id).unlink()
        if not keep_metadata:
            with contextlib.suppress(FileNotFoundError):
                self._meta(upload.upload_id).unlink()
        _fsync_dir(self.root)

    def _data(self, upload_id: str) -> Path:
        return self.root / upload_id

    def _meta(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.json"


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def tus_refusal() -> tuple[Response | str, int] | None:
    """412 unless the request speaks tus 1.0.0 (every tus request but OPTIONS must say so)."""
    if request.headers.get("Tus-Resumable") == TUS_VERSION:
        return None
    message = _("This is a tus 1.0.0 endpoint: send the header Tus-Resumable: 1.0.0.")
    return with_headers(error_response(412, message), {"Tus-Version": TUS_VERSION})


def tus_headers(upload: Upload, offset: int) -> dict[str, str]:
    headers = {"Upload-Offset": str(offset), "Upload-Length": str(upload.length)}
    if upload.document_id is not None:
        headers["Carepath-Document-Id"] = upload.document_id
    return headers


@bp.route("/uploads", methods=["OPTIONS"], provide_automatic_options=False)
def tus_options() -> tuple[str, int, dict[str, str]]:
    case = documents().stage_two(signed_in_case_id()).case
    largest = max((i.max_bytes for i in case.intake.checklist), default=0)
    return (
        "",
        204,
        {"Tus-Version": TUS_VERSION, "Tus-Extension": "creation", "Tus-Max-Size": str(largest)},
    )


@bp.post("/uploads")
def tus_create() -> tuple[Response | str, int] | tuple[str, int, dict[str, str]]:
    """Creation: Upload-Length and Upload-Metadata (item, filename, optional replaces)."""
    case_id = signed_in_case_id()
    if refused := tus_refusal():
        return refused
    length = upload_length()
    metadata = upload_metadata()
    if length == 0:
        raise DocumentRefused("empty", "The selected file is empty")
    stage = documents().stage_two(case_id)
    item = stage.case.intake.checklist_item(metadata["item"])
    if item is None:
        raise ChecklistItemNotFound(f"the checklist has no item {metadata['item']}")
    require_uploads_open(stage)
    if length > item.max_bytes:
        refusal = DocumentRefused("too_large", "", mb=f"{item.max_bytes / 2**20:g}")
        return too_large(document_message(refusal), reason="too_large")
    upload = Upload(
        upload_id=secrets.token_hex(16),
        case_id=str(case_id),
        item=item.key,
        filename=metadata["filename"],
        length=length,
        created=datetime.now(UTC).isoformat(),
        replaces=metadata.get("replaces") or None,
    )
    staging().create(upload)
    location = url_for(".tus_upload", upload_id=upload.upload_id)
    return "", 201, {"Location": location, "Upload-Offset": "0"}


def upload_length() -> int:
    raw = request.headers.get("Upload-Length", "")
    if not raw.isdigit() or len(raw) > 15:
        raise Invalid({"Upload-Length": [_("Send the file's size in bytes as Upload-Length.")]})
    return int(raw)


def upload_metadata() -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs; item and filename needed."""
    pairs: dict[str, str] = {}
    problem = _("Upload-Metadata must hold item and filename, each value base64 of UTF-8 text.")
    for part in request.headers.get("Upload-Metadata", "").split(","):
        key, _sep, encoded = part.strip().partition(" ")
        if not key:
            continue
        try:
            # tus 1.0 makes a value any bytes: read as UTF-8, a byte that is not shows as U+FFFD
            # (the file name is for display only; an item key then matches no item: a 404)
            value = base64.b64decode(encoded.strip(), validate=True)
            pairs[key] = value.decode("utf-8", errors="replace")
        except binascii.Error:
            raise Invalid({"Upload-Metadata": [problem]}) from None
    if not pairs.get("item") or not pairs.get("filename"):
        raise Invalid({"Upload-Metadata": [problem]})
    return pairs


def require_uploads_open(stage: StageTwo) -> None:
    """Refuse at creation what the last PATCH would be refused anyway: no running invitation.

    Other states (the application sent, an officer's open request) are the case's to judge when
    the document is recorded.
    """
    case: CaseView = stage.case
    if case.status is CaseStatus.DRAFT or (case.status is CaseStatus.SUBMITTED and not stage.open):
        if stage.deadline is None:
            raise NotInvited("this case holds no running invitation")
        raise DeadlinePassed(f"the invitation's deadline passed at {stage.deadline.isoformat()}")


@bp.route("/uploads/<upload_id>", methods=["GET", "HEAD"])
def tus_upload(upload_id: str) -> tuple[Response | str, int] | Response:
    """HEAD (tus): the stored offset, completing an upload whose bytes all arrived before a
    crash. GET: the same as JSON, with the document once recorded."""
    case_id = signed_in_case_id()
    if request.method == "HEAD" and (refused := tus_refusal()):
        return refused
    store = staging()
    upload = store.find(upload_id, case_id)
    if upload.document_id is None and store.offset(upload) == upload.length:
        with store.locked(upload) as data:
            if data is not None:  # else a PATCH is completing it right now
                complete(store, store.find(upload_id, case_id), case_id)
        upload = store.find(upload_id, case_id)  # as completed, here or by that PATCH
    offset = store.offset(upload)
    if request.method == "HEAD":
        return Response(status=200, headers=tus_headers(upload, offset))
    return jsonify(
        {
            "upload_id": upload.upload_id,
            "item": upload.item,
            "filename": upload.filename,
            "length": upload.length,
            "offset": offset,
            "complete": upload.document_id is not None,
            "document_id": upload.document_id,
        }
    )


@bp.patch("/uploads/<upload_id>")
def tus_append(upload_id: str) -> tuple[Response | str, int] | Response:
    """Append the body at Upload-Offset; the last byte records the document."""
    case_id = signed_in_case_id()
    if refused := tus_refusal():
        return refused
    if request.mimetype != TUS_CONTENT_TYPE:
        return error_response(415, _("Send the bytes as %(type)s.", type=TUS_CONTENT_TYPE))
    claimed = request.headers.get("Upload-Offset", "")
    if not claimed.isdigit():
        raise Invalid({"Upload-Offset": [_("Send the offset the bytes start at.")]})
    length = content_length()
    if length is None:
        return error_response(411, _("Send a Content-Length header with the chunk's size."))
    store = staging()
    with store.locked(store.find(upload_id, case_id)) as data:
        upload = store.find(upload_id, case_id)  # as it is now that this request holds the lock
        offset = store.offset(upload)
        if int(claimed) != offset:
            message = _("The upload holds %(offset)s bytes: continue from there.", offset=offset)
            return with_headers(error_response(409, message), tus_headers(upload, offset))
        if data is None and upload.document_id is None:
            return error_response(423, _("Another request is adding to this upload. Retry soon."))
        if data is not None and length:
            if offset + length > upload.length:
                return too_large(_("The chunk goes past the upload's Upload-Length."))
            offset = append(data, ExactBody(length))
        if data is not None and offset == upload.length:
            upload = complete(store, upload, case_id)
    return Response(status=204, headers=tus_headers(upload, offset))


def with_headers(
    answer: tuple[Response | str, int], headers: dict[str, str]
) -> tuple[Response, int]:
    body, status = answer
    response = body if isinstance(body, Response) else Response(body)
    response.headers.update(headers)
    return response, status


def append(data: IO[bytes], body: ExactBody) -> int:
    """Copy the request body to the staging file; fsync what arrived even if the client went
    away mid-body (the stored offset is the file's size). Returns the new size."""
    try:
        while chunk := body.read(CHUNK):
            data.write(chunk)
    finally:
        data.flush()
        os.fsync(data.fileno())
    return data.tell()


def complete(store: Staging, upload: Upload, case_id: UUID) -> Upload:
    """Record the document of a fully received upload (at most once, by its idempotency key)."""
    try:
        with store.open_bytes(upload) as content:
            done = documents().add_document(
                case_id,
                upload.item,
                content,
                upload.filename,
                idempotency_key=f"tus:{upload.upload_id}",
                replaces=upload.replaces,
            )
    except DocumentRefused:
        store.discard(upload, keep_metadata=False)
        raise
    finished = Upload(**{**asdict(upload), "document_id": done.document_id})
    store.save(finished)
    store.discard(finished, keep_metadata=True)
    return finished
