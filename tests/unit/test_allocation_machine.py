"""A Hypothesis state machine over the Registry and the Allocator: the quota is never exceeded.

Rules: register, submit, withdraw, submit again (a duplicate), expire offers, run the allocator a
few events at a time, restart the allocator (a new instance reading its own store). Invariants
after every step: never more places than capacity, never two places for one case, every slot in
1..capacity. After the allocator settles: granted == min(capacity, eligible entries).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from domain import errors
from domain.allocator import Allocator
from domain.audit import compare_ledgers
from domain.intake import Intake
from domain.ledger import ledger_id
from domain.registry import Registry
from projections.runner import catch_up
from tests.conftest import SECRET, about_you

DEADLINE_DAYS = 10


class AllocationMachine(RuleBasedStateMachine):
    @initialize(capacity=st.integers(1, 4), pooled=st.booleans(), crowd=st.integers(0, 8))
    def start(self, capacity: int, pooled: bool, crowd: int) -> None:
        self.folder = tempfile.TemporaryDirectory()
        self.registry = Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, secret=SECRET)
        pools = {"alternate": 1} if pooled and capacity > 1 else {}
        self.capacity = capacity
        self.registry.define_intake(
            code="mm",
            name="M",
            stream="",
            capacity=capacity,
            policy="first_come",
            document_deadline_days=DEADLINE_DAYS,
            pools=pools,
            actor="t",
        )
        self.registry.open_intake("mm", actor="t")
        self.pools = ["general", *pools]
        self.intake_id = Intake.create_id("mm")
        self.allocator = self._new_allocator()
        self.people = 0
        self.drafts: dict[UUID, int] = {}  # case -> version
        self.submitted: dict[UUID, int] = {}
        self.withdrawn: set[UUID] = set()
        self.now = datetime.now(UTC)
        self.register(["general"] * (capacity + crowd))  # more people than places, often

    def _new_allocator(self) -> Allocator:
        path = Path(self.folder.name) / "allocator.sqlite"
        return Allocator(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "ALLOCATOR_SQLITE_DBNAME": str(path)}
        )

    def teardown(self) -> None:
        if hasattr(self, "allocator"):
            self.allocator.close()
            self.registry.close()
            self.folder.cleanup()

    @property
    def ledger(self):
        return self.allocator.ledger_of(self.intake_id)

    # Rules

    @rule(pools=st.lists(st.sampled_from(["general", "alternate"]), min_size=1, max_size=4))
    def register(self, pools: list[str]) -> None:
        for pool in pools:
            self.people += 1
            chosen = pool if pool in self.pools else "general"
            done = self.registry.register(
                "mm",
                about_you(self.people),
                language="en",
                idempotency_key=f"r{self.people}",
                pool=chosen,
            )
            self.registry.save_step(
                done.case_id,
                "contact",
                {"email": "a@b.c"},
                expected_version=1,
                language="en",
                idempotency_key=f"c{self.people}",
            )
            self.registry.save_step(
                done.case_id,
                "eligibility",
                {"consent": True},
                expected_version=2,
                language="en",
                idempotency_key=f"e{self.people}",
            )
            self.drafts[done.case_id] = 3

    @precondition(lambda self: self.drafts)
    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.drafts)), min_size=1, unique=True))
        for case_id in chosen:
            version = self.drafts.pop(case_id)
            self.registry.submit(
                case_id, expected_version=version, language="en", idempotency_key=f"s{case_id.hex}"
            )
            self.submitted[case_id] = version + 1

    @precondition(lambda self: self.submitted)
    @rule(data=st.data())
    def submit_again(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(sorted(self.submitted)))
        try:  # the same request replayed returns its outcome; a new one is refused
            self.registry.submit(
                case_id,
                expected_version=self.submitted[case_id] - 1,
                language="en",
                idempotency_key=f"s{case_id.hex}",
            )
        except errors.CaseClosed:
            assert case_id in self.withdrawn
        try:
            self.registry.submit(
                case_id,
                expected_version=self.submitted[case_id],
                language="en",
                idempotency_key=f"again{case_id.hex}",
            )
        except errors.CaseClosed:
            pass
        else:
            raise AssertionError("a second submission was accepted")

    @precondition(lambda self: set(self.submitted) - self.withdrawn)
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(sorted(set(self.submitted) - self.withdrawn)))
        self.registry.withdraw(
            case_id,
            expected_version=self.submitted[case_id],
            reason="",
            idempotency_key=f"w{case_id.hex}",
        )
        self.withdrawn.add(case_id)
        self.submitted[case_id] += 1

    @rule()
    def expire_offers(self) -> None:
        self.now += timedelta(days=DEADLINE_DAYS + 1)
        self.registry.check_deadlines("mm", self.now, actor="t")

    @rule(batch=st.integers(1, 7))
    def allocate_some(self, batch: int) -> None:
        items = self.registry.recorder.select_notifications(
            start=self.allocator.position(self.registry.name),
            limit=batch,
            topics=self.allocator.topics,
            inclusive_of_start=False,
        )
        self.allocator.process_batch(
            [
                (self.registry.mapper.to_domain_event(n), Tracking(self.registry.name, n.id))
                for n in items
            ]
        )

    @rule()
    def restart_allocator(self) -> None:
        self.allocator.close()
        self.allocator = self._new_allocator()

    @rule()
    def settle(self) -> None:
        catch_up(self.registry, self.allocator, batch=3)
        ledger = self.ledger
        expired = {c for c, state in ledger.states.items() if state == "expired"}
        eligible = set(self.submitted) - self.withdrawn - expired
        if len(self.pools) == 1:
            assert ledger.granted == min(self.capacity, len(eligible))
        else:  # each pool fills from its own entrants
            assert ledger.granted == self._filled_by_pool(eligible)

    def _filled_by_pool(self, eligible: set[UUID]) -> int:
        ledger = self.ledger
        expected = 0
        for pool, (low, high) in ledger.slot_ranges.items():
            entrants = [c for c in eligible if self._pool_of(c) == pool]
            expected += min(high - low + 1, len(entrants))
        return expected

    def _pool_of(self, case_id: UUID) -> str:
        return self.registry.repository.get(case_id).pool

    # Invariants

    @invariant()
    def never_more_places_than_capacity(self) -> None:
        ledger = self.ledger
        if ledger is None:
            return
        assert ledger.granted <= self.capacity
        assert all(1 <= slot <= self.capacity for slot in ledger.holders)
        assert len(set(ledger.holders.values())) == len(ledger.holders)  # one place per case
        assert set(ledger.slot_of) == set(ledger.holders.values())
        for pool, (low, high) in ledger.slot_ranges.items():
            in_pool = [s for s in ledger.holders if low <= s <= high]
            assert len(in_pool) <= high - low + 1, pool

    @invariant()
    def the_stored_ledger_is_what_a_replay_of_the_log_records(self) -> None:
        if self.ledger is None:
            return
        position = self.allocator.position(self.registry.name)
        replay = Allocator(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        notes = self.registry.recorder.select_notifications(
            start=0, limit=10_000, stop=position, topics=replay.topics, inclusive_of_start=False
        )
        if notes:
            replay.process_batch(
                [
                    (self.registry.mapper.to_domain_event(n), Tracking(self.registry.name, n.id))
                    for n in notes
                ]
            )
        stored = list(self.allocator.events.get(ledger_id(self.intake_id)))
        same, detail = compare_ledgers(stored, replay.events.get(ledger_id(self.intake_id)))
        assert same, detail


AllocationMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAllocationMachine = AllocationMachine.TestCase
