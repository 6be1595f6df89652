"""Recovery of a lost access code over HTTP: the pages, the API, identical answers, rate limits."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import CONTACT, about_you, make_app
from tests.forms import error_summary, field_errors, hidden_fields, text_of
from tests.recovery_helpers import recovery_link_of, recovery_requests_of

BIRTH = "1985-04-27"  # about_you()'s


def register(app: Any, n: int = 1, *, contact: bool = True) -> dict[str, Any]:
    """Person n registered over the API (with an email address on file when `contact`)."""
    client = app.test_client()
    made = client.post(
        "/api/v1/intakes/test/registrations",
        json=about_you(n),
        headers={"Idempotency-Key": f"register-person-{n:04d}"},
    )
    assert made.status_code == 201, made.text
    if contact:
        saved = client.put(
            "/api/v1/case/steps/contact",
            json={"version": 1, "answers": CONTACT},
            headers={"Idempotency-Key": f"contact-person-{n:04d}"},
        )
        assert saved.status_code == 200, saved.text
    with client.session_transaction() as session:
        case_id = UUID(session["case_id"])
    return {**made.json, "case_id": case_id}


def registry_of(app: Any) -> Any:
    return app.extensions["carepath.registry"]


def link_of(app: Any, case_id: UUID) -> str:
    return recovery_link_of(registry_of(app), app.extensions["carepath.settings"].secret, case_id)


def ask(client: Any, data: dict[str, str], **kwargs: Any) -> Any:
    page = client.get("/recover", **kwargs)
    assert page.status_code == 200
    return client.post("/recover", data={**hidden_fields(page.text), **data}, **kwargs)


def sign_in(app: Any, reference: str, code: str) -> int:
    response = app.test_client().post(
        "/api/v1/session", json={"reference": reference, "access_code": code}
    )
    return int(response.status_code)


def test_a_lost_access_code_is_replaced_through_the_emailed_link(app):
    # given a registered person who lost the access code
    person = register(app)
    client = app.test_client()
    assert 'href="/recover"' in client.get("/sign-in").text

    # when they ask with the reference and date of birth, and follow the link
    asked = ask(client, {"reference": person["reference"], "date_of_birth": BIRTH})
    assert asked.status_code == 303
    assert asked.headers["Location"] == "/recover/sent"
    sent = client.get("/recover/sent").text
    assert "The link works for 30 minutes." in sent
    link = link_of(app, person["case_id"])
    page = client.get(link)
    assert page.status_code == 200
    assert "Set a new access code" in page.text
    recorded = registry_of(app).recorder.max_notification_id()  # the page itself sets nothing
    reset = client.post(link, data=hidden_fields(page.text))

    # then they are signed in with a new access code, shown once, and the old one is dead
    assert reset.status_code == 303
    assert registry_of(app).recorder.max_notification_id() > recorded
    shown = client.get(reset.headers["Location"])
    assert shown.status_code == 200
    new_code = text_of(shown.text, "access-code")
    assert text_of(shown.text, "reference") == person["reference"]
    assert new_code != person["access_code"]
    assert client.get("/application").status_code == 302  # signed in: sent on to a step
    assert sign_in(app, person["reference"], new_code) == 200
    assert sign_in(app, person["reference"], person["access_code"]) == 401
    # and the link works once
    again = app.test_client().get(link)
    assert again.status_code == 410
    assert 'href="/recover"' in again.text
    assert "already used" in again.text


def test_a_wrong_reference_or_birth_date_gets_the_very_same_answer_as_the_right_details(app):
    person = register(app)
    other = register(app, 2)
    attempts = {
        "right": {"reference": person["reference"], "date_of_birth": BIRTH},
        "wrong reference": {"reference": "7K2M-9QXD-R", "date_of_birth": BIRTH},
        "wrong birth date": {"reference": person["reference"], "date_of_birth": "1985-04-28"},
        "right passport": {
            "passport_number": "P00000001",
            "passport_country": "PH",
            "date_of_birth": BIRTH,
        },
        "wrong passport": {
            "passport_number": "P00000099",
            "passport_country": "PH",
            "date_of_birth": BIRTH,
        },
    }
    answers = {}
    for name, data in attempts.items():
        client = app.test_client()
        posted = ask(client, data)
        followed = client.get(posted.headers["Location"])
        answers[name] = (
            posted.status_code,
            posted.headers["Location"],
            posted.data,
            followed.status_code,
            followed.data,
        )
        api = app.test_client().post("/api/v1/recovery", json=data)
        answers[name + " (API)"] = (api.status_code, api.data)

    web = {k: v for k, v in answers.items() if not k.endswith("(API)")}
    api = {k: v for k, v in answers.items() if k.endswith("(API)")}
    assert len(set(web.values())) == 1, web
    assert len(set(api.values())) == 1, api
    assert next(iter(api.values()))[0] == 202
    # and only the right details recorded requests: two each (web and API), none for others
    registry = registry_of(app)
    assert len(recovery_requests_of(registry, person["case_id"])) == 4
    assert recovery_requests_of(registry, other["case_id"]) == []


def test_a_case_without_an_email_address_gets_the_same_answer_and_no_request(app):
    person = register(app, contact=False)
    client = app.test_client()

    posted = ask(client, {"reference": person["reference"], "date_of_birth": BIRTH})

    assert posted.headers["Location"] == "/recover/sent"
    assert recovery_requests_of(registry_of(app), person["case_id"]) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"date_of_birth": BIRTH}, {"reference": "Enter your reference, or your passport"}),
        (
            {"reference": "NOT-A-REF", "date_of_birth": BIRTH},
            {"reference": "Enter your reference as it was shown to you"},
        ),
        (
            {"passport_number": "P00000001", "date_of_birth": BIRTH},
            {"passport_country": "Select the country that issued your passport"},
        ),
        (
            {"passport_country": "PH", "passport_number": "P!", "date_of_birth": BIRTH},
            {"passport_number": "Your passport number must be 5 to 20 letters and digits"},
        ),
        (
            {"reference": "7K2M-9QXD-R", "date_of_birth": "27/04/1985"},
            {"date_of_birth": "Enter your date of birth as a real date"},
        ),
        (
            {"reference": "7K2M-9QXD-R", "passport_country": "XX", "date_of_birth": ""},
            {
                "passport_country": "Select the country that issued your passport from the list",
                "date_of_birth": "Enter your date of birth",
            },
        ),
    ],
)
def test_malformed_details_get_a_message_per_field_and_the_form_again(app, data, expected):
    client = app.test_client()

    refused = ask(client, data)

    assert refused.status_code == 422
    summary = error_summary(refused.text)
    assert set(summary) == set(expected)
    for field, message in expected.items():
        assert summary[field].startswith(message), summary
        assert message in field_errors(refused.text)[field]
    assert refused.text.count('aria-describedby="') >= 1
    assert "Error:" in refused.text.split("</title>")[0]


def test_the_recovery_pages_speak_french(app):
    person = register(app)
    client = app.test_client()
    form = client.get("/recover?lang=fr")
    assert "Code d'accès oublié?" in unescape(form.text)

    refused = ask(client, {"date_of_birth": BIRTH})
    assert "Entrez votre numéro de référence, ou votre numéro et pays de passeport" in unescape(
        refused.text
    )

    posted = ask(client, {"reference": person["reference"], "date_of_birth": BIRTH})
    sent = unescape(client.get(posted.headers["Location"]).text)
    assert "Le lien fonctionne pendant 30 minutes." in sent
    [requested] = recovery_requests_of(registry_of(app), person["case_id"])
    assert requested.language == "fr"  # the email is written in the language of the request
    link = link_of(app, person["case_id"])
    page = client.get(link)
    assert "Choisir un nouveau code d'accès" in unescape(page.text)
    done = client.get(client.post(link, data=hidden_fields(page.text)).headers["Location"])
    assert "Votre nouveau code d'accès" in unescape(done.text)
    spent = app.test_client().get(link + "?lang=fr")
    assert "Ce lien ne peut pas être utilisé" in unescape(spent.text)
    assert "Ce lien a déjà été utilisé" in unescape(spent.text)


def test_an_expired_link_is_refused_with_a_way_to_ask_again(app):
    person = register(app)
    app.extensions["carepath.recovery"].request(
        reference=person["reference"],
        date_of_birth=date(1985, 4, 27),
        language="en",
        now=datetime.now(UTC) - timedelta(minutes=31),
    )
    link = link_of(app, person["case_id"])
    client = app.test_client()

    page = client.get(link)
    posted = client.post(
        link, data={**hidden_fields(client.get("/recover").text), "idempotency_key": "k" * 24}
    )

    assert page.status_code == 410
    assert "This link has expired" in page.text
    assert 'href="/recover"' in page.text
    assert posted.status_code == 410
    assert sign_in(app, person["reference"], person["access_code"]) == 200


@pytest.mark.parametrize("token", ["nonsense", "0" * 32 + "." + "1" * 32 + "." + "2" * 32])
def test_a_forged_link_is_refused(app, token):
    page = app.test_client().get(f"/recover/{token}")

    assert page.status_code == 404
    assert "This link does not work" in page.text
    assert 'href="/recover"' in page.text


def test_the_api_resets_the_code_once_and_refuses_the_spent_link(app):
    person = register(app)
    api = app.test_client()
    assert (
        api.post(
            "/api/v1/recovery", json={"reference": person["reference"], "date_of_birth": BIRTH}
        ).status_code
        == 202
    )
    token = link_of(app, person["case_id"]).removeprefix("/recover/")

    first = api.post(
        "/api/v1/recovery/reset", json={"token": token}, headers={"Idempotency-Key": "a" * 24}
    )
    retry = api.post(
        "/api/v1/recovery/reset", json={"token": token}, headers={"Idempotency-Key": "a" * 24}
    )
    spent = api.post(
        "/api/v1/recovery/reset", json={"token": token}, headers={"Idempotency-Key": "b" * 24}
    )
    forged = api.post(
        "/api/v1/recovery/reset",
        json={"token": token[:-1] + ("1" if token[-1] == "0" else "0")},
        headers={"Idempotency-Key": "c" * 24},
    )

    assert first.status_code == 200
    assert first.json["reference"] == person["reference"]
    assert first.headers["Idempotent-Replayed"] == "false"
    assert retry.status_code == 200
    assert retry.json == first.json
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert spent.status_code == 410
    assert spent.json["code"] == "RecoveryLinkUsed"
    assert forged.status_code == 404
    assert api.get("/api/v1/case").json["reference"] == person["reference"]  # signed in
    assert sign_in(app, person["reference"], first.json["access_code"]) == 200
    assert sign_in(app, person["reference"], person["access_code"]) == 401


def test_the_api_refuses_malformed_requests_with_a_message_per_field(app):
    api = app.test_client()

    neither = api.post("/api/v1/recovery", json={"date_of_birth": BIRTH})
    unknown = api.post("/api/v1/recovery", json={"date_of_birth": BIRTH, "email": "x@y.z"})
    no_key = api.post("/api/v1/recovery/reset", json={"token": "a" * 32})
    bad_token = api.post(
        "/api/v1/recovery/reset", json={"token": "a"}, headers={"Idempotency-Key": "a" * 24}
    )

    assert neither.status_code == 422
    assert list(neither.json["errors"]) == ["reference"]
    assert unknown.status_code == 422
    assert "email" in unknown.json["errors"]
    assert no_key.status_code == 422
    assert "Idempotency-Key" in no_key.json["errors"]
    assert bad_token.status_code == 422
    assert list(bad_token.json["errors"]) == ["token"]


def test_the_openapi_document_describes_the_recovery_routes(app):
    document = app.test_client().get("/api/v1/openapi.json").json

    assert set(document["paths"]["/recovery"]) == {"post"}
    assert "202" in document["paths"]["/recovery"]["post"]["responses"]
    reset = document["paths"]["/recovery/reset"]["post"]
    assert reset["parameters"][0]["name"] == "Idempotency-Key"
    token = document["components"]["schemas"]["RecoveryReset"]["properties"]["token"]
    assert token["pattern"].startswith("^[0-9a-f]{32}")
    fields = document["components"]["schemas"]["Recovery"]["properties"]
    assert {"reference", "passport_number", "passport_country", "date_of_birth"} <= set(fields)


def test_registering_twice_links_to_sign_in_and_to_recovery(app):
    register(app)
    client = app.test_client()
    page = client.get("/intakes/test/register")

    refused = client.post(
        "/intakes/test/register",
        data={**hidden_fields(page.text), **about_you(1), "action": "continue"},
    )
    api = app.test_client().post(
        "/api/v1/intakes/test/registrations",
        json=about_you(1),
        headers={"Idempotency-Key": "register-again-0001"},
    )

    assert refused.status_code == 409
    assert 'href="/sign-in"' in refused.text
    assert 'href="/recover"' in refused.text
    assert api.status_code == 409
    assert api.json["links"] == {"sign_in": "/api/v1/session", "recovery": "/api/v1/recovery"}


@pytest.fixture
def limited(sqlite_env):
    app = make_app(
        sqlite_env,
        RATELIMIT_ENABLED=True,
        RATELIMIT_RECOVERY="100 per hour",
        RATELIMIT_RECOVERY_CASE="3 per hour",
    )
    yield app
    app.extensions["carepath.registry"].close()


def from_address(n: int) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": f"203.0.113.{n}"}}


def test_requests_for_one_case_are_limited_from_any_address_and_either_way_of_naming_it(limited):
    person = register(limited)
    by_reference = {"reference": person["reference"], "date_of_birth": BIRTH}
    by_passport = {
        "passport_number": "P00000001",
        "passport_country": "PH",
        "date_of_birth": "1990-01-01",
    }

    codes = [
        ask(limited.test_client(), data, **from_address(n)).status_code
        for n, data in enumerate([by_reference, by_passport, by_reference, by_passport], 1)
    ]
    api = limited.test_client().post("/api/v1/recovery", json=by_reference, **from_address(9))

    assert codes == [303, 303, 303, 429]
    assert api.status_code == 429
    # another person is not held back
    other = register(limited, 2)
    assert (
        ask(
            limited.test_client(),
            {"reference": other["reference"], "date_of_birth": BIRTH},
            **from_address(10),
        ).status_code
        == 303
    )


def test_the_limited_answer_is_the_same_for_a_case_that_does_not_exist(limited):
    person = register(limited)
    real = {"reference": person["reference"], "date_of_birth": BIRTH}
    made_up = {"reference": "7K2M-9QXD-R", "date_of_birth": BIRTH}

    def fourth(data: dict[str, str]) -> Any:
        for n in range(3):
            assert ask(limited.test_client(), data, **from_address(20 + n)).status_code == 303
        return ask(limited.test_client(), data, **from_address(30))

    limited_real, limited_made_up = fourth(real), fourth(made_up)

    assert limited_real.status_code == limited_made_up.status_code == 429
    assert limited_real.data == limited_made_up.data
    assert "Too many requests for a link" in limited_real.text


def test_requests_from_one_address_are_limited_whatever_they_name(sqlite_env):
    app = make_app(sqlite_env, RATELIMIT_ENABLED=True, RATELIMIT_RECOVERY="2 per hour")
    try:
        client = app.test_client()
        codes = [
            ask(client, {"reference": ref, "date_of_birth": BIRTH}, **from_address(1)).status_code
            for ref in ("7K2M-9QXD-R", "AAAA-AAAA-A", "BBBB-BBBB-B")
        ]
        elsewhere = ask(
            app.test_client(),
            {"reference": "7K2M-9QXD-R", "date_of_birth": BIRTH},
            **from_address(2),
        )
    finally:
        app.extensions["carepath.registry"].close()

    assert codes[:2] == [303, 303] or codes[:2] == [303, 422]
    assert codes[2] == 429
    assert elsewhere.status_code == 303


def test_the_openapi_document_states_the_recovery_rules_across_fields(app):
    schema = app.test_client().get("/api/v1/openapi.json").json["components"]["schemas"]["Recovery"]

    assert [sorted(branch["required"]) for branch in schema["anyOf"]] == [
        ["reference"],
        ["passport_country", "passport_number"],
    ]
    assert schema["properties"]["reference"]["maxLength"] == 20
    assert schema["properties"]["date_of_birth"]["format"] == "date"


def signed_in_client(app: Any, reference: str, code: str, lang: str | None = None) -> Any:
    client = app.test_client()
    if lang:
        client.get(f"/sign-in?lang={lang}")
    signed = client.post("/api/v1/session", json={"reference": reference, "access_code": code})
    assert signed.status_code == 200, signed.text
    return client


def reset_through_the_page(app: Any, client: Any, case_id: UUID) -> str:
    """`client` follows a recovery link and sets a new code: the new code."""
    app.extensions["carepath.recovery"].request(
        reference=registry_of(app).get_case(case_id).reference,
        date_of_birth=date(1985, 4, 27),
        language="en",
    )
    link = link_of(app, case_id)
    reset = client.post(link, data=hidden_fields(client.get(link).text))
    assert reset.status_code == 303, reset.text
    return text_of(client.get(reset.headers["Location"]).text, "access-code")


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "Your access code was changed. Sign in with the new code."),
        ("fr", "Votre code d’accès a été changé. Connectez-vous avec le nouveau code."),
    ],
)
def test_a_new_access_code_ends_every_session_opened_with_the_old_one(app, lang, message):
    # given a person signed in on a shared device (pages) and by a script (API), with the old code
    person = register(app)
    shared_device = signed_in_client(app, person["reference"], person["access_code"], lang)
    script = signed_in_client(app, person["reference"], person["access_code"])
    assert shared_device.get("/application/status").status_code == 200
    assert script.get("/api/v1/case").status_code == 200

    # when the person sets a new code through a recovery link on their own phone
    phone = app.test_client()
    new_code = reset_through_the_page(app, phone, person["case_id"])
    events = registry_of(app).recorder.max_notification_id()

    # then the old sessions end: the page sends to sign-in, which says why, in the person's language
    ended = shared_device.get("/application/status")
    assert ended.status_code == 303
    assert ended.headers["Location"] == "/sign-in?ended=code_changed"
    sign_in_page = shared_device.get(ended.headers["Location"])
    assert message in text_of(sign_in_page.text, "banner")
    assert shared_device.get("/application/status").status_code == 401  # no session any more
    with shared_device.session_transaction() as session:
        assert "case_id" not in session
        assert session.get("lang") == lang
    # and the API answers 401 with a message, and nothing was written on the way
    refused = script.get("/api/v1/case")
    assert refused.status_code == 401
    assert refused.json == {
        "error": "Your access code was changed. Sign in with the new code.",
        "code": "SessionEnded",
    }
    assert script.put("/api/v1/case/steps/contact", json={}).status_code == 401
    assert registry_of(app).recorder.max_notification_id() == events

    # while the phone that set the code stays signed in, and the new code signs in anywhere
    assert phone.get("/application/status").status_code == 200
    assert phone.get("/api/v1/case").status_code == 200
    again = signed_in_client(app, person["reference"], new_code)
    assert again.get("/api/v1/case").json["reference"] == person["reference"]


def test_a_retried_api_reset_keeps_the_session_its_first_try_opened(app):
    person = register(app)
    old = signed_in_client(app, person["reference"], person["access_code"])
    app.extensions["carepath.recovery"].request(
        reference=person["reference"], date_of_birth=date(1985, 4, 27), language="en"
    )
    token = link_of(app, person["case_id"]).removeprefix("/recover/")
    first, retry = app.test_client(), app.test_client()
    for client in (first, retry):
        done = client.post(
            "/api/v1/recovery/reset", json={"token": token}, headers={"Idempotency-Key": "k" * 24}
        )
        assert done.status_code == 200, done.text

    assert first.get("/api/v1/case").status_code == 200
    assert retry.get("/api/v1/case").status_code == 200
    assert old.get("/api/v1/case").status_code == 401
    # another person's sessions are untouched
    other = register(app, 2)
    assert (
        signed_in_client(app, other["reference"], other["access_code"])
        .get("/api/v1/case")
        .status_code
        == 200
    )


def test_sessions_kept_in_redis_end_at_a_new_code_too(sqlite_env):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/9"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as down:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and Redis at {url} is not reachable: {down}")
        pytest.skip(f"Redis at {url} is not reachable: {down}")
    app = make_app({**sqlite_env, "CAREPATH_REDIS_URL": url})
    try:
        person = register(app)
        old = signed_in_client(app, person["reference"], person["access_code"])
        phone = app.test_client()
        reset_through_the_page(app, phone, person["case_id"])
        assert old.get("/api/v1/case").status_code == 401
        assert phone.get("/api/v1/case").status_code == 200
    finally:
        registry_of(app).close()


@pytest.fixture
def floored(tmp_path):
    """A floor of 200 ms, and a record of what the pages asked to sleep (then slept)."""
    env = {"CAREPATH_DATA_DIR": str(tmp_path / "floored"), "CAREPATH_SECRET": "f" * 40}
    app = make_app(env, RECOVERY_FLOOR_SECONDS=0.2)
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds)

    app.extensions["carepath.sleep"] = sleep
    yield app, asked
    registry_of(app).close()


def test_a_match_and_a_miss_take_at_least_the_floor_on_the_page_and_the_api(floored):
    app, asked = floored
    person = register(app)
    events = registry_of(app).recorder.max_notification_id()
    tries = {
        "page, match": lambda c: ask(c, {"reference": person["reference"], "date_of_birth": BIRTH}),
        "page, miss": lambda c: ask(
            c, {"reference": person["reference"], "date_of_birth": "1990-01-01"}
        ),
        "api, match": lambda c: c.post(
            "/api/v1/recovery", json={"reference": person["reference"], "date_of_birth": BIRTH}
        ),
        "api, miss": lambda c: c.post(
            "/api/v1/recovery",
            json={"reference": person["reference"], "date_of_birth": "1990-01-01"},
        ),
    }
    for name, attempt in tries.items():
        client = app.test_client()
        client.get("/recover")  # the form's GET is not padded: only the lookup is
        before = len(asked)
        started = time.monotonic()
        response = attempt(client)
        took = time.monotonic() - started
        assert response.status_code in {202, 303}, (name, response.text)
        assert took >= 0.2, (name, took)
        assert len(asked) == before + 1, name
        assert 0 < asked[-1] <= 0.2, (name, asked[-1])
    assert registry_of(app).recorder.max_notification_id() == events + 2  # the two matches


def test_refused_details_are_not_padded_and_no_floor_sleeps_nothing(floored, app):
    floor_app, asked = floored
    refused = ask(floor_app.test_client(), {"reference": "", "date_of_birth": BIRTH})
    assert refused.status_code == 422
    assert asked == []

    slept: list[float] = []
    app.extensions["carepath.sleep"] = slept.append
    person = register(app)
    assert (
        ask(
            app.test_client(), {"reference": person["reference"], "date_of_birth": BIRTH}
        ).status_code
        == 303
    )
    assert slept == []  # the test app's floor is 0
