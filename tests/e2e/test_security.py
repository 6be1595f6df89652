"""Security basics: headers on every page, rate limits on sign-in and registration, CSRF."""

from __future__ import annotations

import pytest

from tests.conftest import about_you, make_app
from tests.forms import hidden_fields


@pytest.mark.parametrize(
    "path", ["/", "/sign-in", "/intakes/test/register", "/api/v1/intakes", "/no-such-page"]
)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_session_cookie_is_http_only_and_same_site(client):
    client.get("/?lang=fr")
    cookie = client.get_cookie("carepath_session")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"


@pytest.fixture
def limited(sqlite_env):
    app = make_app(
        sqlite_env,
        RATELIMIT_ENABLED=True,
        RATELIMIT_SIGNIN="3 per minute",
        RATELIMIT_REGISTER="2 per minute",
    )
    yield app
    app.extensions["carepath.registry"].close()


def test_sign_in_is_rate_limited(limited):
    client = limited.test_client()
    token = hidden_fields(client.get("/sign-in").text)
    codes = [
        client.post(
            "/sign-in", data={**token, "reference": "AAAA-AAAA-A", "access_code": "x"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    api = limited.test_client()
    api_codes = [
        api.post(
            "/api/v1/session", json={"reference": "AAAA-AAAA-A", "access_code": "x"}
        ).status_code
        for _ in range(4)
    ]
    assert api_codes[-1] == 429


def test_registration_is_rate_limited(limited):
    codes = [
        limited.test_client()
        .post(
            "/api/v1/intakes/test/registrations",
            json=about_you(n),
            headers={"Idempotency-Key": f"rate-limit-key-{n:04d}"},
        )
        .status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 429]


def test_form_without_csrf_token_is_refused_and_stores_nothing(app):
    registry = app.extensions["carepath.registry"]
    before = registry.recorder.max_notification_id()
    refused = app.test_client().post(
        "/intakes/test/register", data={**about_you(1), "idempotency_key": "k" * 20}
    )
    assert refused.status_code == 400
    assert registry.recorder.max_notification_id() == before
