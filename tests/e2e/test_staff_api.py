"""The officers' JSON API: bearer sign-in with TOTP, the queue, a case, actions, bulk assign."""

from __future__ import annotations

import secrets

import pytest

from domain.values import CaseStatus
from tests.conftest import make_app, send_application
from tests.e2e.test_allocation_status import submit_one
from tests.officer_helpers import caught_up, running_worker
from tests.staff_helpers import enrolled_staff, totp_code


@pytest.fixture
def office(sqlite_env):
    app = make_app(sqlite_env, capacity=2)
    for n in range(1, 5):
        submit_one(app, n)
    with running_worker(sqlite_env):
        caught_up(app)
        yield app
    app.extensions["carepath.registry"].close()


def key() -> str:
    return secrets.token_urlsafe(24)


def bearer(app, role: str) -> dict[str, str]:
    email, password, secret = enrolled_staff(app, role)
    signed = app.test_client().post(
        "/api/v1/staff/session",
        json={"email": email, "password": password, "code": totp_code(secret)},
    )
    assert signed.status_code == 201, signed.text
    assert signed.json["staff"]["role"] == role
    return {"Authorization": f"Bearer {signed.json['token']}"}


def test_sign_in_needs_the_second_factor_and_a_signed_out_token_stops_working(office):
    client = office.test_client()
    email, password, secret = enrolled_staff(office, "officer")
    wrong = client.post(
        "/api/v1/staff/session", json={"email": email, "password": password, "code": "000000"}
    )
    assert wrong.status_code == 401
    missing = client.post("/api/v1/staff/session", json={"email": email, "password": password})
    assert missing.status_code == 422
    assert "code" in missing.json["errors"]
    signed = client.post(
        "/api/v1/staff/session",
        json={"email": email, "password": password, "code": totp_code(secret)},
    )
    headers = {"Authorization": f"Bearer {signed.json['token']}"}
    assert client.get("/api/v1/staff/me", headers=headers).json["email"] == email

    assert client.delete("/api/v1/staff/session", headers=headers).status_code == 204

    refused = client.get("/api/v1/staff/queue", headers=headers)
    assert refused.status_code == 401
    assert client.get("/api/v1/staff/queue").status_code == 401


def test_an_officer_works_a_case_through_the_api(office):
    client, headers = office.test_client(), bearer(office, "officer")
    registry = office.extensions["carepath.registry"]
    queue = client.get("/api/v1/staff/queue?state=granted&limit=1", headers=headers)
    assert queue.status_code == 200, queue.text
    assert queue.json["total"] == 2
    assert len(queue.json["cases"]) == 1
    assert queue.json["next"] is not None
    row = queue.json["cases"][0]
    case = client.get(f"/api/v1/staff/cases/{row['reference']}", headers=headers).json
    assert case["allocation"]["state"] == "granted"
    assert [e["what"] for e in case["timeline"]][:1] == ["registered"]
    path = f"/api/v1/staff/cases/{row['reference']}"
    send_application(registry, registry.find_case(row["reference"]))
    case = client.get(path, headers=headers).json

    change = {**headers, "Idempotency-Key": key()}
    accepted = client.post(f"{path}/accept", json={"version": case["version"]}, headers=change)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json["views_updated"] is True
    again = client.post(f"{path}/accept", json={"version": case["version"]}, headers=change)
    assert again.headers["Idempotent-Replayed"] == "true"
    stale = client.post(
        f"{path}/approve",
        json={"version": case["version"]},
        headers={**headers, "Idempotency-Key": key()},
    )
    assert stale.status_code == 409
    assert stale.json["code"] == "StaleVersion"
    unknown = client.post(
        f"{path}/refuse",
        json={"version": accepted.json["version"], "reasons": ["x"], "extra": 1},
        headers={**headers, "Idempotency-Key": key()},
    )
    assert unknown.status_code == 422
    assert set(unknown.json["errors"]) >= {"reasons.0", "extra"}
    refused = client.post(
        f"{path}/refuse",
        json={"version": accepted.json["version"], "reasons": ["inadmissible"]},
        headers={**headers, "Idempotency-Key": key()},
    )

    assert refused.status_code == 200, refused.text
    found = registry.get_case(registry.find_case(row["reference"]))
    assert found.status is CaseStatus.REFUSED
    board = client.get("/api/v1/staff/intakes/test/board", headers=headers).json
    assert board["pools"][0]["refused"] == 1
    assert board["series"]


def test_an_auditor_reads_through_the_api_and_cannot_act(office):
    client, headers = office.test_client(), bearer(office, "auditor")
    registry = office.extensions["carepath.registry"]
    row = client.get("/api/v1/staff/queue", headers=headers).json["cases"][0]
    head = registry.recorder.max_notification_id()

    refused = client.post(
        f"/api/v1/staff/cases/{row['reference']}/accept",
        json={"version": row["version"]},
        headers={**headers, "Idempotency-Key": key()},
    )
    bulk = client.post(
        "/api/v1/staff/assignments",
        json={
            "cases": [{"reference": row["reference"], "version": row["version"]}],
            "assignee": "none",
        },
        headers={**headers, "Idempotency-Key": key()},
    )

    assert refused.status_code == 403
    assert bulk.status_code == 403
    assert registry.recorder.max_notification_id() == head


def test_bulk_assignments_name_what_they_skipped(office):
    client, headers = office.test_client(), bearer(office, "officer")
    rows = client.get("/api/v1/staff/queue", headers=headers).json["cases"]
    first = rows[0]
    moved = client.post(
        f"/api/v1/staff/cases/{first['reference']}/assign",
        json={"version": first["version"], "assignee": "me"},
        headers={**headers, "Idempotency-Key": key()},
    )
    assert moved.status_code == 200, moved.text

    bulk = client.post(
        "/api/v1/staff/assignments",
        json={
            "cases": [{"reference": r["reference"], "version": r["version"]} for r in rows],
            "assignee": "me",
        },
        headers={**headers, "Idempotency-Key": key()},
    )

    assert bulk.status_code == 200, bulk.text
    assert len(bulk.json["assigned"]) == 3
    assert [s["reference"] for s in bulk.json["skipped"]] == [first["reference"]]


def test_the_openapi_document_lists_the_officer_operations_with_their_security(client):
    spec = client.get("/api/v1/openapi.json").json

    assert spec["components"]["securitySchemes"]["staffBearer"]["scheme"] == "bearer"
    for path in (
        "/staff/queue",
        "/staff/cases/{reference}",
        "/staff/cases/{reference}/refuse",
        "/staff/assignments",
        "/staff/intakes/{code}/board",
    ):
        operation = next(v for k, v in spec["paths"][path].items() if k in {"get", "post"})
        assert operation["security"] == [{"staffBearer": []}], path
        assert "403" in operation["responses"], path
