"""The allocator: the single writer that follows the Registry's log and records every decision.

It is an eventsourcing EventSourcedProjection: each batch of decisions is written to the Ledgers
together with the position in the Registry's log it has reached, in one transaction, so after a
crash it resumes exactly where the last commit left off and no decision is made twice. Every
decision depends only on the events it reads (times included), so replaying the Registry's log
into a fresh Allocator reproduces the Ledgers event for event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import get_topic

from domain.case import Case
from domain.errors import AllocationError
from domain.intake import Intake
from domain.ledger import Ledger, ledger_id
from domain.policies import commitment, draw_seed, entries_digest, fairness, lottery_ranking
from domain.values import GENERAL_POOL, Policy, UnusedReserved

FOLLOWED = (
    Intake.Defined,
    Intake.Opened,
    Intake.Closed,
    Intake.DrawInputsRecorded,
    Intake.DeadlinesChecked,
    Case.Submitted,
    Case.Withdrawn,
    Case.ApplicationSubmitted,
    Case.AcceptedForProcessing,
    Case.ReturnedIncomplete,
)

LATE = "submitted after the intake closed"
WAITLIST_FULL = "the waitlist was full"
NOT_DRAWN = "not drawn"
WITHDRAWN_BEFORE_DRAW = "withdrawn before the draw"


class Allocator(EventSourcedProjection[UUID]):
    """Grants places in slot order, keeps waitlists, invites, releases and re-offers places."""

    name = "Allocator"
    topics = tuple(get_topic(cls) for cls in FOLLOWED)

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        # The allocator is the only writer of the Ledgers, so what it holds in memory is current.
        # Dropped whenever a batch fails, so a failed batch never leaves half-applied state.
        self._ledgers: dict[UUID, Ledger] = {}

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.process_batch([(domain_event, tracking)])

    def process_batch(self, items: Sequence[tuple[Any, Tracking]]) -> int:
        """Decide on each event in order; write all decisions and the last position in one go."""
        if not items:
            return 0
        with self.processing_lock:
            processing = ProcessingEvent[UUID](tracking=items[-1][1])
            try:
                for domain_event, _ in items:
                    self.policy(domain_event, processing)
                recordings = self._record(processing)
            except BaseException:
                self._ledgers.clear()
                raise
        self._notify(recordings)
        return len(processing.events)

    def position(self, source_name: str) -> int:
        """The last position of the source's log that has been decided on (0: none)."""
        return self.recorder.max_tracking_id(source_name) or 0

    def ledger_of(self, intake_id: UUID) -> Ledger | None:
        found = self._ledgers.get(intake_id)
        if found is None:
            try:
                found = self.repository.get(ledger_id(intake_id))
            except AggregateNotFoundError:
                return None
            assert isinstance(found, Ledger)
            self._ledgers[intake_id] = found
        return found

    # The policy: one method per followed event.

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Events not followed change nothing (their position is still recorded)."""

    @policy.register
    def _(self, e: Intake.Defined, processing: ProcessingEvent[UUID]) -> None:
        ledger = Ledger(
            intake_id=e.originator_id,
            policy=e.policy,
            capacity=e.capacity,
            pools=e.pools,
            waitlist_length=e.waitlist_length,
            document_deadline_days=e.document_deadline_days,
            unused_reserved=e.unused_reserved,
        )
        self._ledgers[e.originator_id] = ledger
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Intake.Opened, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.originator_id)
        if e.seed_commitment:
            ledger.commit_seed(e.seed_commitment)
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Intake.Closed, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.originator_id)
        ledger.close(at=e.timestamp)
        deadline = self._deadline(ledger, e.timestamp)
        if ledger.policy is Policy.FIRST_COME:
            self._give_unused(ledger, deadline)
        elif e.seed:  # a legacy lottery: the seed committed at opening, revealed now
            if ledger.commitment is None or commitment(e.seed) != ledger.commitment:
                raise AllocationError(
                    f"the revealed seed of intake {ledger.intake_id} does not match its commitment"
                )
            self._draw(ledger, e.seed, deadline)
        else:  # the entries are fixed now; the draw waits for its randomness
            ledger.fix_entries(entries_digest(ledger.entries))
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Intake.DrawInputsRecorded, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.originator_id)
        if ledger.commitment is None or commitment(e.secret) != ledger.commitment:
            raise AllocationError(
                f"the revealed secret of intake {ledger.intake_id} does not match its commitment"
            )
        if not ledger.fixed:
            raise AllocationError(f"the entries of intake {ledger.intake_id} were not fixed")
        deadline = self._deadline(ledger, e.timestamp)
        self._draw(ledger, draw_seed(e.secret, e.randomness), deadline)
        self._give_unused(ledger, deadline)
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Case.Submitted, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.intake_id)
        case_id = e.originator_id
        if case_id in ledger.states:
            return  # one decision per case, whatever arrives twice
        if ledger.closed:
            ledger.not_select(case_id, LATE)
        elif ledger.policy is Policy.LOTTERY:
            ledger.receive_entry(case_id, e.pool)
        else:
            self._place_or_wait(ledger, case_id, e.pool, self._deadline(ledger, e.timestamp))
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Case.Withdrawn, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.intake_id)
        freed = ledger.release(e.originator_id, "withdrawn")
        if freed is not None:
            self._refill(ledger, freed, self._deadline(ledger, e.timestamp))
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Case.ApplicationSubmitted, processing: ProcessingEvent[UUID]) -> None:
        # Sent in time (by the event's own time), the offer is taken up; sent at or after the
        # deadline, it is left for the deadline check to release to the next person waiting.
        ledger = self._required(e.intake_id)
        ledger.take_up(e.originator_id, at=e.timestamp)
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Case.AcceptedForProcessing, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.intake_id)
        ledger.take_up(e.originator_id)
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Case.ReturnedIncomplete, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.intake_id)
        freed = ledger.release(e.originator_id, "returned_incomplete")
        if freed is not None:
            self._refill(ledger, freed, self._deadline(ledger, e.timestamp))
        processing.collect_events(ledger)

    @policy.register
    def _(self, e: Intake.DeadlinesChecked, processing: ProcessingEvent[UUID]) -> None:
        ledger = self._required(e.originator_id)
        freed = [ledger.release(case_id, "expired") for case_id in ledger.overdue(e.at)]
        deadline = self._deadline(ledger, e.at)
        for pool in dict.fromkeys(p for p in freed if p is not None):
            self._refill(ledger, pool, deadline)
        processing.collect_events(ledger)

    # Decisions

    @staticmethod
    def _deadline(ledger: Ledger, at: datetime) -> datetime:
        return at + timedelta(days=ledger.document_deadline_days)

    @staticmethod
    def _place_or_wait(ledger: Ledger, case_id: UUID, pool: str, deadline: datetime) -> None:
        if ledger.free_slot(pool) is not None:
            ledger.grant(case_id, pool, deadline)
        elif not ledger.waitlist_full(pool):
            ledger.add_to_waitlist(case_id, pool)
        else:
            ledger.not_select(case_id, WAITLIST_FULL)

    @classmethod
    def _refill(cls, ledger: Ledger, pool: str, deadline: datetime) -> None:
        """A slot of `pool` came free: invite whoever waits for it, and, once the intake gives
        unused reserved places away, move what its own waitlist cannot fill."""
        while ledger.invite_next(pool, deadline) is not None:
            pass
        if pool != GENERAL_POOL and cls._gives_unused(ledger):
            cls._give_unused(ledger, deadline)

    @staticmethod
    def _gives_unused(ledger: Ledger) -> bool:
        """From when unused reserved places move: the close (first come) or the draw."""
        if ledger.unused_reserved is not UnusedReserved.TO_GENERAL:
            return False
        return ledger.closed if ledger.policy is Policy.FIRST_COME else ledger.drawn

    @classmethod
    def _give_unused(cls, ledger: Ledger, deadline: datetime) -> None:
        """Move every reserved pool's free slots nobody waits for to the general pool, in pool
        name order, then invite the general waitlist into them."""
        if not cls._gives_unused(ledger):
            return
        moved = [pool for pool in sorted(ledger.slot_ranges) if pool != GENERAL_POOL]
        if any([ledger.move_unused(pool) for pool in moved]):
            while ledger.invite_next(GENERAL_POOL, deadline) is not None:
                pass

    def _draw(self, ledger: Ledger, seed: str, deadline: datetime) -> None:
        """Rank the entries by the published algorithm; invite the top of each pool."""
        entries = ledger.entries
        digest, combined, ranked = lottery_ranking(seed, entries)
        selected = draw_selection(ledger, ranked)
        ledger.record_draw(
            seed=seed,
            entries=len(entries),
            entries_digest=digest,
            combined_seed=combined,
            fairness=fairness(entries, selected).as_dict(),
        )
        for case_id in ranked:
            if case_id in ledger.late_withdrawn:
                ledger.not_select(case_id, WITHDRAWN_BEFORE_DRAW)
            else:
                self._place_or_wait(ledger, case_id, ledger.entry_pools[case_id], deadline)

    def _required(self, intake_id: UUID) -> Ledger:
        ledger = self.ledger_of(intake_id)
        if ledger is None:
            raise AllocationError(f"no ledger for intake {intake_id}: its definition was not seen")
        return ledger


def draw_selection(ledger: Ledger, ranked: Sequence[UUID]) -> set[UUID]:
    """Who a draw invites: the first entries of each pool, as many as the pool has places."""
    room = {pool: high - low + 1 for pool, (low, high) in ledger.slot_ranges.items()}
    selected = set()
    for case_id in ranked:
        pool = ledger.entry_pools[case_id]
        if case_id in ledger.late_withdrawn:
            continue
        if room[pool] > 0:
            room[pool] -= 1
            selected.add(case_id)
    return selected
