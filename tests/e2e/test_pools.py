"""Reserved pools are reachable: the register form and the API ask who qualifies, the person
sees the pool they are in, and the pool's places go to those who declared it (README, "Pools")."""

from __future__ import annotations

import secrets

from bs4 import BeautifulSoup

from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.forms import error_summary, field_errors, hidden_fields, post_form, text_of
from tests.stage_two_helpers import settle

LABELS = {
    "braille": {"en": "I read braille", "fr": "Je lis le braille"},
    "alternate_format": {"en": "I need another format", "fr": "J'ai besoin d'un autre format"},
}


def pooled(app, code="pools", policy="first_come"):
    registry = app.extensions["carepath.registry"]
    registry.define_intake(
        code=code,
        name="Pools",
        stream="outside",
        capacity=5,
        policy=policy,
        pools={"braille": 1, "alternate_format": 2},
        pool_labels=LABELS,
        actor="t",
    )
    registry.open_intake(code, actor="t")
    return registry


def events(app):
    registry = app.extensions["carepath.registry"]
    return registry.recorder.max_notification_id() or 0


def register_html(client, n, pool, code="pools"):
    data = {**about_you(n), "action": "continue"}
    if pool is not None:
        data["pool"] = pool
    return post_form(client, f"/intakes/{code}/register", data)


def finish_html(client):
    assert post_form(client, "/application/steps/contact", CONTACT).status_code == 302
    assert post_form(client, "/application/steps/eligibility", ELIGIBILITY).status_code == 302
    review = client.get("/application/review")
    submitted = client.post("/application/submit", data=hidden_fields(review.text))
    assert submitted.status_code == 302, submitted.text
    return review


def test_the_register_form_asks_which_reserved_places_apply_in_each_language(app, client):
    pooled(app)
    page = BeautifulSoup(client.get("/intakes/pools/register").text, "html.parser")
    fieldset = page.find("fieldset", id="pool")
    assert fieldset is not None
    options = [(i["value"], page.find("label", attrs={"for": i["id"]}).get_text(strip=True))
               for i in fieldset.find_all("input", type="radio")]  # fmt: skip
    assert options == [
        ("alternate_format", "I need another format"),
        ("braille", "I read braille"),
        ("general", "None of these"),
    ]
    assert not any(
        i.has_attr("checked") for i in fieldset.find_all("input")
    )  # no answer chosen for them
    french = client.get("/intakes/pools/register", headers={"Accept-Language": "fr"}).text
    assert "Je lis le braille" in french
    plain = BeautifulSoup(client.get("/intakes/test/register").text, "html.parser")
    assert plain.find("fieldset", id="pool") is None  # an intake without pools does not ask


def test_a_register_form_without_an_answer_or_with_a_forged_pool_is_refused_and_stores_nothing(
    app, client
):
    pooled(app)
    before = events(app)
    for pool in (None, "nonexistent", "general; drop"):
        refused = register_html(client, 1, pool)
        assert refused.status_code == 422
        assert "pool" in error_summary(refused.text)
        assert "reserved groups" in field_errors(refused.text)["pool"]
    assert events(app) == before


def test_a_person_who_declares_a_pool_gets_its_place_and_sees_it(app, client, sqlite_env):
    pooled(app)
    assert register_html(client, 1, "braille").status_code == 302
    review = finish_html(client)
    assert "Reserved places" in review.text
    assert "I read braille" in review.text
    second = app.test_client()
    assert register_html(second, 2, "braille").status_code == 302
    finish_html(second)
    third = app.test_client()
    assert register_html(third, 3, "general").status_code == 302
    finish_html(third)
    settle(sqlite_env)

    status = client.get("/application/status").text
    assert text_of(status, "pool") == "I read braille"
    first = client.get("/api/v1/case").json
    assert first["pool"] == "braille"
    assert first["allocation"]["state"] == "granted"
    assert first["allocation"]["pool"] == "braille"
    # general = 5 - 3 reserved: slots 1-2; then by name alternate_format 3-4, braille 5
    assert first["allocation"]["slot"] == 5
    waiting = second.get("/api/v1/case").json["allocation"]
    assert waiting["state"] == "waitlisted"
    assert waiting["pool"] == "braille"
    assert waiting["waitlist_position"] == 1  # the general pool's free places are not braille's
    general = third.get("/api/v1/case").json["allocation"]
    assert (general["state"], general["pool"], general["slot"]) == ("granted", "general", 1)


def key():
    return {"Idempotency-Key": secrets.token_urlsafe(24)}


def test_the_api_takes_a_pool_and_refuses_one_the_intake_lacks(app, client, sqlite_env):
    pooled(app)
    before = events(app)
    for pool, message in (
        ("nonexistent", "no such pool"),
        (7, "pool's name"),
        ("Braille", "pool's name"),
    ):
        refused = client.post(
            "/api/v1/intakes/pools/registrations",
            json={**about_you(1), "pool": pool},
            headers=key(),
        )
        assert refused.status_code == 422, refused.json
        assert message in refused.json["errors"]["pool"][0]
    plain = client.post(
        "/api/v1/intakes/test/registrations",
        json={**about_you(1), "pool": "braille"},
        headers=key(),
    )
    assert plain.status_code == 422
    assert "general" in plain.json["errors"]["pool"][0]
    assert events(app) == before

    done = client.post(
        "/api/v1/intakes/pools/registrations",
        json={**about_you(1), "pool": "alternate_format"},
        headers=key(),
    )
    assert done.status_code == 201, done.json
    assert client.get("/api/v1/case").json["pool"] == "alternate_format"
    other = app.test_client()
    default = other.post("/api/v1/intakes/pools/registrations", json=about_you(2), headers=key())
    assert default.status_code == 201
    assert other.get("/api/v1/case").json["pool"] == "general"  # an API client that does not ask


def test_the_openapi_document_describes_the_pool_field(client):
    document = client.get("/api/v1/openapi.json").json
    register = document["components"]["schemas"]["Register"]
    assert register["properties"]["pool"]["pattern"] == "^[a-z][a-z0-9_]{0,39}$"
    body = document["paths"]["/intakes/{code}/registrations"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/Register")
