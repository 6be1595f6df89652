"""Officers' commands on cases (domain.casework) on the in-memory backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from domain.allocator import Allocator
from domain.casework import Casework
from domain.errors import (
    CaseActionRefused,
    CaseClosed,
    InvalidValue,
    NoOpenRequest,
    NotPermitted,
    StaleVersion,
)
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from domain.values import CaseStatus, StaffRole, StaffView
from projections.runner import catch_up
from tests.casework_fakes import Roster, staff_member
from tests.conftest import SECRET, send_application, submit_person

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
def officer() -> StaffView:
    return staff_member()


@pytest.fixture
def places() -> set[UUID]:
    """Cases the fake allocation read model says hold a place."""
    return set()


@pytest.fixture
def casework(registry: Registry, officer: StaffView, places: set[UUID]) -> Casework:
    return Casework(registry, Roster(officer), holds_place=lambda case_id: case_id in places)  # type: ignore[arg-type]


def key(n: int) -> str:
    return f"officer-key-{n:06d}"


def test_assigning_a_submitted_case_records_the_officer_and_the_assignee(
    registry, casework, officer
):
    case_id = submit_person(registry, "test", 1)
    version = registry.get_case(case_id).version

    outcome = casework.assign(
        case_id, officer.id, officer=officer, expected_version=version, idempotency_key=key(1)
    )

    case = registry.get_case(case_id)
    assert case.assigned_to == officer.id
    assert outcome.version == version + 1
    assert outcome.position is not None
    event = list(registry.events.get(case_id))[-1]
    assert event.officer_id == officer.id
    assert event.assignee_id == officer.id


def test_the_same_request_repeated_assigns_once(registry, casework, officer):
    case_id = submit_person(registry, "test", 1)
    version = registry.get_case(case_id).version
    first = casework.assign(
        case_id, officer.id, officer=officer, expected_version=version, idempotency_key=key(1)
    )

    again = casework.assign(
        case_id, officer.id, officer=officer, expected_version=version, idempotency_key=key(1)
    )

    assert again.replayed
    assert again.version == first.version
    assert registry.get_case(case_id).version == first.version


def test_a_draft_cannot_be_assigned_or_decided(registry, casework, officer):
    done = registry.register(
        "test",
        {
            "family_name": "A",
            "given_names": "B",
            "date_of_birth": "1990-01-01",
            "passport_number": "X1",
            "passport_country": "PH",
        },
        language="en",
        idempotency_key="draft-registration-1",
    )

    with pytest.raises(CaseActionRefused):
        casework.assign(
            done.case_id, officer.id, officer=officer, expected_version=1, idempotency_key=key(1)
        )
    with pytest.raises(CaseActionRefused):
        casework.return_incomplete(
            done.case_id,
            ["form_incomplete"],
            "",
            officer=officer,
            expected_version=1,
            idempotency_key=key(2),
        )


@pytest.mark.parametrize("role", [StaffRole.AUDITOR, StaffRole.ADMIN])
def test_only_officers_act_on_cases(registry, casework, role):
    case_id = submit_person(registry, "test", 1)
    version = registry.get_case(case_id).version
    someone = staff_member(role)

    for act in (
        lambda: casework.assign(
            case_id, None, officer=someone, expected_version=version, idempotency_key=key(1)
        ),
        lambda: casework.request_information(
            case_id, "x", officer=someone, expected_version=version, idempotency_key=key(2)
        ),
        lambda: casework.accept_for_processing(
            case_id, officer=someone, expected_version=version, idempotency_key=key(3)
        ),
        lambda: casework.refuse(
            case_id,
            ["other"],
            "x",
            officer=someone,
            expected_version=version,
            idempotency_key=key(4),
        ),
    ):
        with pytest.raises(NotPermitted):
            act()
    assert registry.get_case(case_id).version == version


def test_a_disabled_officer_cannot_act(registry, casework):
    case_id = submit_person(registry, "test", 1)
    with pytest.raises(NotPermitted):
        casework.assign(
            case_id,
            None,
            officer=staff_member(disabled=True),
            expected_version=registry.get_case(case_id).version,
            idempotency_key=key(1),
        )


def test_cases_are_assigned_only_to_active_officers(registry, officer, places):
    auditor = staff_member(StaffRole.AUDITOR)
    casework = Casework(registry, Roster(officer, auditor), holds_place=lambda c: True)  # type: ignore[arg-type]
    case_id = submit_person(registry, "test", 1)
    version = registry.get_case(case_id).version

    with pytest.raises(InvalidValue) as to_auditor:
        casework.assign(
            case_id, auditor.id, officer=officer, expected_version=version, idempotency_key=key(1)
        )
    with pytest.raises(InvalidValue):
        casework.assign(
            case_id, uuid4(), officer=officer, expected_version=version, idempotency_key=key(2)
        )
    assert to_auditor.value.field == "assignee"


def test_a_request_for_information_is_answered_by_the_applicant_once(registry, casework, officer):
    case_id = submit_person(registry, "test", 1)
    asked = casework.request_information(
        case_id,
        "Send your latest pay slip.",
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(1),
    )
    with pytest.raises(CaseActionRefused):
        casework.request_information(
            case_id,
            "Another",
            officer=officer,
            expected_version=asked.version,
            idempotency_key=key(2),
        )

    answered = registry.provide_information(
        case_id, "r1", "Attached.", expected_version=asked.version, idempotency_key=key(3)
    )

    case = registry.get_case(case_id)
    assert case.open_request is None
    assert case.requests[0].answer == "Attached."
    assert case.requests[0].answered_at is not None
    with pytest.raises(NoOpenRequest):
        registry.provide_information(
            case_id, "r1", "Again", expected_version=answered.version, idempotency_key=key(4)
        )


def test_accepting_needs_a_place_and_approving_needs_acceptance(
    registry, casework, officer, places
):
    case_id = submit_person(registry, "test", 1)
    send_application(registry, case_id)
    version = registry.get_case(case_id).version
    with pytest.raises(CaseActionRefused):
        casework.approve(
            case_id, "", officer=officer, expected_version=version, idempotency_key=key(1)
        )
    with pytest.raises(CaseActionRefused, match="no place"):
        casework.accept_for_processing(
            case_id, officer=officer, expected_version=version, idempotency_key=key(2)
        )

    places.add(case_id)
    accepted = casework.accept_for_processing(
        case_id, officer=officer, expected_version=version, idempotency_key=key(3)
    )
    approved = casework.approve(
        case_id,
        "All good",
        officer=officer,
        expected_version=accepted.version,
        idempotency_key=key(4),
    )

    case = registry.get_case(case_id)
    assert case.status is CaseStatus.APPROVED
    assert case.decided_at is not None
    assert case.decision_note == "All good"
    assert approved.version == case.version
    with pytest.raises(CaseClosed):
        registry.withdraw(case_id, expected_version=case.version, reason="", idempotency_key=key(5))


def test_a_refusal_needs_known_reasons_and_other_needs_a_note(registry, casework, officer, places):
    case_id = submit_person(registry, "test", 1)
    send_application(registry, case_id)
    places.add(case_id)
    accepted = casework.accept_for_processing(
        case_id,
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(1),
    )
    for reasons, note, field in (
        ([], "", "reasons"),
        (["made_up"], "", "reasons"),
        (["other"], " ", "note"),
    ):
        with pytest.raises(InvalidValue) as refused:
            casework.refuse(
                case_id,
                reasons,
                note,
                officer=officer,
                expected_version=accepted.version,
                idempotency_key=key(2),
            )
        assert refused.value.field == field

    casework.refuse(
        case_id,
        ["inadmissible"],
        "",
        officer=officer,
        expected_version=accepted.version,
        idempotency_key=key(3),
    )
    case = registry.get_case(case_id)
    assert case.status is CaseStatus.REFUSED
    assert case.decision_reasons == ("inadmissible",)


def test_two_officers_deciding_one_case_at_once_one_succeeds_the_other_gets_a_conflict(
    registry, officer, places
):
    other = staff_member()
    casework = Casework(registry, Roster(officer, other), holds_place=lambda c: True)  # type: ignore[arg-type]
    case_id = submit_person(registry, "test", 1)
    send_application(registry, case_id)
    accepted = casework.accept_for_processing(
        case_id,
        officer=officer,
        expected_version=registry.get_case(case_id).version,
        idempotency_key=key(1),
    )
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def decide(name: str, who: StaffView, act: str) -> None:
        start.wait()
        try:
            if act == "approve":
                results[name] = casework.approve(
                    case_id,
                    "",
                    officer=who,
                    expected_version=accepted.version,
                    idempotency_key=key(2),
                )
            else:
                results[name] = casework.refuse(
                    case_id,
                    ["inadmissible"],
                    "",
                    officer=who,
                    expected_version=accepted.version,
                    idempotency_key=key(3),
                )
        except StaleVersion as stale:
            results[name] = stale

    threads = [
        threading.Thread(target=decide, args=("a", officer, "approve")),
        threading.Thread(target=decide, args=("b", other, "refuse")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stale = [r for r in results.values() if isinstance(r, StaleVersion)]
    assert len(stale) == 1, results
    case = registry.get_case(case_id)
    assert case.version == accepted.version + 1  # exactly one decision recorded
    assert case.status in {CaseStatus.APPROVED, CaseStatus.REFUSED}


def test_a_bulk_assign_over_500_cases_with_one_changed_meanwhile_assigns_499_and_names_it():
    registry = Registry(env=POPO, secret=SECRET)
    registry.define_intake(
        code="bulk", name="Bulk", stream="", capacity=600, policy="first_come", actor="t"
    )
    registry.open_intake("bulk", actor="t")
    officer = staff_member()
    casework = Casework(registry, Roster(officer), holds_place=lambda c: True)  # type: ignore[arg-type]
    try:
        cases = [submit_person(registry, "bulk", n) for n in range(500)]
        seen = [(case_id, registry.get_case(case_id).version) for case_id in cases]
        changed = cases[137]
        casework.request_information(
            changed,
            "Meanwhile",
            officer=officer,
            expected_version=seen[137][1],
            idempotency_key=key(1),
        )

        outcome = casework.assign_many(seen, officer.id, officer=officer, idempotency_key=key(2))

        assert len(outcome.done) == 499
        assert changed not in outcome.done
        assert [case_id for case_id, _ in outcome.skipped] == [changed]
        assert "changed" in outcome.skipped[0][1]
        assert all(registry.get_case(c).assigned_to == officer.id for c in outcome.done)
        assert registry.get_case(changed).assigned_to is None
        again = casework.assign_many(seen, officer.id, officer=officer, idempotency_key=key(2))
        assert set(again.done) == set(outcome.done)  # a retried request assigns nothing twice
        assert registry.get_case(cases[0]).version == seen[0][1] + 1
    finally:
        registry.close()


def test_returning_a_place_holder_as_incomplete_invites_the_next_on_the_waitlist(officer):
    registry = Registry(env=POPO, secret=SECRET)
    allocator = Allocator(env=POPO)
    registry.define_intake(
        code="one", name="One", stream="", capacity=1, policy="first_come", actor="t"
    )
    registry.open_intake("one", actor="t")
    casework = Casework(registry, Roster(officer), holds_place=lambda c: True)  # type: ignore[arg-type]
    try:
        holder, waiting = submit_person(registry, "one", 1), submit_person(registry, "one", 2)
        catch_up(registry, allocator)
        send_application(registry, holder)

        casework.return_incomplete(
            holder,
            ["documents_missing"],
            "",
            officer=officer,
            expected_version=registry.get_case(holder).version,
            idempotency_key=key(1),
        )
        catch_up(registry, allocator)

        ledger = allocator.repository.get(ledger_id(registry.get_intake("one").id))
        assert ledger.states[holder] == "returned_incomplete"
        assert ledger.states[waiting] == "granted"
        assert ledger.slot_of[waiting] == 1
        assert registry.get_case(holder).status is CaseStatus.RETURNED
    finally:
        registry.close()
        allocator.close()


def test_an_accepted_case_keeps_its_place_past_the_deadline(officer):
    registry = Registry(env=POPO, secret=SECRET)
    allocator = Allocator(env=POPO)
    registry.define_intake(
        code="one",
        name="One",
        stream="",
        capacity=1,
        policy="first_come",
        document_deadline_days=1,
        actor="t",
    )
    registry.open_intake("one", actor="t")
    casework = Casework(registry, Roster(officer), holds_place=lambda c: True)  # type: ignore[arg-type]
    try:
        holder = submit_person(registry, "one", 1)
        catch_up(registry, allocator)
        send_application(registry, holder)
        casework.accept_for_processing(
            holder,
            officer=officer,
            expected_version=registry.get_case(holder).version,
            idempotency_key=key(1),
        )
        registry.check_deadlines("one", datetime(2100, 1, 1, tzinfo=UTC), actor="t")
        catch_up(registry, allocator)

        events = list(allocator.events.get(ledger_id(registry.get_intake("one").id)))
        assert any(isinstance(e, Ledger.OfferTakenUp) and e.case_id == holder for e in events)
        assert not any(isinstance(e, Ledger.PlaceReleased) for e in events)
    finally:
        registry.close()
        allocator.close()
