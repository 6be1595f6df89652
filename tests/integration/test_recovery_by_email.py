"""Issue 11, must-hold 1: a person who lost the access code gets back in through email alone.

`carepath serve` (web, worker and notifier in one process, the embedded default) with its outbox:
the person asks over HTTP with the reference and date of birth, the only thing that reaches them
is the email the notifier writes, and its link sets a new access code; the old one stops working,
and the link works once. A wrong date of birth gets the same answer and no email.
"""

from __future__ import annotations

import re
import secrets
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import CONTACT, ELIGIBILITY, about_you
from tests.integration.servers import ServerProcess, carepath_env, run_carepath

pytestmark = pytest.mark.slow

TIMEOUT = 30.0


def letters_of_kind(outbox: Path, kind: str) -> list[EmailMessage]:
    found = [
        message_from_bytes(f.read_bytes(), policy=policy.default) for f in outbox.glob("*.eml")
    ]
    return [m for m in found if str(m["X-Carepath-Kind"]) == kind]  # type: ignore[misc]


def wait_for(outbox: Path, kind: str, count: int, server: ServerProcess) -> list[EmailMessage]:
    deadline = time.monotonic() + TIMEOUT
    while len(found := letters_of_kind(outbox, kind)) < count:
        assert time.monotonic() < deadline, server.log_text()[-4000:]
        time.sleep(0.1)
    return found


def test_a_lost_access_code_is_recovered_through_the_email_alone(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    env = carepath_env(sqlite_env)
    env.pop("CAREPATH_SMTP_URL", None)
    run_carepath(env, "db", "init")
    run_carepath(env, "intake", "create", "--code", "rec", "--name", "Soins", "--capacity", "5")
    run_carepath(env, "intake", "open", "rec")
    outbox = Path(sqlite_env["CAREPATH_DATA_DIR"]).resolve() / "outbox"
    with ServerProcess.embedded(env, log_dir=tmp_path) as server:

        def send(http: requests.Session, method: str, path: str, body: dict[str, Any]) -> Any:
            key = {"Idempotency-Key": secrets.token_urlsafe(24), "Accept-Language": "fr"}
            return http.request(method, server.url(path), json=body, headers=key, timeout=10)

        # Given a person who registered, gave an email and submitted, in French, then lost the code
        with requests.Session() as first_device:
            registered = send(
                first_device, "POST", "/api/v1/intakes/rec/registrations", about_you(1)
            )
            assert registered.status_code == 201, registered.text
            reference, old_code = registered.json()["reference"], registered.json()["access_code"]
            for version, (step, answers) in enumerate(
                (("contact", CONTACT), ("eligibility", ELIGIBILITY)), start=1
            ):
                saved = send(
                    first_device,
                    "PUT",
                    f"/api/v1/case/steps/{step}",
                    {"version": version, "answers": answers},
                )
                assert saved.status_code == 200, saved.text
        wait_for(outbox, "registration", 1, server)
        confirmation = letters_of_kind(outbox, "registration")[0]
        assert old_code not in confirmation.as_string()  # never the access code by email

        with requests.Session() as http:
            # When a wrong date of birth is given, and then the right one
            wrong = send(
                http,
                "POST",
                "/api/v1/recovery",
                {"reference": reference, "date_of_birth": "1970-01-01"},
            )
            right = send(
                http,
                "POST",
                "/api/v1/recovery",
                {"reference": reference, "date_of_birth": about_you(1)["date_of_birth"]},
            )
            # Then both get the same answer, and one email arrives, in French, to the address on file
            assert (wrong.status_code, wrong.content) == (right.status_code, right.content)
            assert right.status_code == 202
            [letter] = wait_for(outbox, "recovery", 1, server)
            time.sleep(1.0)
            assert len(letters_of_kind(outbox, "recovery")) == 1
            assert str(letter["To"]) == CONTACT["email"]
            assert str(letter["Content-Language"]) == "fr"
            text = letter.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            link = re.search(r"https?://\S+/recover/(\S+?)\?lang=fr", text)
            assert link is not None, text
            token = link.group(1)
            assert urlsplit(link.group(0)).path == f"/recover/{token}"

            # When the link sets a new code
            reset = send(http, "POST", "/api/v1/recovery/reset", {"token": token})
            assert reset.status_code == 200, reset.text
            new_code = reset.json()["access_code"]
            assert new_code != old_code
            # Then the new code opens the case on another device, the old one no longer does
            with requests.Session() as other_device:
                signed_in = send(
                    other_device,
                    "POST",
                    "/api/v1/session",
                    {"reference": reference, "access_code": new_code},
                )
                assert signed_in.status_code == 200, signed_in.text
                old = send(
                    other_device,
                    "POST",
                    "/api/v1/session",
                    {"reference": reference, "access_code": old_code},
                )
                assert old.status_code == 401
            # And the spent link is refused
            again = send(http, "POST", "/api/v1/recovery/reset", {"token": token})
            assert again.status_code == 410, again.text
