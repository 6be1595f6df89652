"""The invited applicant's pages: complete the application, upload documents, send, receipt.

Uploads are plain multipart forms (no JavaScript needed). The global request limit is small
(64 KiB, for the surge's forms), so the upload view raises it for its own request to the
checklist item's limit and checks the CSRF token itself after that: the app-wide CSRF check
would read the body before the limit is raised.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, send_file, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from marshmallow import Schema
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import ValidationError as CSRFValidationError

from domain import errors as domain
from domain.documents import Documents, StageTwo
from domain.values import MB, CaseStatus, CaseView, DocumentView
from projections.allocation import AllocationQueries, ReadModelUnavailable
from web.applicant import new_key, parse
from web.auth import signed_in_case_id
from web.errors import describe, document_message, type_list
from web.extensions import csrf
from web.forms import choices as step_choices
from web.i18n import current_language
from web.schemas import EnvelopeSchema, shared
from web.sections import (
    SECTION_FIELDS,
    SECTION_INTROS,
    SECTION_SCHEMAS,
    SECTION_TITLES,
    clean_section,
    section_choices,
    section_display,
)

bp = Blueprint("stage_two", __name__)

FORM_OVERHEAD = 64 * 1024  # the multipart envelope around the file: boundaries, token, key


def documents() -> Documents:
    service: Documents = current_app.extensions["carepath.documents"]
    return service


def choices(name: str) -> list[tuple[str, str]]:
    try:
        return section_choices(name)
    except KeyError:
        return step_choices(name, current_language())


def _allocation_state(case: CaseView) -> Any:
    queries: AllocationQueries = current_app.extensions["carepath.allocations"]
    try:
        return queries.of_case(case.id)
    except ReadModelUnavailable:
        return None


def _may_add_documents(stage: StageTwo) -> bool:
    """Documents change before sending (invitation running) or to answer an open request."""
    if stage.case.status is CaseStatus.SUBMITTED:
        return stage.open
    return stage.case.open_request is not None


def _overview(
    stage: StageTwo, *, errors: dict[str, list[str]] | None = None, status: int = 200, **extra: Any
) -> tuple[str, int]:
    case = stage.case
    language = current_language()
    items = [
        {
            "item": item,
            "name": item.name(language),
            "documents": case.documents_for(item.key),
            "present": any(d.present for d in case.documents_for(item.key)),
            "max_mb": f"{item.max_bytes / MB:g}",
            "types": type_list(list(item.types)),
            "full": len(case.documents_for(item.key)) >= item.max_files,
        }
        for item in case.intake.checklist
    ]
    sections = [
        {"section": s, "title": SECTION_TITLES[s], "done": s in case.details}
        for s in case.intake.sections
    ]
    return render_template(
        "stage_two/overview.html",
        case=case,
        stage=stage,
        items=items,
        sections=sections,
        may_add=_may_add_documents(stage),
        ready=not case.missing_items and not case.missing_sections,
        errors=errors or {},
        idempotency_key=new_key(),
        new_key=new_key,
        **extra,
    ), status


@bp.app_template_filter("filesize")
def filesize(size: int) -> str:
    """583 bytes, 12 KB, 4.2 MB: a size as a person reads it."""
    if size < 1024:
        return _("%(n)s bytes", n=size)
    if size < MB:
        return _("%(n)s KB", n=format_decimal(round(size / 1024)))
    return _("%(n)s MB", n=format_decimal(round(size / MB, 1)))


def _stage() -> StageTwo:
    return documents().stage_two(signed_in_case_id())


@bp.get("/application/complete")
def overview() -> Any:
    stage = _stage()
    if stage.case.status is CaseStatus.SUBMITTED and not stage.open:
        allocation = _allocation_state(stage.case)
        return render_template("stage_two/closed.html", case=stage.case, allocation=allocation)
    if not _may_add_documents(stage) and stage.case.status is not CaseStatus.SUBMITTED:
        return redirect(url_for("applicant.status"))
    added = request.args.get("added")
    return _overview(stage, added=stage.case.document(added) if added else None)


@bp.route("/application/complete/<section>", methods=["GET", "POST"])
def section(section: str) -> Any:
    stage = _stage()
    case = stage.case
    if section not in case.intake.sections:
        return redirect(url_for(".overview"))
    if not stage.open:
        return redirect(url_for(".overview"))
    if request.method == "GET":
        return _section_page(case, section, values=case.details.get(section, {}), errors={})
    schema: Schema = shared(SECTION_SCHEMAS[section])
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    posted = {
        name: value
        for name in schema.fields
        if (value := request.form.get(name)) is not None
        and not (value == "" and not schema.fields[name].required)
    }
    answers, answer_errors = parse(schema, posted)
    errors.update(answer_errors)
    if errors:
        return _section_page(case, section, values=request.form, errors=errors, status=422)
    try:
        documents().save_details(
            case.id,
            section,
            clean_section(answers),
            expected_version=envelope.get("version", 0),
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
        )
    except domain.StaleVersion as stale:
        fresh = documents().stage_two(case.id).case
        return _section_page(
            fresh,
            section,
            values=fresh.details.get(section, {}),
            errors={},
            banner=describe(stale)[1],
            status=409,
        )
    return redirect(url_for(".overview", _anchor=f"section-{section}"))


def _section_page(
    case: CaseView,
    section: str,
    *,
    values: Any,
    errors: dict[str, list[str]],
    banner: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return render_template(
        "stage_two/section.html",
        case=case,
        section=section,
        title=SECTION_TITLES[section],
        intro=SECTION_INTROS[section],
        fields=SECTION_FIELDS[section],
        choices=choices,
        values=values,
        errors=errors,
        banner=banner,
        version=case.version,
        idempotency_key=new_key(),
    ), status


@bp.post("/application/documents/items/<item>")
@csrf.exempt  # checked below, once the request's size limit fits the item (see module doc)
def upload(item: str) -> Any:
    stage = _stage()
    found = stage.case.intake.checklist_item(item)
    if found is None:
        return redirect(url_for(".overview"))
    field = f"file-{item}"
    request.max_content_length = found.max_bytes + FORM_OVERHEAD
    try:
        form = request.form
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        message = document_message(
            domain.DocumentRefused("too_large", "", mb=f"{found.max_bytes / MB:g}")
        )
        return _overview(stage, errors={field: [message]}, status=413)
    try:
        validate_csrf(form.get("csrf_token"))
    except CSRFValidationError as invalid:
        raise CSRFError(str(invalid)) from None
    envelope, errors = parse(shared(EnvelopeSchema), form.to_dict())
    if errors:
        return _overview(stage, errors=errors, status=400)
    if upload is None or not upload.filename:
        return _overview(stage, errors={field: [_select_a_file()]}, status=422)
    try:
        done = documents().add_document(
            stage.case.id,
            item,
            upload.stream,
            upload.filename,
            idempotency_key=envelope["idempotency_key"],
            replaces=form.get("replaces") or None,
        )
    except domain.DocumentRefused as refused:
        return _overview(_stage(), errors={field: [document_message(refused)]}, status=422)
    except (domain.DocumentNotFound, domain.CaseClosed, domain.NotInvited) as refused:
        status, message = describe(refused)
        return _overview(_stage(), errors={field: [message]}, status=status)
    except domain.DeadlinePassed:
        return redirect(url_for(".overview"))
    return redirect(url_for(".overview", added=done.document_id, _anchor=f"item-{item}"))


def _select_a_file() -> str:
    return _("Select a file to upload")


@bp.post("/application/documents/<document_id>/remove")
def remove(document_id: str) -> Any:
    stage = _stage()
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    if errors:
        return _overview(stage, errors=errors, status=400)
    try:
        documents().remove_document(
            stage.case.id, document_id, idempotency_key=envelope["idempotency_key"]
        )
    except domain.DocumentNotFound:
        pass  # removed already, in another tab: the page shows what is there now
    except domain.DeadlinePassed:
        return redirect(url_for(".overview"))
    return redirect(url_for(".overview"))


@bp.get("/application/documents/<document_id>")
def download(document_id: str) -> Response:
    """The applicant's own document, as an attachment of its detected type."""
    document, content = documents().open_document(signed_in_case_id(), document_id)
    return attachment(document, content)


def attachment(document: DocumentView, content: Any) -> Response:
    response = send_file(
        content,
        mimetype=document.media_type,
        as_attachment=True,
        download_name=document.name,
        max_age=0,
        etag=document.digest,
        conditional=False,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


@bp.post("/application/complete/send")
def send() -> Any:
    stage = _stage()
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    if errors or "version" not in envelope:
        return _overview(stage, errors=errors, status=400)
    try:
        documents().submit_application(
            stage.case.id,
            expected_version=envelope["version"],
            language=current_language(),
            idempotency_key=envelope["idempotency_key"],
        )
    except domain.ApplicationIncomplete as missing:
        return _overview(
            stage,
            errors=_missing_errors(stage.case, missing),
            status=409,
        )
    except domain.StaleVersion as stale:
        return _overview(_stage(), banner=describe(stale)[1], status=409)
    except (domain.DeadlinePassed, domain.NotInvited):
        return redirect(url_for(".overview"))
    except domain.CaseClosed:
        return redirect(url_for(".receipt"))
    return redirect(url_for(".receipt"))


def _missing_errors(case: CaseView, missing: domain.ApplicationIncomplete) -> dict[str, list[str]]:
    language = current_language()
    errors: dict[str, list[str]] = {}
    for section_name in missing.sections:
        errors[f"section-{section_name}"] = [
            _("Complete the section: %(name)s", name=str(SECTION_TITLES[section_name]))
        ]
    for key in missing.items:
        item = case.intake.checklist_item(key)
        name = item.name(language) if item else key
        errors[f"file-{key}"] = [_("Upload a file for: %(name)s", name=name)]
    return errors


@bp.get("/application/complete/receipt")
def receipt() -> Any:
    stage = _stage()
    case = stage.case
    if case.application_submitted_at is None:
        return redirect(url_for(".overview"))
    language = current_language()
    sections = [
        {
            "title": SECTION_TITLES[s],
            "rows": [
                (f.label, section_display(f, case.details.get(s, {}).get(f.name), language))
                for f in SECTION_FIELDS[s]
            ],
        }
        for s in case.intake.sections
    ]
    names = {item.key: item.name(language) for item in case.intake.checklist}
    return render_template("stage_two/receipt.html", case=case, sections=sections, names=names)


__all__ = ["attachment", "bp"]
