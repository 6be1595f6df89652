"""Read model of allocation: each case's place, offer or waitlist position, and each ledger.

Built only from the Allocator's log, so dropping the tables and replaying rebuilds them exactly.
Serves the applicant's status page, the quota board (counts per state, places held per minute),
each case's allocation timeline and the scheduler's search for overdue offers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic
from sqlalchemy.engine import Connection, Engine

from domain.ledger import Ledger
from projections.views import (
    FollowingView,
    allocation_counts,
    allocation_minutes,
    allocation_status,
    allocation_timeline,
    ledgers,
    minute_of,
    select_in,
    upsert,
    waitlist_departures,
)

FOLLOWED = (
    Ledger.Started,
    Ledger.EntryReceived,
    Ledger.EntryWithdrawn,
    Ledger.EntriesFixed,
    Ledger.DrawMade,
    Ledger.PlacesMoved,
    Ledger.PlaceGranted,
    Ledger.Invited,
    Ledger.Waitlisted,
    Ledger.NotSelected,
    Ledger.LeftWaitlist,
    Ledger.PlaceReleased,
    Ledger.OfferTakenUp,
    Ledger.Closed,
)

# States in which a case holds one of the intake's places.
HOLDING = frozenset({"granted", "accepted"})
ALLOCATOR = "allocator"


@dataclass(frozen=True)
class Allocation:
    """Where one case stands in the allocation, as its applicant is told."""

    # entered, granted, accepted, waitlisted, not_selected, withdrawn, expired, returned_incomplete
    state: str
    pool: str | None
    slot: int | None
    deadline: datetime | None
    waitlist_position: int | None
    reason: str | None


@dataclass(frozen=True)
class Quota:
    """One intake's counts: places granted against capacity, and the queues."""

    intake_id: UUID
    policy: str
    capacity: int
    closed: bool
    drawn: bool
    counts: dict[str, int]

    @property
    def granted(self) -> int:
        return self.counts.get("granted", 0)


class AllocationTables(NamedTuple):
    """The allocation view's tables: the live ones, or a rebuild's scratch copies."""

    ledgers: sa.Table
    allocation_status: sa.Table
    waitlist_departures: sa.Table
    allocation_counts: sa.Table
    allocation_minutes: sa.Table
    allocation_timeline: sa.Table


LIVE = AllocationTables(
    ledgers,
    allocation_status,
    waitlist_departures,
    allocation_counts,
    allocation_minutes,
    allocation_timeline,
)


@dataclass
class _Batch:
    """A batch's changes to cases gathered in memory, written in a few statements at its end."""

    rows: dict[str, dict[str, Any]]
    changed: set[str] = field(default_factory=set)
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    minutes: dict[tuple[str, datetime], int] = field(default_factory=dict)
    departures: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def note(self, e: Any, position: int, what: str, **details: Any) -> None:
        self.timeline.append(
            {
                "case_id": e.case_id.hex,
                "position": position,
                "at": e.timestamp,
                "what": what,
                "actor": ALLOCATOR,
                "details": details,
            }
        )


class AllocationView(FollowingView):
    """Applies the Allocator's ledger events to the allocation tables, one batch per transaction."""

    name = "allocation_view"
    topics = tuple(get_topic(cls) for cls in FOLLOWED)

    def __init__(self, engine: Engine, tables: AllocationTables = LIVE) -> None:
        super().__init__(engine)
        self.tables = tables
        self._intake_of: dict[str, str] = {}  # ledger id -> intake id (hex)

    def apply_batch(self, connection: Connection, items: Sequence[tuple[Any, Tracking]]) -> None:
        t = self.tables
        ids = list(dict.fromkeys(e.case_id.hex for e, _ in items if hasattr(e, "case_id")))
        rows = select_in(connection, t.allocation_status, "case_id", ids)
        batch = _Batch(rows={row["case_id"]: row for row in rows})
        for domain_event, tracking in items:
            self.apply(domain_event, tracking.notification_id, batch, connection)
        upsert(
            connection,
            t.allocation_status,
            [batch.rows[case_id] for case_id in sorted(batch.changed)],
        )
        if batch.departures:
            connection.execute(t.waitlist_departures.insert(), batch.departures)
        # Every counter a batch touched is written, even when its change nets to zero, so which
        # rows exist does not depend on how the log was cut into batches.
        upsert(
            connection,
            t.allocation_counts,
            [
                {"intake_id": i, "pool": p, "state": s, "n": n}
                for (i, p, s), n in sorted(batch.counts.items())
            ],
            add=("n",),
        )
        upsert(
            connection,
            t.allocation_minutes,
            [
                {"intake_id": i, "minute": minute, "granted": n}
                for (i, minute), n in sorted(batch.minutes.items())
            ],
            add=("granted",),
        )
        if batch.timeline:
            connection.execute(t.allocation_timeline.insert(), batch.timeline)

    @singledispatchmethod
    def apply(
        self, domain_event: Any, position: int, batch: _Batch, connection: Connection
    ) -> None:
        """Events without a row change only move the position."""

    @apply.register
    def _(self, e: Ledger.Started, position: int, batch: _Batch, connection: Connection) -> None:
        connection.execute(
            self.tables.ledgers.insert().values(
                ledger_id=e.originator_id.hex,
                intake_id=e.intake_id.hex,
                policy=e.policy,
                capacity=e.capacity,
                closed=False,
                pools=dict(e.pools),
            )
        )
        self._intake_of[e.originator_id.hex] = e.intake_id.hex

    @apply.register
    def _(self, e: Ledger.Closed, position: int, batch: _Batch, connection: Connection) -> None:
        t = self.tables.ledgers
        connection.execute(
            t.update().where(t.c.ledger_id == e.originator_id.hex).values(closed=True)
        )

    @apply.register
    def _(
        self, e: Ledger.EntriesFixed, position: int, batch: _Batch, connection: Connection
    ) -> None:
        """A lottery's close: its entries digest is published before the draw exists."""
        t = self.tables.ledgers
        connection.execute(
            t.update()
            .where(t.c.ledger_id == e.originator_id.hex)
            .values(draw={"entries": e.entries, "entries_digest": e.entries_digest})
        )

    @apply.register
    def _(
        self, e: Ledger.PlacesMoved, position: int, batch: _Batch, connection: Connection
    ) -> None:
        """Reserved places moved to another pool: the pools' sizes change, not the capacity."""
        t = self.tables.ledgers
        where = t.c.ledger_id == e.originator_id.hex
        pools = dict(connection.execute(sa.select(t.c.pools).where(where)).scalar() or {})
        pools[e.from_pool] = pools.get(e.from_pool, 0) - len(e.slots)
        if e.to_pool in pools:
            pools[e.to_pool] += len(e.slots)
        connection.execute(t.update().where(where).values(pools=pools))

    @apply.register
    def _(self, e: Ledger.DrawMade, position: int, batch: _Batch, connection: Connection) -> None:
        draw = {
            "seed": e.seed,
            "entries": e.entries,
            "entries_digest": e.entries_digest,
            "combined_seed": e.combined_seed,
            "fairness": e.fairness,
        }
        t = self.tables.ledgers
        connection.execute(
            t.update()
            .where(t.c.ledger_id == e.originator_id.hex)
            .values(drawn_at=e.timestamp, draw=draw)
        )

    @apply.register
    def _(
        self, e: Ledger.EntryReceived, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state="entered", pool=e.pool)
        batch.note(e, position, "entered", pool=e.pool)

    @apply.register
    def _(
        self, e: Ledger.EntryWithdrawn, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state="withdrawn")
        batch.note(e, position, "withdrawn")

    @apply.register
    def _(
        self, e: Ledger.PlaceGranted, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state="granted", pool=e.pool, slot=e.slot, rank=None)
        batch.note(e, position, "granted", slot=e.slot, pool=e.pool)

    @apply.register
    def _(self, e: Ledger.Invited, position: int, batch: _Batch, connection: Connection) -> None:
        self._change(batch, connection, e, deadline=e.deadline)
        batch.note(e, position, "invited", deadline=e.deadline.isoformat())

    @apply.register
    def _(self, e: Ledger.Waitlisted, position: int, batch: _Batch, connection: Connection) -> None:
        self._change(batch, connection, e, state="waitlisted", pool=e.pool, rank=e.rank)
        batch.note(e, position, "waitlisted", rank=e.rank, pool=e.pool)

    @apply.register
    def _(
        self, e: Ledger.NotSelected, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state="not_selected", reason=e.reason)
        batch.note(e, position, "not_selected", reason=e.reason)

    @apply.register
    def _(
        self, e: Ledger.LeftWaitlist, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state=e.reason, rank=None)
        batch.note(e, position, "left_waitlist", reason=e.reason)

    @apply.register
    def _(
        self, e: Ledger.PlaceReleased, position: int, batch: _Batch, connection: Connection
    ) -> None:
        self._change(batch, connection, e, state=e.reason, slot=None)
        batch.note(e, position, "released", slot=e.slot, reason=e.reason)

    @apply.register
    def _(
        self, e: Ledger.OfferTakenUp, position: int, batch: _Batch, connection: Connection
    ) -> None:
        # The place is kept for good: no deadline runs any more.
        self._change(batch, connection, e, state="accepted", deadline=None)
        batch.note(e, position, "taken_up")

    def _change(self, batch: _Batch, connection: Connection, e: Any, **values: Any) -> None:
        """Apply a ledger event to its case's row, keeping counters and departures in step."""
        case_id = e.case_id.hex
        row = batch.rows.get(case_id)
        intake_id = self._intake(connection, e.originator_id.hex)
        if row is None:
            row = {
                "case_id": case_id,
                "intake_id": intake_id,
                "state": values.get("state", "granted"),
                "pool": None,
                "slot": None,
                "rank": None,
                "deadline": None,
                "reason": None,
                "updated_at": e.timestamp,
            }
            old_state, old_pool = None, None
            batch.rows[case_id] = row
        else:
            old_state, old_pool = row["state"], row["pool"]
        new_state = values.get("state", old_state or row["state"])
        if old_state == "waitlisted" and new_state != "waitlisted":
            # Keep the rank of a case leaving its waitlist: positions count departures ahead.
            batch.departures.append(
                {
                    "intake_id": row["intake_id"],
                    "pool": row["pool"],
                    "rank": row["rank"],
                    "case_id": case_id,
                }
            )
        row.update(values)
        row["updated_at"] = e.timestamp
        batch.changed.add(case_id)
        if old_state != new_state:
            for state, pool, delta in ((old_state, old_pool, -1), (new_state, row["pool"], 1)):
                if state is not None:
                    key = (intake_id, pool or "", state)
                    batch.counts[key] = batch.counts.get(key, 0) + delta
            held = (new_state in HOLDING) - (old_state in HOLDING)
            if held:
                minute = (intake_id, minute_of(e.timestamp))
                batch.minutes[minute] = batch.minutes.get(minute, 0) + held

    def _intake(self, connection: Connection, ledger_hex: str) -> str:
        if ledger_hex not in self._intake_of:
            t = self.tables.ledgers
            found = connection.execute(
                sa.select(t.c.intake_id).where(t.c.ledger_id == ledger_hex)
            ).scalar()
            if found is None:
                raise LookupError(f"ledger {ledger_hex} was not started in this view")
            self._intake_of[ledger_hex] = found
        return self._intake_of[ledger_hex]


class ReadModelUnavailable(Exception):
    """Raised when a read model cannot be read (its database is down or not migrated)."""


class AllocationQueries:
    """What the web pages and the scheduler ask of the allocation read model."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def of_case(self, case_id: UUID) -> Allocation | None:
        try:
            return self._of_case(case_id)
        except sa.exc.SQLAlchemyError as error:
            raise ReadModelUnavailable(str(error)) from error

    def holds_place(self, case_id: UUID) -> bool:
        """Whether the case holds a place: offered, or taken up by sending the application
        (casework's `holds_place`: only a case holding a place is accepted for processing)."""
        found = self.of_case(case_id)
        return found is not None and found.state in HOLDING

    def offer_deadline(self, case_id: UUID) -> datetime | None:
        """The deadline of the case's running invitation, or None if it has none (never invited,
        waiting, expired, or already taken up by sending the application)."""
        found = self.of_case(case_id)
        if found is None or found.state != "granted":
            return None
        return found.deadline

    def _of_case(self, case_id: UUID) -> Allocation | None:
        t = allocation_status
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(t).where(t.c.case_id == case_id.hex)).first()
            if row is None:
                return None
            waitlist_position = None
            if row.state == "waitlisted":
                # Ranks of a pool's waitlist run 1, 2, 3, ...: those ahead who are still waiting
                # are those ranked before, less those who have left.
                d = waitlist_departures
                left = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(d)
                    .where(
                        d.c.intake_id == row.intake_id, d.c.pool == row.pool, d.c.rank < row.rank
                    )
                ).scalar_one()
                waitlist_position = row.rank - int(left)
        return Allocation(
            state=row.state,
            pool=row.pool,
            slot=row.slot,
            deadline=row.deadline,
            waitlist_position=waitlist_position,
            reason=row.reason,
        )

    def quotas(self) -> list[Quota]:
        with self.engine.connect() as connection:
            counts: dict[str, dict[str, int]] = {}
            grouped = connection.execute(
                sa.select(
                    allocation_status.c.intake_id, allocation_status.c.state, sa.func.count()
                ).group_by(allocation_status.c.intake_id, allocation_status.c.state)
            )
            for row in grouped:
                counts.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
            return [
                Quota(
                    intake_id=UUID(row.intake_id),
                    policy=row.policy,
                    capacity=row.capacity,
                    closed=bool(row.closed),
                    drawn=row.drawn_at is not None,
                    counts=counts.get(row.intake_id, {}),
                )
                for row in connection.execute(sa.select(ledgers))
            ]

    def waitlisted(self, intake_id: UUID, pool: str) -> int:
        t = allocation_status
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(
                        t.c.intake_id == intake_id.hex, t.c.state == "waitlisted", t.c.pool == pool
                    )
                ).scalar_one()
            )

    def intakes_with_overdue_offers(self, now: datetime) -> list[UUID]:
        t = allocation_status
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(t.c.intake_id)
                .where(t.c.state == "granted", t.c.deadline < now)
                .distinct()
            )
            return [UUID(str(row[0])) for row in rows]

    def draw_of(self, intake_id: UUID) -> dict[str, Any] | None:
        try:
            with self.engine.connect() as connection:
                found = connection.execute(
                    sa.select(ledgers.c.draw).where(ledgers.c.intake_id == intake_id.hex)
                ).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise ReadModelUnavailable(str(error)) from error
        return dict(found) if found else None
