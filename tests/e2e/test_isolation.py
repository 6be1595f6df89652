"""No route lets applicant A read or change applicant B's case: a walker calls every route.

The walker knows, for each (endpoint, method) of the app's URL map, which requests to make and
how to point them at B: B's reference, case id and access code in the path, the query string,
form fields, JSON bodies and headers. A route it does not know fails the test, so a new route
has to be taught to the walker (and so gets checked) before the suite passes again.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.forms import post_form, text_of

SKIPPED_METHODS = {"HEAD", "OPTIONS"}
STEP_NAMES = ("about_you", "contact", "eligibility")

B_ABOUT = {
    "family_name": "Okonkwo-Adeyemi",
    "given_names": "Chidinma",
    "date_of_birth": "1990-11-03",
    "passport_number": "A07734201",
    "passport_country": "NG",
}
B_CONTACT = {
    "email": "chidinma.okonkwo@example.net",
    "phone": "+234 803 555 0199",
    "country_of_residence": "NG",
}
B_ELIGIBILITY = {
    "language_level": 7,
    "care_months": 30,
    "education": "post_secondary_1yr",
    "consent": True,
}
# What of B's may never reach A, in any response, whatever A sends.
B_PERSONAL = ("Okonkwo", "Chidinma", "A07734201", "chidinma.okonkwo", "803 555 0199", "1990-11-03")

A_CONTACT = {**CONTACT, "email": "maria.santos@example.org"}
A_STEP_ANSWERS = {
    "about_you": {"family_name": "Santos", "given_names": "Maria Luz"},
    "contact": A_CONTACT,
    "eligibility": ELIGIBILITY,
}
A_STEP_JSON = {
    **A_STEP_ANSWERS,
    "eligibility": {
        "language_level": 5,
        "care_months": 24,
        "education": "secondary",
        "consent": True,
    },
}

# Routes that need a signed-in applicant; every other route is public.
CASE_ROUTES = {
    "applicant.credentials",
    "applicant.resume",
    "applicant.step",
    "applicant.saved",
    "applicant.review",
    "applicant.submit",
    "applicant.receipt",
    "applicant.status",
    "applicant.withdraw",
    "applicant.answer_request",
    "recovery.done",
    "api.case",
    "api.provide_information",
    "api.save_step",
    "api.submit",
    "api.withdraw",
    "api.application",
    "api.save_section",
    "api.submit_application",
    "stage_two.overview",
    "stage_two.section",
    "stage_two.upload",
    "stage_two.remove",
    "stage_two.download",
    "stage_two.send",
    "stage_two.receipt",
    "uploads_api.put_document",
    "uploads_api.list_documents",
    "uploads_api.get_document",
    "uploads_api.delete_document",
    "uploads_api.tus_create",
    "uploads_api.tus_upload",
    "uploads_api.tus_append",
}
PUBLIC_ROUTES = {
    "static",
    "health.healthz",
    "applicant.index",
    "applicant.register",
    "applicant.sign_in",
    "applicant.sign_out",
    "applicant.signed_out",
    "public.intake",
    "recovery.ask",
    "recovery.sent",
    "recovery.follow",
    "api.openapi",
    "api.intakes",
    "api.intake",
    "api.register",
    "api.sign_in",
    "api.sign_out",
    "api.ask_recovery",
    "api.reset_access_code",
    "staff.sign_in",
    "staff.sign_out",
    "staff.signed_out",
    "staff.enrol",
    "staff_api.sign_in",
}
# Routes for signed-in staff: an applicant's session opens none of them (staff sessions
# themselves are tested in tests/e2e/test_staff_auth.py).
STAFF_ROUTES = {
    "staff.index",
    "staff.admin_staff",
    "staff.add_staff",
    "staff.member_action",
    "officer.board",
    "officer.queue",
    "officer.queue_csv",
    "officer.case",
    "officer.bulk_assign",
    "officer.act",
    "staff_api.sign_out",
    "staff_api.me",
    "staff_api.board",
    "staff_api.queue",
    "staff_api.case",
    "staff_api.act",
    "staff_api.assign_many",
    "staff_api.case_documents",
    "staff_api.case_document",
    "officer.document",
}
SIGN_IN_ROUTES = {"applicant.sign_in", "api.sign_in", "staff.sign_in"}


def new_key() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(client: Any) -> str:
    page = client.get("/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF token on /sign-in"
    return found.group(1)


@dataclass(frozen=True)
class Applicant:
    reference: str
    access_code: str
    case_id: Any  # UUID

    @property
    def credentials(self) -> dict[str, str]:
        return {"reference": self.reference, "access_code": self.access_code}


@dataclass
class World:
    app: Any
    a: Applicant
    b: Applicant
    a_client: Any
    b_client: Any
    b_version: int
    registered: Iterator[int] = field(default_factory=lambda: iter(range(100, 10_000)))

    @property
    def registry(self) -> Any:
        return self.app.extensions["carepath.registry"]

    def b_secrets(self) -> tuple[str, ...]:
        b = self.b
        return (*B_PERSONAL, b.reference, b.access_code, str(b.case_id), b.case_id.hex)

    def pointers(self) -> list[dict[str, str]]:
        """Every way a request could name B's case."""
        b = self.b
        return [
            {"case_id": str(self.b.case_id)},
            {"case_id": b.case_id.hex},
            {"id": str(b.case_id)},
            {"reference": b.reference},
            {"access_code": b.access_code},
            {"reference": b.reference, "access_code": b.access_code},
        ]

    def path_values(self, name: str) -> list[str]:
        b = self.b
        pointing = [b.reference, str(b.case_id)]
        values = {
            "code": ["test", *pointing],
            "step": [*STEP_NAMES, *pointing],
            "filename": ["style.css", b.reference, f"../{b.case_id}"],
            "request_id": ["r1", *pointing],
            "link": [
                f"{b.case_id.hex}.{'x' * 43}",
                f"{uuid.uuid4().hex}.{b.access_code}",
                b.reference,
            ],
            "staff_id": [b.case_id.hex, uuid.uuid4().hex],
            "action": ["revoke", "disable", "enable", "reset", "promote", "accept", "approve"],
            "reference": pointing,
            "section": ["work_history", *pointing],
            "item": ["identity", *pointing],
            "document_id": ["d1", *pointing],
            "upload_id": [uuid.uuid4().hex, *pointing],
            # a recovery link's token naming B's case, without the server's MAC
            "token": [f"{b.case_id.hex}.{'0' * 32}.{'0' * 32}", b.reference, str(b.case_id)],
        }
        if name not in values:
            pytest.fail(f"the walker does not know how to fill the path variable <{name}>")
        return values[name]


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None  # an HTML form post (a CSRF token is added)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path

    def sent(self) -> str:
        """Everything the request carries, to tell an echo of A's own input from a leak."""
        return json.dumps([self.url, self.form, self.json, self.headers]).lower()

    def send(self, client: Any, *, csrf: bool = True) -> Any:
        kwargs: dict[str, Any] = {"method": self.method, "headers": dict(self.headers)}
        if self.form is not None:
            kwargs["data"] = {"csrf_token": csrf_token(client), **self.form} if csrf else self.form
        elif self.json is not None:
            kwargs["json"] = self.json
            kwargs["headers"] = {"Idempotency-Key": new_key(), **self.headers}
        response = client.open(self.url, **kwargs)
        response.get_data()  # read it all, then close: static files are streamed
        response.close()
        return response


# What each route gets: (world, path, method) -> bodies; the walker adds the pointers to B.
Bodies = Callable[["World", str, str], list[dict[str, Any]]]


def _no_body(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{}]


def _step_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _html_register(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {**about_you(next(world.registered)), "action": "continue"}}]


def _html_step(world: World, path: str, method: str) -> list[dict[str, Any]]:
    answers = A_STEP_ANSWERS.get(_step_of(path), A_CONTACT)
    envelope = {"version": str(world.b_version), "idempotency_key": new_key()}
    return [{"form": {**answers, **envelope, "action": "continue"}}]


def _html_submit(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {"version": str(world.b_version), "idempotency_key": new_key()}}]


def _html_withdraw(world: World, path: str, method: str) -> list[dict[str, Any]]:
    envelope = {"version": str(world.b_version), "idempotency_key": new_key()}
    return [{"form": {**envelope, "confirm": "yes", "reason": "changed my mind"}}]


def _html_answer(world: World, path: str, method: str) -> list[dict[str, Any]]:
    envelope = {"version": str(world.b_version), "idempotency_key": new_key()}
    return [{"form": {**envelope, "answer": "Here it is"}}]


def _api_answer(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"version": world.b_version, "request_id": "r1", "answer": "Here it is"}}]


def _credential_mixes(world: World) -> list[dict[str, str]]:
    """Sign-in attempts that point at B without holding both of B's credentials."""
    a, b = world.a, world.b
    return [
        {"reference": b.reference, "access_code": a.access_code},
        {"reference": a.reference, "access_code": b.access_code},
        {"reference": b.reference, "access_code": str(b.case_id)[:20]},
        {"reference": str(b.case_id)[:20], "access_code": b.access_code},
        {"reference": b.reference, "access_code": ""},
        {"reference": b.reference.lower(), "access_code": a.access_code.lower()},
    ]


def _html_sign_in(world: World, path: str, method: str) -> list[dict[str, Any]]:
    own = {**world.a.credentials}  # A's own credentials plus a pointer: still only A's case
    return [{"form": mix} for mix in [*_credential_mixes(world), own]]


def _html_sign_out(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {}}]


def _staff_sign_in(world: World, path: str, method: str) -> list[dict[str, Any]]:
    b = world.b
    return [
        {"form": {"email": B_CONTACT["email"], "password": b.access_code, "code": "123456"}},
        {"form": {"email": b.reference, "password": b.access_code, "code": b.reference}},
    ]


def _staff_enrol(world: World, path: str, method: str) -> list[dict[str, Any]]:
    password = "a long enough password"
    return [{"form": {"password": password, "password_confirm": password, "code": "123456"}}]


def _staff_add(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {"email": B_CONTACT["email"], "name": "B", "role": "admin"}}]


def _officer_act(world: World, path: str, method: str) -> list[dict[str, Any]]:
    envelope = {"version": str(world.b_version), "idempotency_key": new_key()}
    return [{"form": {**envelope, "assignee": "me", "reasons": "other", "note": "x"}}]


def _officer_bulk(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {"case": f"{world.b.case_id.hex}:{world.b_version}", "assignee": "me"}}]


def _staff_api_sign_in(world: World, path: str, method: str) -> list[dict[str, Any]]:
    b = world.b
    return [{"json": {"email": B_CONTACT["email"], "password": b.access_code, "code": "123456"}}]


def _officer_api_act(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"version": world.b_version, "assignee": "me"}}]


def _officer_api_bulk(world: World, path: str, method: str) -> list[dict[str, Any]]:
    cases = [{"reference": world.b.reference, "version": world.b_version}]
    return [{"json": {"cases": cases, "assignee": "me"}}]


def _api_register(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": about_you(next(world.registered))}]


def _api_sign_in(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": mix} for mix in _credential_mixes(world)]


def _api_save_step(world: World, path: str, method: str) -> list[dict[str, Any]]:
    answers = A_STEP_JSON.get(_step_of(path), A_STEP_JSON["contact"])
    return [{"json": {"version": world.b_version, "answers": dict(answers)}}]


def _api_submit(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"version": world.b_version}}]


def _api_withdraw(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"version": world.b_version, "reason": "changed my mind"}}]


def _html_envelope(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": {"version": str(world.b_version), "idempotency_key": new_key()}}]


def _html_section(world: World, path: str, method: str) -> list[dict[str, Any]]:
    envelope = {"version": str(world.b_version), "idempotency_key": new_key()}
    return [{"form": {**envelope, "credential": "Diploma", "institution": "School"}}]


def _api_section(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"version": world.b_version, "answers": {"credential": "Diploma"}}}]


def _raw_upload(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"headers": {"Upload-Filename": "passport.pdf", "Idempotency-Key": new_key()}}]


def _recovery_details(world: World) -> list[dict[str, str]]:
    """Requests for a recovery link that match no case (a match would record an event on it,
    which is what the route is for): B's reference or passport with another birth date, never
    B's birth date, which the walker's pointers (B's reference) would complete."""
    return [
        {"reference": world.b.reference, "date_of_birth": "1985-04-27"},
        {
            "passport_number": B_ABOUT["passport_number"],
            "passport_country": "NG",
            "date_of_birth": "1985-04-27",
        },
        {"reference": world.a.reference, "date_of_birth": "1970-01-01"},
    ]


def _html_recover(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"form": details} for details in _recovery_details(world)]


def _api_recover(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": details} for details in _recovery_details(world)]


def _api_reset(world: World, path: str, method: str) -> list[dict[str, Any]]:
    return [{"json": {"token": token}} for token in world.path_values("token")]


def _tus(world: World, path: str, method: str) -> list[dict[str, Any]]:
    tus = {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Length": "10"}
    return [{"headers": {**tus, "Content-Type": "application/offset+octet-stream"}}]


WALKERS: dict[tuple[str, str], Bodies] = {
    ("static", "GET"): _no_body,
    ("health.healthz", "GET"): _no_body,
    ("applicant.index", "GET"): _no_body,
    ("applicant.register", "GET"): _no_body,
    ("public.intake", "GET"): _no_body,
    ("applicant.register", "POST"): _html_register,
    ("applicant.credentials", "GET"): _no_body,
    ("applicant.resume", "GET"): _no_body,
    ("applicant.step", "GET"): _no_body,
    ("applicant.step", "POST"): _html_step,
    ("applicant.saved", "GET"): _no_body,
    ("applicant.review", "GET"): _no_body,
    ("applicant.submit", "POST"): _html_submit,
    ("applicant.receipt", "GET"): _no_body,
    ("applicant.status", "GET"): _no_body,
    ("applicant.withdraw", "GET"): _no_body,
    ("applicant.withdraw", "POST"): _html_withdraw,
    ("applicant.answer_request", "POST"): _html_answer,
    ("applicant.sign_in", "GET"): _no_body,
    ("applicant.sign_in", "POST"): _html_sign_in,
    ("applicant.sign_out", "POST"): _html_sign_out,
    ("applicant.signed_out", "GET"): _no_body,
    ("recovery.ask", "GET"): _no_body,
    ("recovery.ask", "POST"): _html_recover,
    ("recovery.sent", "GET"): _no_body,
    ("recovery.follow", "GET"): _no_body,
    ("recovery.follow", "POST"): _html_envelope,
    ("recovery.done", "GET"): _no_body,
    ("api.ask_recovery", "POST"): _api_recover,
    ("api.reset_access_code", "POST"): _api_reset,
    ("api.openapi", "GET"): _no_body,
    ("api.intakes", "GET"): _no_body,
    ("api.intake", "GET"): _no_body,
    ("api.register", "POST"): _api_register,
    ("api.sign_in", "POST"): _api_sign_in,
    ("api.sign_out", "DELETE"): _no_body,
    ("api.case", "GET"): _no_body,
    ("api.save_step", "PUT"): _api_save_step,
    ("api.submit", "POST"): _api_submit,
    ("api.withdraw", "POST"): _api_withdraw,
    ("staff.sign_in", "GET"): _no_body,
    ("staff.sign_in", "POST"): _staff_sign_in,
    ("staff.sign_out", "POST"): _html_sign_out,
    ("staff.signed_out", "GET"): _no_body,
    ("staff.enrol", "GET"): _no_body,
    ("staff.enrol", "POST"): _staff_enrol,
    ("staff.index", "GET"): _no_body,
    ("staff.admin_staff", "GET"): _no_body,
    ("staff.add_staff", "POST"): _staff_add,
    ("staff.member_action", "POST"): _html_sign_out,
    ("officer.board", "GET"): _no_body,
    ("officer.queue", "GET"): _no_body,
    ("officer.queue_csv", "GET"): _no_body,
    ("officer.case", "GET"): _no_body,
    ("officer.bulk_assign", "POST"): _officer_bulk,
    ("officer.act", "POST"): _officer_act,
    ("staff_api.sign_in", "POST"): _staff_api_sign_in,
    ("staff_api.sign_out", "DELETE"): _no_body,
    ("staff_api.me", "GET"): _no_body,
    ("staff_api.board", "GET"): _no_body,
    ("staff_api.queue", "GET"): _no_body,
    ("staff_api.case", "GET"): _no_body,
    ("staff_api.act", "POST"): _officer_api_act,
    ("staff_api.assign_many", "POST"): _officer_api_bulk,
    ("api.provide_information", "POST"): _api_answer,
    ("api.application", "GET"): _no_body,
    ("api.save_section", "PUT"): _api_section,
    ("api.submit_application", "POST"): _api_submit,
    ("stage_two.overview", "GET"): _no_body,
    ("stage_two.section", "GET"): _no_body,
    ("stage_two.section", "POST"): _html_section,
    ("stage_two.upload", "POST"): _html_envelope,
    ("stage_two.remove", "POST"): _html_envelope,
    ("stage_two.download", "GET"): _no_body,
    ("stage_two.send", "POST"): _html_envelope,
    ("stage_two.receipt", "GET"): _no_body,
    ("uploads_api.put_document", "PUT"): _raw_upload,
    ("uploads_api.list_documents", "GET"): _no_body,
    ("uploads_api.get_document", "GET"): _no_body,
    ("uploads_api.delete_document", "DELETE"): _no_body,
    ("uploads_api.tus_create", "POST"): _tus,
    ("uploads_api.tus_upload", "GET"): _tus,
    ("uploads_api.tus_append", "PATCH"): _tus,
    ("officer.document", "GET"): _no_body,
    ("staff_api.case_documents", "GET"): _no_body,
    ("staff_api.case_document", "GET"): _no_body,
}


def routes(app: Any) -> list[tuple[Any, str]]:
    """Every (rule, method) of the app, HEAD and OPTIONS aside."""
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - SKIPPED_METHODS)
    ]


def paths(world: World, rule: Any) -> list[str]:
    """The rule's path with every combination of values for its variables."""
    found = [""]
    for is_variable, text in _rule_parts(rule):
        if is_variable:
            found = [f"{p}{value}" for p in found for value in world.path_values(text)]
        else:
            found = [f"{p}{text}" for p in found]
    return found


def _rule_parts(rule: Any) -> list[tuple[bool, str]]:
    parts = []
    for piece in re.split(r"(<[^>]+>)", rule.rule):
        if piece.startswith("<"):
            parts.append((True, piece.strip("<>").split(":")[-1]))
        elif piece:
            parts.append((False, piece))
    return parts


def probes(world: World, rule: Any, method: str) -> list[Probe]:
    """Every request the walker makes for one rule and method, each pointing at B somehow."""
    bodies = WALKERS[(rule.endpoint, method)]
    b_header = {"X-Case-Id": str(world.b.case_id)}
    # Sign-in bodies already mix B's credentials with others; adding more could complete them.
    in_body = rule.endpoint not in SIGN_IN_ROUTES
    made: list[Probe] = []
    for path in paths(world, rule):
        for body in bodies(world, path, method):
            made.append(Probe(method, path, **body))
            headers = {**body.get("headers", {}), **b_header}
            made.append(Probe(method, path, **{**body, "headers": headers}))
            for pointer in world.pointers():
                made.append(Probe(method, path, query=pointer, **body))
                if not in_body:
                    continue
                if "form" in body:
                    made.append(Probe(method, path, form={**body["form"], **pointer}))
                if isinstance(body.get("json"), dict):
                    made.append(Probe(method, path, json={**body["json"], **pointer}))
                    if "answers" in body["json"]:
                        answers = {**body["json"]["answers"], **pointer}
                        made.append(Probe(method, path, json={**body["json"], "answers": answers}))
    return made


def leaks(world: World, probe: Probe, response: Any) -> list[str]:
    """B's data in the response that A did not send in this very request."""
    seen = (response.get_data(as_text=True) + json.dumps(dict(response.headers))).lower()
    sent = probe.sent()
    return [s for s in world.b_secrets() if s.lower() in seen and s.lower() not in sent]


def snapshot(world: World, case_id: Any) -> tuple[Any, ...]:
    case = world.registry.get_case(case_id)
    return case.version, case.status, case.answers, case.submitted_at, case.withdrawn_at


def register_html(client: Any, n: int) -> tuple[str, str]:
    response = post_form(client, "/intakes/test/register", {**about_you(n), "action": "continue"})
    assert response.status_code == 302, response.text
    shown = client.get(response.headers["Location"])
    return text_of(shown.text, "reference"), text_of(shown.text, "access-code")


def register_api(client: Any, answers: dict[str, Any]) -> tuple[str, str]:
    response = client.post(
        "/api/v1/intakes/test/registrations", json=answers, headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 201, response.text
    return response.json["reference"], response.json["access_code"]


def save_api(client: Any, step: str, answers: dict[str, Any]) -> int:
    version = client.get("/api/v1/case").json["version"]
    response = client.put(
        f"/api/v1/case/steps/{step}",
        json={"version": version, "answers": answers},
        headers={"Idempotency-Key": new_key()},
    )
    assert response.status_code == 200, response.text
    return int(response.json["version"])


@pytest.fixture
def world(app: Any) -> World:
    """A (HTML, about-you and contact saved) and B (API, every step saved), each signed in."""
    registry = app.extensions["carepath.registry"]
    a_client, b_client = app.test_client(), app.test_client()
    a_ref, a_code = register_html(a_client, 1)
    saved = post_form(a_client, "/application/steps/contact", {**A_CONTACT, "action": "later"})
    assert saved.status_code == 302
    b_ref, b_code = register_api(b_client, B_ABOUT)
    save_api(b_client, "contact", B_CONTACT)
    b_version = save_api(b_client, "eligibility", B_ELIGIBILITY)
    a = Applicant(a_ref, a_code, registry.sign_in(a_ref, a_code))
    b = Applicant(b_ref, b_code, registry.sign_in(b_ref, b_code))
    assert registry.get_case(a.case_id).version != b_version  # so B's version is stale for A
    return World(app, a, b, a_client, b_client, b_version)


def ensure_signed_in_as_a(world: World) -> None:
    """Some probes sign A out or into a new case; put A's session back for the next one."""
    shown = world.a_client.get("/api/v1/case")
    if shown.status_code == 200 and shown.json["reference"] == world.a.reference:
        return
    again = world.a_client.post("/api/v1/session", json=world.a.credentials)
    assert again.status_code == 200, again.text


def test_the_walker_knows_every_route(app):
    known = set(WALKERS)
    present = {(rule.endpoint, method) for rule, method in routes(app)}
    assert present - known == set(), "new routes: teach WALKERS how to call them"
    assert known - present == set(), "WALKERS lists routes that no longer exist"
    endpoints = {endpoint for endpoint, _ in present}
    assert endpoints - CASE_ROUTES - PUBLIC_ROUTES - STAFF_ROUTES == set(), "classify new routes"
    assert not CASE_ROUTES & PUBLIC_ROUTES
    assert not STAFF_ROUTES & (CASE_ROUTES | PUBLIC_ROUTES)


def test_signed_in_applicant_cannot_read_or_change_another_case_on_any_route(world):
    registry = world.registry
    b_before = snapshot(world, world.b.case_id)
    a_before = snapshot(world, world.a.case_id)
    sent = 0
    for rule, method in routes(world.app):
        for probe in probes(world, rule, method):
            ensure_signed_in_as_a(world)
            response = probe.send(world.a_client)
            sent += 1
            where = f"{probe.method} {probe.url} form={probe.form} json={probe.json}"
            assert response.status_code < 500, where
            assert leaks(world, probe, response) == [], where
            if rule.endpoint in STAFF_ROUTES:
                assert _refused_for_staff(response), where
            if rule.endpoint == "api.case":
                assert response.json["reference"] == world.a.reference, where
    assert sent > 300

    assert snapshot(world, world.b.case_id) == b_before
    # every change A tried carried B's version: none may have landed on A's case either
    assert snapshot(world, world.a.case_id) == a_before
    # B's own session still opens B's case, and only B's
    assert world.b_client.get("/api/v1/case").json["reference"] == world.b.reference
    assert registry.sign_in(world.b.reference, world.b.access_code) == world.b.case_id


@pytest.mark.parametrize("with_csrf", [True, False], ids=["csrf-session", "no-cookie"])
def test_anonymous_requests_to_case_routes_are_refused_and_never_fail(world, with_csrf):
    b_before = snapshot(world, world.b.case_id)
    for rule, method in routes(world.app):
        for probe in probes(world, rule, method):
            client = world.app.test_client()  # a session holding at most a CSRF token
            response = probe.send(client, csrf=with_csrf)
            where = f"{probe.method} {probe.url} form={probe.form} json={probe.json}"
            assert response.status_code < 500, where
            assert leaks(world, probe, response) == [], where
            if rule.endpoint in STAFF_ROUTES:
                assert _refused_for_staff(response), where
            if rule.endpoint not in CASE_ROUTES or response.status_code == 404:
                continue  # public, or an unknown step name: nothing to sign in to
            if probe.form is not None and not with_csrf:
                assert response.status_code in {400, 401}, where  # CSRF refuses first
            else:
                assert _refused_for_sign_in(response), where
    assert snapshot(world, world.b.case_id) == b_before


def _refused_for_sign_in(response: Any) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code in {302, 303} and response.headers["Location"].endswith("/sign-in")


def _refused_for_staff(response: Any) -> bool:
    """No staff session: a form post fails the staff CSRF check, a page sends to staff sign-in,
    the staff API answers 401."""
    if response.status_code in {400, 401}:
        return True
    location = response.headers.get("Location", "")
    return response.status_code in {302, 303} and location.startswith("/staff/sign-in")


def _case_probes(world: World) -> list[Probe]:
    return [
        probe
        for rule, method in routes(world.app)
        if rule.endpoint in CASE_ROUTES
        for probe in probes(world, rule, method)[:2]  # plain, and with B in a header
    ]


@pytest.mark.parametrize("how", ["html", "api"])
def test_session_cookie_stolen_after_sign_out_opens_nothing(world, how):
    victim = world.b_client if how == "api" else world.a_client
    stolen = victim.get_cookie("carepath_session").value
    if how == "api":
        assert victim.delete("/api/v1/session").status_code == 204
    else:
        out = victim.post("/sign-out", data={"csrf_token": csrf_token(victim)})
        assert out.status_code == 302
    assert victim.get("/api/v1/case").status_code == 401

    for probe in _case_probes(world):
        thief = world.app.test_client()
        thief.set_cookie("carepath_session", stolen)
        response = probe.send(thief)
        where = f"{probe.method} {probe.url}"
        assert response.status_code == 404 or _refused_for_sign_in(response), where
        assert leaks(world, probe, response) == [], where


def _sign_in_html(client: Any, applicant: Applicant) -> Any:
    return post_form(client, "/sign-in", applicant.credentials)


def _sign_in_api(client: Any, applicant: Applicant) -> Any:
    return client.post("/api/v1/session", json=applicant.credentials)


def _register_html(client: Any, applicant: Applicant) -> Any:
    return post_form(client, "/intakes/test/register", {**about_you(77), "action": "continue"})


def _register_api(client: Any, applicant: Applicant) -> Any:
    return client.post(
        "/api/v1/intakes/test/registrations",
        json=about_you(78),
        headers={"Idempotency-Key": new_key()},
    )


@pytest.mark.parametrize(
    "enter",
    [_sign_in_html, _sign_in_api, _register_html, _register_api],
    ids=["html-sign-in", "api-sign-in", "html-register", "api-register"],
)
@pytest.mark.parametrize("planted", ["attacker-chosen-session-id-0123456789", None])
def test_signing_in_gives_a_new_session_id(world, enter, planted):
    victim = world.app.test_client()
    if planted:
        victim.set_cookie("carepath_session", planted)
    csrf_token(victim)  # the victim opens a page first: a session exists before sign-in
    before = victim.get_cookie("carepath_session").value
    assert before != planted  # an unknown id is never adopted

    entered = enter(victim, world.a)
    assert entered.status_code in {200, 201, 302}, entered.text
    after = victim.get_cookie("carepath_session").value
    assert after != before
    assert victim.get("/api/v1/case").status_code == 200

    for fixed in {before, planted} - {None}:
        attacker = world.app.test_client()
        attacker.set_cookie("carepath_session", fixed)
        assert attacker.get("/api/v1/case").status_code == 401
        assert attacker.get("/application/status").status_code == 401
