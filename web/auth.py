"""Applicant sessions: server-side, a new id at every sign-in, the case id the only key."""

from __future__ import annotations

import time
from uuid import UUID

from flask import Flask, abort, current_app, session

# A session is written back to the store only when it changes (SESSION_REFRESH_EACH_REQUEST is
# off: one store write per request was an eighth of a request's CPU in the surge). Its lifetime
# still slides: an applicant's session is touched, and so written, at most this often.
TOUCH_SECONDS = 15 * 60


def sign_in_session(case_id: UUID) -> None:
    """A new session id on every sign-in, so a session fixed before sign-in is worthless."""
    language = session.get("lang")
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    session.permanent = False  # a browser-session cookie; the store's expiry still applies
    session["case_id"] = str(case_id)
    session["seen"] = int(time.time())
    if language:
        session["lang"] = language


def signed_in_case_id() -> UUID:
    """The case this session opens; 401 when it opens none."""
    case_id = session.get("case_id")
    if case_id is None:
        abort(401)
    return UUID(case_id)


def _touch() -> None:
    """Keep an active applicant's session alive: its lifetime counts from the last touch."""
    if "case_id" in session and time.time() - session.get("seen", 0) > TOUCH_SECONDS:
        session["seen"] = int(time.time())


def init_app(app: Flask) -> None:
    app.before_request(_touch)
