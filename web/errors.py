"""Maps each domain error and HTTP error to a status code and a message, in one place."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from domain import errors as domain
from domain.group_commit import CommitTimeout

RETRY_AFTER_SECONDS = 5

# Most specific first: the first class an error is an instance of decides.
MESSAGES: tuple[tuple[type[domain.CarepathError], int, Any], ...] = (
    (
        domain.DuplicateRegistration,
        409,
        _l(
            "You are already registered in this intake. Sign in with your reference and access code "
            "to continue your application."
        ),
    ),
    (
        domain.StaleVersion,
        409,
        _l(
            "Your application changed in another tab or on another device since you opened this page. "
            "Nothing on this page was saved. Check your answers and save again."
        ),
    ),
    (
        domain.IdempotencyKeyReused,
        409,
        _l("This form was already used for something else. Reload the page and try again."),
    ),
    (domain.IntakeNotOpen, 409, _l("This intake is not open for registrations.")),
    (domain.IntakeStateError, 409, _l("This intake cannot change to that state now.")),
    (domain.IntakeAlreadyDefined, 409, _l("An intake with this code already exists.")),
    (
        domain.CaseClosed,
        409,
        _l("Your application can no longer be changed: it has been submitted or withdrawn."),
    ),
    (
        domain.IncompleteRegistration,
        409,
        _l("Some steps of your application are not finished yet. Complete them before you submit."),
    ),
    (
        domain.IdentityLocked,
        409,
        _l(
            "Your passport details and date of birth cannot be changed after you register. "
            "If they are wrong, withdraw and register again."
        ),
    ),
    (
        domain.SignInFailed,
        401,
        _l(
            "We could not find an application with that reference and access code. Check both and "
            "try again."
        ),
    ),
    (
        domain.NoOpenRequest,
        409,
        _l("This request for information was already answered. Reload the page to see it."),
    ),
    (
        domain.CaseActionRefused,
        409,
        _l("This action does not fit where the case is now. Reload the page and check the case."),
    ),
    (
        domain.StaffLockedOut,
        423,
        _l(
            "This account is locked after too many failed sign-ins. Wait 15 minutes and try "
            "again, or ask an administrator."
        ),
    ),
    (
        domain.StaffSignInFailed,
        401,
        _l(
            "The email address, password or code is not right. Check them and try again: codes "
            "change every 30 seconds."
        ),
    ),
    (
        domain.EnrolmentInvalid,
        404,
        _l(
            "This enrolment link does not work: it was used already, replaced by a newer one or "
            "is more than 72 hours old. Ask an administrator for a new link."
        ),
    ),
    (
        domain.RecoveryLinkExpired,
        410,
        _l(
            "This link has expired: links to set a new access code work for a short time only. "
            "Ask for a new link."
        ),
    ),
    (
        domain.RecoveryLinkUsed,
        410,
        _l(
            "This link was already used, or a newer link was sent after it. Use the newest "
            "link, or ask for a new one."
        ),
    ),
    (
        domain.RecoveryLinkInvalid,
        404,
        _l(
            "This link does not work. Check that you copied all of it from the email, or ask "
            "for a new link."
        ),
    ),
    (domain.StaffSessionInvalid, 401, _l("Your staff session has ended. Sign in again.")),
    (domain.NotPermitted, 403, _l("Your staff role does not allow this.")),
    (domain.StaffNotFound, 404, _l("There is no staff member with this email address.")),
    (domain.StaffAlreadyExists, 409, _l("A staff member with this email address already exists.")),
    (
        domain.NotInvited,
        409,
        _l("Your application has no running invitation, so it cannot be completed now."),
    ),
    (
        domain.DeadlinePassed,
        409,
        _l(
            "The deadline of your invitation has passed, so your application can no longer be "
            "sent. The place goes to the next person on the waitlist."
        ),
    ),
    (
        domain.ApplicationIncomplete,
        409,
        _l("Some parts of your application are missing. Complete them before you send it."),
    ),
    (domain.DocumentRefused, 422, _l("The selected file cannot be accepted.")),
    (domain.DocumentNotFound, 404, _l("There is no such document on this application.")),
    (domain.ChecklistItemNotFound, 404, _l("This application's checklist has no such item.")),
    (
        domain.ScannerUnavailable,
        503,
        _l("The virus scanner is not answering. Your file was not kept. Try again shortly."),
    ),
    (domain.IntakeNotFound, 404, _l("There is no intake with this code.")),
    (domain.CaseNotFound, 404, _l("We could not find your application.")),
    (domain.InvalidValue, 422, _l("Some of the information is not valid.")),
    (domain.CarepathError, 409, _l("This request could not be completed.")),
)

HTTP_MESSAGES: dict[int, Any] = {
    400: _l("The request could not be understood. Go back, reload the page and try again."),
    401: _l("Sign in with your reference and access code to see your application."),
    403: _l("You cannot see this page."),
    404: _l("Page not found. Check the address or start again from the home page."),
    405: _l("This page cannot be used that way. Go back and use the buttons on the page."),
    413: _l("What you sent is too large."),
    415: _l("Send the request as JSON (Content-Type: application/json)."),
    422: _l("Some of the information is not valid."),
    429: _l("Too many attempts from your connection. Wait a minute and try again."),
    500: _l("Something went wrong on our side. Your saved answers are safe. Try again shortly."),
    503: _l("The service is busy. Your saved answers are safe. Try again in a few seconds."),
}


# Why a file was refused, by the inspector's code (GOV.UK's file-upload wording where it has one).
DOCUMENT_MESSAGES: dict[str, Any] = {
    "too_large": _l("The selected file must be smaller than %(mb)s MB."),
    "empty": _l("The selected file is empty."),
    "wrong_type": _l("The selected file must be a %(types)s."),
    "pdf_encrypted": _l("The selected file is password protected. Upload it without a password."),
    "pdf_malformed": _l(
        "The selected PDF is damaged and cannot be opened. Save it again and retry."
    ),
    "pdf_active_content": _l(
        "The selected PDF contains active content (JavaScript or actions) and cannot be accepted. "
        "Print it to a new PDF and upload that."
    ),
    "pdf_embedded_files": _l(
        "The selected PDF has files attached inside it. Upload each document on its own."
    ),
    "image_malformed": _l("The selected image is damaged and cannot be opened."),
    "image_too_many_pixels": _l(
        "The selected image is too large in pixels. Take a smaller photo or scan and try again."
    ),
    "polyglot": _l(
        "The selected file is not a plain PDF, JPG or PNG: it contains another kind of file."
    ),
    "bad_name": _l(
        "The file name cannot be used: rename the file with letters, digits, spaces, dots or "
        "dashes (at most 255 characters)."
    ),
    "infected": _l("The selected file contains a virus."),
    "too_many_files": _l("You have uploaded the most files allowed for this document."),
    "case_too_large": _l(
        "Your documents together are larger than this application allows. Remove or replace one."
    ),
}


def document_message(error: domain.DocumentRefused) -> str:
    template = DOCUMENT_MESSAGES.get(error.code)
    if template is None:
        return error.message
    params = {"mb": "?", **error.params}
    params["types"] = type_list(error.params.get("allowed", "pdf,jpeg,png").split(","))
    return str(template) % params


TYPE_NAMES = {"pdf": "PDF", "jpeg": "JPG", "png": "PNG"}


def type_list(tokens: list[str]) -> str:
    """ "PDF, JPG or PNG" in the request's language."""
    names = [TYPE_NAMES.get(t, t.upper()) for t in tokens]
    if len(names) == 1:
        return names[0]
    return _("%(some)s or %(last)s", some=", ".join(names[:-1]), last=names[-1])


def describe(error: domain.CarepathError) -> tuple[int, str]:
    for kind, status, message in MESSAGES:
        if isinstance(error, kind):
            return status, str(message)
    raise TypeError(f"unmapped error {type(error).__name__}")  # unreachable: CarepathError is last


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, **extra: Any) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify({"error": message, **extra}), status
    return render_template("error.html", status=status, message=message), status


def _domain_error(error: domain.CarepathError) -> tuple[Response | str, int]:
    status, message = describe(error)
    extra: dict[str, Any] = {"code": type(error).__name__}
    if isinstance(error, domain.InvalidValue):
        extra["errors"] = {error.field: [error.message]}
    if isinstance(error, domain.StaleVersion):
        extra["current_version"] = error.actual
    if isinstance(error, domain.DuplicateRegistration):  # the way back in for this person
        extra["links"] = {"sign_in": "/api/v1/session", "recovery": "/api/v1/recovery"}
    if isinstance(error, domain.DocumentRefused):
        message = document_message(error)
        extra["errors"] = {"file": [message]}
        extra["reason"] = error.code
    if isinstance(error, domain.ApplicationIncomplete):
        extra["missing_sections"] = list(error.sections)
        extra["missing_documents"] = list(error.items)
    return error_response(status, message, **extra)


def _csrf_error(error: CSRFError) -> tuple[Response | str, int]:
    return error_response(
        400,
        _(
            "This form has expired or was sent from another site. Go back, reload the page and try "
            "again: what you already saved is safe."
        ),
    )


def _http_error(error: HTTPException) -> tuple[Response | str, int] | Response:
    status = error.code or 500
    message = HTTP_MESSAGES.get(status)
    response = error.get_response()
    body, code = error_response(status, str(message) if message else str(error.description))
    if isinstance(body, Response):
        body.headers.extend(
            (k, v) for k, v in response.headers.items() if k in {"Retry-After", "Allow"}
        )
        return body, code
    out = Response(body, status=code, mimetype="text/html")
    out.headers.extend((k, v) for k, v in response.headers.items() if k in {"Retry-After", "Allow"})
    return out


def _storage_unavailable(
    error: PersistenceError | CommitTimeout,
) -> tuple[Response | str, int] | Response:
    """The database is down or overloaded: nothing was acknowledged, so the client may retry."""
    current_app.logger.warning("storage unavailable: %s", error)
    body, status = error_response(503, str(HTTP_MESSAGES[503]))
    response = body if isinstance(body, Response) else Response(body, mimetype="text/html")
    response.status_code = status
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(domain.CarepathError, _domain_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _storage_unavailable)
    app.register_error_handler(InterfaceError, _storage_unavailable)
    app.register_error_handler(CommitTimeout, _storage_unavailable)
