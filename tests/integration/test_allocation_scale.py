"""45,000 submitted registrations against 4,700 places, on a real PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.allocator import Allocator
from domain.audit import recompute_draw
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from projections.allocation import AllocationQueries, AllocationView
from projections.persistence import application_env
from projections.runner import catch_up
from projections.views import make_engine, migrate
from tests.integration.seed import seed_submitted

APPLICANTS, CAPACITY, WAITLIST = 45_000, 4_700, 10_000
SECRET = b"s" * 40

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("policy", ["first_come", "lottery"])
def test_45000_entries_end_with_exactly_4700_places_and_an_explicit_decision_for_everyone(
    postgres_db, policy
):
    registry = Registry(
        env=application_env(postgres_db, "Registry", create_table=True), secret=SECRET
    )
    allocator = Allocator(env=application_env(postgres_db, "Allocator", create_table=True))
    assert type(allocator.recorder).__name__ == "UnpipelinedPostgresProcessRecorder"
    migrate(postgres_db)
    engine = make_engine(postgres_db)
    try:
        registry.define_intake(
            code="hcw",
            name="HCW",
            stream="",
            capacity=CAPACITY,
            policy=policy,
            waitlist_length=WAITLIST,
            actor="t",
        )
        registry.open_intake("hcw", actor="t")
        entries = seed_submitted(registry, SECRET, "hcw", APPLICANTS, batch=500)
        if policy == "lottery":
            registry.close_intake("hcw", actor="t")

        catch_up(registry, allocator)
        catch_up(allocator, AllocationView(engine))

        intake_id = registry.get_intake("hcw").id
        events = list(allocator.events.get(ledger_id(intake_id)))
        granted = [e for e in events if isinstance(e, Ledger.PlaceGranted)]
        decided = Counter(
            e.case_id
            for e in events
            if isinstance(e, Ledger.PlaceGranted | Ledger.Waitlisted | Ledger.NotSelected)
        )
        assert len(granted) == CAPACITY
        assert sorted(e.slot for e in granted) == list(range(1, CAPACITY + 1))
        assert len({e.case_id for e in granted}) == CAPACITY
        assert set(decided) == set(entries)  # every entry got an explicit decision ...
        assert set(decided.values()) == {1}  # ... exactly one
        kinds = Counter(type(e).__name__ for e in events)
        assert kinds["Waitlisted"] == WAITLIST
        assert kinds["NotSelected"] == APPLICANTS - CAPACITY - WAITLIST
        assert kinds["Invited"] == CAPACITY

        quota = {q.intake_id: q for q in AllocationQueries(engine).quotas()}[intake_id]
        assert quota.counts == {
            "granted": CAPACITY,
            "waitlisted": WAITLIST,
            "not_selected": APPLICANTS - CAPACITY - WAITLIST,
        }
        if policy == "lottery":
            registry_events = [
                registry.mapper.to_domain_event(n)
                for n in registry.recorder.select_notifications(
                    start=0,
                    limit=10 * APPLICANTS,
                    topics=Allocator.topics,
                    inclusive_of_start=False,
                )
            ]
            audit = recompute_draw(registry_events, events, intake_id)
            assert audit.ok, audit.checks
            assert audit.entries == APPLICANTS
    finally:
        engine.dispose()
        allocator.close()
        registry.close()
