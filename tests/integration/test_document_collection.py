"""The blob collector against real storage (SQLite and PostgreSQL): it deletes only blobs that no
event has ever referenced, older than the grace period, and nothing while the read model lags;
the documents read model rebuilds exactly; pending scans are retried until the scanner answers."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from domain.allocator import Allocator
from domain.blobs import FilesystemBlobStore
from domain.case import Case
from domain.documents import Documents
from domain.errors import ScannerUnavailable
from domain.inspection import ContentInspector
from domain.registry import Registry
from domain.storage import Verdict
from projections import casework
from projections.allocation import AllocationQueries
from projections.casework import CaseworkView
from projections.documents import CaughtUp, DocumentQueries, ViewBehind
from projections.persistence import application_env
from projections.rebuild import rebuild
from projections.views import (
    case_documents,
    document_digests,
    make_engine,
    migrate,
    position,
    set_position,
    writing,
)
from projections.worker import Worker
from scheduler import jobs
from tests.conftest import submit_person
from tests.integration.servers import carepath_env, run_carepath
from tests.stage_two_helpers import pdf_bytes, png_bytes

CODE = "docs"
GRACE = timedelta(hours=24)
LONG_AGO = timedelta(days=30)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    found = dict(
        request.getfixturevalue("postgres_db" if request.param == "postgres" else "sqlite_env")
    )
    found["CAREPATH_DOCUMENTS_DIR"] = str(tmp_path / "documents")
    return found


class Scanner:
    """A virus scanner that is down until given a verdict (a fake, not a mock)."""

    def __init__(self) -> None:
        self.verdict: Verdict | None = None

    def scan(self, path: Path) -> Verdict:
        if self.verdict is None:
            raise ScannerUnavailable("clamd is not answering")
        return self.verdict


@dataclass
class Run:
    storage: dict[str, str]
    registry: Registry
    engine: Any
    store: FilesystemBlobStore
    documents: Documents
    queries: DocumentQueries
    scanner: Scanner

    def settle(self) -> None:
        Worker(self.storage, self.storage["CAREPATH_SECRET"].encode()).settle()

    def invited(self, n: int) -> UUID:
        case_id = submit_person(self.registry, CODE, n)
        self.settle()
        return case_id

    def add(self, case_id: UUID, item: str, content: bytes, name: str, **extra: Any) -> str:
        key = f"{case_id.hex}-{item}-{hashlib.sha256(content).hexdigest()[:8]}-{name}"
        done = self.documents.add_document(
            case_id, item, io.BytesIO(content), name, idempotency_key=key[:64], **extra
        )
        return done.document_id

    def orphan(self, content: bytes) -> str:
        """A blob stored with no event naming it: an upload that died after its commit."""
        source = io.BytesIO(content)
        with (
            self.store.receive(source, limit=10 * 1024 * 1024) as received,
            self.store.commit(received),
        ):
            pass
        return received.digest

    def path(self, digest: str) -> Path:
        return self.store.root / "blobs" / digest[:2] / digest[2:4] / digest

    def age(self, digest: str, by: timedelta) -> None:
        """Make the blob look last written `by` ago."""
        then = (datetime.now(UTC) - by).timestamp()
        os.utime(self.path(digest), (then, then))

    def collect(self, barrier: Any = None) -> Any:
        return jobs.collect_documents(
            self.store,
            self.queries,
            barrier or CaughtUp(self.engine, self.registry, timeout=5),
            datetime.now(UTC),
            grace=GRACE,
        )


@pytest.fixture
def run(storage: dict[str, str]) -> Iterator[Run]:
    secret = storage["CAREPATH_SECRET"].encode()
    env = application_env(storage, Registry.name, create_table=True)
    env["GROUP_COMMIT"] = "n"
    registry = Registry(env=env, secret=secret)
    Allocator(env=application_env(storage, Allocator.name, create_table=True)).close()
    migrate(storage)
    registry.define_intake(
        code=CODE, name="Documents", stream="", capacity=5, policy="first_come", actor="test"
    )
    registry.open_intake(CODE, actor="test")
    engine = make_engine(storage)
    store = FilesystemBlobStore(Path(storage["CAREPATH_DOCUMENTS_DIR"]))
    scanner = Scanner()
    scanner.verdict = Verdict(clean=True)
    documents = Documents(
        registry, store, ContentInspector(), AllocationQueries(engine), scanner=scanner
    )
    yield Run(storage, registry, engine, store, documents, DocumentQueries(engine), scanner)
    engine.dispose()
    registry.close()


def digests_in_the_log(registry: Registry) -> set[str]:
    """Every digest any event names, read from the log itself (not from the read model)."""
    found: set[str] = set()
    for notification in registry.recorder.select_notifications(start=1, limit=100_000):
        event = registry.mapper.to_domain_event(notification)
        if isinstance(event, Case.DocumentAdded):
            found.add(event.digest)
        if isinstance(event, Case.ApplicationSubmitted):
            found.update(str(d["digest"]) for d in event.documents)
    return found


def test_a_referenced_blob_survives_long_past_the_grace_and_an_old_orphan_goes(run):
    # Given a current document, a replaced one and a removed one, all written a month ago, and
    # an orphan of the same age and a fresh orphan
    case_id = run.invited(1)
    current = run.add(case_id, "identity", pdf_bytes("Passport"), "passport.pdf")
    photo = run.add(case_id, "police", png_bytes(), "police.png")
    run.add(case_id, "police", pdf_bytes("Police"), "police.pdf", replaces=photo)
    letter = run.add(case_id, "care_work", pdf_bytes("Letter"), "letter.pdf")
    run.documents.remove_document(case_id, letter, idempotency_key="remove-letter")
    run.settle()
    referenced = digests_in_the_log(run.registry)
    assert len(referenced) == 4
    old_orphan = run.orphan(b"%PDF-1.4 an upload that died before its event")
    fresh_orphan = run.orphan(b"%PDF-1.4 an upload being recorded right now")
    for digest in [*referenced, old_orphan]:
        run.age(digest, LONG_AGO)

    # When the collector runs
    done = run.collect()

    # Then every blob an event names is still there, the old orphan is gone, the fresh one kept
    assert (done.examined, done.kept, done.deleted) == (5, 4, 1)
    assert done.bytes_freed == len(b"%PDF-1.4 an upload that died before its event")
    assert set(run.store.digests()) == referenced | {fresh_orphan}
    # and the documents still open, byte for byte
    document, content = run.documents.open_document(case_id, current)
    with content:
        assert hashlib.sha256(content.read()).hexdigest() == document.digest


def test_never_a_blob_that_some_event_references_across_many_cases_and_changes(run):
    # Given documents added, replaced and removed across cases, some blobs shared between
    # cases, orphans among them, everything older than the grace
    rng = random.Random(8)
    contents = [pdf_bytes(f"document {n}") for n in range(12)]
    for n in range(4):
        case_id = run.invited(10 + n)
        held: list[str] = []
        for step in range(8):
            content = rng.choice(contents)
            if len(held) >= 4 or (held and rng.random() < 0.3):
                run.documents.remove_document(case_id, held.pop(), idempotency_key=f"rm-{n}-{step}")
            elif held and rng.random() < 0.3:
                held.append(
                    run.add(case_id, "education", content, f"v{step}.pdf", replaces=held.pop())
                )
            else:
                held.append(run.add(case_id, "education", content, f"e{step}.pdf"))
    orphans = {run.orphan(f"orphan {n}".encode()) for n in range(5)} - digests_in_the_log(
        run.registry
    )
    run.settle()
    for digest in run.store.digests():
        run.age(digest, LONG_AGO)
    referenced = digests_in_the_log(run.registry)

    done = run.collect()

    # Then exactly the orphans went; the read model's answer agrees with the log's
    remaining = set(run.store.digests())
    assert referenced <= remaining
    assert remaining.isdisjoint(orphans)
    assert done.deleted == len(orphans)
    assert run.queries.referenced(referenced | orphans) == referenced


def test_while_the_casework_view_lags_the_collector_deletes_nothing(run):
    # Given a document recorded but not yet projected, and an orphan, both long past the grace
    case_id = run.invited(1)
    run.settle()
    unseen = run.add(case_id, "identity", pdf_bytes("Passport"), "passport.pdf")
    digest = run.registry.get_case(case_id).document(unseen).digest
    orphan = run.orphan(b"%PDF-1.4 orphan")
    run.age(digest, LONG_AGO)
    run.age(orphan, LONG_AGO)
    assert run.queries.referenced([digest]) == set()  # the read model does not know it yet

    # When the collector runs with the view behind the log's head
    with pytest.raises(ViewBehind, match="behind the Registry log"):
        run.collect(CaughtUp(run.engine, run.registry, timeout=0.3, poll=0.05))

    # Then nothing at all was deleted, not even the orphan
    assert set(run.store.digests()) == {digest, orphan}

    # And once the view has caught up, the orphan goes and the document stays
    run.settle()
    done = run.collect()
    assert (done.kept, done.deleted) == (1, 1)
    assert set(run.store.digests()) == {digest}


def test_a_barrier_needs_no_event_it_does_not_follow(run):
    # Given a view that has applied every event it follows, and a log that ends with events it
    # ignores (a registration's reference pointer)
    run.invited(1)
    run.registry.define_intake(
        code="other", name="Other", stream="", capacity=1, policy="first_come", actor="test"
    )
    run.settle()
    head = run.registry.recorder.max_notification_id()
    with run.engine.connect() as connection:
        reached = position(connection, CaseworkView.name, Registry.name)
    assert reached < head

    # Then the barrier returns at once
    CaughtUp(run.engine, run.registry, timeout=0)()


def rows(engine: Any, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return sorted(tuple(r) for r in connection.execute(sa.select(table)).all())


def test_the_documents_tables_rebuild_row_for_row_and_a_replay_gives_the_same(run):
    case_id = run.invited(1)
    photo = run.add(case_id, "police", png_bytes(), "police.png")
    run.add(case_id, "police", pdf_bytes("Police"), "police.pdf", replaces=photo)
    letter = run.add(case_id, "care_work", pdf_bytes("Letter"), "letter.pdf")
    run.documents.remove_document(case_id, letter, idempotency_key="remove-letter")
    run.settle()
    live = rows(run.engine, case_documents), rows(run.engine, document_digests)
    assert [r[7] for r in live[0]] == ["replaced", "current", "removed"]  # d1, d2, d3

    # When the casework view is rebuilt into scratch tables and swapped in
    done = rebuild(run.engine, run.registry, CaseworkView.name)

    # Then the documents' rows are the same
    assert done.events > 0
    assert (rows(run.engine, case_documents), rows(run.engine, document_digests)) == live

    # And so they are when the view is dropped and the worker replays the log from the start
    with writing(run.engine) as connection:
        for table in casework.LIVE:
            connection.execute(table.delete())
        set_position(connection, CaseworkView.name, Registry.name, 0)
    assert rows(run.engine, document_digests) == []
    run.settle()
    assert (rows(run.engine, case_documents), rows(run.engine, document_digests)) == live


def test_pending_scans_are_retried_until_the_scanner_answers(run):
    # Given two documents recorded while the scanner was down
    case_id = run.invited(1)
    run.scanner.verdict = None
    first = run.add(case_id, "identity", pdf_bytes("Passport"), "passport.pdf")
    second = run.add(case_id, "education", pdf_bytes("Diploma"), "diploma.pdf")
    run.settle()
    assert run.queries.pending_scans() == [(case_id, first), (case_id, second)]

    # When the rescan job runs while the scanner is still down, nothing changes
    assert jobs.rescan_pending_documents(run.documents, run.queries, datetime.now(UTC)) == {
        "clean": 0,
        "infected": 0,
        "skipped": 0,
    }
    assert {d.scan.value for d in run.registry.get_case(case_id).documents} == {"pending"}

    # And once it answers, both get its verdict and count as present
    run.scanner.verdict = Verdict(clean=True)
    tally = jobs.rescan_pending_documents(run.documents, run.queries, datetime.now(UTC))
    assert tally["clean"] == 2
    run.settle()
    assert run.queries.pending_scans() == []
    assert {d.scan.value for d in run.registry.get_case(case_id).documents} == {"clean"}
    assert run.queries.scan_counts().clean == 2


SUMMARY = re.compile(r"^collected: (\d+) examined, (\d+) kept, (\d+) deleted, (\d+) bytes freed$")


def test_the_collect_command_reports_what_it_did(run):
    case_id = run.invited(1)
    kept = run.add(case_id, "identity", pdf_bytes("Passport"), "passport.pdf")
    digest = run.registry.get_case(case_id).document(kept).digest
    orphan = run.orphan(b"%PDF-1.4 orphan of the CLI")
    run.settle()
    run.age(digest, timedelta(hours=3))
    run.age(orphan, timedelta(hours=3))
    env = carepath_env(run.storage)

    # With the default grace (24 h), both are too young; with 2 h, the orphan goes
    first = run_carepath(env, "documents", "collect")
    assert SUMMARY.match(first.stdout.strip()).groups() == ("0", "0", "0", "0")
    assert "grace 24 h" in first.stderr
    second = run_carepath(env, "documents", "collect", "--grace-hours", "2")
    assert SUMMARY.match(second.stdout.strip()).groups()[:3] == ("2", "1", "1")
    assert "waiting for the casework view" in second.stderr
    assert set(run.store.digests()) == {digest}
