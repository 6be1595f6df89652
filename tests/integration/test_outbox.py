"""The embedded default: `carepath serve` without CAREPATH_SMTP_URL says where its outbox is, and an
applicant's journey over HTTP ends in .eml files there, in the applicant's language."""

from __future__ import annotations

import secrets
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests

from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.integration.servers import ServerProcess, carepath_env, run_carepath

pytestmark = pytest.mark.slow

TIMEOUT = 30.0


def test_the_embedded_server_writes_each_message_to_the_outbox_it_names(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    env = carepath_env(sqlite_env)
    env.pop("CAREPATH_SMTP_URL", None)
    run_carepath(env, "db", "init")
    run_carepath(env, "intake", "create", "--code", "out", "--name", "Soins", "--capacity", "5")
    run_carepath(env, "intake", "open", "out")
    outbox = Path(sqlite_env["CAREPATH_DATA_DIR"]).resolve() / "outbox"
    with ServerProcess.embedded(env, log_dir=tmp_path) as server, requests.Session() as http:
        assert f"emails: written to the outbox folder {outbox}" in server.log_text()
        # Given a person who registers, gives every step and submits, in French
        headers = {"Accept-Language": "fr"}

        def send(method: str, path: str, body: dict[str, object]) -> dict[str, object]:
            key = {"Idempotency-Key": secrets.token_urlsafe(24)}
            response = http.request(
                method, server.url(path), json=body, headers={**headers, **key}, timeout=10
            )
            assert response.status_code in {200, 201}, response.text
            found: dict[str, object] = response.json()
            return found

        send("POST", "/api/v1/intakes/out/registrations", about_you(1))
        for version, (step, answers) in enumerate(
            (("contact", CONTACT), ("eligibility", ELIGIBILITY)), start=1
        ):
            send("PUT", f"/api/v1/case/steps/{step}", {"version": version, "answers": answers})
        send("POST", "/api/v1/case/submission", {"version": 3})
        # Then the worker inside the server writes three emails to the outbox, once each
        deadline = time.monotonic() + TIMEOUT
        while len(list(outbox.glob("*.eml"))) < 3:
            assert time.monotonic() < deadline, server.log_text()[-4000:]
            time.sleep(0.1)
        time.sleep(1.0)  # anything more it would write
    files = sorted(outbox.glob("*.eml"))
    letters = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(str(m["X-Carepath-Kind"]) for m in letters) == [
        "invitation",
        "registration",
        "submission",
    ]
    assert {str(m["To"]) for m in letters} == {CONTACT["email"]}
    assert {str(m["Content-Language"]) for m in letters} == {"fr"}
    assert all(f.stem in str(m["Message-ID"]) for f, m in zip(files, letters, strict=True))
    assert not list(outbox.glob(".*.tmp"))  # every file was written whole, then renamed
