"""Killing the server process (SIGKILL) in the middle of a registration loses no acknowledged step,
on SQLite and on PostgreSQL, with real processes.

Several client threads walk applicants through the JSON API (register, save steps, submit), each
with its own cookie jar, while the test SIGKILLs the server's whole process group at random moments
with requests in flight and starts it again on the same storage. A client whose request fails
without an answer retries it with the same Idempotency-Key until it gets one. Every answer must be
the one a first success would give. At the end, every acknowledged case signs in and shows every
acknowledged answer, and the event store holds exactly one event per request, at the version the
client was told.

Reproduce a run with CAREPATH_CRASH_SEED=<seed printed on failure>.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests

from tests.integration.servers import ServerProcess, carepath_env, run_carepath
from web.settings import Settings

pytestmark = pytest.mark.slow

INTAKE = "crash-test"
CLIENTS = 4
KILLS = 3
REQUEST_TIMEOUT = 15.0  # seconds one HTTP request may take before the client treats it as lost
RETRY_FOR = 30.0  # seconds a client keeps retrying one request across restarts before failing
PROGRESS_TIMEOUT = 20.0  # seconds the test waits for traffic to move before failing


@dataclass(frozen=True)
class Ack:
    """One request the server acknowledged: which command, with which key, at which version."""

    command: str  # "register", a step name, or "submit"
    key: str
    version: int
    answers: dict[str, Any]


@dataclass
class Applicant:
    number: int
    reference: str = ""
    access_code: str = ""
    acks: list[Ack] = field(default_factory=list)


@dataclass
class Traffic:
    """What the client threads share with the test: counters, the record of acks, failures."""

    server: ServerProcess
    rng_seed: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    applicants: list[Applicant] = field(default_factory=list)
    acked: int = 0
    in_flight: int = 0
    lost: int = 0  # requests that ended without an answer (connection refused, reset, ...)
    lost_then_replayed: int = 0  # lost requests whose retry found they had been committed
    duplicates_checked: int = 0
    failures: list[str] = field(default_factory=list)

    def snapshot(self) -> tuple[int, int, int]:
        with self.lock:
            return self.acked, self.in_flight, self.lost


class ClientFailure(Exception):
    """A client saw an answer the crash-safety promise rules out."""


def about_you(n: int) -> dict[str, Any]:
    return {
        "family_name": "Santos",
        "given_names": "Maria Luz",
        "date_of_birth": "1985-04-27",
        "passport_number": f"C{n:08d}",
        "passport_country": "PH",
    }


def contact(n: int, version: int) -> dict[str, Any]:
    return {
        "email": f"applicant{n}.v{version}@example.org",
        "phone": f"+63 917 {n % 1000:03d} {version:04d}",
        "country_of_residence": "CA",
    }


def eligibility(n: int) -> dict[str, Any]:
    return {
        "language_level": n % 11,
        "care_months": n % 37,
        "education": "secondary",
        "consent": True,
    }


def new_key() -> str:
    return secrets.token_urlsafe(24)


def send(
    traffic: Traffic,
    http: requests.Session,
    method: str,
    path: str,
    body: dict[str, Any],
    key: str,
) -> tuple[requests.Response, bool]:
    """Send one change until the server answers, retrying lost attempts with the same key.

    Returns the answer and whether any earlier attempt was lost (its outcome was in doubt).
    """
    deadline = time.monotonic() + RETRY_FOR
    in_doubt = False
    while True:
        with traffic.lock:
            traffic.in_flight += 1
        try:
            response = http.request(
                method,
                traffic.server.url(path),
                json=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as lost:
            with traffic.lock:
                traffic.lost += 1
            in_doubt = True
            if time.monotonic() > deadline:
                raise ClientFailure(f"{method} {path} got no answer for {RETRY_FOR} s") from lost
            time.sleep(0.05)
            continue
        finally:
            with traffic.lock:
                traffic.in_flight -= 1
        if response.status_code >= 500:
            raise ClientFailure(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response, in_doubt


def change(
    traffic: Traffic,
    rng: random.Random,
    http: requests.Session,
    applicant: Applicant,
    command: str,
    request: tuple[str, str, dict[str, Any]],
    *,
    status: int,
    expected: Callable[[dict[str, Any]], bool],
    version: int,
    answers: dict[str, Any],
) -> dict[str, Any]:
    """One acknowledged change of a case, recorded; sometimes re-sent on purpose as a duplicate.

    `expected` checks the answer's body; `version` is the case version the change must produce.
    """
    method, path, body = request
    key = new_key()
    response, in_doubt = send(traffic, http, method, path, body, key)
    data = response.json() if response.headers.get("Content-Type") == "application/json" else {}
    if response.status_code != status or not expected(data):
        raise ClientFailure(
            f"{method} {path} (key {key}, retried={in_doubt}) -> {response.status_code} "
            f"{response.text[:500]}"
        )
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    if replayed and not in_doubt:
        raise ClientFailure(f"{method} {path}: a first request was answered as a replay")
    with traffic.lock:
        applicant.acks.append(Ack(command, key, version, answers))
        traffic.acked += 1
        if in_doubt and replayed:
            traffic.lost_then_replayed += 1
    if rng.random() < 0.15:  # the same request again, as a double click would: the same answer
        again, _ = send(traffic, http, method, path, body, key)
        if (again.status_code, again.json()) != (status, data) or again.headers.get(
            "Idempotent-Replayed"
        ) != "true":
            raise ClientFailure(
                f"duplicate of {method} {path} answered {again.status_code} {again.text[:300]} "
                f"{dict(again.headers)}, not the replay of {status} {data}"
            )
        with traffic.lock:
            traffic.duplicates_checked += 1
    return data


def walk(traffic: Traffic, client: int) -> None:
    """One client thread: applicants one after another, one cookie jar each, until told to stop."""
    rng = random.Random(traffic.rng_seed * 100 + client)
    serial = 0
    while not traffic.stop.is_set():
        serial += 1
        number = client * 100_000 + serial
        applicant = Applicant(number)
        with traffic.lock:
            traffic.applicants.append(applicant)
        with requests.Session() as http:
            registered = change(
                traffic,
                rng,
                http,
                applicant,
                "register",
                ("POST", f"/api/v1/intakes/{INTAKE}/registrations", about_you(number)),
                status=201,
                expected=lambda d: d.get("version") == 1 and bool(d.get("reference")),
                version=1,
                answers=about_you(number),
            )
            applicant.reference = registered["reference"]
            applicant.access_code = registered["access_code"]
            plan: list[tuple[str, dict[str, Any]]] = [
                ("contact", contact(number, 2)),
                ("eligibility", eligibility(number)),
                ("contact", contact(number, 4)),
                ("about_you", {"family_name": "Santos-Reyes", "given_names": "Maria"}),
            ]
            version = 1
            for step, answers in plan:
                if traffic.stop.is_set():
                    return
                change(
                    traffic,
                    rng,
                    http,
                    applicant,
                    step,
                    (
                        "PUT",
                        f"/api/v1/case/steps/{step}",
                        {"version": version, "answers": answers},
                    ),
                    status=200,
                    expected=lambda d, v=version: d == {"command": "save_step", "version": v + 1},
                    version=version + 1,
                    answers=answers,
                )
                version += 1
            if traffic.stop.is_set():
                return
            change(
                traffic,
                rng,
                http,
                applicant,
                "submit",
                ("POST", "/api/v1/case/submission", {"version": version}),
                status=200,
                expected=lambda d, v=version: d == {"command": "submit", "version": v + 1},
                version=version + 1,
                answers={},
            )


def run_client(traffic: Traffic, client: int) -> None:
    try:
        walk(traffic, client)
    except BaseException:  # noqa: BLE001 - reported by the test thread, which then fails
        with traffic.lock:
            traffic.failures.append(f"client {client}:\n{traceback.format_exc(limit=6)}")
        traffic.stop.set()


def wait_for(traffic: Traffic, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while not condition():
        if traffic.failures:
            pytest.fail(
                f"seed {traffic.rng_seed}: a client failed:\n" + "\n".join(traffic.failures)
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {PROGRESS_TIMEOUT} s (seed {traffic.rng_seed})")
        time.sleep(0.005)


def expected_state(applicant: Applicant) -> tuple[dict[str, dict[str, Any]], int, bool]:
    """The answers, version and submission the acknowledged requests add up to."""
    answers: dict[str, dict[str, Any]] = {}
    for ack in applicant.acks:
        if ack.command == "register":
            answers["about_you"] = dict(ack.answers)
        elif ack.command != "submit":
            answers.setdefault(ack.command, {}).update(ack.answers)
    return answers, max(a.version for a in applicant.acks), applicant.acks[-1].command == "submit"


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The env keys of fresh storage on each backend (sessions live under tmp_path either way)."""
    data_dir = {"CAREPATH_DATA_DIR": str(tmp_path / "data")}
    if request.param == "sqlite":
        sqlite: dict[str, str] = request.getfixturevalue("sqlite_env")
        return {**sqlite, **data_dir}
    postgres: dict[str, str] = request.getfixturevalue("postgres_db")
    return {**postgres, **data_dir}


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifying Registry in this process must see only the test's storage settings."""
    for key in list(os.environ):
        if key.startswith(("CAREPATH_", "PERSISTENCE_MODULE", "REGISTRY_", "POSTGRES_", "SQLITE_")):
            monkeypatch.delenv(key)


@pytest.fixture
def server(storage: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server on prepared storage: waitress for SQLite, gunicorn (2 workers) for PostgreSQL."""
    env = carepath_env(storage)
    run_carepath(env, "db", "init")
    run_carepath(
        env, "intake", "create", "--code", INTAKE, "--name", "Crash", "--capacity", "10000"
    )
    run_carepath(env, "intake", "open", INTAKE)
    if storage.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        process = ServerProcess.gunicorn(env, log_dir=tmp_path, workers=2)
    else:
        process = ServerProcess.embedded(env, log_dir=tmp_path)
    try:
        yield process
    finally:
        process.stop()  # before postgres_db drops the database


def test_sigkill_mid_registration_loses_no_acknowledged_step(
    clean_environ: None, storage: dict[str, str], server: ServerProcess
) -> None:
    seed = int(os.environ.get("CAREPATH_CRASH_SEED") or secrets.randbelow(1_000_000))
    rng = random.Random(seed)
    traffic = Traffic(server=server, rng_seed=seed)
    server.start()
    clients = [
        threading.Thread(target=run_client, args=(traffic, c), daemon=True, name=f"client-{c}")
        for c in range(CLIENTS)
    ]
    kills: list[tuple[int, int]] = []  # (acknowledged before, requests in flight) at each kill
    lost_while_down: list[int] = []
    for thread in clients:
        thread.start()
    try:
        for _ in range(KILLS):
            target = traffic.snapshot()[0] + rng.randint(20, 120)
            wait_for(traffic, lambda t=target: traffic.snapshot()[0] >= t, "acknowledgements")
            time.sleep(rng.uniform(0, 0.05))
            wait_for(traffic, lambda: traffic.snapshot()[1] > 0, "request in flight")
            acked, in_flight, lost_before = traffic.snapshot()
            server.kill()
            kills.append((acked, in_flight))
            time.sleep(rng.uniform(0.05, 0.5))  # down for a while: clients meet a closed port
            server.start()
            lost_while_down.append(traffic.snapshot()[2] - lost_before)
        # after the last restart, traffic flows again before the clients are told to stop
        target = traffic.snapshot()[0] + 20
        wait_for(traffic, lambda: traffic.snapshot()[0] >= target, "acknowledgements at the end")
    finally:
        traffic.stop.set()
        for thread in clients:
            thread.join(timeout=RETRY_FOR + REQUEST_TIMEOUT)
    assert not any(t.is_alive() for t in clients), "a client thread did not finish"
    assert not traffic.failures, f"seed {seed}:\n" + "\n".join(traffic.failures)

    # the test can fail: kills happened, with requests in flight, and traffic was acknowledged
    assert server.kills == len(kills) == KILLS
    assert all(in_flight > 0 for _, in_flight in kills), kills
    assert all(lost > 0 for lost in lost_while_down), lost_while_down
    assert kills[0][0] > 0, "the first kill came before any acknowledged change"
    assert traffic.acked > kills[-1][0], "nothing was acknowledged after the last restart"
    applicants = [a for a in traffic.applicants if a.acks]
    assert sum(len(a.acks) for a in applicants) == traffic.acked > 0

    # every acknowledged case signs in, shows every acknowledged answer and version
    for applicant in applicants:
        answers, version, submitted = expected_state(applicant)
        with requests.Session() as http:
            signed_in = http.post(
                server.url("/api/v1/session"),
                json={"reference": applicant.reference, "access_code": applicant.access_code},
                timeout=REQUEST_TIMEOUT,
            )
            assert signed_in.status_code == 200, (applicant, signed_in.text)
            case = http.get(server.url("/api/v1/case"), timeout=REQUEST_TIMEOUT).json()
        assert case["reference"] == applicant.reference
        assert case["version"] >= version, (applicant, case)
        for step, values in answers.items():
            assert case["answers"].get(step) == values, (applicant, step, case)
        if submitted:
            assert case["status"] == "submitted", (applicant, case)

    # the event store: exactly one event per acknowledged request, at the acknowledged version
    registry = Settings.from_environ({"ENV": storage}).build_registry(create_table=False)
    try:
        case_ids: set[UUID] = set()
        for applicant in applicants:
            case_id = registry.sign_in(applicant.reference, applicant.access_code)
            case_ids.add(case_id)
            events = list(registry.events.get(case_id))
            keys = Counter(e.idempotency_key for e in events)  # type: ignore[attr-defined]
            assert max(keys.values()) == 1, (applicant, keys)
            recorded = {e.idempotency_key: e.originator_version for e in events}  # type: ignore[attr-defined]
            assert recorded == {a.key: a.version for a in applicant.acks}, applicant
        notifications = []
        start = 1
        while page := registry.recorder.select_notifications(start, 500):
            notifications.extend(page)
            start = page[-1].id + 1
        topics = Counter(n.topic.rsplit(".", 1)[-1] for n in notifications)
        case_events = [n for n in notifications if n.originator_id in case_ids]
        assert len(case_events) == traffic.acked
        assert topics["Registered"] == topics["Assigned"] == len(applicants) == len(case_ids)
    finally:
        registry.close()

    print(
        f"\n{storage.get('PERSISTENCE_MODULE', 'eventsourcing.sqlite')}: seed {seed}, "
        f"{traffic.acked} acknowledged changes in {len(applicants)} cases, {len(kills)} kills "
        f"with {[f for _, f in kills]} requests in flight, {traffic.lost} lost attempts retried, "
        f"{traffic.lost_then_replayed} of them found committed, "
        f"{traffic.duplicates_checked} deliberate duplicates answered alike"
    )
