"""Staff accounts over HTTP: enrolment with a second factor, sign-in, sessions, roles, CSRF, CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from flask import Blueprint, jsonify
from jinja2 import Environment, meta

from carepath.cli import cli
from domain.values import StaffRole
from tests.conftest import make_app
from tests.forms import error_summary, field_errors, hidden_fields, post_form, text_of
from tests.staff_helpers import (
    PASSWORD,
    add_staff,
    enrol,
    enrolled_staff,
    sign_in,
    staff_app,
    staff_client,
    staff_csrf,
    totp_code,
)
from web.extensions import csrf
from web.staff_auth import current_staff, require_staff

TEMPLATES = Path(__file__).parents[2] / "web" / "templates" / "staff"


def cookie(client: Any, name: str) -> Any:
    return client.get_cookie(name)


# Enrolment


def test_enrolment_shows_a_qr_code_the_uri_and_the_key_and_needs_a_current_code(app):
    email, path = add_staff(app, StaffRole.OFFICER, "Amara.Officer@example.gov")
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find(id="qr")["src"].startswith("data:image/svg+xml")
    secret = text_of(page.text, "totp-secret").replace(" ", "")
    uri = text_of(page.text, "otpauth-uri")
    assert uri.startswith("otpauth://totp/carepath:amara.officer%40example.gov?")
    assert f"secret={secret}" in uri
    assert "issuer=carepath" in uri
    assert client.get(path).text.count(secret[:4]) >= 1  # the same key on every view of the link

    wrong = client.post(
        path,
        data={
            **hidden_fields(page.text),
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "code": "000000" if totp_code(secret) != "000000" else "111111",
        },
    )
    assert wrong.status_code == 422
    assert "code" in field_errors(wrong.text)

    assert enrol(client, path) == secret
    done = client.get("/staff/sign-in?enrolled=1")
    assert "Your account is ready" in done.text
    assert staff_app(app).find(email).enrolled


@pytest.mark.parametrize(
    ("password", "again", "field"),
    [
        ("short pass", "short pass", "password"),
        ("a" * 16, "a" * 16, "password"),
        ("x" * 257, "x" * 257, "password"),
        (PASSWORD, PASSWORD + "!", "password_confirm"),
        ("", "", "password"),
    ],
    ids=["too-short", "one-character", "too-long", "not-the-same", "empty"],
)
def test_enrolment_refuses_a_weak_or_mistyped_password_with_a_message_by_the_field(
    app, password, again, field
):
    email, path = add_staff(app, StaffRole.AUDITOR)
    client = app.test_client()
    page = client.get(path)
    secret = text_of(page.text, "totp-secret").replace(" ", "")
    refused = client.post(
        path,
        data={
            **hidden_fields(page.text),
            "password": password,
            "password_confirm": again,
            "code": totp_code(secret),
        },
    )
    assert refused.status_code == 422
    assert field in field_errors(refused.text)
    assert field in error_summary(refused.text)
    assert not staff_app(app).find(email).enrolled


def test_a_used_unknown_or_malformed_enrolment_link_gets_a_clear_not_found_page(app):
    _, path = add_staff(app, StaffRole.OFFICER)
    client = app.test_client()
    enrol(client, path)
    staff_id_hex = path.rsplit("/", 1)[-1].split(".")[0]
    for link in (
        path,  # used
        f"/staff/enrol/{staff_id_hex}.{'A' * 43}",  # wrong token
        f"/staff/enrol/{'0' * 32}.{'A' * 43}",  # unknown member
        "/staff/enrol/not-a-link",
        f"/staff/enrol/{staff_id_hex}",
    ):
        for method in ("GET", "POST"):
            response = client.open(link, method=method, data={"staff_csrf": "x"})
            assert response.status_code in {404, 400}, (link, method)
            if method == "GET":
                assert response.status_code == 404
                assert "enrolment link does not work" in response.text or "not found" in (
                    response.text.lower()
                )
                assert "Traceback" not in response.text


# Sign-in and the second factor


def test_signing_in_needs_password_and_a_current_code(app):
    email, password, secret = enrolled_staff(app, StaffRole.ADMIN)
    client = app.test_client()

    wrong_code = client.post(
        "/staff/sign-in",
        data={
            "staff_csrf": staff_csrf(client, "/staff/sign-in"),
            "email": email,
            "password": password,
            "code": "000000" if totp_code(secret) != "000000" else "111111",
        },
    )
    assert wrong_code.status_code == 401
    assert "not right" in error_summary(wrong_code.text)["email"]
    assert cookie(client, "carepath_staff") is None

    no_code = post_form(client, "/staff/sign-in", {"email": email, "password": password})
    assert no_code.status_code == 422
    assert "code" in field_errors(no_code.text)
    assert cookie(client, "carepath_staff") is None

    wrong_password = sign_in(client, email, "not the password", secret)
    assert wrong_password.status_code == 401
    assert cookie(client, "carepath_staff") is None
    # the same message, whatever was wrong
    assert error_summary(wrong_password.text) == error_summary(wrong_code.text)

    signed = sign_in(client, email, password, secret)
    assert signed.status_code == 302
    assert signed.headers["Location"] == "/staff/"
    assert client.get("/staff/", follow_redirects=True).status_code == 200


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(app):
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    known = sign_in(app.test_client(), email, "wrong password here", secret)
    unknown = sign_in(app.test_client(), "nobody@example.gov", password, secret)
    assert known.status_code == unknown.status_code == 401
    assert error_summary(known.text) == error_summary(unknown.text)


def test_the_staff_cookie_is_strict_http_only_for_the_whole_site_and_ends_with_the_browser(app):
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    client = app.test_client()
    client.get("/staff/sign-in")
    assert cookie(client, "carepath_staff_pre") is not None
    signed = sign_in(client, email, password, secret)
    header = next(
        h for h in signed.headers.getlist("Set-Cookie") if h.startswith("carepath_staff=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "path"} <= attributes
    assert "max-age" not in attributes
    assert "expires" not in attributes
    assert "SameSite=Strict" in header
    assert "Path=/;" in header or header.endswith("Path=/")
    staff_id = staff_app(app).find(email).id
    assert cookie(client, "carepath_staff").value.startswith(f"{staff_id.hex}.")
    assert cookie(client, "carepath_staff_pre") is None  # deleted at sign-in


def test_every_sign_in_gets_a_new_session_token(app):
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    client = app.test_client()
    assert sign_in(client, email, password, secret).status_code == 302
    first = cookie(client, "carepath_staff").value
    assert sign_in(client, email, password, secret, steps_ahead=1).status_code == 302
    assert cookie(client, "carepath_staff").value != first


def test_after_sign_in_only_a_local_staff_page_is_a_destination(app):
    email, password, secret = enrolled_staff(app, StaffRole.ADMIN)
    bounced = app.test_client().get("/staff/admin/staff?x=1")
    assert bounced.status_code == 302
    assert bounced.headers["Location"].startswith("/staff/sign-in?next=")
    for target, expected in [
        ("/staff/admin/staff?x=1", "/staff/admin/staff?x=1"),
        ("https://evil.example/staff/", "/staff/"),
        ("//evil.example/staff/", "/staff/"),
        ("/sign-in", "/staff/"),
    ]:
        client = app.test_client()
        page = client.get("/staff/sign-in", query_string={"next": target})
        signed = client.post(
            "/staff/sign-in",
            query_string={"next": target},
            data={
                **hidden_fields(page.text),
                "email": email,
                "password": password,
                "code": totp_code(secret, len(target) % 2),  # a step not yet used
            },
        )
        if signed.status_code == 401:  # that step was used by a previous target: the next one
            continue
        assert signed.headers["Location"] == expected, target


def test_five_failed_sign_ins_lock_the_account_and_say_until_when(app):
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, email, "wrong password!", secret).status_code == 401
    locked = sign_in(client, email, password, secret)
    assert locked.status_code == 423
    message = error_summary(locked.text)["email"]
    assert "locked" in message
    assert re.search(r"\d{1,2}:\d{2}", message)
    assert cookie(client, "carepath_staff") is None
    assert staff_app(app).find(email).locked_until is not None


# Sessions end


def test_a_signed_out_session_cookie_replayed_opens_nothing(app):
    client = staff_client(app, StaffRole.ADMIN)
    stolen = cookie(client, "carepath_staff").value
    out = client.post("/staff/sign-out", data={"staff_csrf": staff_csrf(client)})
    assert out.status_code == 302
    assert client.get(out.headers["Location"]).status_code == 200
    assert cookie(client, "carepath_staff") is None

    thief = app.test_client()
    thief.set_cookie("carepath_staff", stolen)
    replayed = thief.get("/staff/admin/staff")
    assert replayed.status_code == 302
    assert replayed.headers["Location"].startswith("/staff/sign-in")


def test_an_admin_ending_sessions_signs_the_member_out_everywhere(app):
    admin = staff_client(app, StaffRole.ADMIN)
    officer = staff_client(app, StaffRole.OFFICER)
    assert officer.get("/staff/").headers["Location"] == "/staff/board"
    member = staff_app(app).find(officer.staff_email)
    assert member.active_sessions == 1

    ended = admin.post(
        f"/staff/admin/staff/{member.id.hex}/revoke", data={"staff_csrf": staff_csrf(admin)}
    )
    assert ended.status_code == 302
    shown = admin.get(ended.headers["Location"])
    assert f"Every session of {member.email} has ended" in text_of(shown.text, "done")
    assert officer.get("/staff/").headers["Location"].startswith("/staff/sign-in")
    assert admin.get("/staff/admin/staff").status_code == 200  # the admin's own session lives


def test_a_disabled_account_cannot_sign_in_until_enabled(app):
    admin = staff_client(app, StaffRole.ADMIN)
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    member = staff_app(app).find(email)
    token = staff_csrf(admin)
    assert (
        admin.post(
            f"/staff/admin/staff/{member.id.hex}/disable", data={"staff_csrf": token}
        ).status_code
        == 302
    )
    refused = sign_in(app.test_client(), email, password, secret)
    assert refused.status_code == 401
    assert "disabled" in admin.get("/staff/admin/staff").text
    admin.post(f"/staff/admin/staff/{member.id.hex}/enable", data={"staff_csrf": token})
    assert sign_in(app.test_client(), email, password, secret).status_code == 302


def test_an_admin_adds_a_member_and_resets_an_enrolment_seeing_each_link_once(app):
    admin = staff_client(app, StaffRole.ADMIN)
    added = post_form(
        admin,
        "/staff/admin/staff",
        {"email": "New.Officer@Example.gov", "name": "Nadia Officer", "role": "officer"},
    )
    assert added.status_code == 200
    link = text_of(added.text, "enrolment-link")
    assert link.startswith("http://localhost/staff/enrol/")
    path = link.removeprefix("http://localhost")
    secret = enrol(app.test_client(), path)
    member = staff_app(app).find("new.officer@example.gov")
    assert (member.name, member.role, member.enrolled) == ("Nadia Officer", "officer", True)
    assert "new.officer@example.gov" in admin.get("/staff/admin/staff").text

    again = post_form(admin, "/staff/admin/staff", {"email": member.email, "role": "auditor"})
    assert again.status_code == 409
    assert "already exists" in field_errors(again.text)["email"]

    reset = admin.post(
        f"/staff/admin/staff/{member.id.hex}/reset", data={"staff_csrf": staff_csrf(admin)}
    )
    assert reset.status_code == 200
    new_link = text_of(reset.text, "enrolment-link")
    assert new_link != link
    assert sign_in(app.test_client(), member.email, PASSWORD, secret).status_code == 401
    assert app.test_client().get(new_link.removeprefix("http://localhost")).status_code == 200


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not an email", "role": "officer"}, "email"),
        ({"email": "ok@example.gov", "role": "superuser"}, "role"),
        ({"email": "ok@example.gov"}, "role"),
        ({"email": "ok@example.gov", "role": "officer", "name": "n" * 101}, "name"),
    ],
)
def test_adding_a_member_with_bad_input_gets_a_message_by_the_field(app, form, field):
    admin = staff_client(app, StaffRole.ADMIN)
    refused = post_form(admin, "/staff/admin/staff", form)
    assert refused.status_code == 422
    assert field in field_errors(refused.text)
    assert len(staff_app(app).list_staff()) == 1


# CSRF


def test_staff_forms_without_a_valid_csrf_token_are_refused_and_change_nothing(app):
    admin = staff_client(app, StaffRole.ADMIN)
    officer = staff_client(app, StaffRole.OFFICER)
    member = staff_app(app).find(officer.staff_email)
    before = staff_app(app).list_staff()
    other_token = staff_csrf(officer)  # a real token, of another session
    for data in ({}, {"staff_csrf": ""}, {"staff_csrf": "0" * 64}, {"staff_csrf": other_token}):
        for url, extra in [
            (f"/staff/admin/staff/{member.id.hex}/disable", {}),
            (f"/staff/admin/staff/{member.id.hex}/revoke", {}),
            ("/staff/admin/staff", {"email": "x@example.gov", "role": "admin"}),
            ("/staff/sign-out", {}),
        ]:
            refused = admin.post(url, data={**data, **extra})
            assert refused.status_code == 400, (url, data)
            assert "reload the page" in refused.text
    assert staff_app(app).list_staff() == before
    assert admin.get("/staff/admin/staff").status_code == 200  # still signed in


def test_the_sign_in_form_needs_its_csrf_token(app):
    email, password, secret = enrolled_staff(app, StaffRole.OFFICER)
    client = app.test_client()
    refused = client.post(
        "/staff/sign-in", data={"email": email, "password": password, "code": totp_code(secret)}
    )
    assert refused.status_code == 400
    assert cookie(client, "carepath_staff") is None


# Roles


@pytest.mark.parametrize("role", [StaffRole.OFFICER, StaffRole.AUDITOR])
def test_officers_and_auditors_cannot_use_the_admin_pages(app, role):
    client = staff_client(app, role)
    member = staff_app(app).find(client.staff_email)
    token = staff_csrf(client)
    assert client.get("/staff/admin/staff").status_code == 403
    added = client.post(
        "/staff/admin/staff", data={"staff_csrf": token, "email": "x@example.gov", "role": "admin"}
    )
    assert added.status_code == 403
    reset = client.post(f"/staff/admin/staff/{member.id.hex}/reset", data={"staff_csrf": token})
    assert reset.status_code == 403
    assert "enrolment-link" not in reset.text
    assert len(staff_app(app).list_staff()) == 1


# Staff and applicants never share a session


def test_an_applicant_session_opens_no_staff_page_and_a_staff_session_no_applicant_page(app):
    applicant = app.test_client()
    registered = post_form(
        applicant,
        "/intakes/test/register",
        {
            "family_name": "Santos",
            "given_names": "Maria",
            "date_of_birth": "1985-04-27",
            "passport_number": "P01234567",
            "passport_country": "PH",
            "action": "continue",
        },
    )
    assert registered.status_code == 302
    assert applicant.get("/application/status").status_code == 200
    for path in ("/staff/", "/staff/admin/staff"):
        refused = applicant.get(path)
        assert refused.status_code == 302
        assert refused.headers["Location"].startswith("/staff/sign-in")

    staff = staff_client(app, StaffRole.ADMIN)
    assert staff.get("/application/status").status_code == 401
    assert staff.get("/api/v1/case").status_code == 401
    staff.set_cookie("carepath_session", applicant.get_cookie("carepath_session").value)
    # the applicant's cookie means nothing on staff pages: neither read nor replaced there
    page = staff.get("/staff/admin/staff")
    assert page.status_code == 200
    assert "Santos" not in page.text
    assert not [h for h in page.headers.getlist("Set-Cookie") if "carepath_session" in h]


def test_staff_pages_never_set_the_applicant_session_cookie(app):
    client = app.test_client()
    email, path = add_staff(app, StaffRole.ADMIN)
    secret = enrol(client, path)
    client.get("/staff/sign-in?lang=fr")
    assert sign_in(client, email, PASSWORD, secret).status_code == 302
    for page in ("/staff/", "/staff/admin/staff", "/staff/admin/staff?lang=en", "/staff/nowhere"):
        client.get(page)
    post_form(client, "/staff/admin/staff", {"email": "bad", "role": "x"})
    client.post("/staff/sign-out", data={"staff_csrf": staff_csrf(client)})
    assert cookie(client, "carepath_session") is None


def test_the_staff_language_choice_lives_in_its_own_cookie(app):
    client = app.test_client()
    page = client.get("/staff/sign-in?lang=fr")
    assert '<html lang="fr">' in page.text
    assert cookie(client, "carepath_staff_lang").value == "fr"
    assert '<html lang="fr">' in client.get("/staff/sign-in").text
    assert cookie(client, "carepath_session") is None
    assert '<html lang="en">' in client.get("/sign-in").text  # applicant pages: their own choice


def test_the_staff_base_template_never_touches_the_applicant_session():
    source = (TEMPLATES / "base.html").read_text()
    names = meta.find_undeclared_variables(Environment(autoescape=True).parse(source))
    assert "session" not in names
    assert "csrf_token" not in names  # Flask-WTF's token lives in the applicant session


# The JSON API's rules for staff sessions


@pytest.fixture
def api_app(sqlite_env):
    """The app with a stand-in staff API route (the real ones live in web/staff_api.py)."""
    app = make_app(sqlite_env)
    probe = Blueprint("staff_probe", __name__)

    @probe.route("/api/v1/staff/test-probe", methods=["GET", "POST"])
    @require_staff()
    def whoami() -> Any:
        return jsonify({"email": current_staff().email})

    @probe.get("/api/v1/staff/test-admin-only")
    @require_staff(StaffRole.ADMIN)
    def admin_only() -> Any:
        return jsonify({"ok": True})

    csrf.exempt(probe)  # as the API's blueprints are: Flask-WTF would want an applicant session
    app.register_blueprint(probe)
    yield app
    app.extensions["carepath.registry"].close()


def test_the_staff_api_takes_a_bearer_token_and_the_cookie_only_for_reads(api_app):
    client = staff_client(api_app, StaffRole.OFFICER)
    value = cookie(client, "carepath_staff").value
    assert client.get("/api/v1/staff/test-probe").json["email"] == client.staff_email
    by_cookie = client.post("/api/v1/staff/test-probe")
    assert by_cookie.status_code == 401
    assert by_cookie.json["code"] == "StaffSignInRequired"
    bearer = api_app.test_client().post(
        "/api/v1/staff/test-probe", headers={"Authorization": f"Bearer {value}"}
    )
    assert bearer.status_code == 200
    assert bearer.json["email"] == client.staff_email

    anonymous = api_app.test_client().get("/api/v1/staff/test-probe")
    assert anonymous.status_code == 401
    assert anonymous.json["code"] == "StaffSignInRequired"
    forbidden = api_app.test_client().get(
        "/api/v1/staff/test-admin-only", headers={"Authorization": f"Bearer {value}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json["code"] == "NotPermitted"
    junk = api_app.test_client().get(
        "/api/v1/staff/test-probe", headers={"Authorization": "Bearer junk.value"}
    )
    assert junk.status_code == 401


# The CLI


@pytest.fixture
def run(sqlite_env, monkeypatch):
    for key in ("PERSISTENCE_MODULE", "POSTGRES_DBNAME", "CAREPATH_VIEWS_URL"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner(env=sqlite_env)

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("db", "init").exit_code == 0
    return invoke


def test_staff_are_added_listed_disabled_enabled_reset_and_revoked_from_the_cli(run, sqlite_env):
    added = run(
        "staff",
        "add",
        "Ops.Admin@Example.gov",
        "--role",
        "admin",
        "--name",
        "Ops Admin",
        "--base-url",
        "https://carepath.example/",
    )
    assert added.exit_code == 0, added.output
    link = re.search(r"https://carepath\.example/staff/enrol/([0-9a-f]{32}\.\S+)", added.output)
    assert link, added.output

    app = make_app(sqlite_env)
    try:
        secret = enrol(app.test_client(), f"/staff/enrol/{link.group(1)}")
        client = app.test_client()
        assert sign_in(client, "ops.admin@example.gov", PASSWORD, secret).status_code == 302
        listed = run("staff", "list").output
        assert re.search(
            r"ops\.admin@example\.gov\s+admin\s+enrolled\s+sessions 1\s+Ops Admin", listed
        )

        revoked = run("staff", "revoke", "OPS.admin@example.gov")
        assert "ended 1 active session of ops.admin@example.gov" in revoked.output
        assert client.get("/staff/").headers["Location"].startswith("/staff/sign-in")

        assert run("staff", "disable", "ops.admin@example.gov").exit_code == 0
        assert "disabled" in run("staff", "list").output
        assert (
            sign_in(app.test_client(), "ops.admin@example.gov", PASSWORD, secret).status_code == 401
        )
        assert run("staff", "enable", "ops.admin@example.gov").exit_code == 0

        reset = run("staff", "reset", "ops.admin@example.gov")
        assert reset.exit_code == 0
        assert "http://127.0.0.1:8000/staff/enrol/" in reset.output  # the default base URL
        assert "not enrolled" in run("staff", "list").output
    finally:
        app.extensions["carepath.registry"].close()
        app.extensions["carepath.staff"].close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("staff", "add", "a@example.gov", "--role", "boss"), "Invalid value for '--role'"),
        (("staff", "add", "not-an-email", "--role", "officer"), "give an email address"),
        (("staff", "add", "a@example.gov"), "Missing option '--role'"),
        (("staff", "disable", "ghost@example.gov"), "no staff member with the email"),
        (("staff", "enable", "ghost@example.gov"), "no staff member with the email"),
        (("staff", "reset", "ghost@example.gov"), "no staff member with the email"),
        (("staff", "revoke", "ghost@example.gov"), "no staff member with the email"),
    ],
)
def test_the_staff_cli_explains_bad_input(run, args, message):
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_cli_refuses_a_second_account_for_the_same_address(run):
    assert run("staff", "add", "dup@example.gov", "--role", "officer").exit_code == 0
    again = run("staff", "add", "DUP@example.gov", "--role", "auditor")
    assert again.exit_code == 1
    assert "already has a staff account" in again.output
    assert run("staff", "list").output.count("dup@example.gov") == 1
