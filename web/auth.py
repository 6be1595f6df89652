"""Applicant sessions: server-side, a new id at every sign-in, the case id the only key."""

from __future__ import annotations

from uuid import UUID

from flask import abort, current_app, session


def sign_in_session(case_id: UUID) -> None:
    """A new session id on every sign-in, so a session fixed before sign-in is worthless."""
    language = session.get("lang")
    current_app.session_interface.regenerate(session)  # type: ignore[attr-defined]
    session.clear()
    session.permanent = True
    session["case_id"] = str(case_id)
    if language:
        session["lang"] = language


def signed_in_case_id() -> UUID:
    """The case this session opens; 401 when it opens none."""
    case_id = session.get("case_id")
    if case_id is None:
        abort(401)
    return UUID(case_id)
