"""What applicants see of the allocation, through the pages, after the worker has caught up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from projections.worker import Worker
from tests.conftest import CONTACT, ELIGIBILITY, SECRET, about_you, close_and_draw, make_app
from tests.forms import hidden_fields, post_form, text_of


def submit_one(app, n):
    client = app.test_client()
    post_form(client, "/intakes/test/register", about_you(n))
    post_form(client, "/application/steps/contact", CONTACT)
    post_form(client, "/application/steps/eligibility", ELIGIBILITY)
    review = client.get("/application/review")
    assert client.post("/application/submit", data=hidden_fields(review.text)).status_code == 302
    return client


@pytest.fixture
def small_app(sqlite_env):
    app = make_app(sqlite_env, capacity=2)
    yield app
    app.extensions["carepath.registry"].close()


def settle(env):
    return Worker(env, env["CAREPATH_SECRET"].encode()).settle()


def test_status_shows_invitation_waitlist_position_and_re_offer(small_app, sqlite_env):
    clients = [submit_one(small_app, n) for n in range(1, 5)]
    pending = clients[0].get("/application/status").text
    assert "being recorded" in text_of(pending, "allocation")

    settle(sqlite_env)

    assert "invited to apply" in text_of(clients[0].get("/application/status").text, "allocation")
    assert "invited to apply" in text_of(clients[1].get("/application/status").text, "allocation")
    assert "position 1" in text_of(clients[2].get("/application/status").text, "allocation")
    assert "position 2" in text_of(clients[3].get("/application/status").text, "allocation")

    # the first person withdraws: the first on the waitlist is invited, the second moves up
    post_form(clients[0], "/application/withdraw", {"confirm": "yes"})
    settle(sqlite_env)
    assert "invited to apply" in text_of(clients[2].get("/application/status").text, "allocation")
    assert "position 1" in text_of(clients[3].get("/application/status").text, "allocation")


def test_expired_invitation_is_shown_and_the_place_re_offered(small_app, sqlite_env):
    clients = [submit_one(small_app, n) for n in range(1, 4)]
    settle(sqlite_env)
    registry = small_app.extensions["carepath.registry"]
    registry.check_deadlines("test", datetime.now(UTC) + timedelta(days=29), actor="test")
    settle(sqlite_env)

    assert "expired" in text_of(clients[0].get("/application/status").text, "allocation")
    assert "invited to apply" in text_of(clients[2].get("/application/status").text, "allocation")


def test_status_says_allocation_is_unavailable_when_the_read_model_is_down(small_app, sqlite_env):
    client = submit_one(small_app, 1)
    small_app.extensions["carepath.allocations"].engine.dispose()
    import os

    os.remove(os.path.join(sqlite_env["CAREPATH_DATA_DIR"], "views.sqlite"))
    page = client.get("/application/status")
    assert page.status_code == 200
    assert "cannot show where you stand" in text_of(page.text, "allocation")


_ = SECRET


def test_offers_move_down_the_waitlist_in_order_until_it_is_empty(sqlite_env):
    app = make_app(sqlite_env, capacity=1)
    try:
        clients = [submit_one(app, n) for n in range(1, 5)]
        settle(sqlite_env)
        registry = app.extensions["carepath.registry"]
        seen = [text_of(c.get("/application/status").text, "allocation") for c in clients]
        assert "invited to apply" in seen[0]
        assert ["position 1" in seen[1], "position 2" in seen[2], "position 3" in seen[3]] == [
            True,
            True,
            True,
        ]

        # the holder withdraws, then each later offer expires in turn
        post_form(clients[0], "/application/withdraw", {"confirm": "yes"})
        settle(sqlite_env)
        now = datetime.now(UTC)
        for holder in range(1, 4):
            page = text_of(clients[holder].get("/application/status").text, "allocation")
            assert "invited to apply" in page
            assert "send your documents before" in page  # every offer carries a deadline
            for waiting in range(holder + 1, 4):
                position = waiting - holder
                status = clients[waiting].get("/application/status").text
                assert f"position {position}" in text_of(status, "allocation")
            now += timedelta(days=29)
            registry.check_deadlines("test", now, actor="test")
            settle(sqlite_env)
            assert "expired" in text_of(
                clients[holder].get("/application/status").text, "allocation"
            )

        queries = app.extensions["carepath.allocations"]
        quota = queries.quotas()[0]
        assert quota.counts == {"withdrawn": 1, "expired": 3}  # nobody left waiting
    finally:
        app.extensions["carepath.registry"].close()


def test_leaving_the_middle_of_the_waitlist_moves_up_only_those_behind(sqlite_env):
    app = make_app(sqlite_env, capacity=1)
    try:
        clients = [submit_one(app, n) for n in range(1, 6)]
        settle(sqlite_env)

        def seen(n):
            return text_of(clients[n].get("/application/status").text, "allocation")

        assert [f"position {n}" in seen(n) for n in range(1, 5)] == [True] * 4

        post_form(clients[2], "/application/withdraw", {"confirm": "yes"})  # position 2 leaves
        settle(sqlite_env)
        assert ["position 1" in seen(1), "position 2" in seen(3), "position 3" in seen(4)] == [
            True
        ] * 3

        post_form(clients[0], "/application/withdraw", {"confirm": "yes"})  # the holder leaves
        settle(sqlite_env)
        assert "invited to apply" in seen(1)
        assert ["position 1" in seen(3), "position 2" in seen(4)] == [True, True]
    finally:
        app.extensions["carepath.registry"].close()


def test_api_case_shows_the_allocation(small_app, sqlite_env):
    import secrets

    client = small_app.test_client()
    headers = {"Idempotency-Key": secrets.token_urlsafe(24)}
    assert (
        client.post(
            "/api/v1/intakes/test/registrations", json=about_you(9), headers=headers
        ).status_code
        == 201
    )
    assert client.get("/api/v1/case").json["allocation"] is None
    for version, (step, answers) in enumerate(
        [("contact", CONTACT), ("eligibility", {**ELIGIBILITY, "consent": True})], start=1
    ):
        saved = client.put(
            f"/api/v1/case/steps/{step}",
            json={"version": version, "answers": answers},
            headers={"Idempotency-Key": f"step-{step}-key-0001"},
        )
        assert saved.status_code == 200, saved.json
    client.post(
        "/api/v1/case/submission",
        json={"version": 3},
        headers={"Idempotency-Key": "submit-key-00000001"},
    )
    settle(sqlite_env)
    allocation = client.get("/api/v1/case").json["allocation"]
    assert allocation["state"] == "granted"
    assert allocation["slot"] == 1
    assert allocation["deadline"]


def enter_lottery(app, n):
    client = app.test_client()
    post_form(client, "/intakes/lot/register", about_you(n))
    post_form(client, "/application/steps/contact", CONTACT)
    post_form(client, "/application/steps/eligibility", ELIGIBILITY)
    review = client.get("/application/review")
    assert client.post("/application/submit", data=hidden_fields(review.text)).status_code == 302
    return client


def test_a_person_not_drawn_is_told_so_not_that_the_places_ran_out(small_app, sqlite_env):
    registry = small_app.extensions["carepath.registry"]
    registry.define_intake(
        code="lot", name="Lot", stream="outside", capacity=1, policy="lottery",
        waitlist_length=1, actor="t",
    )  # fmt: skip
    registry.open_intake("lot", actor="t")
    clients = [enter_lottery(small_app, n) for n in range(3)]
    close_and_draw(registry, "lot")
    settle(sqlite_env)
    pages = [c.get("/application/status").text for c in clients]
    not_drawn = [p for p in pages if "You were not drawn" in p]
    assert len(not_drawn) == 1
    assert "All places are given" not in not_drawn[0]
    french = next(c for c, p in zip(clients, pages, strict=True) if p in not_drawn)
    page = french.get("/application/status", headers={"Accept-Language": "fr"}).text
    assert "tiré" in page
