"""Staff sessions: their own cookie (never the applicant's), roles, and CSRF for staff forms.

A staff session is an event in the Staff application's log; the browser holds only
`<staff_id_hex>.<token>` in the `carepath_staff` cookie (or, for the JSON API, a Bearer header).
Every request re-checks it with `Staff.authenticate`, so signing out, an admin's revoke, a
disabled account or a reset ends it at once, in every web process.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    after_this_request,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSession, SessionInterface, SessionMixin
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from domain import errors as domain
from domain.identity import derive_key
from domain.staff import Staff
from domain.values import StaffRole, StaffSession, StaffView
from web.errors import HTTP_MESSAGES, describe
from web.extensions import csrf

COOKIE = "carepath_staff"
PRE_COOKIE = "carepath_staff_pre"  # binds the CSRF token of pages seen before any sign-in
LANG_COOKIE = "carepath_staff_lang"
CSRF_FIELD = "staff_csrf"
CSRF_HEADER = "X-Staff-CSRF"
STAFF_PREFIX = "/staff"
API_PREFIX = "/api/v1/staff"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PRE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_STAFF = "carepath_staff_member"  # flask.g keys
_PAIR = "carepath_staff_pair"
_NEW_PRE = "carepath_staff_new_pre"

P = ParamSpec("P")
R = TypeVar("R")


def is_staff_path(path: str) -> bool:
    """True for the staff pages and the staff JSON API: they use no applicant session."""
    return any(path == p or path.startswith(f"{p}/") for p in (STAFF_PREFIX, API_PREFIX))


def _is_api() -> bool:
    return request.path == API_PREFIX or request.path.startswith(f"{API_PREFIX}/")


def staff_app() -> Staff:
    found: Staff = current_app.extensions["carepath.staff"]
    return found


# Who is asking


def parse_session_value(value: str) -> tuple[UUID, str] | None:
    """(staff id, token) of a cookie or Bearer value `<staff_id_hex>.<token>`, None if malformed."""
    staff_hex, dot, token = value.partition(".")
    if not dot or len(staff_hex) != 32 or not 20 <= len(token) <= 100:
        return None
    try:
        return UUID(hex=staff_hex), token
    except ValueError:
        return None


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def presented_session() -> tuple[UUID, str] | None:
    """The session this request carries: on the API a Bearer header (or the cookie, for reads
    only: a cookie is sent by any site's form, a header is not); on pages, the cookie."""
    if _is_api():
        bearer = _bearer()
        if bearer is not None:
            return parse_session_value(bearer)
        if request.method not in SAFE_METHODS:
            return None
    return parse_session_value(request.cookies.get(COOKIE, ""))


def signed_in_staff() -> StaffView | None:
    """The staff member whose live session this request carries, or None (never redirects)."""
    if _STAFF not in g:
        pair = presented_session()
        member = None
        if pair is not None:
            try:
                member = staff_app().authenticate(*pair)
            except domain.StaffSessionInvalid:
                pair = None
        setattr(g, _STAFF, member)
        setattr(g, _PAIR, pair)
    found: StaffView | None = getattr(g, _STAFF)
    return found


def current_staff() -> StaffView:
    """The signed-in staff member of this request; otherwise the request ends here: pages
    redirect to the sign-in page, the API answers 401."""
    member = signed_in_staff()
    if member is None:
        abort(_sign_in_required())
    return member


def require_staff(*roles: StaffRole) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A view for signed-in staff with one of `roles` (any staff role if none are given)."""
    allowed = frozenset(roles)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            member = current_staff()
            if allowed and member.role not in allowed:
                raise domain.NotPermitted(f"{member.role} may not use {request.endpoint}")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _sign_in_required() -> Response:
    if _is_api():
        response = jsonify(
            {"error": _("Sign in as staff to use this."), "code": "StaffSignInRequired"}
        )
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="carepath staff"'
        return response
    here = request.full_path.rstrip("?") if request.method in SAFE_METHODS else None
    response = redirect(url_for("staff.sign_in", next=here))
    if COOKIE in request.cookies:
        clear_session_cookie(response)  # it opens nothing any more
    return response


# The cookie


def set_session_cookie(response: Response, signed: StaffSession) -> Response:
    """Start the browser's staff session: a cookie that ends with the browser (no Max-Age)."""
    response.set_cookie(
        COOKIE,
        f"{signed.staff_id.hex}.{signed.token}",
        path="/",  # the pages and /api/v1/staff
        httponly=True,
        samesite="Strict",
        secure=_secure(),
    )
    response.delete_cookie(PRE_COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure())
    return response


def clear_session_cookie(response: Response) -> Response:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure())
    return response


def _secure() -> bool:
    return bool(current_app.extensions["carepath.settings"].secure_cookies)


# CSRF: an HMAC of the session token (or of the pre-sign-in cookie), posted in each form


def _csrf_for(basis: str) -> str:
    key = derive_key(current_app.extensions["carepath.settings"].secret, "staff-csrf")
    return hmac.new(key, basis.encode(), hashlib.sha256).hexdigest()


def staff_csrf_token() -> str:
    """The token staff forms post as `staff_csrf` (in templates: `staff_csrf_token()`)."""
    signed_in_staff()
    pair: tuple[UUID, str] | None = getattr(g, _PAIR)
    if pair is not None and not _is_api():
        return _csrf_for(f"session|{pair[1]}")
    return _csrf_for(f"pre|{_pre_value()}")


def _pre_value() -> str:
    value = request.cookies.get(PRE_COOKIE, "")
    if _PRE_VALUE.match(value):
        return value
    if _NEW_PRE not in g:
        made = secrets.token_urlsafe(32)
        setattr(g, _NEW_PRE, made)

        @after_this_request
        def remember(response: Response) -> Response:
            response.set_cookie(
                PRE_COOKIE, made, path="/", httponly=True, samesite="Strict", secure=_secure()
            )
            return response

    made_value: str = getattr(g, _NEW_PRE)
    return made_value


def _check_csrf() -> Response | tuple[Response | str, int] | None:
    """Before every change on a protected blueprint: the posted token must match a cookie."""
    if request.method in SAFE_METHODS or _is_api():
        # On the API a change is authenticated only by a Bearer header, which is no ambient
        # credential (another site cannot send it), and never by the cookie (see
        # presented_session); its sign-in answers with a token in the body, which another
        # site cannot read. So there is nothing there for a forged request to ride on.
        return None
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    bases = []
    pair = parse_session_value(request.cookies.get(COOKIE, ""))
    if pair is not None:
        bases.append(f"session|{pair[1]}")
    if _PRE_VALUE.match(request.cookies.get(PRE_COOKIE, "")):
        bases.append(f"pre|{request.cookies[PRE_COOKIE]}")
    if sent and any(hmac.compare_digest(sent, _csrf_for(b)) for b in bases):
        return None
    return staff_error(
        400,
        _(
            "This form has expired or was not sent from a carepath staff page. Go back, reload "
            "the page and try again."
        ),
        code="StaffCSRFFailed",
    )


def protect(bp: Blueprint) -> Blueprint:
    """Make `bp` a staff blueprint: staff CSRF on every change (instead of Flask-WTF's, which
    would start an applicant session), and errors shown on staff pages."""
    bp.before_request(_check_csrf)
    csrf.exempt(bp)
    bp.register_error_handler(domain.CarepathError, _domain_error)
    bp.register_error_handler(HTTPException, _http_error)
    return bp


# Errors on staff pages


def staff_error(status: int, message: str, **extra: Any) -> tuple[Response | str, int]:
    if _is_api():
        return jsonify({"error": message, **extra}), status
    return render_template("staff/error.html", status=status, message=message), status


def _domain_error(error: domain.CarepathError) -> tuple[Response | str, int]:
    status, message = describe(error)
    extra: dict[str, Any] = {"code": type(error).__name__}
    if isinstance(error, domain.InvalidValue):
        extra["errors"] = {error.field: [error.message]}
    return staff_error(status, message, **extra)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    message = HTTP_MESSAGES.get(status)
    if status == 401:
        message = _("Sign in as staff to use this.")
    body, code = staff_error(status, str(message) if message else str(error.description))
    response = body if isinstance(body, Response) else Response(body, mimetype="text/html")
    response.status_code = code
    for name, value in error.get_response().headers.items():
        if name in {"Retry-After", "Allow"}:
            response.headers[name] = value
    return response


# Keeping the applicant's session out of staff requests


class _DetachedSession(SecureCookieSession):
    """What `flask.session` is on a staff path: empty, and never stored or sent as a cookie."""


class ApplicantSessionOutsideStaff(SessionInterface):
    """The applicant session interface, except on staff paths: there the applicant's cookie is
    neither read nor set, so an applicant session can open no staff page and a staff page can
    never start or change an applicant session."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if is_staff_path(request.path):
            return _DetachedSession()
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, _DetachedSession):
            self.inner.save_session(app, session, response)

    def is_null_session(self, obj: object) -> bool:
        return self.inner.is_null_session(obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # e.g. Flask-Session's regenerate()


def init_app(app: Flask) -> None:
    """After the server-side session is set up: wrap it, and give templates the CSRF token."""
    app.session_interface = ApplicantSessionOutsideStaff(app.session_interface)
    app.add_template_global(staff_csrf_token)
    app.add_template_global(signed_in_staff)
