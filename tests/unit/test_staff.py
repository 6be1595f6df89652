"""The Staff application's rules, on the in-memory backend, with fake credentials and clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import (
    EnrolmentInvalid,
    InvalidValue,
    StaffAlreadyExists,
    StaffLockedOut,
    StaffNotFound,
    StaffSessionInvalid,
    StaffSignInFailed,
)
from domain.staff import ENROLMENT_HOURS, LOCK_MINUTES, MAX_FAILURES, Staff
from domain.values import StaffRole
from tests.conftest import SECRET

PASSWORD = "a password long enough"
SEALED = "sealed:secret"


class FakeCredentials:
    """Password hash = "hash:" + password; a code is its own time step, six digits."""

    def __init__(self) -> None:
        self.decoy_checks = 0

    def password_matches(self, stored_hash: str, password: str) -> bool:
        if not stored_hash:
            self.decoy_checks += 1
            return False
        return stored_hash == f"hash:{password}"

    def code_step(self, sealed_secret: str, code: str) -> int | None:
        if sealed_secret != SEALED or len(code) != 6 or not code.isdigit():
            return None
        return int(code)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def credentials() -> FakeCredentials:
    return FakeCredentials()


@pytest.fixture
def staff(clock: Clock, credentials: FakeCredentials) -> Staff:
    app = Staff(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        secret=SECRET,
        credentials=credentials,
        clock=clock,
    )
    yield app
    app.close()


def enrolled(staff: Staff, email: str = "officer@example.gov", role: str = "officer") -> str:
    staff_id, token = staff.add(email, role=role, name="", actor="test")
    staff.enrol(staff_id, token, password_hash=f"hash:{PASSWORD}", sealed_secret=SEALED)
    return email


def code(step: int) -> str:
    return f"{step:06d}"


def test_an_enrolled_member_signs_in_with_password_and_code(staff):
    email = enrolled(staff)
    session = staff.sign_in(email, PASSWORD, code(1))
    member = staff.authenticate(session.staff_id, session.token)
    assert member.email == email
    assert member.role is StaffRole.OFFICER
    assert member.active_sessions == 1


@pytest.mark.parametrize(
    ("password", "second"),
    [("wrong password", code(1)), (PASSWORD, "12345"), (PASSWORD, "abcdef"), (PASSWORD, "")],
)
def test_a_wrong_password_or_code_is_refused_with_the_same_error(staff, password, second):
    email = enrolled(staff)
    with pytest.raises(StaffSignInFailed) as refused:
        staff.sign_in(email, password, second)
    assert str(refused.value) == "email, password or code not recognised"


def test_an_unknown_address_is_refused_after_a_real_password_check(staff, credentials):
    with pytest.raises(StaffSignInFailed) as refused:
        staff.sign_in("nobody@example.gov", PASSWORD, code(1))
    assert str(refused.value) == "email, password or code not recognised"
    assert credentials.decoy_checks == 1


def test_a_member_who_has_not_enrolled_cannot_sign_in(staff):
    staff.add("new@example.gov", role="officer", name="", actor="test")
    with pytest.raises(StaffSignInFailed):
        staff.sign_in("new@example.gov", PASSWORD, code(1))


def test_five_failures_lock_the_account_for_fifteen_minutes(staff, clock):
    email = enrolled(staff)
    for _ in range(MAX_FAILURES):
        with pytest.raises(StaffSignInFailed):
            staff.sign_in(email, "wrong password", code(1))
    with pytest.raises(StaffLockedOut) as locked:
        staff.sign_in(email, PASSWORD, code(1))  # even the right password and code
    assert locked.value.until == clock.now + timedelta(minutes=LOCK_MINUTES)
    assert staff.find(email).locked_until == locked.value.until

    clock.advance(minutes=LOCK_MINUTES - 1)
    with pytest.raises(StaffLockedOut):
        staff.sign_in(email, PASSWORD, code(2))
    clock.advance(minutes=1, seconds=1)
    assert staff.sign_in(email, PASSWORD, code(2)).staff_id == staff.staff_id_for(email)
    assert staff.find(email).locked_until is None


def test_a_success_resets_the_failure_count(staff):
    email = enrolled(staff)
    for _ in range(1, MAX_FAILURES):
        with pytest.raises(StaffSignInFailed):
            staff.sign_in(email, PASSWORD, "99999x")
        assert staff.find(email).locked_until is None
    staff.sign_in(email, PASSWORD, code(1))
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(StaffSignInFailed):
            staff.sign_in(email, "wrong password", code(2))
    assert staff.find(email).locked_until is None


def test_a_code_is_accepted_once_and_never_an_earlier_one(staff):
    email = enrolled(staff)
    staff.sign_in(email, PASSWORD, code(10))
    with pytest.raises(StaffSignInFailed):
        staff.sign_in(email, PASSWORD, code(10))  # replayed
    with pytest.raises(StaffSignInFailed):
        staff.sign_in(email, PASSWORD, code(9))  # older
    staff.sign_in(email, PASSWORD, code(11))


def test_each_sign_in_gets_a_new_session_token(staff):
    email = enrolled(staff)
    first = staff.sign_in(email, PASSWORD, code(1))
    second = staff.sign_in(email, PASSWORD, code(2))
    assert first.token != second.token
    assert staff.find(email).active_sessions == 2


def test_signing_out_ends_only_that_session(staff):
    email = enrolled(staff)
    first = staff.sign_in(email, PASSWORD, code(1))
    second = staff.sign_in(email, PASSWORD, code(2))
    staff.sign_out(first.staff_id, first.token)
    with pytest.raises(StaffSessionInvalid):
        staff.authenticate(first.staff_id, first.token)
    assert staff.authenticate(second.staff_id, second.token).email == email


def test_revoking_ends_every_session(staff):
    email = enrolled(staff)
    sessions = [staff.sign_in(email, PASSWORD, code(step)) for step in (1, 2)]
    assert staff.revoke_sessions(staff.staff_id_for(email), actor="admin") == 2
    for session in sessions:
        with pytest.raises(StaffSessionInvalid):
            staff.authenticate(session.staff_id, session.token)
    assert staff.find(email).active_sessions == 0


def test_disabling_ends_sessions_and_refuses_sign_in_until_enabled(staff):
    email = enrolled(staff)
    session = staff.sign_in(email, PASSWORD, code(1))
    staff.disable(session.staff_id, actor="admin")
    with pytest.raises(StaffSessionInvalid):
        staff.authenticate(session.staff_id, session.token)
    with pytest.raises(StaffSignInFailed):
        staff.sign_in(email, PASSWORD, code(2))
    staff.enable(session.staff_id, actor="admin")
    staff.sign_in(email, PASSWORD, code(3))


def test_reset_ends_sessions_and_the_old_password_until_enrolled_again(staff):
    email = enrolled(staff)
    session = staff.sign_in(email, PASSWORD, code(1))
    token = staff.reset(session.staff_id, actor="admin")
    with pytest.raises(StaffSessionInvalid):
        staff.authenticate(session.staff_id, session.token)
    with pytest.raises(StaffSignInFailed):
        staff.sign_in(email, PASSWORD, code(2))
    staff.enrol(
        session.staff_id, token, password_hash="hash:another password", sealed_secret=SEALED
    )
    staff.sign_in(email, "another password", code(3))


def test_sessions_expire(staff, clock):
    email = enrolled(staff)
    session = staff.sign_in(email, PASSWORD, code(1))
    clock.advance(hours=8, seconds=1)
    with pytest.raises(StaffSessionInvalid):
        staff.authenticate(session.staff_id, session.token)


def test_an_enrolment_link_works_once(staff):
    staff_id, token = staff.add("once@example.gov", role="auditor", name="", actor="test")
    assert staff.enrolment(staff_id, token).email == "once@example.gov"
    staff.enrol(staff_id, token, password_hash=f"hash:{PASSWORD}", sealed_secret=SEALED)
    with pytest.raises(EnrolmentInvalid):
        staff.enrolment(staff_id, token)
    with pytest.raises(EnrolmentInvalid):
        staff.enrol(staff_id, token, password_hash="hash:taken over", sealed_secret=SEALED)


def test_an_enrolment_link_expires_after_72_hours(staff, clock):
    staff_id, token = staff.add("late@example.gov", role="officer", name="", actor="test")
    clock.advance(hours=ENROLMENT_HOURS - 1)
    staff.enrolment(staff_id, token)
    clock.advance(hours=1)
    with pytest.raises(EnrolmentInvalid):
        staff.enrolment(staff_id, token)


def test_a_reset_replaces_the_previous_link(staff):
    staff_id, old = staff.add("twice@example.gov", role="officer", name="", actor="test")
    new = staff.reset(staff_id, actor="admin")
    with pytest.raises(EnrolmentInvalid):
        staff.enrolment(staff_id, old)
    staff.enrolment(staff_id, new)


def test_a_link_for_an_unknown_member_or_with_a_wrong_token_is_invalid(staff):
    staff_id, token = staff.add("real@example.gov", role="officer", name="", actor="test")
    with pytest.raises(EnrolmentInvalid):
        staff.enrolment(staff_id, token + "x")
    with pytest.raises(EnrolmentInvalid):
        staff.enrolment(staff.staff_id_for("ghost@example.gov"), token)


def test_the_enrolment_secret_seed_is_stable_per_link(staff):
    staff_id, token = staff.add("seed@example.gov", role="officer", name="", actor="test")
    assert staff.enrolment_secret_seed(staff_id, token) == staff.enrolment_secret_seed(
        staff_id, token
    )
    other = staff.reset(staff_id, actor="admin")
    assert staff.enrolment_secret_seed(staff_id, other) != staff.enrolment_secret_seed(
        staff_id, token
    )


def test_emails_are_normalised_and_one_account_per_address(staff):
    staff_id, _ = staff.add("  Maria.Santos@Example.GOV ", role="admin", name="", actor="test")
    assert staff.get(staff_id).email == "maria.santos@example.gov"
    assert staff.find("MARIA.SANTOS@example.gov").id == staff_id
    assert staff.get(staff_id).name == "maria.santos"
    with pytest.raises(StaffAlreadyExists):
        staff.add("maria.santos@example.gov", role="officer", name="", actor="test")
    assert [m.email for m in staff.list_staff()] == ["maria.santos@example.gov"]


@pytest.mark.parametrize(
    ("email", "role", "field"),
    [
        ("not-an-email", "officer", "email"),
        ("a b@example.gov", "officer", "email"),
        ("x@localhost", "officer", "email"),
        ("ok@example.gov", "superuser", "role"),
    ],
)
def test_bad_email_or_role_is_refused(staff, email, role, field):
    with pytest.raises(InvalidValue) as invalid:
        staff.add(email, role=role, name="", actor="test")
    assert invalid.value.field == field
    assert staff.list_staff() == []


def test_an_unknown_member_is_not_found(staff):
    with pytest.raises(StaffNotFound):
        staff.find("nobody@example.gov")
    with pytest.raises(StaffNotFound):
        staff.disable(staff.staff_id_for("nobody@example.gov"), actor="admin")


def test_the_list_is_sorted_by_role_then_email(staff):
    for email, role in [("b@example.gov", "officer"), ("a@example.gov", "officer")]:
        staff.add(email, role=role, name="", actor="test")
    staff.add("z@example.gov", role="admin", name="", actor="test")
    listed = [(m.role.value, m.email) for m in staff.list_staff()]
    assert listed == [
        ("admin", "z@example.gov"),
        ("officer", "a@example.gov"),
        ("officer", "b@example.gov"),
    ]
