"""The scheduler's jobs against real storage (SQLite), called directly with `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.intake import Intake
from domain.values import IntakeStatus
from projections.allocation import AllocationQueries
from projections.views import make_engine
from projections.worker import Worker
from scheduler import jobs
from tests.conftest import make_app, submit_person

NOW = datetime.now(UTC)


@pytest.fixture
def setup(sqlite_env):
    app = make_app(sqlite_env, capacity=1)
    registry = app.extensions["carepath.registry"]
    engine = make_engine(sqlite_env)
    yield registry, AllocationQueries(engine), Worker(sqlite_env, b"s" * 40)
    engine.dispose()
    registry.close()


def submit(registry, n, code="test"):
    return submit_person(registry, code, n)


def test_intakes_open_and_close_at_their_times_once(setup):
    registry, _, _ = setup
    registry.define_intake(
        code="timed",
        name="T",
        stream="",
        capacity=5,
        policy="lottery",
        opens_at=NOW + timedelta(hours=1),
        closes_at=NOW + timedelta(hours=2),
        actor="t",
    )
    assert jobs.open_due_intakes(registry, NOW) == []
    assert jobs.open_due_intakes(registry, NOW + timedelta(hours=1)) == ["timed"]
    assert jobs.open_due_intakes(registry, NOW + timedelta(hours=1, minutes=1)) == []
    assert jobs.close_due_intakes(registry, NOW + timedelta(hours=1, minutes=5)) == []
    assert jobs.close_due_intakes(registry, NOW + timedelta(hours=2)) == ["timed"]
    assert jobs.close_due_intakes(registry, NOW + timedelta(hours=3)) == []
    kinds = [type(e).__name__ for e in registry.events.get(Intake.create_id("timed"))]
    assert kinds == ["Defined", "Opened", "Closed"]


def test_an_intake_whose_window_passed_unopened_is_not_opened_late(setup):
    registry, _, _ = setup
    registry.define_intake(
        code="missed",
        name="M",
        stream="",
        capacity=5,
        policy="first_come",
        opens_at=NOW - timedelta(hours=2),
        closes_at=NOW - timedelta(hours=1),
        actor="t",
    )
    assert jobs.open_due_intakes(registry, NOW) == []
    assert registry.get_intake("missed").status is IntakeStatus.DEFINED


def test_overdue_offers_are_found_in_the_read_model_and_expired_once(setup):
    registry, queries, worker = setup
    first, second = submit(registry, 1), submit(registry, 2)
    worker.settle()
    assert jobs.expire_overdue_offers(registry, queries, NOW + timedelta(days=27)) == []
    later = NOW + timedelta(days=29)
    assert jobs.expire_overdue_offers(registry, queries, later) == ["test"]
    worker.settle()
    assert queries.of_case(first).state == "expired"
    offer = queries.of_case(second)
    assert offer.state == "granted"
    assert offer.deadline == later + timedelta(days=28)
    assert offer.deadline.tzinfo is not None
    assert jobs.expire_overdue_offers(registry, queries, later + timedelta(minutes=1)) == []


def test_a_full_first_come_intake_closes_itself(setup):
    registry, queries, worker = setup
    registry.define_intake(
        code="small",
        name="S",
        stream="",
        capacity=1,
        policy="first_come",
        waitlist_length=2,
        actor="t",
    )
    registry.open_intake("small", actor="t")
    for n in range(2):
        submit(registry, n, "small")
    worker.settle()
    assert jobs.close_full_intakes(registry, queries, NOW) == []
    submit(registry, 3, "small")
    worker.settle()
    assert jobs.close_full_intakes(registry, queries, NOW) == ["small"]
    assert registry.get_intake("small").status is IntakeStatus.CLOSED
