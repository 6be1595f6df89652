"""45,000 submitted registrations against 4,700 places, on a real PostgreSQL."""

from __future__ import annotations

from collections import Counter
from uuid import UUID

import pytest

from domain.allocator import Allocator
from domain.audit import compare_ledgers, recompute_draw
from domain.ledger import Ledger, ledger_id
from domain.registry import Registry
from projections.allocation import AllocationQueries, AllocationView
from projections.persistence import application_env
from projections.runner import catch_up
from projections.views import make_engine, migrate
from tests.conftest import close_and_draw
from tests.integration.seed import seed_submitted

APPLICANTS, CAPACITY, WAITLIST = 45_000, 4_700, 10_000
SECRET = b"s" * 40

pytestmark = pytest.mark.slow


# The lottery at this scale: test_45000_entries_in_a_lottery_with_two_pools_and_late_withdrawals.
@pytest.mark.parametrize("policy", ["first_come"])
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
            close_and_draw(registry, "hcw")

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


def test_45000_entries_in_a_lottery_with_two_pools_and_late_withdrawals(postgres_db):
    """Two reserved pools out of the capacity: one oversubscribed, one with fewer entries than
    places (its unused places move to the general pool after the draw); withdrawals before the
    close, between the close and the draw, and after the draw. README, "Reserved pools"."""
    registry = Registry(
        env=application_env(postgres_db, "Registry", create_table=True), secret=SECRET
    )
    allocator = Allocator(env=application_env(postgres_db, "Allocator", create_table=True))
    pools = {"alternate_format": 300, "braille": 100}
    try:
        registry.define_intake(
            code="two",
            name="Two pools",
            stream="",
            capacity=CAPACITY,
            policy="lottery",
            waitlist_length=WAITLIST,
            pools=pools,
            actor="t",
        )
        registry.open_intake("two", actor="t", beacon="none")
        braille = seed_submitted(registry, SECRET, "two", 40, pool="braille")
        alternate = seed_submitted(registry, SECRET, "two", 2000, start=40, pool="alternate_format")
        general = seed_submitted(registry, SECRET, "two", APPLICANTS - 2040, start=2040, batch=500)
        everyone = braille + alternate + general

        def withdraw(case_id: UUID) -> None:
            version = registry.get_case(case_id).version
            registry.withdraw(case_id, expected_version=version, reason="", idempotency_key="w")

        for case_id in general[:50]:  # before the close: they are not entries
            withdraw(case_id)
        registry.close_intake("two", actor="t")
        catch_up(registry, allocator)
        late = general[50:80] + alternate[:5]  # after the entries are fixed, before the draw
        for case_id in late:
            withdraw(case_id)
        registry.draw("two", actor="t", operator_value="0f" * 32)
        catch_up(registry, allocator)
        intake_id = registry.get_intake("two").id
        ledger = allocator.ledger_of(intake_id)
        assert ledger is not None
        after_draw = [c for c in general if ledger.states.get(c) == "granted"][:20]
        for case_id in after_draw:  # after the draw: their places are offered again
            withdraw(case_id)
        catch_up(registry, allocator)

        events = list(allocator.events.get(ledger_id(intake_id)))
        draw = next(e for e in events if isinstance(e, Ledger.DrawMade))
        assert draw.entries == APPLICANTS - 50
        after = events[events.index(draw) + 1 :]
        decisions = [
            e.case_id
            for e in after
            if isinstance(e, Ledger.PlaceGranted | Ledger.Waitlisted | Ledger.NotSelected)
        ][: draw.entries]
        # every entry got exactly one decision from the draw itself
        assert len(set(decisions)) == draw.entries
        assert set(decisions) == set(everyone) - set(general[:50])
        general_places = CAPACITY - sum(pools.values())  # 4,300: slots 1-4300
        slot_pool = {e.slot: e.pool for e in events if isinstance(e, Ledger.PlaceGranted)}
        held = ledger.holders
        assert len(held) == CAPACITY  # every place is taken, none twice, none beyond capacity
        assert sorted(held) == list(range(1, CAPACITY + 1))
        alternate_set, braille_set = set(alternate), set(braille)
        # alternate_format: slots 4301-4600, all to its own entrants
        assert all(held[s] in alternate_set for s in range(general_places + 1, 4601))
        # braille: slots 4601-4700; its 40 entrants took 4601-4640 and 60 moved to general
        moved = [e for e in events if isinstance(e, Ledger.PlacesMoved)]
        assert [(m.from_pool, m.to_pool, len(m.slots)) for m in moved[:1]] == [
            ("braille", "general", 60)
        ]
        assert moved[0].slots == list(range(4641, 4701))
        assert {held[s] for s in range(4601, 4641)} <= braille_set
        assert all(slot_pool[s] == "general" for s in range(4641, 4701))
        withdrawn = set(general[:80]) | set(alternate[:5]) | set(after_draw)
        assert not withdrawn & set(held.values())
        refused = {e.case_id: e.reason for e in events if isinstance(e, Ledger.NotSelected)}
        assert all(refused[c] == "withdrawn before the draw" for c in late)
        registry_events = [
            registry.mapper.to_domain_event(n)
            for n in registry.recorder.select_notifications(
                start=0, limit=10 * APPLICANTS, topics=Allocator.topics, inclusive_of_start=False
            )
        ]
        audit = recompute_draw(registry_events, events, intake_id)
        assert audit.ok, audit.checks
        replay = Allocator(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        catch_up(registry, replay)
        same, detail = compare_ledgers(events, replay.events.get(ledger_id(intake_id)))
        assert same, detail
        replay.close()
    finally:
        allocator.close()
        registry.close()
