"""Recovery of a lost access code: ask for a link by email, then follow it to set a new code.

The answer to a request never says whether the details matched (the same redirect and page, and
the same per-case rate limit, for an existing case and for none); the link's page sets nothing
until its button is pressed, because mail scanners open links.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address

from domain import errors as domain
from domain.recovery import Recovery
from web.applicant import new_key, parse
from web.auth import end_sessions_before_now, sign_in_session, signed_in_case_id
from web.errors import describe
from web.extensions import limiter
from web.forms import Field, choices
from web.i18n import current_language
from web.schemas import REFERENCE_EXAMPLE, EnvelopeSchema, RecoverySchema, shared

bp = Blueprint("recovery", __name__)

FIELDS = {
    "reference": Field(
        "reference",
        _l("Reference"),
        hint=_l(
            "For example, %(example)s. It was shown when you registered.", example=REFERENCE_EXAMPLE
        ),
        width="short",
    ),
    "passport_number": Field("passport_number", _l("Passport number"), width="short"),
    "passport_country": Field(
        "passport_country",
        _l("Country that issued your passport"),
        kind="select",
        choices="countries",
    ),
    "date_of_birth": Field(
        "date_of_birth",
        _l("Date of birth"),
        kind="date",
        hint=_l("For example, 27 April 1985"),
        autocomplete="bday",
        width="short",
    ),
}
ORDER = tuple(FIELDS)


def recovery() -> Recovery:
    service: Recovery = current_app.extensions["carepath.recovery"]
    return service


def details(form: dict[str, Any]) -> dict[str, Any]:
    """The service's arguments from a valid form: the reference if given, else the passport."""
    if form["reference"]:
        return {"reference": form["reference"], "date_of_birth": form["date_of_birth"]}
    return {
        "passport": (form["passport_number"], form["passport_country"]),
        "date_of_birth": form["date_of_birth"],
    }


def case_rate_key() -> str:
    """The per-case rate limit's key: one per person whichever details are given, whether or
    not a case exists (domain.recovery.Recovery.rate_key). A post that names no one counts
    against its address instead."""
    posted = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(posted, dict) and not hasattr(posted, "get"):
        posted = {}
    reference = str(posted.get("reference") or "").strip()[:40]
    number = str(posted.get("passport_number") or "").strip()[:40]
    country = str(posted.get("passport_country") or "").strip()[:10]
    if reference:
        return "recovery-case:" + recovery().rate_key(reference=reference)
    if number and country:
        return "recovery-case:" + recovery().rate_key(passport=(number, country))
    return "recovery-unnamed:" + get_remote_address()


def request_link(form: dict[str, Any]) -> None:
    """Ask the service for a link, answering no sooner than RECOVERY_FLOOR_SECONDS after the
    request began: a match records an event and a miss does not, and the time that takes must
    not tell an onlooker which it was. (While the lookup itself takes longer than the floor, the
    difference shows: the floor is set well above the store's usual commit time.)"""
    started = time.monotonic()
    recovery().request(**details(form), language=current_language())
    left = current_app.config["RECOVERY_FLOOR_SECONDS"] - (time.monotonic() - started)
    if left > 0:
        sleep: Callable[[float], None] = current_app.extensions.get("carepath.sleep", time.sleep)
        sleep(left)


def render_form(values: Any, errors: dict[str, list[str]], status: int = 200) -> tuple[str, int]:
    language = current_language()
    return render_template(
        "recover.html",
        fields=FIELDS,
        order=ORDER,
        values=values,
        errors=errors,
        choices=lambda name: choices(name, language),
    ), status


# Shared by the page and the API: one budget per address and one per case, whichever is used.
per_address = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_RECOVERY"], scope="recovery-address", methods=["POST"]
)
per_case = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_RECOVERY_CASE"],
    scope="recovery-case",
    key_func=case_rate_key,
    methods=["POST"],
)


@bp.route("/recover", methods=["GET", "POST"])
@per_address
@per_case
def ask() -> Any:
    if request.method == "GET":
        return render_form({}, {})
    form, errors = parse(shared(RecoverySchema), request.form.to_dict())
    if errors:
        return render_form(request.form, errors, 422)
    request_link(form)
    return redirect(url_for(".sent"), 303)


@bp.get("/recover/sent")
def sent() -> str:
    return render_template("recover_sent.html", minutes=_link_minutes())


@bp.route("/recover/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_SIGNIN"], methods=["POST"])
def follow(token: str) -> Any:
    envelope, errors = parse(shared(EnvelopeSchema), request.form.to_dict())
    if request.method == "POST" and errors:
        abort(400)
    try:
        if request.method == "GET":
            recovery().check(token)
            return render_template("recover_link.html", token=token, idempotency_key=new_key())
        done = recovery().reset(token, idempotency_key=envelope["idempotency_key"])
    except domain.RecoveryLinkInvalid as refused:
        status, message = describe(refused)
        return render_template("recover_refused.html", message=message), status
    if not done.replayed:  # a retry of the same reset keeps the session its first try opened
        end_sessions_before_now(done.case_id)
    sign_in_session(done.case_id)
    # Shown on the next page (and again on a reload) until the applicant moves on.
    session["credentials"] = {"reference": done.reference, "access_code": done.access_code}
    return redirect(url_for(".done"), 303)


@bp.get("/recover/done")
def done() -> Any:
    signed_in_case_id()
    shown = session.get("credentials")
    if shown is None:
        return redirect(url_for("applicant.resume"))
    return render_template("recovered.html", credentials=shown)


@bp.errorhandler(429)
def too_many(error: Any) -> tuple[str, int]:
    """The same page whoever the details name, whichever limit (address or case) was reached."""
    return render_template("recover_limited.html"), 429


def _link_minutes() -> int:
    return int(recovery().link_lifetime.total_seconds() // 60)


__all__ = ["bp", "details", "per_address", "per_case", "recovery"]
