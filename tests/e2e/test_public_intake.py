"""The public page and API of an intake publish a lottery's inputs as each comes to exist
(README, "The lottery, precisely", "Published as it happens")."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from tests.conftest import OPERATOR_VALUE, submit_person
from tests.stage_two_helpers import settle


def lottery(app, code="pub", **options):
    registry = app.extensions["carepath.registry"]
    registry.define_intake(
        code=code,
        name="Public draw",
        stream="outside",
        capacity=4,
        policy="lottery",
        pools={"braille": 1},
        pool_labels={"braille": {"en": "I read braille", "fr": "Je lis le braille"}},
        actor="t",
        **options,
    )
    return registry


def draw_of(client, code="pub"):
    answer = client.get(f"/api/v1/intakes/{code}")
    assert answer.status_code == 200
    return answer.json["draw"]


def digest_of(case_ids):
    return hashlib.sha256("\n".join(sorted(c.hex for c in case_ids)).encode()).hexdigest()


def test_an_operator_lottery_publishes_commitment_then_entries_then_inputs_then_the_draw(
    app, client, sqlite_env
):
    registry = lottery(app)
    before = draw_of(client)
    assert before["mode"] is None
    assert before["seed_commitment"] is None
    assert "Not yet: published when registration opens." in client.get("/intakes/pub").text

    registry.open_intake("pub", actor="t")  # the tests' default: no beacon
    opened = draw_of(client)
    assert opened["mode"] == "operator"
    assert len(opened["seed_commitment"]) == 64
    assert opened["beacon"] is None
    assert opened["inputs"] is None
    assert opened["seed"] is None
    page = client.get("/intakes/pub").text
    assert opened["seed_commitment"] in page
    assert "only as trustworthy as the operator" in page
    ids = [
        submit_person(registry, "pub", n, pool="braille" if n < 2 else "general") for n in range(6)
    ]

    registry.close_intake("pub", actor="t")
    settle(sqlite_env)
    closed = draw_of(client)
    assert closed["entries"] == 6
    assert closed["entries_digest"] == digest_of(ids)  # as the README defines it
    assert closed["inputs"] is None
    assert closed["seed"] is None
    assert closed["combined_seed"] is None
    page = client.get("/intakes/pub").text
    assert closed["entries_digest"] in page
    assert "Not yet: revealed after the close." in page

    registry.draw("pub", actor="t", operator_value=OPERATOR_VALUE)
    settle(sqlite_env)
    drawn = draw_of(client)
    inputs = drawn["inputs"]
    assert inputs["source"] == "operator"
    assert inputs["randomness"] == OPERATOR_VALUE
    assert hashlib.sha256(inputs["secret"].encode()).hexdigest() == drawn["seed_commitment"]
    seed = hashlib.sha256((inputs["secret"] + inputs["randomness"]).encode()).hexdigest()
    assert drawn["seed"] == seed
    combined = hashlib.sha256((seed + drawn["entries_digest"]).encode()).hexdigest()
    assert drawn["combined_seed"] == combined
    assert drawn["fairness"]["rank_sum"]["selected"] == 4  # 1 braille place, 3 general
    page = client.get("/intakes/pub").text
    for value in (inputs["secret"], seed, combined, drawn["entries_digest"]):
        assert value in page
    assert "A low p-value alone is no proof of bias" in page
    french = client.get("/intakes/pub", headers={"Accept-Language": "fr"}).text
    assert "Vérifiez le tirage vous-même" in french
    assert "Je lis le braille" in french


def test_a_beacon_lottery_shows_its_round_from_the_opening_and_the_digest_before_the_draw(
    app, client, sqlite_env
):
    closes = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    registry = lottery(app, closes_at=closes)
    registry.open_intake("pub", actor="t", beacon="drand-quicknet")
    opened = draw_of(client)
    beacon = opened["beacon"]
    assert opened["mode"] == "beacon"
    assert beacon["name"] == "drand-quicknet"
    assert beacon["period"] == 3
    published = datetime.fromisoformat(beacon["round_time"])
    assert published == datetime.fromtimestamp(
        beacon["genesis_time"] + (beacon["round"] - 1) * beacon["period"], UTC
    )
    assert closes + timedelta(seconds=300) <= published < closes + timedelta(seconds=303)
    page = client.get("/intakes/pub").text
    assert f'<span id="beacon-round">{beacon["round"]}</span>' in page
    assert beacon["chain_hash"] in page
    assert opened["seed_commitment"] in page

    ids = [submit_person(registry, "pub", n) for n in range(3)]
    registry.close_intake("pub", actor="t")  # early: the round fixed at opening still stands
    settle(sqlite_env)
    closed = draw_of(client)
    assert closed["beacon"]["round"] == beacon["round"]
    assert closed["entries_digest"] == digest_of(ids)
    assert closed["inputs"] is None
    assert closed["seed"] is None
    page = client.get("/intakes/pub").text
    assert closed["entries_digest"] in page
    assert "Not yet: the beacon publishes it at the time above." in page
    french = client.get("/intakes/pub", headers={"Accept-Language": "fr"}).text
    assert str(beacon["round"]) in french
    assert closed["entries_digest"] in french


def test_the_intake_api_states_the_pools_and_their_places(app, client):
    lottery(app)
    intake = client.get("/api/v1/intakes/pub").json
    assert intake["pools"] == [
        {"name": "braille", "places": 1, "label": "I read braille"},
        {"name": "general", "places": 3, "label": None},
    ]
    assert intake["unused_reserved"] == "to_general"
    page = client.get("/intakes/pub").text
    assert "I read braille: 1" in page
    assert "(general places): 3" in page


def test_a_first_come_intake_has_no_draw(client):
    assert draw_of(client, "test") is None
    page = client.get("/intakes/test")
    assert page.status_code == 200
    assert "First come, first served" in page.text
    assert "Check the draw yourself" not in page.text


def test_an_unknown_intake_is_a_404_page(client):
    assert client.get("/intakes/nope").status_code == 404
