"""Applicant sessions: server-side, a new id at every sign-in, the case id the only key.

A new access code (a recovery) ends every session opened before it, on every device: the reset
records its time under the case in the session store, and a session signed in earlier is cleared
on its next request. The record lives beside the sessions it ends, in the same store, for as long
as a session can (losing the store loses both).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from flask import Flask, Response, abort, current_app, jsonify, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Unauthorized

# A session is written back to the store only when it changes (SESSION_REFRESH_EACH_REQUEST is
# off: one store write per request was an eighth of a request's CPU in the surge). Its lifetime
# still slides: an applicant's session is touched, and so written, at most this often.
TOUCH_SECONDS = 15 * 60


REVOKED_PREFIX = "carepath-revoked:"
CODE_CHANGED = _l("Your access code was changed. Sign in with the new code.")


class SessionEnded(Unauthorized):
    """A session opened before the case's access code was changed."""


def sign_in_session(case_id: UUID) -> None:
    """A new session id on every sign-in, so a session fixed before sign-in is worthless."""
    language = session.get("lang")
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    session.permanent = False  # a browser-session cookie; the store's expiry still applies
    session["case_id"] = str(case_id)
    session["seen"] = int(time.time())
    session["signed_at"] = time.time()
    if language:
        session["lang"] = language


def end_sessions_before_now(case_id: UUID) -> None:
    """Every session of this case signed in before now stops working (call it before signing in
    the session that changed the code)."""
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    _store_set(REVOKED_PREFIX + case_id.hex, repr(time.time()), lifetime)


def signed_in_case_id() -> UUID:
    """The case this session opens; 401 when it opens none, or no longer (`SessionEnded`)."""
    case_id = session.get("case_id")
    if case_id is None:
        abort(401)
    found = UUID(case_id)
    ended = _store_get(REVOKED_PREFIX + found.hex)
    # sessions from before this check was added carry no signed_at: they end at any reset
    if ended is not None and session.get("signed_at", 0.0) < float(ended):
        language = session.get("lang")
        session.clear()
        if language:
            session["lang"] = language
        raise SessionEnded()
    return found


def _store_set(key: str, value: str, timeout: int) -> None:
    config = current_app.config
    if config["SESSION_TYPE"] == "redis":
        config["SESSION_REDIS"].set(key, value, ex=timeout)
    else:
        config["SESSION_CACHELIB"].set(key, value, timeout=timeout)


def _store_get(key: str) -> str | None:
    config = current_app.config
    if config["SESSION_TYPE"] == "redis":
        raw = config["SESSION_REDIS"].get(key)
        return raw.decode() if isinstance(raw, bytes) else raw
    found: Any = config["SESSION_CACHELIB"].get(key)
    return found if isinstance(found, str) else None


def _ended(error: SessionEnded) -> tuple[Response, int] | Response:
    if request.path.startswith("/api/"):
        return jsonify({"error": str(CODE_CHANGED), "code": "SessionEnded"}), 401
    return redirect(url_for("applicant.sign_in", ended="code_changed"), 303)


def _touch() -> None:
    """Keep an active applicant's session alive: its lifetime counts from the last touch."""
    if "case_id" in session and time.time() - session.get("seen", 0) > TOUCH_SECONDS:
        session["seen"] = int(time.time())


def init_app(app: Flask) -> None:
    app.before_request(_touch)
    app.register_error_handler(SessionEnded, _ended)
