"""Staff members for tests: enrolled through the real enrolment page, signed in with real TOTP codes.

email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
client = staff_client(app, "auditor")      # a Flask test client with a live staff session
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pyotp

from domain.values import StaffRole
from tests.forms import hidden_fields, text_of

PASSWORD = "correct horse battery staple"


def staff_app(app: Any) -> Any:
    return app.extensions["carepath.staff"]


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or `steps_ahead` 30-second steps later: the
    server accepts one step either side, and each step only once per member)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def add_staff(
    app: Any, role: StaffRole | str, email: str | None = None, name: str = ""
) -> tuple[str, str]:
    """(email, enrolment path) of a new member added as the CLI does."""
    email = email or f"{StaffRole(role).value}-{secrets.token_hex(4)}@example.gov"
    staff_id, token = staff_app(app).add(email, role=StaffRole(role), name=name, actor="test")
    return email, f"/staff/enrol/{staff_id.hex}.{token}"


def enrol(client: Any, path: str, password: str = PASSWORD) -> str:
    """Open an enrolment link, read the key shown as text, post a password and a code: the secret."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    secret = text_of(page.text, "totp-secret").replace(" ", "")
    done = client.post(
        path,
        data={
            **hidden_fields(page.text),
            "password": password,
            "password_confirm": password,
            "code": totp_code(secret),
        },
    )
    assert done.status_code == 302, done.text
    return secret


def enrolled_staff(
    app: Any, role: StaffRole | str, email: str | None = None
) -> tuple[str, str, str]:
    """(email, password, TOTP secret) of a new member who enrolled through the enrolment page."""
    email, path = add_staff(app, role, email)
    secret = enrol(app.test_client(), path)
    return email, PASSWORD, secret


def sign_in(client: Any, email: str, password: str, secret: str, *, steps_ahead: int = 0) -> Any:
    """Post the staff sign-in form as a browser would; the response (302 when it worked)."""
    page = client.get("/staff/sign-in")
    token = re.search(r'name="staff_csrf" value="([^"]+)"', page.text)
    assert token, "no staff CSRF token on /staff/sign-in"
    return client.post(
        "/staff/sign-in",
        data={
            "staff_csrf": token.group(1),
            "email": email,
            "password": password,
            "code": totp_code(secret, steps_ahead),
        },
    )


def staff_client(app: Any, role: StaffRole | str) -> Any:
    """A test client signed in as a new, enrolled member with this role."""
    email, password, secret = enrolled_staff(app, role)
    client = app.test_client()
    signed = sign_in(client, email, password, secret)
    assert signed.status_code == 302, signed.text
    client.staff_email = email
    client.staff_secret = secret
    return client


def staff_csrf(client: Any, path: str = "/staff/sign-in") -> str:
    """The staff CSRF token a page served to this client carries (bound to its session, if any)."""
    page = client.get(path, follow_redirects=True)
    found = re.search(r'name="staff_csrf" value="([^"]+)"', page.text)
    assert found, f"no staff CSRF token on {path}"
    return found.group(1)
