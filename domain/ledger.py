"""The Ledger aggregate: one intake's allocation record. Only the allocator writes it."""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import AllocationError
from domain.identity import NAMESPACE
from domain.values import GENERAL_POOL, Policy, UnusedReserved


def ledger_id(intake_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"ledger:{intake_id.hex}")


class Ledger(Aggregate):
    """Places granted (slot numbers 1..capacity), waitlists in order, offers and releases.

    Pools split the capacity: each has its own range of slot numbers and its own waitlist. The
    general pool holds what the named pools leave. A slot released goes to the next person on the
    same pool's waitlist, so slot numbers stay within 1..capacity for good. A reserved pool's
    free slots nobody in the pool is waiting for move to the general pool (PlacesMoved) once the
    intake says so (README, "Reserved pools").
    """

    class Started(Aggregate.Created):
        intake_id: UUID
        policy: str
        capacity: int
        pools: dict[str, int]
        waitlist_length: int
        document_deadline_days: int
        unused_reserved: str  # version 2

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["unused_reserved"] = UnusedReserved.KEPT.value

    class SeedCommitted(Aggregate.Event):
        commitment: str

    class EntryReceived(Aggregate.Event):
        case_id: UUID
        pool: str

    class EntryWithdrawn(Aggregate.Event):
        """Withdrawn before the draw. Before the entries were fixed, it leaves them; after, it
        stays in the ranking (the digest is fixed) and the draw does not select it."""

        case_id: UUID

    class EntriesFixed(Aggregate.Event):
        """A lottery's close: the entries are now these, in the order submitted; the draw's
        randomness is obtained only afterwards."""

        entries: int
        entries_digest: str

    class DrawMade(Aggregate.Event):
        seed: str
        entries: int
        entries_digest: str
        combined_seed: str
        fairness: dict[str, Any]

    class PlaceGranted(Aggregate.Event):
        case_id: UUID
        slot: int
        pool: str

    class Invited(Aggregate.Event):
        case_id: UUID
        deadline: datetime

    class Waitlisted(Aggregate.Event):
        case_id: UUID
        pool: str
        rank: int

    class NotSelected(Aggregate.Event):
        case_id: UUID
        reason: str

    class LeftWaitlist(Aggregate.Event):
        case_id: UUID
        reason: str

    class PlaceReleased(Aggregate.Event):
        case_id: UUID
        slot: int
        reason: str

    class PlacesMoved(Aggregate.Event):
        """Free slots of a reserved pool with nobody waiting for them, given to another pool."""

        from_pool: str
        to_pool: str
        slots: list[int]

    class OfferTakenUp(Aggregate.Event):
        """The holder sent the application in time (or an officer accepted it for processing):
        it keeps its place, no deadline runs."""

        case_id: UUID

    class Closed(Aggregate.Event):
        at: datetime

    @staticmethod
    def create_id(intake_id: UUID) -> UUID:
        return ledger_id(intake_id)

    @event(Started)
    def __init__(
        self,
        intake_id: UUID,
        policy: str,
        capacity: int,
        pools: dict[str, int],
        waitlist_length: int,
        document_deadline_days: int,
        unused_reserved: str,
    ) -> None:
        self.intake_id = intake_id
        self.unused_reserved = UnusedReserved(unused_reserved)
        self.policy = Policy(policy)
        self.capacity = capacity
        self.waitlist_length = waitlist_length
        self.document_deadline_days = document_deadline_days
        # Slot ranges: the general pool first, then each named pool in name order.
        general = capacity - sum(pools.values())
        self.slot_ranges: dict[str, tuple[int, int]] = {GENERAL_POOL: (1, general)}
        start = general + 1
        for name in sorted(pools):
            self.slot_ranges[name] = (start, start + pools[name] - 1)
            start += pools[name]
        self.holders: dict[int, UUID] = {}  # slot -> case
        self.slot_of: dict[UUID, int] = {}  # case -> slot
        self.deadlines: dict[UUID, datetime] = {}  # case -> invitation deadline
        # Dicts as ordered sets: insertion order is the waitlist order, membership is O(1).
        self.waitlists: dict[str, dict[UUID, int]] = {name: {} for name in self.slot_ranges}
        self.next_fresh: dict[str, int] = {name: low for name, (low, _) in self.slot_ranges.items()}
        self.released: dict[str, list[int]] = {name: [] for name in self.slot_ranges}
        self.next_rank: dict[str, int] = {name: 1 for name in self.slot_ranges}
        self.entry_pools: dict[UUID, str] = {}  # lottery entries, in the order received
        self.states: dict[UUID, str] = {}  # case -> granted, waitlisted, not_selected, ...
        self.moved: dict[int, str] = {}  # slot -> the pool it was moved to
        self.late_withdrawn: set[UUID] = set()  # entries withdrawn after they were fixed
        self.commitment: str | None = None
        self.fixed = False
        self.drawn = False
        self.closed = False

    # Queries

    def free_slot(self, pool: str) -> int | None:
        """The lowest free slot of the pool: a released one first, else the next never used."""
        if self.released[pool]:
            return self.released[pool][0]
        fresh = self.next_fresh[pool]
        return fresh if fresh <= self.slot_ranges[pool][1] else None

    @property
    def entries(self) -> list[UUID]:
        return list(self.entry_pools)

    @property
    def granted(self) -> int:
        return len(self.holders)

    def waitlist_full(self, pool: str) -> bool:
        return self.waitlist_length > 0 and len(self.waitlists[pool]) >= self.waitlist_length

    def overdue(self, now: datetime) -> list[UUID]:
        """Holders of an invitation whose deadline has passed, earliest deadline first."""
        late = [
            (deadline, case_id) for case_id, deadline in self.deadlines.items() if deadline < now
        ]
        return [case_id for _, case_id in sorted(late)]

    def pool_of_slot(self, slot: int) -> str:
        if slot in self.moved:
            return self.moved[slot]
        for name, (low, high) in self.slot_ranges.items():
            if low <= slot <= high:
                return name
        raise AllocationError(f"slot {slot} is outside 1..{self.capacity}")

    # Commands: each checks its rule once; the appliers below only change state.

    def grant(self, case_id: UUID, pool: str, deadline: datetime) -> int:
        """Give the case the pool's first free slot and invite it; returns the slot number."""
        if case_id in self.slot_of:
            raise AllocationError(f"case {case_id} already holds slot {self.slot_of[case_id]}")
        slot = self.free_slot(pool)
        if slot is None:
            raise AllocationError(f"no free place in pool {pool}")
        if not 1 <= slot <= self.capacity:  # cannot happen with valid ranges: the last guard
            raise AllocationError(f"slot {slot} is outside 1..{self.capacity}")
        self._place_granted(case_id=case_id, slot=slot, pool=pool)
        self._invited(case_id=case_id, deadline=deadline)
        return slot

    def add_to_waitlist(self, case_id: UUID, pool: str) -> int:
        if case_id in self.slot_of or case_id in self.waitlists[pool]:
            raise AllocationError(f"case {case_id} is already placed or waiting")
        rank = self.next_rank[pool]
        self._waitlisted(case_id=case_id, pool=pool, rank=rank)
        return rank

    def not_select(self, case_id: UUID, reason: str) -> None:
        self._not_selected(case_id=case_id, reason=reason)

    def receive_entry(self, case_id: UUID, pool: str) -> None:
        if case_id in self.entry_pools:
            raise AllocationError(f"case {case_id} has already entered")
        self._entry_received(case_id=case_id, pool=pool)

    def release(self, case_id: UUID, reason: str) -> str | None:
        """Free whatever the case holds; returns the pool whose slot came free, if any."""
        if case_id in self.slot_of:
            slot = self.slot_of[case_id]
            self._place_released(case_id=case_id, slot=slot, reason=reason)
            return self.pool_of_slot(slot)
        for waiting in self.waitlists.values():
            if case_id in waiting:
                self._left_waitlist(case_id=case_id, reason=reason)
                return None
        if case_id in self.entry_pools and not self.drawn:
            self._entry_withdrawn(case_id=case_id)
        return None

    def take_up(self, case_id: UUID, at: datetime | None = None) -> bool:
        """The holder of an offer took it up (sent the application by the deadline, or was
        accepted for processing): its deadline stops. False if it holds no offer still running,
        or if `at` is not before the deadline (the expiry will release it)."""
        deadline = self.deadlines.get(case_id)
        if case_id not in self.slot_of or deadline is None:
            return False
        if at is not None and at >= deadline:
            return False
        self._offer_taken_up(case_id=case_id)
        return True

    def fix_entries(self, digest: str) -> None:
        if self.fixed or self.drawn:
            raise AllocationError(f"the entries of intake {self.intake_id} are already fixed")
        self._entries_fixed(entries=len(self.entry_pools), entries_digest=digest)

    def unused_slots(self, pool: str) -> list[int]:
        """The pool's free slots, released or never used, in slot order."""
        high = self.slot_ranges[pool][1]
        return sorted(self.released[pool]) + list(range(self.next_fresh[pool], high + 1))

    def move_unused(self, pool: str, to_pool: str = GENERAL_POOL) -> list[int]:
        """Give a reserved pool's free slots to `to_pool` if nobody waits for them there."""
        slots = self.unused_slots(pool)
        if pool == to_pool or self.waitlists[pool] or not slots:
            return []
        self._places_moved(from_pool=pool, to_pool=to_pool, slots=slots)
        return slots

    def invite_next(self, pool: str, deadline: datetime) -> UUID | None:
        """Offer the pool's free slot to the first person waiting, if both exist."""
        if not self.waitlists[pool] or self.free_slot(pool) is None:
            return None
        case_id = next(iter(self.waitlists[pool]))
        self.grant(case_id, pool, deadline)
        return case_id

    # Appliers

    @event(Closed)
    def close(self, at: datetime) -> None:
        self.closed = True

    @event(SeedCommitted)
    def commit_seed(self, commitment: str) -> None:
        self.commitment = commitment

    @event(EntryReceived)
    def _entry_received(self, case_id: UUID, pool: str) -> None:
        self.entry_pools[case_id] = pool
        self.states[case_id] = "entered"

    @event(EntryWithdrawn)
    def _entry_withdrawn(self, case_id: UUID) -> None:
        if self.fixed:
            self.late_withdrawn.add(case_id)
        else:
            del self.entry_pools[case_id]
        self.states[case_id] = "withdrawn"

    @event(EntriesFixed)
    def _entries_fixed(self, entries: int, entries_digest: str) -> None:
        self.fixed = True

    @event(PlacesMoved)
    def _places_moved(self, from_pool: str, to_pool: str, slots: list[int]) -> None:
        for slot in slots:
            self.moved[slot] = to_pool
            heapq.heappush(self.released[to_pool], slot)
        self.released[from_pool] = []
        self.next_fresh[from_pool] = self.slot_ranges[from_pool][1] + 1

    @event(DrawMade)
    def record_draw(
        self,
        seed: str,
        entries: int,
        entries_digest: str,
        combined_seed: str,
        fairness: dict[str, Any],
    ) -> None:
        self.drawn = True

    @event(PlaceGranted)
    def _place_granted(self, case_id: UUID, slot: int, pool: str) -> None:
        self.holders[slot] = case_id
        self.slot_of[case_id] = slot
        if self.released[pool] and self.released[pool][0] == slot:
            heapq.heappop(self.released[pool])  # grant() takes the lowest released slot first
        else:
            self.next_fresh[pool] = slot + 1
        self.waitlists[pool].pop(case_id, None)
        self.states[case_id] = "granted"

    @event(Invited)
    def _invited(self, case_id: UUID, deadline: datetime) -> None:
        self.deadlines[case_id] = deadline

    @event(Waitlisted)
    def _waitlisted(self, case_id: UUID, pool: str, rank: int) -> None:
        self.waitlists[pool][case_id] = rank
        self.next_rank[pool] = rank + 1
        self.states[case_id] = "waitlisted"

    @event(NotSelected)
    def _not_selected(self, case_id: UUID, reason: str) -> None:
        self.states[case_id] = "not_selected"

    @event(LeftWaitlist)
    def _left_waitlist(self, case_id: UUID, reason: str) -> None:
        for waiting in self.waitlists.values():
            waiting.pop(case_id, None)
        self.states[case_id] = reason

    @event(OfferTakenUp)
    def _offer_taken_up(self, case_id: UUID) -> None:
        self.deadlines.pop(case_id, None)
        self.states[case_id] = "accepted"

    @event(PlaceReleased)
    def _place_released(self, case_id: UUID, slot: int, reason: str) -> None:
        del self.holders[slot]
        del self.slot_of[case_id]
        heapq.heappush(self.released[self.pool_of_slot(slot)], slot)
        self.deadlines.pop(case_id, None)
        self.states[case_id] = reason
