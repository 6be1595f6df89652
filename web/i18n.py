"""Which language a request is served in, and remembering the applicant's choice."""

from __future__ import annotations

from flask import Flask, request, session

from domain.values import LANGUAGES


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def current_language() -> str:
    return select_locale()


def _remember_choice() -> None:
    """`?lang=fr` on any page switches the language for the rest of the session."""
    wanted = request.args.get("lang")
    if wanted in LANGUAGES and session.get("lang") != wanted:
        session["lang"] = wanted


def init_app(app: Flask) -> None:
    app.before_request(_remember_choice)
    app.context_processor(lambda: {"lang": current_language()})
