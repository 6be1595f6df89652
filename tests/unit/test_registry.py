"""The Registry's commands and queries on the in-memory backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from domain import errors
from domain.case import Case
from domain.intake import Intake
from domain.registry import Registry
from domain.values import DEFAULT_TIME_ZONE, CaseStatus, IntakeStatus
from tests.conftest import SECRET, about_you

CONTACT = {"email": "maria@example.org", "phone": "+63 917 123 4567", "country_of_residence": "CA"}
ELIGIBILITY = {"language_level": 5, "care_months": 24, "education": "secondary", "consent": True}


def register(registry, n=1, key=None):
    return registry.register("test", about_you(n), language="en", idempotency_key=key or f"reg-{n}")


def fill_in(registry, case_id):
    registry.save_step(
        case_id, "contact", CONTACT, expected_version=1, language="en", idempotency_key="c"
    )
    registry.save_step(
        case_id, "eligibility", ELIGIBILITY, expected_version=2, language="en", idempotency_key="e"
    )


def events_of(registry, case_id):
    return list(registry.events.get(case_id))


def test_registering_starts_a_draft_case_with_a_reference_and_the_about_you_answers(registry):
    done = register(registry)
    case = registry.get_case(done.case_id)
    assert case.status is CaseStatus.DRAFT
    assert case.reference == done.reference
    assert case.answers["about_you"]["family_name"] == "Santos"
    assert case.next_step == "contact"


def test_second_registration_of_same_person_is_refused(registry):
    register(registry, key="first")
    notifications = registry.recorder.max_notification_id()
    with pytest.raises(errors.DuplicateRegistration):
        registry.register(
            "test", about_you(1, family_name="Other"), language="en", idempotency_key="second"
        )
    assert registry.recorder.max_notification_id() == notifications


def test_repeated_registration_request_returns_the_same_reference_and_code(registry):
    first = register(registry, key="same")
    again = register(registry, key="same")
    assert (again.case_id, again.reference, again.access_code) == (
        first.case_id,
        first.reference,
        first.access_code,
    )
    assert again.replayed
    assert not first.replayed
    assert len(events_of(registry, first.case_id)) == 1


def test_different_people_never_collide(registry):
    ids = {register(registry, n).case_id for n in range(1, 301)}
    assert len(ids) == 300


def test_same_person_may_register_in_another_intake(registry):
    registry.define_intake(
        code="other", name="Other", stream="", capacity=1, policy="lottery", actor="t"
    )
    registry.open_intake("other", actor="t")
    first = register(registry)
    second = registry.register("other", about_you(1), language="en", idempotency_key="o")
    assert first.case_id != second.case_id


def test_registration_is_refused_when_the_intake_is_not_open(registry):
    registry.define_intake(
        code="later", name="Later", stream="", capacity=1, policy="first_come", actor="t"
    )
    with pytest.raises(errors.IntakeNotOpen):
        registry.register("later", about_you(1), language="en", idempotency_key="k")
    registry.close_intake("test", actor="t")
    with pytest.raises(errors.IntakeNotOpen):
        register(registry)


def test_registration_is_refused_after_the_window_closes_even_before_the_close_event():
    now = datetime(2025, 3, 31, 12, tzinfo=UTC)
    registry = Registry(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        secret=SECRET,
        clock=lambda: now + timedelta(hours=5),
    )
    registry.define_intake(
        code="test",
        name="T",
        stream="",
        capacity=1,
        policy="first_come",
        opens_at=now,
        closes_at=now + timedelta(hours=4),
        actor="t",
    )
    registry.open_intake("test", actor="t")
    with pytest.raises(errors.IntakeNotOpen):
        register(registry)


def test_each_saved_step_is_one_event_and_a_replay_writes_nothing(registry):
    done = register(registry)
    first = registry.save_step(
        done.case_id,
        "contact",
        CONTACT,
        expected_version=1,
        language="fr",
        idempotency_key="step-1",
    )
    replay = registry.save_step(
        done.case_id,
        "contact",
        CONTACT,
        expected_version=1,
        language="fr",
        idempotency_key="step-1",
    )
    assert (first.version, replay.version) == (2, 2)
    assert replay.replayed
    assert [type(e) for e in events_of(registry, done.case_id)] == [Case.Registered, Case.StepSaved]
    assert registry.get_case(done.case_id).language == "fr"


def test_stale_version_is_refused_and_changes_nothing(registry):
    done = register(registry)
    registry.save_step(
        done.case_id, "contact", CONTACT, expected_version=1, language="en", idempotency_key="tab-1"
    )
    with pytest.raises(errors.StaleVersion) as stale:
        registry.save_step(
            done.case_id,
            "contact",
            {**CONTACT, "email": "x@example.org"},
            expected_version=1,
            language="en",
            idempotency_key="tab-2",
        )
    assert stale.value.actual == 2
    assert registry.get_case(done.case_id).answers["contact"]["email"] == CONTACT["email"]


def test_an_idempotency_key_cannot_be_reused_for_another_command(registry):
    done = register(registry)
    fill_in(registry, done.case_id)
    with pytest.raises(errors.IdempotencyKeyReused):
        registry.submit(done.case_id, expected_version=3, language="en", idempotency_key="e")


def test_identity_cannot_change_after_registration(registry):
    done = register(registry)
    with pytest.raises(errors.IdentityLocked):
        registry.save_step(
            done.case_id,
            "about_you",
            {"passport_number": "Z9999999"},
            expected_version=1,
            language="en",
            idempotency_key="x",
        )
    registry.save_step(
        done.case_id,
        "about_you",
        {"family_name": "Santos-Cruz"},
        expected_version=1,
        language="en",
        idempotency_key="y",
    )
    answers = registry.get_case(done.case_id).answers["about_you"]
    assert answers["family_name"] == "Santos-Cruz"
    assert answers["passport_number"] == "P00000001"


def test_submit_needs_every_step_then_freezes_the_case(registry):
    done = register(registry)
    with pytest.raises(errors.IncompleteRegistration) as incomplete:
        registry.submit(done.case_id, expected_version=1, language="en", idempotency_key="s0")
    assert incomplete.value.missing == ("contact", "eligibility")
    fill_in(registry, done.case_id)
    registry.submit(done.case_id, expected_version=3, language="en", idempotency_key="s1")
    case = registry.get_case(done.case_id)
    assert case.status is CaseStatus.SUBMITTED
    assert case.submitted_at is not None
    with pytest.raises(errors.CaseClosed):
        registry.save_step(
            done.case_id,
            "contact",
            CONTACT,
            expected_version=4,
            language="en",
            idempotency_key="late",
        )
    replay = registry.submit(done.case_id, expected_version=3, language="en", idempotency_key="s1")
    assert replay.replayed
    assert replay.version == 4


def test_withdrawal_is_recorded_once(registry):
    done = register(registry)
    registry.withdraw(done.case_id, expected_version=1, reason="found work", idempotency_key="w")
    assert registry.get_case(done.case_id).status is CaseStatus.WITHDRAWN
    with pytest.raises(errors.CaseClosed):
        registry.withdraw(done.case_id, expected_version=2, reason="", idempotency_key="w2")
    assert registry.withdraw(
        done.case_id, expected_version=1, reason="", idempotency_key="w"
    ).replayed


def test_sign_in_needs_the_matching_reference_and_access_code(registry):
    one, two = register(registry, 1), register(registry, 2)
    assert registry.sign_in(one.reference, one.access_code) == one.case_id
    for reference, code in [
        (one.reference, two.access_code),
        (two.reference, one.access_code),
        ("0000-0000-0", one.access_code),
        ("nonsense", "x"),
    ]:
        with pytest.raises(errors.SignInFailed):
            registry.sign_in(reference, code)


def test_past_versions_of_a_case_can_be_read(registry):
    done = register(registry)
    fill_in(registry, done.case_id)
    assert registry.get_case(done.case_id, version=1).steps_done == ("about_you",)
    assert registry.get_case(done.case_id).version == 3


def test_intakes_are_listed_in_the_order_defined_and_follow_their_lifecycle(registry):
    registry.define_intake(
        code="second", name="Second", stream="", capacity=5, policy="lottery", actor="t"
    )
    assert [i.code for i in registry.list_intakes()] == ["test", "second"]
    assert registry.get_intake("second").status is IntakeStatus.DEFINED
    with pytest.raises(errors.IntakeStateError):
        registry.close_intake("second", actor="t")
    with pytest.raises(errors.IntakeAlreadyDefined):
        registry.define_intake(
            code="second", name="Again", stream="", capacity=5, policy="lottery", actor="t"
        )


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("code", {"code": "Bad Code"}),
        ("name", {"name": " "}),
        ("capacity", {"capacity": 0}),
        ("policy", {"policy": "fastest"}),
        (
            "closes_at",
            {
                "opens_at": datetime(2025, 1, 2, tzinfo=UTC),
                "closes_at": datetime(2025, 1, 1, tzinfo=UTC),
            },
        ),
        ("document_deadline_days", {"document_deadline_days": 0}),
        ("waitlist_length", {"waitlist_length": -1}),
        ("time_zone", {"time_zone": "Mars/Olympus_Mons"}),
        ("time_zone", {"time_zone": "-05:00"}),
        ("time_zone", {"time_zone": ""}),
    ],
)
def test_bad_intake_definitions_name_the_field(registry, field, changes):
    definition = {
        "code": "ok",
        "name": "OK",
        "stream": "",
        "capacity": 1,
        "policy": "first_come",
        "actor": "t",
        **changes,
    }
    with pytest.raises(errors.InvalidValue) as invalid:
        registry.define_intake(**definition)
    assert invalid.value.field == field


def test_an_intake_records_the_time_zone_it_is_defined_with(registry):
    registry.define_intake(
        code="west",
        name="West",
        stream="",
        capacity=5,
        policy="first_come",
        time_zone="America/Vancouver",
        actor="t",
    )
    assert registry.get_intake("west").time_zone == "America/Vancouver"
    assert {i.code: i.time_zone for i in registry.list_intakes()}["west"] == "America/Vancouver"
    assert registry.get_intake("test").time_zone == DEFAULT_TIME_ZONE == "America/Toronto"


def test_a_bad_time_zone_is_refused_naming_the_zone_and_records_nothing(registry):
    before = registry.recorder.max_notification_id()
    with pytest.raises(errors.InvalidValue) as invalid:
        registry.define_intake(
            code="nowhere",
            name="Nowhere",
            stream="",
            capacity=5,
            policy="first_come",
            time_zone="Europe/Atlantis",
            actor="t",
        )
    assert invalid.value.field == "time_zone"
    assert "'Europe/Atlantis' is not a time zone" in str(invalid.value)
    assert registry.recorder.max_notification_id() == before


def test_an_intake_defined_before_intakes_named_a_zone_reads_with_the_default_zone(registry):
    intake_id = registry.define_intake(
        code="v3", name="V3", stream="", capacity=3, policy="first_come", actor="t"
    )
    (defined,) = [e for e in registry.events.get(intake_id) if isinstance(e, Intake.Defined)]
    stored = registry.mapper.to_stored_event(defined)
    state = json.loads(stored.state)
    del state["time_zone"]
    state["class_version"] = 3  # as version 3 wrote it
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )

    upcast = registry.mapper.to_domain_event(old)

    assert isinstance(upcast, Intake.Defined)
    assert upcast.time_zone == DEFAULT_TIME_ZONE
    assert upcast.pool_labels == defined.pool_labels  # v3's fields are left as they were
    assert upcast.unused_reserved == defined.unused_reserved
