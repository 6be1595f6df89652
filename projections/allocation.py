"""Read model of allocation: each case's place, offer or waitlist position, and each ledger.

Built only from the Allocator's log, so dropping the tables and replaying rebuilds them exactly.
Serves the applicant's status page, the quota counts and the scheduler's search for overdue offers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain.ledger import Ledger
from projections.views import (
    allocation_status,
    ledgers,
    position,
    record_position,
    waitlist_departures,
)

FOLLOWED = (
    Ledger.Started,
    Ledger.EntryReceived,
    Ledger.EntryWithdrawn,
    Ledger.DrawMade,
    Ledger.PlaceGranted,
    Ledger.Invited,
    Ledger.Waitlisted,
    Ledger.NotSelected,
    Ledger.LeftWaitlist,
    Ledger.PlaceReleased,
    Ledger.Closed,
)


@dataclass(frozen=True)
class Allocation:
    """Where one case stands in the allocation, as its applicant is told."""

    state: str  # entered, granted, waitlisted, not_selected, withdrawn, expired
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


class AllocationView:
    """Applies the Allocator's ledger events to the allocation tables, one batch per transaction."""

    name = "allocation_view"
    topics = tuple(get_topic(cls) for cls in FOLLOWED)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._intake_of: dict[str, str] = {}  # ledger id -> intake id (hex)

    def position(self, source_name: str) -> int:
        with self.engine.connect() as connection:
            return position(connection, self.name, source_name)

    def process_batch(self, items: Sequence[tuple[Any, Tracking]]) -> int:
        with self.engine.begin() as connection:
            for domain_event, _ in items:
                self.apply(domain_event, connection)
            last = items[-1][1]
            record_position(connection, self.name, last.application_name, last.notification_id)
        return len(items)

    @singledispatchmethod
    def apply(self, domain_event: Any, connection: Connection) -> None:
        """Events without a row change only move the position."""

    @apply.register
    def _(self, e: Ledger.Started, connection: Connection) -> None:
        connection.execute(
            ledgers.insert().values(
                ledger_id=e.originator_id.hex,
                intake_id=e.intake_id.hex,
                policy=e.policy,
                capacity=e.capacity,
                closed=False,
            )
        )
        self._intake_of[e.originator_id.hex] = e.intake_id.hex

    @apply.register
    def _(self, e: Ledger.Closed, connection: Connection) -> None:
        connection.execute(
            ledgers.update().where(ledgers.c.ledger_id == e.originator_id.hex).values(closed=True)
        )

    @apply.register
    def _(self, e: Ledger.DrawMade, connection: Connection) -> None:
        draw = {
            "seed": e.seed,
            "entries": e.entries,
            "entries_digest": e.entries_digest,
            "combined_seed": e.combined_seed,
            "fairness": e.fairness,
        }
        connection.execute(
            ledgers.update()
            .where(ledgers.c.ledger_id == e.originator_id.hex)
            .values(drawn_at=e.timestamp, draw=draw)
        )

    @apply.register
    def _(self, e: Ledger.EntryReceived, connection: Connection) -> None:
        self._upsert(connection, e, state="entered", pool=e.pool)

    @apply.register
    def _(self, e: Ledger.EntryWithdrawn, connection: Connection) -> None:
        self._upsert(connection, e, state="withdrawn")

    @apply.register
    def _(self, e: Ledger.PlaceGranted, connection: Connection) -> None:
        self._record_departure(connection, e.case_id)
        self._upsert(connection, e, state="granted", pool=e.pool, slot=e.slot, rank=None)

    @apply.register
    def _(self, e: Ledger.Invited, connection: Connection) -> None:
        self._upsert(connection, e, deadline=e.deadline)

    @apply.register
    def _(self, e: Ledger.Waitlisted, connection: Connection) -> None:
        self._upsert(connection, e, state="waitlisted", pool=e.pool, rank=e.rank)

    @apply.register
    def _(self, e: Ledger.NotSelected, connection: Connection) -> None:
        self._upsert(connection, e, state="not_selected", reason=e.reason)

    @apply.register
    def _(self, e: Ledger.LeftWaitlist, connection: Connection) -> None:
        self._record_departure(connection, e.case_id)
        self._upsert(connection, e, state=e.reason, rank=None)

    @staticmethod
    def _record_departure(connection: Connection, case_id: UUID) -> None:
        """Keep the rank of a case leaving its waitlist (nothing if it was not waiting)."""
        t = allocation_status
        connection.execute(
            waitlist_departures.insert().from_select(
                ["intake_id", "pool", "rank", "case_id"],
                sa.select(t.c.intake_id, t.c.pool, t.c.rank, t.c.case_id).where(
                    t.c.case_id == case_id.hex, t.c.state == "waitlisted"
                ),
            )
        )

    @apply.register
    def _(self, e: Ledger.PlaceReleased, connection: Connection) -> None:
        self._upsert(connection, e, state=e.reason, slot=None)

    def _upsert(self, connection: Connection, e: Any, **values: Any) -> None:
        values["updated_at"] = e.timestamp
        insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
        statement = insert(allocation_status).values(
            case_id=e.case_id.hex,
            intake_id=self._intake(connection, e.originator_id.hex),
            state=values.get("state", "granted"),
            **{k: v for k, v in values.items() if k != "state"},
        )
        connection.execute(statement.on_conflict_do_update(index_elements=["case_id"], set_=values))

    def _intake(self, connection: Connection, ledger_hex: str) -> str:
        if ledger_hex not in self._intake_of:
            found = connection.execute(
                sa.select(ledgers.c.intake_id).where(ledgers.c.ledger_id == ledger_hex)
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
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(ledgers.c.draw).where(ledgers.c.intake_id == intake_id.hex)
            ).scalar()
        return dict(found) if found else None
