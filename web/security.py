"""Security headers on every response.

Written here rather than with flask-talisman: six fixed headers do not need a dependency, and
this keeps the Content-Security-Policy next to the templates it has to allow.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _headers(response: Response) -> Response:
    # One look at the headers already set, not one scan per header: this runs on every response.
    present = {name.lower() for name in response.headers.keys()}  # noqa: SIM118 - Headers
    for name, value in HEADERS:
        if name.lower() not in present:
            response.headers.add(name, value)
    if request.is_secure and "strict-transport-security" not in present:
        response.headers.add("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        # Pages and API answers carry personal data: never keep them in a shared cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.after_request(_headers)
