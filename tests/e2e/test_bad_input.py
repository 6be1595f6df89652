"""Every field's invalid values get a 4xx naming the field; nothing is stored; no 500 anywhere.

Each field of each form is tried over the HTML pages and the JSON API with: missing, empty,
whitespace only, too long, the wrong JSON type, out of range, and hostile strings (control and
invisible characters, lone surrogates, SQL- and HTML-looking text, long unicode, emoji).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from tests.conftest import CONTACT, ELIGIBILITY, about_you, make_app
from tests.forms import error_summary, hidden_fields

MISSING = object()
PEOPLE = itertools.count(1000)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
SUMMARY = re.compile(r'<div class="error-summary".*?</ul>', re.S)
SUMMARY_LINK = re.compile(r'<a href="#([^"]*)">(.*?)</a>', re.S)


def new_key() -> str:
    return secrets.token_urlsafe(24)


# tests.forms parses pages with BeautifulSoup, which is slow on pages listing every country;
# these regular-expression twins keep hundreds of cases fast (a test checks they agree).


def hidden(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def summary(page: str) -> dict[str, str]:
    box = SUMMARY.search(page)
    if box is None:
        return {}
    return {
        field: html.unescape(message).strip() for field, message in SUMMARY_LINK.findall(box[0])
    }


def post_page(client: Any, url: str, data: dict[str, Any]) -> Any:
    """GET the page, then POST its hidden fields plus `data`, as a browser would."""
    shown = client.get(url)
    assert shown.status_code == 200, (url, shown.status_code)
    return client.post(url, data={**hidden(shown.text), **data})


def today_minus(years: int) -> str:
    today = date.today()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


# Values that no field takes (the exceptions are listed per field below).
HOSTILE: dict[str, Any] = {
    "missing": MISSING,
    "empty": "",
    "whitespace": " \t  ",
    "too-long": "A" * 10_000,
    "nul": "Ma\x00ria",
    "control": "Ma\x1b[31mria",
    "newline-bell": "Maria\n\x07",
    "bidi-override": "\u202eairaM",
    "zero-width": "Ma\u200bria",
    "private-use": "Ma\ue000ria",
    "sql": "x'); DROP TABLE stored_events;--",
    "script": "<script>alert(1)</script>",
    "long-unicode": "ü" * 2_000,
    "emoji": "😀",
}
# Only a JSON body can carry these.
JSON_ONLY: dict[str, Any] = {
    "lone-surrogate": "Ma\ud800ria",
    "number": 42,
    "float": 5.5,
    "huge-float": 1e300,
    "list": ["Maria"],
    "object": {"value": "Maria"},
    "null": None,
    "true": True,
    "false": False,
}


@dataclass(frozen=True)
class Field:
    name: str
    accepts: frozenset[str] = frozenset()  # cases above that are valid for this field
    extra: tuple[tuple[str, Any], ...] = ()  # out-of-range values of this field
    json_extra: tuple[tuple[str, Any], ...] = ()

    def cases(self, *, as_json: bool) -> list[tuple[str, Any]]:
        pool = dict(HOSTILE)
        pool.update(self.extra)
        if as_json:
            pool.update(JSON_ONLY)
            pool.update(self.json_extra)
        return [(case, value) for case, value in pool.items() if case not in self.accepts]


TEXT_OK = frozenset({"sql", "script", "emoji"})  # free text: refused only when unsafe or too long
FIELDS = {
    f.name: f
    for f in (
        Field("family_name", extra=(("digits", "Sant0s"), ("only-punctuation", "-'."))),
        Field("given_names", accepts=frozenset({"missing", "empty", "whitespace"})),
        Field(
            "date_of_birth",
            extra=(
                ("future", "2999-01-01"),
                ("under-18", today_minus(17)),
                ("over-100", "1900-01-01"),
                ("impossible", "1985-02-30"),
                ("month-13", "1985-13-01"),
                ("day-first", "27/04/1985"),
                ("with-time", "1985-04-27T00:00:00"),
                ("year-10000", "10000-01-01"),
            ),
            json_extra=(("number", 19850427),),
        ),
        Field("passport_number", extra=(("too-short", "P1"), ("punctuation", "P123/4567"))),
        Field(
            "passport_country", extra=(("unknown", "XX"), ("lower-case", "ph"), ("name", "Peru"))
        ),
        Field(
            "email", extra=(("no-at", "maria.example.org"), ("long", "a" * 250 + "@example.org"))
        ),
        Field("phone", extra=(("too-few-digits", "12"), ("letters", "+63 917 CALL ME"))),
        Field("country_of_residence", extra=(("unknown", "XX"),)),
        Field(
            "language_level",
            extra=(("11", "11"), ("-1", "-1"), ("5.5", "5.5"), ("1e9", "1e9"), ("word", "five")),
            json_extra=(("11", 11), ("-1", -1), ("1e9", 1e9), ("5.5", 5.5), ("2.000001", 2.000001)),
        ),
        Field(
            "care_months",
            extra=(("-1", "-1"), ("37", "37"), ("1e9", "1e9"), ("5.5", "5.5"), ("hex", "0x10")),
            json_extra=(("-1", -1), ("37", 37), ("1e9", 1e9), ("5.5", 5.5), ("number", 10**30)),
        ),
        Field("education", extra=(("unknown", "phd"),)),
        Field(
            "consent",
            accepts=frozenset({"true"}),
            extra=(("no", "no"), ("off", "off"), ("maybe", "maybe")),
            json_extra=(("number", 2), ("zero", 0), ("string-no", "no")),
        ),
        Field("reference", extra=(("21-chars", "7K2M-9QXD-4-7K2M-9QXD"),)),
        Field("access_code", extra=(("21-chars", "ABCD-EFGH-JKMN-PQRS-T"),)),
        Field(
            "reason",
            accepts=frozenset({"missing", "empty", "whitespace"}) | TEXT_OK,
            extra=(("501-chars", "r" * 501),),
        ),
        Field("confirm", extra=(("no", "no"), ("maybe", "maybe"))),
    )
}


@dataclass
class Shared:
    """One app and one complete draft case for the whole module: refused input changes nothing."""

    app: Any
    reference: str
    access_code: str
    client: Any = None

    @property
    def registry(self) -> Any:
        return self.app.extensions["carepath.registry"]

    def events(self) -> int:
        return int(self.registry.recorder.max_notification_id() or 0)

    def version(self) -> int:
        case_id = self.registry.sign_in(self.reference, self.access_code)
        return int(self.registry.get_case(case_id).version)

    def signed_in(self) -> Any:
        """The module's signed-in client (signed in on first use)."""
        if self.client is None:
            self.client = self.fresh_signed_in()
        return self.client

    def fresh_signed_in(self) -> Any:
        client = self.app.test_client()
        response = client.post(
            "/api/v1/session", json={"reference": self.reference, "access_code": self.access_code}
        )
        assert response.status_code == 200, response.text
        return client


@pytest.fixture(scope="module")
def shared(tmp_path_factory: Any) -> Iterator[Shared]:
    data = tmp_path_factory.mktemp("bad-input")
    app = make_app({"CAREPATH_DATA_DIR": str(data / "data"), "CAREPATH_SECRET": "b" * 40})
    client = app.test_client()
    registered = client.post(
        "/api/v1/intakes/test/registrations",
        json=about_you(1),
        headers={"Idempotency-Key": new_key()},
    )
    assert registered.status_code == 201, registered.text
    for step, answers in (("contact", CONTACT), ("eligibility", JSON_ELIGIBILITY)):
        version = client.get("/api/v1/case").json["version"]
        saved = client.put(
            f"/api/v1/case/steps/{step}",
            json={"version": version, "answers": answers},
            headers={"Idempotency-Key": new_key()},
        )
        assert saved.status_code == 200, saved.text
    yield Shared(app, registered.json["reference"], registered.json["access_code"])
    app.extensions["carepath.registry"].close()


JSON_ELIGIBILITY = {
    "language_level": 5,
    "care_months": 24,
    "education": "secondary",
    "consent": True,
}
NAMES = {"family_name": "Santos", "given_names": "Maria Luz"}


@dataclass(frozen=True)
class Form:
    """One way in: which fields it has, valid answers, how to send them, where errors show."""

    name: str
    fields: tuple[str, ...]
    baseline: Callable[[Shared], dict[str, Any]]
    send: Callable[[Shared, dict[str, Any]], Any]
    as_json: bool
    error_prefix: str = ""

    def errors(self, response: Any) -> dict[str, Any]:
        if self.as_json:
            return dict(response.json.get("errors", {}))
        return summary(response.text)

    def __str__(self) -> str:
        return self.name


def _html(url: str, signed_in: bool) -> Callable[[Shared, dict[str, Any]], Any]:
    def send(shared: Shared, data: dict[str, Any]) -> Any:
        client = shared.signed_in() if signed_in else shared.app.test_client()
        return post_page(client, url, data)

    return send


def _json(method: str, url: str, signed_in: bool, wrap: bool = False) -> Callable[..., Any]:
    """Sends the answers as the body, or wrapped as a step save: {"version", "answers"}."""

    def send(shared: Shared, data: dict[str, Any]) -> Any:
        client = shared.signed_in() if signed_in else shared.app.test_client()
        body = {"version": shared.version(), "answers": data} if wrap else data
        return client.open(url, method=method, json=body, headers={"Idempotency-Key": new_key()})

    return send


def _withdraw_json(shared: Shared, data: dict[str, Any]) -> Any:
    client = shared.signed_in()
    return client.post(
        "/api/v1/case/withdrawal",
        json={"version": shared.version(), **data},
        headers={"Idempotency-Key": new_key()},
    )


def _credentials(shared: Shared) -> dict[str, Any]:
    return {"reference": shared.reference, "access_code": shared.access_code}


def _registration(shared: Shared) -> dict[str, Any]:
    return about_you(next(PEOPLE))


ABOUT_YOU = ("family_name", "given_names", "date_of_birth", "passport_number", "passport_country")
FORMS = (
    Form("html-register", ABOUT_YOU, _registration, _html("/intakes/test/register", False), False),
    Form(
        "html-step-about_you",
        ("family_name", "given_names"),
        lambda s: dict(NAMES),
        _html("/application/steps/about_you", True),
        False,
    ),
    Form(
        "html-step-contact",
        tuple(CONTACT),
        lambda s: dict(CONTACT),
        _html("/application/steps/contact", True),
        False,
    ),
    Form(
        "html-step-eligibility",
        tuple(ELIGIBILITY),
        lambda s: dict(ELIGIBILITY),
        _html("/application/steps/eligibility", True),
        False,
    ),
    Form(
        "html-sign-in", ("reference", "access_code"), _credentials, _html("/sign-in", False), False
    ),
    Form(
        "html-withdraw",
        ("reason", "confirm"),
        lambda s: {"reason": "found work", "confirm": "yes"},
        _html("/application/withdraw", True),
        False,
    ),
    Form(
        "api-register",
        ABOUT_YOU,
        _registration,
        _json("POST", "/api/v1/intakes/test/registrations", False),
        True,
    ),
    Form(
        "api-step-about_you",
        ("family_name", "given_names"),
        lambda s: dict(NAMES),
        _json("PUT", "/api/v1/case/steps/about_you", True, wrap=True),
        True,
        "answers.",
    ),
    Form(
        "api-step-contact",
        tuple(CONTACT),
        lambda s: dict(CONTACT),
        _json("PUT", "/api/v1/case/steps/contact", True, wrap=True),
        True,
        "answers.",
    ),
    Form(
        "api-step-eligibility",
        tuple(JSON_ELIGIBILITY),
        lambda s: dict(JSON_ELIGIBILITY),
        _json("PUT", "/api/v1/case/steps/eligibility", True, wrap=True),
        True,
        "answers.",
    ),
    Form(
        "api-sign-in",
        ("reference", "access_code"),
        _credentials,
        _json("POST", "/api/v1/session", False),
        True,
    ),
    Form("api-withdraw", ("reason",), lambda s: {"reason": "found work"}, _withdraw_json, True),
)
SIGN_IN_FORMS = {"html-sign-in", "api-sign-in"}
# Sign-in values of the right shape are looked up, and get the one answer a wrong pair gets.
WELL_FORMED_CREDENTIALS = {"emoji"}


def bad_values() -> list[Any]:
    return [
        pytest.param(form, name, case, value, id=f"{form}-{name}-{case}")
        for form in FORMS
        for name in form.fields
        for case, value in FIELDS[name].cases(as_json=form.as_json)
    ]


def with_value(data: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    changed = dict(data)
    if value is MISSING:
        changed.pop(name, None)
    else:
        changed[name] = value
    return changed


def assert_names_field(form: Form, response: Any, name: str, case: str) -> None:
    if form.name in SIGN_IN_FORMS and case in WELL_FORMED_CREDENTIALS:
        # Well-formed but wrong credentials: one message for both fields, naming them.
        assert response.status_code == 401
        message = response.json["error"] if form.as_json else response.text
        assert "reference" in message
        assert "access code" in message
        return
    assert response.status_code == 422, response.text[:500]
    errors = form.errors(response)
    assert form.error_prefix + name in errors, errors
    assert all(errors.values()), errors


@pytest.mark.parametrize(("form", "name", "case", "value"), bad_values())
def test_invalid_value_is_refused_naming_the_field_and_stores_nothing(
    shared, form, name, case, value
):
    before = shared.events()

    response = form.send(shared, with_value(form.baseline(shared), name, value))

    assert 400 <= response.status_code < 500, response.text[:500]
    assert_names_field(form, response, name, case)
    assert shared.events() == before
    if not form.as_json:
        assert "<script>" not in response.text  # what was typed is shown back escaped


@pytest.mark.parametrize("form", FORMS, ids=str)
def test_the_valid_baseline_of_each_form_is_accepted(shared, form):
    """Guards the test above: each form, with nothing changed, goes through (on its own case)."""
    registered = shared.app.test_client().post(
        "/api/v1/intakes/test/registrations",
        json=about_you(next(PEOPLE)),
        headers={"Idempotency-Key": new_key()},
    )
    here = Shared(shared.app, registered.json["reference"], registered.json["access_code"])
    before = here.events()

    response = form.send(here, form.baseline(here))

    assert response.status_code in {200, 201, 302}, response.text[:500]
    assert form.name in SIGN_IN_FORMS or here.events() > before


# Hidden fields of the HTML forms, and the JSON envelope.

BAD_KEYS = [
    "",
    "short",
    "k" * 65,
    "has space in it 12345",
    "nul\x00" * 5,
    "é" * 20,
    "../../etc/passwd",
]
BAD_VERSIONS = ["", "abc", "0", "-1", "1.5", "1e3", "9" * 5000, "\x00", "1000001"]
HTML_ENVELOPES = {
    "register": ("/intakes/test/register", False, lambda: {**about_you(next(PEOPLE))}),
    "step": ("/application/steps/contact", True, lambda: dict(CONTACT)),
    "withdraw": ("/application/withdraw", True, lambda: {"confirm": "yes"}),
    "submit": ("/application/review", True, dict),
}


def _post_envelope(shared: Shared, where: str, name: str, value: Any) -> Any:
    url, signed_in, answers = HTML_ENVELOPES[where]
    client = shared.signed_in() if signed_in else shared.app.test_client()
    page = client.get(url)
    assert page.status_code == 200
    data = {**hidden(page.text), **answers()}
    data = with_value(data, name, value)
    target = "/application/submit" if where == "submit" else url
    return client.post(target, data=data)


def _damaged_envelopes() -> list[Any]:
    damaged = [("idempotency_key", MISSING), *(("idempotency_key", key) for key in BAD_KEYS)]
    damaged += [("version", version) for version in BAD_VERSIONS]
    return [
        pytest.param(where, name, value, id=f"{where}-{name}-{value!r:.20}")
        for where in HTML_ENVELOPES
        for name, value in damaged
        if not (where == "register" and name == "version")  # registration has no version
    ]


@pytest.mark.parametrize(("where", "name", "value"), _damaged_envelopes())
def test_damaged_hidden_fields_are_refused_and_store_nothing(shared, where, name, value):
    before = shared.events()

    response = _post_envelope(shared, where, name, value)

    assert 400 <= response.status_code < 500, response.text[:500]
    if where in {"step", "register", "withdraw"}:
        assert response.status_code == 422
        assert "reload the page" in summary(response.text).get(name, "")
    assert shared.events() == before


@pytest.mark.parametrize("where", ["step", "withdraw", "submit"])
def test_form_without_version_is_a_conflict_not_a_write(shared, where):
    before = shared.events()
    response = _post_envelope(shared, where, "version", MISSING)
    assert response.status_code in {400, 409}
    assert shared.events() == before


HTML_POSTS = {
    "register": ("/intakes/test/register", False, lambda: about_you(next(PEOPLE))),
    "step": ("/application/steps/contact", True, lambda: dict(CONTACT)),
    "submit": ("/application/submit", True, dict),
    "withdraw": ("/application/withdraw", True, lambda: {"confirm": "yes"}),
    "sign-in": ("/sign-in", False, lambda: {"reference": "x", "access_code": "y"}),
    "sign-out": ("/sign-out", True, dict),
}


@pytest.mark.parametrize("token", [MISSING, "", "forged-token"], ids=["missing", "empty", "forged"])
@pytest.mark.parametrize("where", list(HTML_POSTS))
def test_html_post_without_a_valid_csrf_token_is_refused_clearly(shared, where, token):
    url, signed_in, answers = HTML_POSTS[where]
    client = shared.fresh_signed_in() if signed_in else shared.app.test_client()
    page_url = {"submit": "/application/review", "sign-out": "/application/status"}.get(where, url)
    page = client.get(page_url)
    data = {**hidden(page.text), **answers(), "version": str(shared.version())}
    data = with_value(data, "csrf_token", token)
    before = shared.events()

    response = client.post(url, data=data)

    assert response.status_code == 400
    assert "sent from another site" in response.text
    assert shared.events() == before
    if where == "sign-out":
        assert client.get("/api/v1/case").status_code == 200  # still signed in


def test_html_body_over_the_size_limit_is_413_and_stores_nothing(shared):
    client = shared.app.test_client()
    before = shared.events()
    response = post_page(
        client, "/intakes/test/register", {**about_you(next(PEOPLE)), "family_name": "A" * 70_000}
    )
    assert response.status_code == 413
    assert "too large" in response.text
    assert shared.events() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/v1/intakes/test/registrations"),
        ("PUT", "/api/v1/case/steps/contact"),
        ("POST", "/api/v1/session"),
        ("POST", "/api/v1/case/withdrawal"),
        ("POST", "/api/v1/case/submission"),
    ],
)
def test_json_body_over_the_size_limit_is_413_and_stores_nothing(shared, method, url):
    client = shared.signed_in()
    before = shared.events()
    body = {
        "version": shared.version(),
        "answers": {"email": "a" * 70_000},
        "padding": "x" * 70_000,
    }
    response = client.open(url, method=method, json=body, headers={"Idempotency-Key": new_key()})
    assert response.status_code == 413
    assert response.json["error"] == "What you sent is too large."
    assert shared.events() == before


# The JSON API's own envelope: headers, content types, bodies, version and answers.

API_WRITES = {
    "register": ("POST", "/api/v1/intakes/test/registrations", lambda s: about_you(next(PEOPLE))),
    "step": (
        "PUT",
        "/api/v1/case/steps/contact",
        lambda s: {"version": s.version(), "answers": CONTACT},
    ),
    "submit": ("POST", "/api/v1/case/submission", lambda s: {"version": s.version()}),
    "withdraw": ("POST", "/api/v1/case/withdrawal", lambda s: {"version": s.version()}),
}


def _api(shared: Shared, where: str, **kwargs: Any) -> Any:
    method, url, body = API_WRITES[where]
    kwargs.setdefault("headers", {"Idempotency-Key": new_key()})
    if "data" not in kwargs:
        kwargs.setdefault("json", body(shared))
    return shared.signed_in().open(url, method=method, **kwargs)


@pytest.mark.parametrize("where", list(API_WRITES))
@pytest.mark.parametrize("key", [MISSING, *BAD_KEYS[:4], "good-length-but-bad!"])
def test_api_write_without_a_good_idempotency_key_names_the_header(shared, where, key):
    headers = {} if key is MISSING else {"Idempotency-Key": key}
    before = shared.events()
    response = _api(shared, where, headers=headers)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]
    assert shared.events() == before


NOT_JSON = [
    ("text/plain", '{"version": 1}'),
    ("application/x-www-form-urlencoded", "version=1"),
    ("multipart/form-data; boundary=x", "--x--"),
    ("application/xml", "<version>1</version>"),
    (None, '{"version": 1}'),
]


@pytest.mark.parametrize("where", [*API_WRITES, "sign-in"])
@pytest.mark.parametrize(("content_type", "data"), NOT_JSON)
def test_api_body_that_is_not_json_is_415(shared, where, content_type, data):
    before = shared.events()
    headers = {"Idempotency-Key": new_key()}
    if content_type:
        headers["Content-Type"] = content_type
    if where == "sign-in":
        response = shared.app.test_client().post("/api/v1/session", data=data, headers=headers)
    else:
        response = _api(shared, where, data=data, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json["error"]
    assert shared.events() == before


MALFORMED_JSON = {
    "truncated": '{"version": 1',
    "trailing-comma": '{"version": 1,}',
    "single-quotes": "{'version': 1}",
    "empty": "",
    "bad-utf8": b'{"version": "\xff"}',
    "huge-integer": '{"version": ' + "9" * 5000 + "}",
    "deep-arrays": "[" * 30_000 + "]" * 30_000,  # under the size limit, past the recursion one
    "deep-objects": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "array": "[1, 2]",
    "string": '"version"',
    "number": "1",
    "null": "null",
}


@pytest.mark.parametrize("where", [*API_WRITES, "sign-in"])
@pytest.mark.parametrize("body", list(MALFORMED_JSON))
def test_api_body_that_is_not_a_json_object_is_refused(shared, where, body):
    before = shared.events()
    headers = {"Idempotency-Key": new_key(), "Content-Type": "application/json"}
    data = MALFORMED_JSON[body]
    if where == "sign-in":
        response = shared.app.test_client().post("/api/v1/session", data=data, headers=headers)
    else:
        response = _api(shared, where, data=data, headers=headers)
    assert response.status_code in {400, 413, 422}, response.text[:300]
    if response.status_code == 422:
        assert "_body" in response.json["errors"]
    assert shared.events() == before


@pytest.mark.parametrize("where", ["step", "submit", "withdraw"])
@pytest.mark.parametrize(
    "version", [MISSING, None, "1", 1.5, True, 0, -1, 10**7, [1], {"v": 1}, "\x00"]
)
def test_api_bad_version_names_version(shared, where, version):
    body = with_value(API_WRITES[where][2](shared), "version", version)
    before = shared.events()
    response = _api(shared, where, json=body)
    assert response.status_code == 422
    assert "version" in response.json["errors"]
    assert shared.events() == before


def test_api_stale_version_is_a_conflict_that_stores_nothing(shared):
    before = shared.events()
    response = _api(shared, "step", json={"version": shared.version() - 1, "answers": CONTACT})
    assert response.status_code == 409
    assert response.json["current_version"] == shared.version()
    assert shared.events() == before


@pytest.mark.parametrize("answers", [MISSING, None, [], "email=x", 1, True])
def test_api_answers_that_are_not_an_object_name_answers(shared, answers):
    body = with_value({"version": shared.version()}, "answers", answers)
    before = shared.events()
    response = _api(shared, "step", json=body)
    assert response.status_code == 422
    assert "answers" in response.json["errors"]
    assert shared.events() == before


UNKNOWN_FIELDS = [
    ("register", lambda s: {**about_you(next(PEOPLE)), "nickname": "Mimi"}, "nickname"),
    ("register", lambda s: {**about_you(next(PEOPLE)), "case_id": "x"}, "case_id"),
    ("step", lambda s: {"version": s.version(), "answers": CONTACT, "extra": 1}, "extra"),
    (
        "step",
        lambda s: {"version": s.version(), "answers": {**CONTACT, "fax": "1"}},
        "answers.fax",
    ),
    ("submit", lambda s: {"version": s.version(), "force": True}, "force"),
    ("withdraw", lambda s: {"version": s.version(), "confirm": True}, "confirm"),
    ("withdraw", lambda s: {"version": s.version(), "\x00": True}, "\x00"),
]


@pytest.mark.parametrize(("where", "body", "field"), UNKNOWN_FIELDS)
def test_api_unknown_fields_are_refused_by_name(shared, where, body, field):
    before = shared.events()
    response = _api(shared, where, json=body(shared))
    assert response.status_code == 422
    assert field in response.json["errors"]
    assert shared.events() == before


@pytest.mark.parametrize(
    ("step", "field"), [("about_you", "date_of_birth"), ("about_you", "passport_number")]
)
def test_api_identity_fields_cannot_be_changed_through_a_step_save(shared, step, field):
    before = shared.events()
    body = {"version": shared.version(), "answers": {**NAMES, field: about_you(2)[field]}}
    response = shared.signed_in().put(
        f"/api/v1/case/steps/{step}", json=body, headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 422
    assert f"answers.{field}" in response.json["errors"]
    assert shared.events() == before


def test_api_sign_in_unknown_field_is_named(shared):
    response = shared.app.test_client().post(
        "/api/v1/session", json={**_credentials(shared), "remember": True}
    )
    assert response.status_code == 422
    assert "remember" in response.json["errors"]


def unrouted_methods(app: Any) -> list[tuple[str, str]]:
    """(method, path) pairs the app does not route, for every rule's path with sample values."""
    samples = {
        "code": "test",
        "step": "contact",
        "filename": "style.css",
        "request_id": "r1",
        "link": f"{'0' * 32}.{'x' * 43}",
        "staff_id": "0" * 32,
        "action": "revoke",
        "reference": "AAAA-AAAA-A",
        "section": "work_history",
        "item": "identity",
        "document_id": "d1",
        "upload_id": "u" * 32,
        "token": f"{'0' * 32}.{'1' * 32}.{'2' * 32}",
    }
    allowed: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name, value in samples.items():
            path = path.replace(f"<{name}>", value).replace(f"<path:{name}>", value)
        assert "<" not in path, f"give a sample value for {rule.rule}"
        allowed.setdefault(path, set()).update(rule.methods)
    adapter = app.url_map.bind("localhost")
    return [
        (method, path)
        for path, methods in sorted(allowed.items())
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if method not in methods and not _routed(adapter, path, method)
    ]


def _routed(adapter: Any, path: str, method: str) -> bool:
    """Whether another rule takes this method on this path (e.g. an action named like a
    sub-resource: POST /staff/cases/<ref>/documents is the action route's, answered 404)."""
    try:
        adapter.match(path, method=method)
    except HTTPException:
        return False
    return True


def test_wrong_http_methods_are_405_with_allow(shared):
    client = shared.signed_in()
    tried = unrouted_methods(shared.app)
    assert len(tried) > 40
    before = shared.events()
    for method, path in tried:
        response = client.open(path, method=method, json={})
        assert response.status_code == 405, (method, path)
        assert response.headers.get("Allow"), (method, path)
        assert response.get_json(silent=True) or "cannot be used that way" in response.text
    assert shared.events() == before


UNKNOWN_CODES = ["nope", "TEST", "x" * 5000, "%00", "..%2Ftest", "%ED%A0%80", "test%20"]


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_unknown_intake_code_is_404_everywhere(shared, code):
    client = shared.app.test_client()
    before = shared.events()
    assert client.get(f"/intakes/{code}/register").status_code == 404
    assert client.get(f"/api/v1/intakes/{code}").status_code == 404
    token = hidden(client.get("/sign-in").text)["csrf_token"]
    data = {**about_you(next(PEOPLE)), "csrf_token": token, "idempotency_key": new_key()}
    assert client.post(f"/intakes/{code}/register", data=data).status_code == 404
    api = client.post(
        f"/api/v1/intakes/{code}/registrations",
        json=about_you(next(PEOPLE)),
        headers={"Idempotency-Key": new_key()},
    )
    assert api.status_code == 404
    assert api.json["error"]
    assert shared.events() == before


UNKNOWN_STEPS = ["nope", "review", "About_You", "about_you%20", "x" * 5000, "%00", "..%2Fcontact"]


@pytest.mark.parametrize("step", UNKNOWN_STEPS)
def test_unknown_step_name_is_404_everywhere(shared, step):
    client = shared.signed_in()
    before = shared.events()
    assert client.get(f"/application/steps/{step}").status_code == 404
    token = hidden(client.get("/sign-in").text)["csrf_token"]
    data = {**CONTACT, "csrf_token": token, "idempotency_key": new_key(), "version": "3"}
    assert client.post(f"/application/steps/{step}", data=data).status_code == 404
    api = client.put(
        f"/api/v1/case/steps/{step}",
        json={"version": shared.version(), "answers": CONTACT},
        headers={"Idempotency-Key": new_key()},
    )
    assert api.status_code == 404
    assert shared.events() == before


# Properties: whatever goes into a field, the answer is never a 5xx, and a refusal stores
# nothing. Withdrawals are sent with a stale version so that an accepted reason cannot close
# the shared case (validation runs before the version check).

JSON_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=120)
FORM_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=120)
ANY_JSON = st.one_of(
    JSON_TEXT,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
TEXT_FIELDS = {"family_name", "given_names", "passport_number", "email", "phone"}
TEXT_FIELDS |= {"reference", "access_code", "reason"}


def _property_params(as_json: bool) -> list[Any]:
    return [
        pytest.param(form, name, id=f"{form}-{name}")
        for form in FORMS
        if form.as_json is as_json
        for name in form.fields
        if as_json or name in TEXT_FIELDS
    ]


def _send_for_property(shared: Shared, form: Form, name: str, value: Any) -> Any:
    data = with_value(form.baseline(shared), name, value)
    if form.name == "api-withdraw":
        return shared.signed_in().post(
            "/api/v1/case/withdrawal",
            json={"version": shared.version() + 1, **data},
            headers={"Idempotency-Key": new_key()},
        )
    if form.name == "html-withdraw":
        client = shared.signed_in()
        page = client.get("/application/withdraw")
        stale = {**hidden(page.text), "version": str(shared.version() + 1)}
        return client.post("/application/withdraw", data={**stale, **data})
    return form.send(shared, data)


def _check_property(shared: Shared, form: Form, name: str, value: Any) -> None:
    before = shared.events()

    response = _send_for_property(shared, form, name, value)

    assert response.status_code < 500, json.dumps(value)
    if response.status_code >= 400:
        assert shared.events() == before, (response.status_code, json.dumps(value))


PROPERTY = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.mark.parametrize(("form", "name"), _property_params(as_json=True))
@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_any_json_value_in_any_field_never_fails_and_a_refusal_stores_nothing(
    shared, form, name, data
):
    _check_property(shared, form, name, data.draw(ANY_JSON, label=name))


@pytest.mark.parametrize(("form", "name"), _property_params(as_json=False))
@settings(PROPERTY, max_examples=15)
@given(data=st.data())
def test_any_text_in_a_form_field_never_fails_and_a_refusal_stores_nothing(
    shared, form, name, data
):
    _check_property(shared, form, name, data.draw(FORM_TEXT, label=name))


def test_the_fast_page_readers_agree_with_tests_forms(shared):
    client = shared.signed_in()
    page = client.get("/application/steps/contact").text
    assert hidden(page) == hidden_fields(page)
    bad = post_page(client, "/application/steps/contact", {"email": "<b>x", "phone": "1"})
    assert summary(bad.text) == error_summary(bad.text)
    assert set(summary(bad.text)) == {"email", "phone", "country_of_residence"}
