"""Overload is answered with a calm 503 and Retry-After, never a hang or a 500."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.forms import hidden_fields


@pytest.fixture
def full_app(sqlite_env):
    app = make_app(sqlite_env)
    admission = app.extensions["carepath.admission"]
    admission.wait_seconds = 0.01
    for _ in range(admission.limit):  # every slot taken, as under a surge
        assert admission.enter()
    yield app
    for _ in range(admission.limit):
        admission.leave()
    app.extensions["carepath.registry"].close()


def test_busy_page_reloads_itself_and_says_answers_are_safe(full_app):
    page = full_app.test_client().get("/intakes/test/register")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "5"
    assert '<meta http-equiv="refresh" content="5">' in page.text
    assert "Your saved answers are safe" in page.text


def test_busy_form_post_asks_to_go_back_and_save_again(full_app):
    refused = full_app.test_client().post("/sign-in", data={"reference": "x"})
    assert refused.status_code == 503
    assert "back button" in refused.text
    assert 'http-equiv="refresh"' not in refused.text


def test_busy_api_answers_503_with_retry_after(full_app):
    refused = full_app.test_client().get("/api/v1/intakes")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert refused.json["code"] == "Busy"


def test_health_check_is_never_refused(full_app):
    assert full_app.test_client().get("/healthz").status_code == 200


def test_slots_are_given_back_after_each_request(app):
    admission = app.extensions["carepath.admission"]
    client = app.test_client()
    for _ in range(admission.limit + 5):
        assert client.get("/").status_code == 200
    page = client.get("/intakes/test/register")
    assert client.post("/intakes/test/register", data=hidden_fields(page.text)).status_code == 422
    assert admission.enter()
    admission.leave()
    assert admission.refused == 0
