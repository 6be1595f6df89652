"""Staff pages under /staff: sign-in with a second factor, sign-out, enrolment, staff admin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from domain import errors as domain
from domain.staff import Staff
from domain.values import DEFAULT_TIME_ZONE, StaffRole, StaffView
from web.credentials import WebCredentials
from web.errors import describe
from web.extensions import limiter
from web.i18n import local_time_filter
from web.schemas import flatten, shared
from web.staff_auth import (
    clear_session_cookie,
    current_staff,
    parse_session_value,
    presented_session,
    protect,
    require_staff,
    set_session_cookie,
    staff_app,
)
from web.staff_schemas import AddStaffSchema, EnrolSchema, StaffSignInSchema

bp = Blueprint("staff", __name__, url_prefix="/staff")
protect(bp)

OFFICER_HOME = "/staff/board"  # the officers' quota board (web/officer.py)
DONE = {"revoke", "disable", "enable"}
ACTIONS = {"revoke": Staff.revoke_sessions, "disable": Staff.disable, "enable": Staff.enable}


def credentials() -> WebCredentials:
    found: WebCredentials = current_app.extensions["carepath.staff_credentials"]
    return found


def parse(schema: Schema) -> tuple[dict[str, Any], dict[str, list[str]]]:
    try:
        return schema.load(request.form.to_dict()), {}
    except ValidationError as invalid:
        return {}, flatten(invalid.messages)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a local staff page or staff API path."""
    parts = urlsplit(target or "")
    local = not parts.scheme and not parts.netloc and "\\" not in (target or "")
    if local and (parts.path == "/staff" or parts.path.startswith(("/staff/", "/api/v1/staff"))):
        return str(target)
    return url_for(".index")


def actor() -> str:
    return f"staff:{current_staff().id.hex}"


def enrolment_url(staff_id: UUID, token: str) -> str:
    return url_for(".enrol", link=f"{staff_id.hex}.{token}", _external=True)


# Sign-in and sign-out


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_STAFF_SIGNIN"], methods=["POST"])
def sign_in() -> Any:
    if request.method == "GET":
        return _sign_in_page({})
    form, errors = parse(shared(StaffSignInSchema))
    if errors:
        return _sign_in_page(errors), 422
    try:
        signed = staff_app().sign_in(form["email"], form["password"], form["code"])
    except domain.StaffLockedOut as locked:
        until = local_time_filter(locked.until, DEFAULT_TIME_ZONE, "short")  # type: ignore[arg-type]
        message = _("This account is locked after too many failed sign-ins until %(until)s.")
        return _sign_in_page({}, failure=message % {"until": until}, email=form["email"]), 423
    except domain.StaffSignInFailed as failed:
        return _sign_in_page({}, failure=describe(failed)[1], email=form["email"]), 401
    return set_session_cookie(redirect(safe_next(request.args.get("next"))), signed)


def _sign_in_page(errors: dict[str, list[str]], **extra: Any) -> str:
    email = extra.pop("email", request.form.get("email", ""))
    return render_template(
        "staff/sign_in.html",
        errors=errors,
        email=email,
        next=request.args.get("next"),
        enrolled=request.args.get("enrolled") == "1",
        **extra,
    )


@bp.post("/sign-out")
def sign_out() -> Response:
    presented = presented_session()
    if presented is not None:
        staff_app().sign_out(*presented)
    return clear_session_cookie(redirect(url_for(".signed_out")))


@bp.get("/signed-out")
def signed_out() -> str:
    return render_template("staff/signed_out.html")


@bp.get("/")
@require_staff()
def index() -> Response:
    if current_staff().role is StaffRole.ADMIN:
        return redirect(url_for(".admin_staff"))
    return redirect(OFFICER_HOME)


# Enrolment: a one-time link, a new password and the first code from the authenticator app


@bp.route("/enrol/<link>", methods=["GET", "POST"])
def enrol(link: str) -> Any:
    staff_id, token = parse_session_value(link) or abort(404)
    member = staff_app().enrolment(staff_id, token)
    secret = credentials().new_secret_for(staff_app().enrolment_secret_seed(staff_id, token))
    if request.method == "GET":
        return _enrol_page(member, secret, {})
    form, errors = parse(shared(EnrolSchema))
    if not errors and credentials().step_for(secret, form["code"]) is None:
        errors = {"code": [_("The code is not right: enter the code your app shows now")]}
    if errors:
        return _enrol_page(member, secret, errors), 422
    staff_app().enrol(
        staff_id,
        token,
        password_hash=credentials().hash_password(form["password"]),
        sealed_secret=credentials().seal(secret),
    )
    return redirect(url_for(".sign_in", enrolled=1))


def _enrol_page(member: StaffView, secret: str, errors: dict[str, list[str]]) -> str:
    uri = credentials().provisioning_uri(secret, member.email)
    return render_template(
        "staff/enrol.html",
        member=member,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        uri=uri,
        qr=credentials().qr_data_uri(uri),
        errors=errors,
    )


# Staff admin


@bp.get("/admin/staff")
@require_staff(StaffRole.ADMIN)
def admin_staff() -> str:
    return _admin_page({}, {})


def _admin_page(errors: dict[str, list[str]], values: dict[str, str]) -> str:
    members = staff_app().list_staff()
    done, about = request.args.get("done"), request.args.get("member", "")
    changed = next((m for m in members if m.id.hex == about), None) if done in DONE else None
    return render_template(
        "staff/admin.html",
        members=members,
        me=current_staff(),
        done=done if changed else None,
        changed=changed,
        errors=errors,
        values=values,
        roles=[r.value for r in StaffRole],
    )


@bp.post("/admin/staff")
@require_staff(StaffRole.ADMIN)
def add_staff() -> Any:
    form, errors = parse(shared(AddStaffSchema))
    if errors:
        return _admin_page(errors, request.form.to_dict()), 422
    try:
        staff_id, token = staff_app().add(
            form["email"], role=form["role"], name=form["name"], actor=actor()
        )
    except domain.StaffAlreadyExists as exists:
        return _admin_page({"email": [describe(exists)[1]]}, request.form.to_dict()), 409
    # Shown in this answer only, never stored or put in a URL: so no redirect here.
    return render_template(
        "staff/link.html", member=staff_app().get(staff_id), link=enrolment_url(staff_id, token)
    )


@bp.post("/admin/staff/<staff_id>/<action>")
@require_staff(StaffRole.ADMIN)
def member_action(staff_id: str, action: str) -> Any:
    if action not in {*ACTIONS, "reset"}:
        abort(404)
    member = staff_app().get(_staff_id(staff_id))
    if action == "reset":
        token = staff_app().reset(member.id, actor=actor())
        link = enrolment_url(member.id, token)
        return render_template("staff/link.html", member=member, link=link, reset=True)
    ACTIONS[action](staff_app(), member.id, actor=actor())
    return redirect(url_for(".admin_staff", done=action, member=member.id.hex))


def _staff_id(value: str) -> UUID:
    try:
        return UUID(hex=value)
    except ValueError:
        abort(404)
