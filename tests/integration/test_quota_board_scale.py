"""45,000 entries against 4,700 places on a real PostgreSQL: the quota board's counts are those of
the Ledger and of the Registry's cases at the same log positions, and no position of the log ever
holds more places than the capacity."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

import pytest

from domain.allocator import Allocator
from domain.case import Case
from domain.casework import Casework
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from projections.allocation import HOLDING, AllocationQueries, AllocationView
from projections.casework import CaseworkView
from projections.officer import OfficerQueries
from projections.persistence import application_env
from projections.rebuild import status
from projections.runner import catch_up
from projections.views import make_engine, migrate
from tests.conftest import send_application
from tests.integration.seed import seed_submitted
from tests.integration.test_rebuild import Roster, staff_member

APPLICANTS, CAPACITY, WAITLIST = 45_000, 4_700, 10_000
WITHDRAWALS, ACCEPTED, RETURNED = 300, 60, 30
SECRET = b"s" * 40

pytestmark = pytest.mark.slow

# What each Case event counts on the board, as the casework view names it.
CASE_METRICS = {
    Case.Registered: "registered",
    Case.Submitted: "submitted",
    Case.Withdrawn: "withdrawn",
    Case.ApplicationSubmitted: "application_submitted",
    Case.AcceptedForProcessing: "accepted",
    Case.ReturnedIncomplete: "returned",
    Case.Approved: "approved",
    Case.Refused: "refused",
}


def events_until(app, topics, stop: int) -> list:
    found, after = [], 0
    while page := app.recorder.select_notifications(
        start=after, limit=10_000, stop=stop, topics=topics, inclusive_of_start=False
    ):
        found.extend(app.mapper.to_domain_event(n) for n in page)
        after = page[-1].id
    return found


def test_the_board_counts_what_the_ledger_and_the_cases_hold_and_never_more_than_capacity(
    postgres_db,
):
    registry = Registry(
        env=application_env(postgres_db, "Registry", create_table=True), secret=SECRET
    )
    allocator = Allocator(env=application_env(postgres_db, "Allocator", create_table=True))
    migrate(postgres_db)
    engine = make_engine(postgres_db)
    casework, allocation = CaseworkView(engine), AllocationView(engine)

    def settle() -> None:
        while (
            catch_up(registry, allocator, batch=2_000)
            + catch_up(registry, casework, batch=2_000)
            + catch_up(allocator, allocation, batch=2_000)
        ):
            pass

    try:
        # Given 45,000 entries, withdrawals of every kind, and officers accepting and returning
        registry.define_intake(
            code="hcw",
            name="HCW",
            stream="",
            capacity=CAPACITY,
            policy="first_come",
            waitlist_length=WAITLIST,
            actor="t",
        )
        registry.open_intake("hcw", actor="t")
        entries = seed_submitted(registry, SECRET, "hcw", APPLICANTS, batch=500)
        settle()
        rng = random.Random(7)
        for case_id in rng.sample(entries, WITHDRAWALS):
            registry.withdraw(
                case_id, expected_version=4, reason="x", idempotency_key=f"w{case_id}"
            )
        settle()
        officer = staff_member()
        places = AllocationQueries(engine)

        def holds_place(case_id: UUID) -> bool:
            found = places.of_case(case_id)
            return found is not None and found.state in HOLDING

        work = Casework(registry, Roster(officer), holds_place)  # type: ignore[arg-type]
        holders = [c for c in entries[:CAPACITY] if holds_place(c)]
        for n, case_id in enumerate(holders[: ACCEPTED + RETURNED]):
            send_application(registry, case_id)  # the completeness check follows stage two
            common = {"officer": officer, "expected_version": 5, "idempotency_key": f"o{n}"}
            if n < ACCEPTED:
                work.accept_for_processing(case_id, **common)
            else:
                work.return_incomplete(case_id, ["documents_missing"], "", **common)
        registry.check_deadlines("hcw", datetime.now(UTC).replace(year=2100), actor="t")
        settle()

        # When the board is read, at the views' positions
        intake_id = registry.get_intake("hcw").id
        queries = OfficerQueries(engine)
        board = queries.board(intake_id)
        at = queries.positions()
        registry_at, allocator_at = (
            at["casework_view"]["Registry"],
            at["allocation_view"]["Allocator"],
        )
        lags = status(engine, {"Registry": registry, "Allocator": allocator})
        assert [s.lag for s in lags] == [0, 0]

        # Then its allocation counts are the Ledger's at that position
        ledger_events = events_until(allocator, (), allocator_at)
        ledger = allocator.repository.get(ledger_id(intake_id), version=len(ledger_events))
        states = Counter(ledger.states.values())
        assert {k: v for k, v in board.totals.places.items() if v} == dict(states)
        assert board.totals.held == ledger.granted == CAPACITY
        assert board.totals.places_left == 0
        assert states["accepted"] == ACCEPTED
        assert states["returned_incomplete"] == RETURNED
        assert states["expired"] > 0
        assert states["withdrawn"] > 0
        general = board.pools[0]
        assert general.pool == "general"
        assert general.places["granted"] + general.places["accepted"] == CAPACITY
        # (cases not selected on arrival have no pool in the ledger: they are in the totals only)
        assert board.totals.places["not_selected"] == APPLICANTS - CAPACITY - WAITLIST

        # And its casework counts are those of the Registry's cases at that position
        metrics = Counter(
            CASE_METRICS[type(e)]
            for e in events_until(registry, CaseworkView.topics, registry_at)
            if type(e) in CASE_METRICS
        )
        assert {k: v for k, v in board.totals.cases.items() if v} == dict(metrics)
        assert metrics["registered"] == metrics["submitted"] == APPLICANTS
        assert metrics["withdrawn"] == WITHDRAWALS
        assert general.cases == board.totals.cases

        # And no position of the Allocator's log ever held more places than the capacity
        held, most = 0, 0
        for e in ledger_events:
            if isinstance(e, Ledger.PlaceGranted):
                held += 1
            elif isinstance(e, Ledger.PlaceReleased):
                held -= 1
            assert held <= CAPACITY, f"{held} places held at ledger version {e.originator_version}"
            most = max(most, held)
        assert held == most == CAPACITY
        series = queries.series(intake_id)
        assert max(m.held for m in series) <= CAPACITY
        assert series[-1].held == CAPACITY
        assert sum(m.registered for m in series) == APPLICANTS
    finally:
        engine.dispose()
        allocator.close()
        registry.close()
