"""The rules of stage two, on the in-memory Registry with a real blob store and inspector."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.allocator import Allocator
from domain.blobs import FilesystemBlobStore
from domain.documents import Documents
from domain.errors import (
    ApplicationIncomplete,
    CaseClosed,
    DeadlinePassed,
    DocumentRefused,
    NotInvited,
    ScannerUnavailable,
)
from domain.inspection import ContentInspector
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from domain.storage import Verdict
from domain.values import DEFAULT_CHECKLIST, DEFAULT_SECTIONS, CaseStatus, ChecklistItem, ScanState
from projections.runner import catch_up
from tests.casework_fakes import Roster, staff_member
from tests.conftest import SECRET, submit_person
from tests.stage_two_helpers import pdf_bytes, png_bytes

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TWO_ITEMS = (
    ChecklistItem("identity", "Identity", "Identité", types=("pdf",), max_bytes=50_000),
    ChecklistItem("photo", "Photo", "Photo", required=False, types=("png", "jpeg")),
)


@dataclass
class Offers:
    """The allocation read model as the service sees it: a deadline per invited case."""

    deadlines: dict[UUID, datetime] = field(default_factory=dict)

    def offer_deadline(self, case_id: UUID) -> datetime | None:
        return self.deadlines.get(case_id)


@dataclass
class Scanner:
    """A virus scanner that answers what the test says, or is down."""

    verdict: Verdict | None = None  # None: unreachable
    scanned: int = 0

    def scan(self, path: Path) -> Verdict:
        self.scanned += 1
        if self.verdict is None:
            raise ScannerUnavailable("down")
        return self.verdict


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, tmp_path: Path, *, scanner: Scanner | None = None) -> None:
        self.registry = Registry(env=POPO, secret=SECRET)
        self.registry.define_intake(
            code="two",
            name="Two",
            stream="",
            capacity=5,
            policy="first_come",
            checklist=TWO_ITEMS,
            sections=("language_test",),
            actor="t",
        )
        self.registry.open_intake("two", actor="t")
        self.offers = Offers()
        self.clock = Clock()
        self.store = FilesystemBlobStore(tmp_path / "documents")
        self.documents = Documents(
            self.registry,
            self.store,
            ContentInspector(),
            self.offers,
            scanner=scanner,
            clock=self.clock,
        )

    def invited(self, n: int = 1) -> UUID:
        case_id = submit_person(self.registry, "two", n)
        self.offers.deadlines[case_id] = NOW + timedelta(days=28)
        return case_id

    def add(self, case_id: UUID, item: str, content: bytes, key: str, **kw: Any) -> Any:
        return self.documents.add_document(
            case_id, item, io.BytesIO(content), f"{item}.bin", idempotency_key=key, **kw
        )

    def details(self, case_id: UUID) -> None:
        self.documents.save_details(
            case_id,
            "language_test",
            {"test": "ielts", "level": 6},
            expected_version=self.registry.get_case(case_id).version,
            language="en",
            idempotency_key=f"details-{case_id}",
        )

    def send(self, case_id: UUID, key: str = "send-key") -> Any:
        return self.documents.submit_application(
            case_id,
            expected_version=self.registry.get_case(case_id).version,
            language="en",
            idempotency_key=key,
        )


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World(tmp_path)
    yield w
    w.registry.close()


def test_an_invited_applicant_sends_once_every_section_and_required_item_is_there(world):
    case_id = world.invited()
    with pytest.raises(ApplicationIncomplete) as missing:
        world.send(case_id)
    assert (missing.value.sections, missing.value.items) == (("language_test",), ("identity",))

    world.details(case_id)
    world.add(case_id, "identity", pdf_bytes(), "k-identity")  # the optional photo is not needed
    sent = world.send(case_id)

    case = world.registry.get_case(case_id)
    assert case.status is CaseStatus.APPLICATION_SUBMITTED
    assert sent.version == case.version
    assert world.send(case_id).replayed  # the same request again records nothing more


def test_a_case_without_an_invitation_or_past_its_deadline_cannot_complete_stage_two(world):
    waiting = submit_person(world.registry, "two", 9)
    with pytest.raises(NotInvited):
        world.add(waiting, "identity", pdf_bytes(), "k1")
    invited = world.invited()
    world.clock.now = NOW + timedelta(days=28)  # the deadline itself is too late

    with pytest.raises(DeadlinePassed):
        world.add(invited, "identity", pdf_bytes(), "k2")
    with pytest.raises(DeadlinePassed):
        world.send(invited)
    assert list(world.store.digests()) == []


def test_a_repeated_upload_records_one_document_and_reads_nothing_the_second_time(world):
    case_id = world.invited()
    first = world.add(case_id, "identity", pdf_bytes(), "same-key")

    class Unreadable(io.BytesIO):
        def read(self, *_: Any) -> bytes:
            raise AssertionError("a replay must not read the upload again")

    again = world.documents.add_document(
        case_id, "identity", Unreadable(), "x.pdf", idempotency_key="same-key"
    )

    assert again.outcome.replayed
    assert again.document_id == first.document_id
    assert len(world.registry.get_case(case_id).documents) == 1


def test_a_file_over_the_items_limit_or_of_a_type_it_does_not_allow_is_refused(world):
    case_id = world.invited()
    big = pdf_bytes() + b"%" + b"x" * 50_000

    with pytest.raises(DocumentRefused) as too_large:
        world.add(case_id, "identity", big, "k1")
    assert too_large.value.code == "too_large"
    with pytest.raises(DocumentRefused) as wrong:
        world.add(case_id, "identity", png_bytes(), "k2")
    assert wrong.value.code == "wrong_type"
    assert world.registry.get_case(case_id).documents == ()
    assert list(world.store.digests()) == []


def test_replacing_needs_a_current_document_of_the_same_item(world):
    case_id = world.invited()
    first = world.add(case_id, "identity", pdf_bytes("one"), "k1")
    photo = world.add(case_id, "photo", png_bytes(), "k2")

    with pytest.raises(Exception, match="same checklist item"):
        world.add(case_id, "identity", pdf_bytes("two"), "k3", replaces=photo.document_id)
    replaced = world.add(case_id, "identity", pdf_bytes("two"), "k4", replaces=first.document_id)

    docs = {d.document_id: d for d in world.registry.get_case(case_id).documents}
    assert set(docs) == {photo.document_id, replaced.document_id}
    with pytest.raises(Exception, match="no document"):
        world.add(case_id, "identity", pdf_bytes("three"), "k5", replaces=first.document_id)


def test_documents_are_closed_once_sent_and_open_again_to_answer_an_officers_request(world):
    case_id = world.invited()
    world.details(case_id)
    world.add(case_id, "identity", pdf_bytes(), "k1")
    world.send(case_id)
    with pytest.raises(CaseClosed):
        world.add(case_id, "photo", png_bytes(), "k2")

    officer = staff_member()
    from domain.casework import Casework

    Casework(world.registry, Roster(officer), holds_place=lambda c: True).request_information(  # type: ignore[arg-type]
        case_id,
        "Send a clearer photo.",
        officer=officer,
        expected_version=world.registry.get_case(case_id).version,
        idempotency_key="ask-1",
    )
    world.clock.now = NOW + timedelta(days=60)  # long after the invitation's deadline
    added = world.add(case_id, "photo", png_bytes(), "k3")

    assert world.registry.get_case(case_id).document(added.document_id) is not None


def test_with_the_scanner_down_a_file_waits_and_counts_only_after_a_clean_verdict(tmp_path):
    scanner = Scanner(verdict=None)
    w = World(tmp_path, scanner=scanner)
    try:
        case_id = w.invited()
        w.details(case_id)
        added = w.add(case_id, "identity", pdf_bytes(), "k1")
        assert w.registry.get_case(case_id).documents[0].scan is ScanState.PENDING
        with pytest.raises(ApplicationIncomplete):
            w.send(case_id)
        with pytest.raises(ScannerUnavailable):
            w.documents.rescan(case_id, added.document_id)

        scanner.verdict = Verdict(clean=True)
        assert w.documents.rescan(case_id, added.document_id) is ScanState.CLEAN
        w.send(case_id)
        assert w.registry.get_case(case_id).status is CaseStatus.APPLICATION_SUBMITTED
    finally:
        w.registry.close()


def test_an_infected_file_is_refused_and_nothing_is_kept(tmp_path):
    w = World(tmp_path, scanner=Scanner(verdict=Verdict(clean=False, signature="Eicar")))
    try:
        case_id = w.invited()
        with pytest.raises(DocumentRefused) as infected:
            w.add(case_id, "identity", pdf_bytes(), "k1")
        assert infected.value.code == "infected"
        assert list(w.store.digests()) == []
    finally:
        w.registry.close()


def test_an_application_sent_in_time_keeps_its_place_and_a_late_one_is_released():
    registry, allocator = Registry(env=POPO, secret=SECRET), Allocator(env=POPO)
    registry.define_intake(
        code="one",
        name="One",
        stream="",
        capacity=2,
        policy="first_come",
        checklist=(),
        sections=(),
        document_deadline_days=1,
        actor="t",
    )
    registry.open_intake("one", actor="t")
    try:
        on_time, late, waiting = (submit_person(registry, "one", n) for n in (1, 2, 3))
        catch_up(registry, allocator)
        ledger_of = ledger_id(registry.get_intake("one").id)

        def send(case_id: UUID) -> None:
            registry.decide(
                case_id,
                "submit_application",
                None,
                f"send-{case_id}",
                lambda c: c.submit_application((), (), "en", f"send-{case_id}", "applicant"),
            )

        send(on_time)
        registry.check_deadlines("one", datetime(2100, 1, 1, tzinfo=UTC), actor="t")
        send(late)  # recorded, but after the deadline passed: the allocator does not take it up
        catch_up(registry, allocator)

        ledger: Ledger = allocator.repository.get(ledger_of)
        assert ledger.states[on_time] == "accepted"  # taken up: the place is kept
        assert on_time not in ledger.deadlines
        assert ledger.states[late] == "expired"
        assert ledger.states[waiting] == "granted"
    finally:
        registry.close()
        allocator.close()


def test_an_intake_stored_before_stage_two_reads_with_the_pilots_checklist():
    registry = Registry(env=POPO, secret=SECRET)
    try:
        intake_id = registry.define_intake(
            code="old", name="Old", stream="", capacity=3, policy="first_come", actor="t"
        )
        (defined,) = [e for e in registry.events.get(intake_id) if isinstance(e, Intake.Defined)]
        stored = registry.mapper.to_stored_event(defined)
        state = json.loads(stored.state)
        for name in ("checklist", "sections", "case_document_bytes", "class_version"):
            state.pop(name, None)  # as version 1 wrote it
        old = type(stored)(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )

        upcast = registry.mapper.to_domain_event(old)

        assert isinstance(upcast, Intake.Defined)
        assert upcast.checklist == [item.as_dict() for item in DEFAULT_CHECKLIST]
        assert upcast.sections == list(DEFAULT_SECTIONS)
    finally:
        registry.close()
