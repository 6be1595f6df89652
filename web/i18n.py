"""Which language a request is served in, and remembering the applicant's or staff's choice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from flask import Flask, Response, after_this_request, current_app, request, session
from flask_babel import get_locale

from domain.values import DEFAULT_TIME_ZONE, LANGUAGES
from web.staff_auth import LANG_COOKIE, is_staff_path
from web.times import local_time

STAFF_LANG_DAYS = 365


def select_locale() -> str:
    if is_staff_path(request.path):
        # Staff pages never touch the applicant's session: their choice has its own cookie.
        wanted = request.args.get("lang")
        chosen = wanted if wanted in LANGUAGES else request.cookies.get(LANG_COOKIE)
    else:
        chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def current_language() -> str:
    return select_locale()


def _remember_choice() -> None:
    """`?lang=fr` on any page switches the language for the rest of the session."""
    wanted = request.args.get("lang")
    if wanted not in LANGUAGES:
        return
    if is_staff_path(request.path):
        if request.cookies.get(LANG_COOKIE) != wanted:
            after_this_request(_staff_language_cookie(wanted))
    elif session.get("lang") != wanted:
        session["lang"] = wanted


def _staff_language_cookie(language: str) -> Callable[[Response], Response]:
    def remember(response: Response) -> Response:
        response.set_cookie(
            LANG_COOKIE,
            language,
            max_age=STAFF_LANG_DAYS * 24 * 3600,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.extensions["carepath.settings"].secure_cookies),
        )
        return response

    return remember


def local_time_filter(
    moment: datetime, zone: str, width: Literal["short", "medium", "long"] = "medium"
) -> str:
    """`{{ case.submitted_at|local_time(case.intake.time_zone) }}`: the time in that zone, in
    the page's language, the zone named (`default_time_zone` where no intake is concerned)."""
    locale = get_locale()
    return local_time(moment, zone, locale.language if locale else LANGUAGES[0], width)


def init_app(app: Flask) -> None:
    app.before_request(_remember_choice)
    app.context_processor(
        lambda: {"lang": current_language(), "default_time_zone": DEFAULT_TIME_ZONE}
    )
    app.add_template_filter(local_time_filter, "local_time")
