"""Recovery of a lost access code: who may ask, what is recorded, and what a link can do."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.case import Case
from domain.errors import (
    InvalidValue,
    RecoveryLinkExpired,
    RecoveryLinkInvalid,
    RecoveryLinkUsed,
    SignInFailed,
)
from domain.recovery import Recovery
from domain.registry import Registry
from tests.conftest import SECRET, about_you
from tests.recovery_helpers import recovery_requests_of, recovery_token_of

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
BIRTH = date(1985, 4, 27)  # about_you()'s date of birth


def registered(registry: Registry, n: int = 1, *, email: bool = True) -> Any:
    """Person n registered in intake `test`, with the contact step saved when `email`."""
    done = registry.register("test", about_you(n), language="en", idempotency_key=f"reg-{n}")
    if email:
        registry.save_step(
            done.case_id,
            "contact",
            {"email": f"p{n}@example.org"},
            expected_version=1,
            language="en",
            idempotency_key=f"contact-{n}",
        )
    return done


def events(registry: Registry, case_id: UUID) -> list[Any]:
    return list(registry.repository.event_store.get(case_id))


@pytest.fixture
def recovery(registry: Registry) -> Recovery:
    return Recovery(registry, secret=SECRET)


def test_matching_reference_and_birth_date_record_a_request_that_expires_in_30_minutes(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)

    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="fr", now=NOW)

    [requested] = recovery_requests_of(registry, done.case_id)
    assert requested.expires_at == NOW + timedelta(minutes=30)
    assert requested.language == "fr"
    assert len(requested.request_id) == 32


def test_a_reference_is_matched_as_typed_in_lower_case_without_hyphens(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)

    recovery.request(
        reference=done.reference.replace("-", "").lower(), date_of_birth=BIRTH, language="en"
    )

    assert len(recovery_requests_of(registry, done.case_id)) == 1


def test_passport_details_and_birth_date_find_the_case_without_the_reference(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)

    recovery.request(passport=("p 0000-0001", "ph"), date_of_birth=BIRTH, language="en", now=NOW)

    assert len(recovery_requests_of(registry, done.case_id)) == 1


@pytest.mark.parametrize(
    "details",
    [
        {"reference": "WRONG"},
        {"reference": "7K2M-9QXD-R"},  # well formed, nobody's
        {"reference": None, "date_of_birth": date(1985, 4, 28)},  # the case's, wrong birth date
        {"passport": ("P00000002", "PH")},
        {"passport": ("P00000001", "CA")},
        {"passport": ("P00000001", "PH"), "date_of_birth": date(1985, 4, 28)},
    ],
)
def test_details_that_match_no_case_record_nothing_and_return_the_same(
    registry: Registry, recovery: Recovery, details: dict[str, Any]
) -> None:
    done = registered(registry)
    before = registry.recorder.max_notification_id()
    given = {"date_of_birth": BIRTH, **details}
    if "reference" in given and given["reference"] is None:
        given["reference"] = done.reference

    answer = recovery.request(language="en", now=NOW, **given)

    assert answer is None
    assert registry.recorder.max_notification_id() == before


def test_a_case_without_an_email_address_records_nothing(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry, email=False)

    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)

    assert recovery_requests_of(registry, done.case_id) == []


def test_giving_both_or_neither_of_reference_and_passport_is_refused(
    recovery: Recovery,
) -> None:
    with pytest.raises(InvalidValue):
        recovery.request(date_of_birth=BIRTH, language="en")
    with pytest.raises(InvalidValue):
        recovery.request(
            reference="7K2M-9QXD-4", passport=("P1", "PH"), date_of_birth=BIRTH, language="en"
        )


def test_following_the_link_sets_a_new_code_and_the_old_one_stops_working(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)

    recovered = recovery.reset(token, idempotency_key="k" * 24, now=NOW + timedelta(minutes=29))

    assert recovered.reference == done.reference
    assert not recovered.replayed
    assert recovered.access_code != done.access_code
    assert registry.sign_in(done.reference, recovered.access_code) == done.case_id
    with pytest.raises(SignInFailed):
        registry.sign_in(done.reference, done.access_code)
    reset = events(registry, done.case_id)[-1]
    assert isinstance(reset, Case.AccessCodeReset)
    assert recovered.access_code not in repr(reset)  # only its hash is recorded


def test_a_used_link_is_refused(registry: Registry, recovery: Recovery) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)
    first = recovery.reset(token, idempotency_key="a" * 24, now=NOW)

    with pytest.raises(RecoveryLinkUsed):
        recovery.reset(token, idempotency_key="b" * 24, now=NOW)

    assert registry.sign_in(done.reference, first.access_code) == done.case_id


def test_a_retry_of_the_same_reset_shows_the_same_code_and_records_nothing_more(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)
    first = recovery.reset(token, idempotency_key="a" * 24, now=NOW)
    recorded = len(events(registry, done.case_id))

    again = recovery.reset(token, idempotency_key="a" * 24, now=NOW + timedelta(hours=2))

    assert again.access_code == first.access_code
    assert again.replayed
    assert len(events(registry, done.case_id)) == recorded


def test_a_retry_after_a_later_reset_is_refused_rather_than_showing_a_dead_code(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    recovery.reset(
        recovery_token_of(registry, SECRET, done.case_id), idempotency_key="a" * 24, now=NOW
    )
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)
    recovery.reset(token, idempotency_key="b" * 24, now=NOW)

    with pytest.raises(RecoveryLinkUsed):
        recovery.reset(token, idempotency_key="a" * 24, now=NOW)


def test_an_expired_link_is_refused_and_changes_nothing(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)
    recorded = len(events(registry, done.case_id))

    with pytest.raises(RecoveryLinkExpired):
        recovery.reset(token, idempotency_key="a" * 24, now=NOW + timedelta(minutes=30))

    assert len(events(registry, done.case_id)) == recorded
    assert registry.sign_in(done.reference, done.access_code) == done.case_id


def test_a_newer_request_replaces_the_older_link(registry: Registry, recovery: Recovery) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    older = recovery_token_of(registry, SECRET, done.case_id)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    newer = recovery_token_of(registry, SECRET, done.case_id)

    with pytest.raises(RecoveryLinkUsed):
        recovery.reset(older, idempotency_key="a" * 24, now=NOW)
    assert recovery.reset(newer, idempotency_key="b" * 24, now=NOW).access_code


@pytest.mark.parametrize("change", ["mac", "request", "case", "shape"])
def test_a_forged_or_altered_link_is_refused(
    registry: Registry, recovery: Recovery, change: str
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    case_hex, request_id, mac = recovery_token_of(registry, SECRET, done.case_id).split(".")
    flip = {"0": "1"}
    forged = {
        "mac": f"{case_hex}.{request_id}.{''.join(flip.get(c, '0') for c in mac)}",
        "request": f"{case_hex}.{'0' * 32}.{mac}",
        "case": f"{'0' * 32}.{request_id}.{mac}",
        "shape": f"{case_hex}.{request_id}",
    }[change]

    with pytest.raises(RecoveryLinkInvalid) as refused:
        recovery.reset(forged, idempotency_key="a" * 24, now=NOW)

    assert type(refused.value) is RecoveryLinkInvalid
    assert registry.sign_in(done.reference, done.access_code) == done.case_id


def test_a_link_made_with_another_secret_is_refused(registry: Registry) -> None:
    done = registered(registry)
    Recovery(registry, secret=SECRET).request(
        reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW
    )
    token = recovery_token_of(registry, b"another-secret-" + b"y" * 32, done.case_id)

    with pytest.raises(RecoveryLinkInvalid):
        Recovery(registry, secret=SECRET).reset(token, idempotency_key="a" * 24, now=NOW)


def test_the_rate_key_is_the_same_for_reference_and_passport_of_one_person(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    other = registered(registry, 2)

    by_reference = recovery.rate_key(reference=done.reference.lower())
    by_passport = recovery.rate_key(passport=("P00000001", "ph"))

    assert by_reference == by_passport
    assert by_reference != recovery.rate_key(reference=other.reference)
    assert recovery.rate_key(reference="7K2M-9QXD-R") != recovery.rate_key(reference="WRONG")


def test_the_link_lifetime_is_configurable(registry: Registry) -> None:
    done = registered(registry)
    recovery = Recovery(registry, secret=SECRET, link_minutes=5)

    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)

    [requested] = recovery_requests_of(registry, done.case_id)
    assert requested.expires_at == NOW + timedelta(minutes=5)


def test_checking_a_link_says_what_a_reset_would_and_changes_nothing(
    registry: Registry, recovery: Recovery
) -> None:
    done = registered(registry)
    recovery.request(reference=done.reference, date_of_birth=BIRTH, language="en", now=NOW)
    token = recovery_token_of(registry, SECRET, done.case_id)
    recorded = len(events(registry, done.case_id))

    recovery.check(token, now=NOW)
    with pytest.raises(RecoveryLinkExpired):
        recovery.check(token, now=NOW + timedelta(minutes=31))
    with pytest.raises(RecoveryLinkInvalid):
        recovery.check(token[:-1] + ("1" if token[-1] == "0" else "0"), now=NOW)

    assert len(events(registry, done.case_id)) == recorded
    recovery.reset(token, idempotency_key="a" * 24, now=NOW)
    with pytest.raises(RecoveryLinkUsed):
        recovery.check(token, now=NOW)
