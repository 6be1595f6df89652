"""The public page and API of an intake publish a lottery's inputs as each comes to exist."""

from __future__ import annotations

import hashlib

from tests.conftest import submit_person
from tests.stage_two_helpers import settle


def lottery(app, code="pub"):
    registry = app.extensions["carepath.registry"]
    registry.define_intake(
        code=code, name="Public draw", stream="outside", capacity=2, policy="lottery", actor="t"
    )
    return registry


def draw_of(client, code="pub"):
    answer = client.get(f"/api/v1/intakes/{code}")
    assert answer.status_code == 200
    return answer.json["draw"]


def test_a_lottery_publishes_commitment_then_seed_then_the_draw(app, client, sqlite_env):
    registry = lottery(app)
    before = draw_of(client)
    assert before["seed_commitment"] is None
    page = client.get("/intakes/pub")
    assert page.status_code == 200
    assert "Not yet: published when registration opens." in page.text

    registry.open_intake("pub", actor="t")
    opened = draw_of(client)
    assert len(opened["seed_commitment"]) == 64
    assert opened["seed"] is None
    assert opened["seed_commitment"] in client.get("/intakes/pub").text
    for n in range(5):
        submit_person(registry, "pub", n)

    registry.close_intake("pub", actor="t")
    settle(sqlite_env)
    drawn = draw_of(client)
    assert hashlib.sha256(drawn["seed"].encode()).hexdigest() == drawn["seed_commitment"]
    assert drawn["entries"] == 5
    assert len(drawn["entries_digest"]) == 64
    assert drawn["fairness"]["rank_sum"]["selected"] == 2
    page = client.get("/intakes/pub").text
    for value in (drawn["seed"], drawn["entries_digest"], drawn["combined_seed"]):
        assert value in page
    assert "A low p-value alone is no proof of bias" in page
    french = client.get("/intakes/pub", headers={"Accept-Language": "fr"}).text
    assert "Vérifiez le tirage vous-même" in french


def test_a_first_come_intake_has_no_draw(client):
    assert draw_of(client, "test") is None
    page = client.get("/intakes/test")
    assert page.status_code == 200
    assert "First come, first served" in page.text
    assert "Check the draw yourself" not in page.text


def test_an_unknown_intake_is_a_404_page(client):
    assert client.get("/intakes/nope").status_code == 404
