"""Uploads interrupted at any byte leave nothing; SIGKILL during 200 uploads loses no acknowledged
document. Real `carepath web` (gunicorn) processes on PostgreSQL.

(a) A whole-file PUT and a tus PATCH cut at a random byte, once by the client closing its socket
    and once by SIGKILL of the server while the body is half sent: no document is recorded and
    no blob stored; a retry with the same idempotency key records one document, and a tus upload
    resumed after the restart continues from the stored offset and records one.
(b) 200 applicants upload 1-2 MB each at once (half whole-file, half tus in two chunks); the server
    is SIGKILLed with uploads in flight and started again. Every upload that got a 2xx has its
    document on the case and its blob in the store, whose SHA-256 (recomputed) matches what was
    sent; the others, retried with the same key or tus URL, are recorded exactly once each.

Reproduce a run with CAREPATH_CRASH_SEED=<seed printed on failure>.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests

from domain.blobs import FilesystemBlobStore
from tests.e2e.test_uploads_api import padded_pdf
from tests.integration.servers import ServerProcess, carepath_env, run_carepath
from tests.stage_two_helpers import settle
from web.settings import Settings

pytestmark = pytest.mark.slow

INTAKE = "upload-crash"
CONCURRENT = 200
MB = 2**20
TIMEOUT = 30.0  # seconds one request may take before the client counts it as lost
RETRY_FOR = 120.0  # seconds a client retries one upload after the restart
TUS = {"Tus-Resumable": "1.0.0"}
APPEND = "application/offset+octet-stream"


@dataclass
class Applicant:
    number: int
    reference: str
    access_code: str
    case_id: UUID
    http: requests.Session = field(default_factory=requests.Session)
    content: bytes = b""
    key: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    whole: bool = False  # one PUT with an idempotency key, else tus
    location: str | None = None  # of its tus upload, once created
    acked: str | None = None  # the document id a 2xx answer named

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Registry and Worker in this process must see only the test's storage settings."""
    for name in list(os.environ):
        if name.startswith(
            ("CAREPATH_", "PERSISTENCE_MODULE", "REGISTRY_", "POSTGRES_", "SQLITE_")
        ):
            monkeypatch.delenv(name)


@pytest.fixture
def storage(postgres_db: dict[str, str], tmp_path: Path, clean_environ: None) -> dict[str, str]:
    return {
        **postgres_db,
        "CAREPATH_DATA_DIR": str(tmp_path / "data"),
        "CAREPATH_TUS_THRESHOLD": str(4 * MB),  # whole-file PUTs of 1-2 MB too
        "CAREPATH_MAX_IN_FLIGHT": "64",  # a slow upload holds its slot: let them all in
        "CAREPATH_ADMISSION_WAIT_MS": "20000",
    }


@pytest.fixture
def applicants(storage: dict[str, str]) -> list[Applicant]:
    """CONCURRENT + 4 people registered, submitted and invited, straight through the Registry."""
    run_carepath(carepath_env(storage), "db", "init")
    registry = Settings.from_environ({"ENV": storage}).build_registry(create_table=False)
    people = []
    try:
        registry.define_intake(
            code=INTAKE,
            name="Upload crash",
            stream="outside",
            capacity=CONCURRENT + 10,
            policy="first_come",
            actor="test",
        )
        registry.open_intake(INTAKE, actor="test")
        for n in range(CONCURRENT + 4):
            people.append(register(registry, n))
    finally:
        registry.close()
    settle(storage)
    return people


def register(registry: Any, n: int) -> Applicant:
    about = {
        "family_name": "Santos",
        "given_names": "Maria Luz",
        "date_of_birth": "1985-04-27",
        "passport_number": f"U{n:08d}",
        "passport_country": "PH",
    }
    done = registry.register(INTAKE, about, language="en", idempotency_key=f"u-r{n}-{'x' * 12}")
    for version, (step, answers) in enumerate(
        (("contact", {"email": f"u{n}@example.org"}), ("eligibility", {"consent": True})), start=1
    ):
        registry.save_step(
            done.case_id,
            step,
            answers,
            expected_version=version,
            language="en",
            idempotency_key=f"u-{step}{n}-{'x' * 12}",
        )
    registry.submit(done.case_id, expected_version=3, language="en", idempotency_key=f"u-s{n}")
    return Applicant(n, done.reference, done.access_code, done.case_id)


@pytest.fixture
def server(storage: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess.gunicorn(carepath_env(storage), log_dir=tmp_path, workers=4, threads=16)
    try:
        yield process.start()
    finally:
        process.stop()  # before postgres_db drops the database


def sign_in(server: ServerProcess, people: list[Applicant]) -> None:
    def one(person: Applicant) -> None:
        answer = person.http.post(
            server.url("/api/v1/session"),
            json={"reference": person.reference, "access_code": person.access_code},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text

    run_all(one, people)


def run_all(work: Any, people: list[Applicant]) -> None:
    failures: list[BaseException] = []

    def guarded(person: Applicant) -> None:
        try:
            work(person)
        except BaseException as error:  # noqa: BLE001 - re-raised by the test thread below
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(p,), daemon=True) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if failures:
        raise failures[0]


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


# One upload over HTTP, as a client that may lose its answer


def put_whole(server: ServerProcess, person: Applicant) -> requests.Response:
    return person.http.put(
        server.url("/api/v1/case/documents/items/identity"),
        data=person.content,
        headers={"Idempotency-Key": person.key, "Upload-Filename": f"id-{person.number}.pdf"},
        timeout=TIMEOUT,
    )


def tus_create(server: ServerProcess, person: Applicant) -> None:
    created = person.http.post(
        server.url("/api/v1/case/uploads"),
        headers={
            **TUS,
            "Upload-Length": str(len(person.content)),
            "Upload-Metadata": metadata(item="education", filename=f"ed-{person.number}.pdf"),
        },
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    person.location = created.headers["Location"]


def tus_offset(server: ServerProcess, person: Applicant) -> tuple[int, str | None]:
    assert person.location is not None
    answer = person.http.head(server.url(person.location), headers=TUS, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.status_code
    return int(answer.headers["Upload-Offset"]), answer.headers.get("Carepath-Document-Id")


def tus_patch(server: ServerProcess, person: Applicant, offset: int, end: int) -> requests.Response:
    assert person.location is not None
    return person.http.patch(
        server.url(person.location),
        data=person.content[offset:end],
        headers={**TUS, "Upload-Offset": str(offset), "Content-Type": APPEND},
        timeout=TIMEOUT,
    )


def upload_once(server: ServerProcess, person: Applicant) -> None:
    """The first attempt: records `acked` only when the server answered 2xx for the last byte."""
    if person.whole:
        answer = put_whole(server, person)
        if answer.status_code in (200, 201):
            person.acked = answer.json()["document_id"]
        return
    tus_create(server, person)
    half = len(person.content) // 2
    if tus_patch(server, person, 0, half).status_code != 204:
        return
    answer = tus_patch(server, person, half, len(person.content))
    if answer.status_code == 204:
        person.acked = answer.headers["Carepath-Document-Id"]


def upload_until_done(server: ServerProcess, person: Applicant) -> str:
    """Retry after the restart with the same key or tus URL, until a 2xx names the document."""
    deadline = time.monotonic() + RETRY_FOR
    seen: list[str] = []  # what each attempt got, for the failure message
    while time.monotonic() < deadline:
        try:
            if person.whole:
                answer = put_whole(server, person)
                seen.append(f"PUT {answer.status_code}")
                if answer.status_code in (200, 201):
                    return str(answer.json()["document_id"])
                assert answer.status_code in (423, 503), answer.text
                time.sleep(0.1)
            else:
                if person.location is None:
                    tus_create(server, person)
                assert person.location is not None
                where = person.http.head(server.url(person.location), headers=TUS, timeout=TIMEOUT)
                seen.append(f"HEAD {where.status_code} {where.headers.get('Upload-Offset')}")
                if where.status_code != 200:
                    assert where.status_code in (423, 503), where.status_code
                    time.sleep(0.1)
                    continue
                if document := where.headers.get("Carepath-Document-Id"):
                    return document
                offset = int(where.headers["Upload-Offset"])
                answer = tus_patch(server, person, offset, len(person.content))
                seen.append(f"PATCH {offset} {answer.status_code}")
                if answer.status_code == 204 and answer.headers.get("Carepath-Document-Id"):
                    return answer.headers["Carepath-Document-Id"]
                assert answer.status_code in (204, 409, 423, 503), answer.text
            time.sleep(0.1)
        except requests.RequestException as lost:
            seen.append(type(lost).__name__)
            time.sleep(0.1)
    raise AssertionError(f"applicant {person.number} never got an answer: {seen[-12:]}")


# A request cut short at a chosen byte, on a raw socket


def half_sent(
    server: ServerProcess, person: Applicant, method: str, path: str, headers: dict[str, str]
) -> tuple[socket.socket, int]:
    """Send the request line, headers and a random part of the body; the open socket and how
    many body bytes went out."""
    cut = random.randint(1, len(person.content) - 1)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"{k}: {v}" for k, v in {**headers, "Cookie": person.cookie()}.items()]
    lines += [f"Content-Length: {len(person.content)}", "", ""]
    connection = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    connection.sendall("\r\n".join(lines).encode() + person.content[:cut])
    return connection, cut


def half_put(server: ServerProcess, person: Applicant) -> tuple[socket.socket, int]:
    return half_sent(
        server,
        person,
        "PUT",
        "/api/v1/case/documents/items/identity",
        {"Idempotency-Key": person.key, "Upload-Filename": "cut.pdf"},
    )


def half_patch(server: ServerProcess, person: Applicant) -> tuple[socket.socket, int]:
    tus_create(server, person)
    assert person.location is not None
    return half_sent(
        server,
        person,
        "PATCH",
        person.location,
        {**TUS, "Upload-Offset": "0", "Content-Type": APPEND},
    )


def documents_of(storage: dict[str, str], people: list[Applicant]) -> dict[int, Any]:
    registry = Settings.from_environ({"ENV": storage}).build_registry(create_table=False)
    try:
        return {p.number: registry.get_case(p.case_id).documents for p in people}
    finally:
        registry.close()


def store_of(storage: dict[str, str]) -> FilesystemBlobStore:
    return FilesystemBlobStore(Settings.from_environ({"ENV": storage}).documents_dir)


def stored_digest(store: FilesystemBlobStore, digest: str) -> str:
    with store.open(digest) as content:
        return hashlib.file_digest(content, "sha256").hexdigest()


def test_an_upload_cut_at_any_byte_leaves_nothing_and_resumes_to_one_document(
    storage: dict[str, str], applicants: list[Applicant], server: ServerProcess
) -> None:
    seed = int(os.environ.get("CAREPATH_CRASH_SEED") or secrets.randbelow(1_000_000))
    random.seed(seed)
    closed_put, closed_patch, killed_put, killed_patch = people = applicants[:4]
    for n, person in enumerate(people):
        person.content = padded_pdf(random.randint(MB, 2 * MB), f"cut {n}")
        person.whole = person in (closed_put, killed_put)
    sign_in(server, people)

    # the client goes away mid-body
    for connection, _ in (half_put(server, closed_put), half_patch(server, closed_patch)):
        connection.close()
    # the server dies mid-body
    open_put, _ = half_put(server, killed_put)
    open_patch, sent = half_patch(server, killed_patch)
    time.sleep(0.5)  # the server has read what was sent
    server.kill()
    open_put.close()
    open_patch.close()
    server.start()

    assert all(docs == () for docs in documents_of(storage, people).values()), f"seed {seed}"
    assert list(store_of(storage).digests()) == [], f"seed {seed}: a blob of a cut upload"
    offset, document = tus_offset(server, killed_patch)
    assert document is None
    assert 0 <= offset <= sent, f"seed {seed}"
    assert tus_offset(server, closed_patch)[0] < len(closed_patch.content)

    # retried with the same key, resumed from the stored offset: one document each
    for person in people:
        person.acked = upload_until_done(server, person)
    found = documents_of(storage, people)
    store = store_of(storage)
    for person in people:
        (document_view,) = found[person.number]
        assert document_view.document_id == person.acked
        assert document_view.digest == person.digest == stored_digest(store, person.digest)


def test_sigkill_during_200_uploads_loses_no_acknowledged_document(
    storage: dict[str, str], applicants: list[Applicant], server: ServerProcess
) -> None:
    seed = int(os.environ.get("CAREPATH_CRASH_SEED") or secrets.randbelow(1_000_000))
    rng = random.Random(seed)
    people = applicants[4:]
    for person in people:
        person.content = padded_pdf(rng.randint(MB, 2 * MB), f"applicant {person.number}")
        person.whole = person.number % 2 == 1
    sign_in(server, people)

    acks = threading.Semaphore(0)

    def first_attempt(person: Applicant) -> None:
        try:
            upload_once(server, person)
        except (requests.RequestException, AssertionError):
            return  # lost with the server: retried below
        if person.acked:
            acks.release()

    clients = threading.Thread(target=run_all, args=(first_attempt, people), daemon=True)
    clients.start()
    wanted = rng.randint(10, 60)
    for _ in range(wanted):
        assert acks.acquire(timeout=60), f"seed {seed}: fewer than {wanted} acknowledgements"
    server.kill()
    clients.join(timeout=60)
    acknowledged = {p.number: p.acked for p in people if p.acked}
    assert wanted <= len(acknowledged) < CONCURRENT, f"seed {seed}: the kill came too late"
    server.start()

    # every acknowledged upload: its document on the case, its blob whole
    store = store_of(storage)
    found = documents_of(storage, people)
    for person in people:
        if person.acked:
            (document,) = found[person.number]
            assert document.document_id == person.acked, f"seed {seed}"
            assert document.digest == person.digest == stored_digest(store, person.digest)

    # the others, retried, are recorded exactly once each
    run_all(lambda p: setattr(p, "acked", upload_until_done(server, p)), people)
    found = documents_of(storage, people)
    for person in people:
        (document,) = found[person.number]
        assert document.document_id == person.acked, f"seed {seed}"
        assert acknowledged.get(person.number, person.acked) == person.acked
        assert document.digest == person.digest == stored_digest(store, person.digest)
