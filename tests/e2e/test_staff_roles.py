"""Every staff route, called by every kind of caller: only the roles allowed get through.

The walker takes every rule of the app's URL map under the staff blueprints (pages and JSON
API) and calls it as: nobody, a signed-in applicant, a replayed signed-out staff session, an
officer, an auditor and an admin. A route missing from ALLOWED fails the test, so a new staff
route has to say who may use it before the suite passes. Refused calls must change nothing in
any log and no call may fail with a 5xx.
"""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import make_app
from tests.staff_helpers import enrolled_staff, sign_in, staff_csrf, totp_code
from tests.stage_two_helpers import invited_client, pdf_bytes

STAFF_BLUEPRINTS = ("staff.", "officer.", "staff_api.")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
OFFICER, AUDITOR, ADMIN = "officer", "auditor", "admin"
READERS = frozenset({OFFICER, AUDITOR})
ANY_STAFF = frozenset({OFFICER, AUDITOR, ADMIN})
PUBLIC = None  # anyone may call it: sign-in, sign-out, enrolment pages

# (endpoint, method) -> the roles that may use it (PUBLIC: anyone).
ALLOWED: dict[tuple[str, str], frozenset[str] | None] = {
    ("staff.sign_in", "GET"): PUBLIC,
    ("staff.sign_in", "POST"): PUBLIC,
    ("staff.sign_out", "POST"): PUBLIC,
    ("staff.signed_out", "GET"): PUBLIC,
    ("staff.enrol", "GET"): PUBLIC,
    ("staff.enrol", "POST"): PUBLIC,
    ("staff.index", "GET"): ANY_STAFF,
    ("staff.admin_staff", "GET"): frozenset({ADMIN}),
    ("staff.add_staff", "POST"): frozenset({ADMIN}),
    ("staff.member_action", "POST"): frozenset({ADMIN}),
    ("officer.board", "GET"): READERS,
    ("officer.queue", "GET"): READERS,
    ("officer.queue_csv", "GET"): READERS,
    ("officer.case", "GET"): READERS,
    ("officer.document", "GET"): READERS,
    ("officer.bulk_assign", "POST"): frozenset({OFFICER}),
    ("officer.act", "POST"): frozenset({OFFICER}),
    ("staff_api.sign_in", "POST"): PUBLIC,
    ("staff_api.sign_out", "DELETE"): ANY_STAFF,
    ("staff_api.me", "GET"): ANY_STAFF,
    ("staff_api.board", "GET"): READERS,
    ("staff_api.queue", "GET"): READERS,
    ("staff_api.case", "GET"): READERS,
    ("staff_api.case_documents", "GET"): READERS,
    ("staff_api.case_document", "GET"): READERS,
    ("staff_api.act", "POST"): frozenset({OFFICER}),
    ("staff_api.assign_many", "POST"): frozenset({OFFICER}),
}


@dataclass
class Caller:
    """One kind of caller: a test client, and how it authenticates on pages and on the API."""

    name: str
    client: Any
    role: str | None = None
    bearer: str | None = None

    def send(self, method: str, path: str, *, form: dict[str, Any], body: Any) -> Any:
        headers = {"Idempotency-Key": secrets.token_urlsafe(24)}
        if path.startswith("/api/"):
            if self.bearer:
                headers["Authorization"] = f"Bearer {self.bearer}"
            return _read(self.client.open(path, method=method, json=body, headers=headers))
        data = None
        if method != "GET":
            data = {**form, "staff_csrf": self.csrf()}
        return _read(self.client.open(path, method=method, data=data, headers=headers))

    def csrf(self) -> str:
        page = self.client.get("/staff/sign-in")
        found = re.search(r'name="staff_csrf" value="([^"]+)"', page.text)
        if self.role:  # a signed-in member's token is bound to the session, not the sign-in page
            return staff_csrf(self.client, "/staff/board" if self.role != ADMIN else "/staff/")
        return found.group(1) if found else ""


def _read(response: Any) -> Any:
    """Read a streamed body (the CSV, a document) to its end, so its request context is gone
    before the next caller's request."""
    response.get_data()
    response.close()
    return response


@dataclass
class World:
    app: Any
    callers: list[Caller]
    reference: str
    version: int
    target_staff: str
    document_id: str

    def path_values(self, name: str) -> list[str]:
        values = {
            "reference": [self.reference],
            "action": ["assign", "accept"],
            "code": ["test"],
            "staff_id": [self.target_staff],
            "link": ["0" * 32 + "." + "x" * 43],
            "document_id": [self.document_id],
        }
        if name not in values:
            pytest.fail(f"the role walker does not know how to fill <{name}>")
        return values[name]

    def heads(self) -> tuple[int, int]:
        return (
            self.app.extensions["carepath.registry"].recorder.max_notification_id() or 0,
            self.app.extensions["carepath.staff"].recorder.max_notification_id() or 0,
        )


def bearer_for(app: Any, email: str, password: str, secret: str) -> str:
    signed = app.test_client().post(
        "/api/v1/staff/session",
        json={"email": email, "password": password, "code": totp_code(secret, 1)},
    )
    assert signed.status_code == 201, signed.text
    return str(signed.json["token"])


@pytest.fixture
def world(sqlite_env):
    app = make_app(sqlite_env, capacity=5)
    applicant = invited_client(app, sqlite_env, 1)
    registry = app.extensions["carepath.registry"]
    case = next(iter(_cases(registry)))
    # A real document, so an allowed role's download succeeds and a refused one is told so
    added = app.extensions["carepath.documents"].add_document(
        case.id, "identity", io.BytesIO(pdf_bytes()), "passport.pdf", idempotency_key="walker-d1"
    )
    case = registry.get_case(case.id)
    callers = [Caller("nobody", app.test_client()), Caller("applicant", applicant)]
    for role in (OFFICER, AUDITOR, ADMIN):
        email, password, secret = enrolled_staff(app, role)
        client = app.test_client()
        assert sign_in(client, email, password, secret).status_code == 302
        callers.append(Caller(role, client, role, bearer_for(app, email, password, secret)))
    # A member who signed out, whose old cookie and token are replayed
    email, password, secret = enrolled_staff(app, OFFICER)
    gone = app.test_client()
    assert sign_in(gone, email, password, secret).status_code == 302
    token = bearer_for(app, email, password, secret)
    gone.post("/staff/sign-out", data={"staff_csrf": staff_csrf(gone, "/staff/board")})
    app.test_client().delete("/api/v1/staff/session", headers={"Authorization": f"Bearer {token}"})
    callers.append(Caller("signed-out", gone, None, token))
    target = app.extensions["carepath.staff"].add(
        "target@example.gov", role="auditor", name="Target", actor="test"
    )[0]
    yield World(app, callers, case.reference, case.version, target.hex, added.document_id)
    app.extensions["carepath.registry"].close()


def _cases(registry: Any) -> list[Any]:
    found = []
    for notification in registry.recorder.select_notifications(start=1, limit=100):
        if notification.topic.endswith("Case.Registered"):
            found.append(registry.get_case(notification.originator_id))
    return found


def staff_rules(app: Any) -> list[tuple[Any, str]]:
    """Every staff (rule, method); signing out last, since it ends the caller's session."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(STAFF_BLUEPRINTS)
        for method in sorted(rule.methods - SKIPPED_METHODS)
    ]
    return sorted(found, key=lambda pair: pair[0].endpoint.endswith("sign_out"))


def paths(world: World, rule: Any) -> list[str]:
    found = [""]
    for piece in re.split(r"(<[^>]+>)", rule.rule):
        if piece.startswith("<"):
            converter, _, name = piece.strip("<>").rpartition(":")
            choices = re.match(r"any\((.*)\)", converter)
            values = (
                [c.strip() for c in choices.group(1).split(",")]
                if choices
                else world.path_values(name)
            )
            found = [f"{p}{v}" for p in found for v in values]
        elif piece:
            found = [f"{p}{piece}" for p in found]
    return found


def refused(response: Any) -> bool:
    if response.status_code in {401, 403}:
        return True
    return response.status_code == 302 and "/staff/sign-in" in response.headers.get("Location", "")


def test_every_staff_route_says_who_may_use_it(world):
    unknown = [
        (rule.endpoint, method)
        for rule, method in staff_rules(world.app)
        if (rule.endpoint, method) not in ALLOWED
    ]
    assert not unknown, f"teach ALLOWED about: {unknown}"
    assert len(staff_rules(world.app)) == len(ALLOWED)


def test_every_staff_route_refuses_every_caller_its_role_does_not_allow(world):
    form: dict[str, Any] = {
        "version": str(world.version),
        "idempotency_key": secrets.token_urlsafe(24),
        "assignee": "none",
        "case": [],
    }
    body: dict[str, Any] = {"version": world.version, "assignee": "none"}
    checked = 0
    for rule, method in staff_rules(world.app):
        allowed = ALLOWED[(rule.endpoint, method)]
        if allowed is PUBLIC:
            continue
        for path in paths(world, rule):
            for caller in world.callers:
                before = world.heads()
                response = caller.send(method, path, form=form, body=body)
                where = f"{caller.name} {method} {path}: {response.status_code}"
                assert response.status_code < 500, where
                if caller.role in allowed:
                    assert not refused(response), where
                else:
                    assert refused(response), where
                    assert world.heads() == before, f"{where} changed a log"
                checked += 1
    assert checked > 100


def test_public_staff_routes_never_fail_whoever_calls(world):
    for rule, method in staff_rules(world.app):
        if ALLOWED[(rule.endpoint, method)] is not PUBLIC:
            continue
        for path in paths(world, rule):
            for caller in world.callers:
                response = caller.send(method, path, form={}, body={})
                assert response.status_code < 500, f"{caller.name} {method} {path}"
