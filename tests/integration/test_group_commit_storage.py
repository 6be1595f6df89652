"""Group commit on real storage: batches really form, conflicts fail alone, nothing acknowledged
is lost, and the log's order is each transaction's order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from domain import errors
from domain.case import Case, CaseReference
from domain.registry import Registry
from projections.persistence import application_env
from tests.conftest import about_you

SECRET = b"g" * 40


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request):
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_env")
    return request.getfixturevalue("postgres_db")


def test_concurrent_registrations_are_batched_durably_and_in_order(storage):
    registry = Registry(env=application_env(storage, "Registry", create_table=True), secret=SECRET)
    registry.define_intake(
        code="gc", name="GC", stream="", capacity=5, policy="first_come", actor="t"
    )
    registry.open_intake("gc", actor="t")
    people = [*range(300), 5, 50, 150]  # three people try twice

    def attempt(n_and_try):
        n, attempt_no = n_and_try
        try:
            return registry.register(
                "gc",
                about_you(n),
                language="en",
                idempotency_key=f"key-{n}-{attempt_no:04d}-xxxxxxxx",
            )
        except errors.DuplicateRegistration:
            return None

    try:
        with ThreadPoolExecutor(64) as pool:
            outcomes = list(pool.map(attempt, [(n, i) for i, n in enumerate(people)]))
        committer = registry.group_commit
        assert committer is not None
        assert committer.batches < committer.saves  # requests really shared transactions
    finally:
        registry.close()
    acknowledged = [o for o in outcomes if o is not None]
    assert len(acknowledged) == 300
    assert outcomes.count(None) == 3

    # a fresh instance (new connections) finds every acknowledged registration
    reader = Registry(env=application_env(storage, "Registry", create_table=False), secret=SECRET)
    try:
        for done in acknowledged:
            assert reader.get_case(done.case_id).reference == done.reference
        notifications = reader.recorder.select_notifications(start=0, limit=10_000)
        ids = [n.id for n in notifications]
        assert ids == sorted(ids)
        events = [reader.mapper.to_domain_event(n) for n in notifications]
        registered = [e for e in events if isinstance(e, Case.Registered)]
        assert len(registered) == 300  # one per person, never two
        # each request's events are adjacent in the log: a case and its reference pointer
        for position, event in enumerate(events):
            if isinstance(event, Case.Registered):
                pointer = events[position + 1]
                assert isinstance(pointer, CaseReference.Assigned)
                assert pointer.case_id == event.originator_id
    finally:
        reader.close()
