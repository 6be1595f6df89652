"""What the officers' pages ask of the read models: the quota board, its series, the queue (with
filters and keyset paging), each case's timeline, and how far each view has read.

Answers are frozen dataclasses of plain values; no SQLAlchemy object leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from domain.values import GENERAL_POOL, CaseStatus
from projections import views
from projections.views import (
    allocation_counts,
    allocation_minutes,
    allocation_status,
    allocation_timeline,
    case_counts,
    case_minutes,
    case_timeline,
    cases,
    ledgers,
)

CASE_METRICS = (
    "registered",
    "submitted",
    "withdrawn",
    "application_submitted",
    "accepted",
    "returned",
    "approved",
    "refused",
)
PLACE_STATES = (
    "granted",
    "accepted",
    "waitlisted",
    "entered",
    "not_selected",
    "withdrawn",
    "expired",
    "returned_incomplete",
)
AGES = ("0-30", "31-60", "61+")
SORTS = ("oldest", "newest", "reference", "updated")
ITER_CHUNK = 1000
MAX_LIMIT = 1000


class BadCursor(ValueError):
    """Raised when a queue cursor was not made by this module for the same sort order."""


@dataclass(frozen=True)
class PoolCounts:
    """One pool's counters (or every pool's, in Board.totals).

    `cases` counts cases that ever reached a step of casework (registered, submitted, withdrawn,
    application_submitted, accepted, returned, approved, refused); `places` counts cases in each allocation state now
    (granted: an offer outstanding; accepted: the place kept; waitlisted, entered, not_selected,
    withdrawn, expired, returned_incomplete).
    """

    pool: str
    capacity: int
    cases: dict[str, int]
    places: dict[str, int]

    @property
    def held(self) -> int:
        """Places held: offers outstanding and places kept."""
        return self.places.get("granted", 0) + self.places.get("accepted", 0)

    @property
    def places_left(self) -> int:
        return self.capacity - self.held

    @property
    def decided(self) -> int:
        return self.cases.get("approved", 0) + self.cases.get("refused", 0)

    @property
    def counts(self) -> dict[str, int]:
        """Every number by name; where casework and allocation share a name (accepted,
        withdrawn), casework's count wins: the allocation's is in `places`."""
        return {
            **self.places,
            **self.cases,
            "decided": self.decided,
            "held": self.held,
            "places_left": self.places_left,
        }

    def value(self, metric: str) -> int:
        return self.counts.get(metric, 0)


@dataclass(frozen=True)
class Board:
    """One intake's quota board. Pools: the general pool first, then the named ones by name.

    `totals` also counts cases the ledger never placed in a pool (not selected on arrival, with
    the waitlist full or the intake closed), which no pool row shows.
    """

    intake_id: UUID
    policy: str | None  # None: the allocation view has not seen the intake's ledger yet
    capacity: int
    closed: bool
    pools: tuple[PoolCounts, ...]
    totals: PoolCounts

    metrics = (
        "registered",
        "submitted",
        "entered",
        "granted",
        "application_submitted",
        "accepted",
        "waitlisted",
        "expired",
        "withdrawn",
        "returned",
        "decided",
        "approved",
        "refused",
        "not_selected",
        "places_left",
    )


@dataclass(frozen=True)
class Minute:
    """One minute (UTC) of an intake: cases registered and submitted in it, places held at its end."""

    minute: datetime
    registered: int
    submitted: int
    held: int


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. `status` None: every status but draft. `assigned`: a staff id (hex)
    or "none" for unassigned. `age`: "0-30", "31-60" or "61+" days since submission at `now`.
    `reference`: part of a reference, as typed (case and hyphens do not matter)."""

    now: datetime
    intake_id: UUID | None = None
    status: str | None = None
    allocation_state: str | None = None
    assigned: str | None = None
    age: str | None = None
    reference: str | None = None
    sort: str = "oldest"  # oldest, newest, reference, updated


@dataclass(frozen=True)
class QueueRow:
    """One case in the queue."""

    case_id: str  # hex
    reference: str
    intake_id: str  # hex
    pool: str
    status: str
    allocation_state: str | None
    slot: int | None
    deadline: datetime | None
    assigned_to: str | None  # staff id, hex
    open_request: bool
    registered_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    updated_at: datetime
    version: int
    age_days: int | None  # whole days since submission, at the filter's `now`


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue: opaque cursors to the pages either side (None at an end)."""

    rows: tuple[QueueRow, ...]
    total: int
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a case: `source` is "registry" or "allocation"."""

    at: datetime
    source: str
    position: int
    what: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)


# Sort orders: the column after which rows are ordered (then the case id), and whether descending.
_ORDER = {
    "oldest": ("queued_at", False),
    "newest": ("queued_at", True),
    "reference": ("reference", False),
    "updated": ("updated_at", True),
}


class OfficerQueries:
    """Reads of the casework and allocation read models for the officers' pages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # The quota board

    def board(self, intake_id: UUID) -> Board:
        key = intake_id.hex
        with self.engine.connect() as connection:
            ledger = connection.execute(
                sa.select(ledgers).where(ledgers.c.intake_id == key)
            ).first()
            case_rows = connection.execute(
                sa.select(case_counts.c.pool, case_counts.c.metric, case_counts.c.n).where(
                    case_counts.c.intake_id == key
                )
            ).all()
            place_rows = connection.execute(
                sa.select(
                    allocation_counts.c.pool, allocation_counts.c.state, allocation_counts.c.n
                ).where(allocation_counts.c.intake_id == key)
            ).all()
        capacity = int(ledger.capacity) if ledger is not None else 0
        reserved: dict[str, int] = dict(ledger.pools or {}) if ledger is not None else {}
        sizes = {GENERAL_POOL: capacity - sum(reserved.values()), **dict(sorted(reserved.items()))}
        by_pool: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        for row in case_rows:
            by_pool.setdefault(str(row.pool), ({}, {}))[0][str(row.metric)] = int(row.n)
        for row in place_rows:
            by_pool.setdefault(str(row.pool), ({}, {}))[1][str(row.state)] = int(row.n)
        names = list(sizes) + sorted(p for p in by_pool if p and p not in sizes)
        pools = tuple(
            PoolCounts(
                pool=name,
                capacity=sizes.get(name, 0),
                cases=_all(CASE_METRICS, by_pool.get(name, ({}, {}))[0]),
                places=_all(PLACE_STATES, by_pool.get(name, ({}, {}))[1]),
            )
            for name in names
        )
        totals = PoolCounts(
            pool="",
            capacity=capacity,
            cases=_summed(CASE_METRICS, (c for c, _ in by_pool.values())),
            places=_summed(PLACE_STATES, (p for _, p in by_pool.values())),
        )
        return Board(
            intake_id=intake_id,
            policy=str(ledger.policy) if ledger is not None else None,
            capacity=capacity,
            closed=bool(ledger.closed) if ledger is not None else False,
            pools=pools,
            totals=totals,
        )

    def series(self, intake_id: UUID) -> list[Minute]:
        """Minutes in which something was registered, submitted or a place taken or freed."""
        key = intake_id.hex
        with self.engine.connect() as connection:
            registered = {
                row.minute: (int(row.registered), int(row.submitted))
                for row in connection.execute(
                    sa.select(case_minutes).where(case_minutes.c.intake_id == key)
                )
            }
            held_change = {
                row.minute: int(row.granted)
                for row in connection.execute(
                    sa.select(allocation_minutes).where(allocation_minutes.c.intake_id == key)
                )
            }
        found, held = [], 0
        for minute in sorted(set(registered) | set(held_change)):
            held += held_change.get(minute, 0)
            r, s = registered.get(minute, (0, 0))
            found.append(Minute(minute=minute, registered=r, submitted=s, held=held))
        return found

    # The queue

    def queue(
        self,
        filters: QueueFilter,
        *,
        cursor: str | None = None,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> QueuePage:
        """One page of the filtered queue, from the start or from a page's cursor.

        A cursor says which way it points, so `cursor` takes either of a page's cursors; `after`
        and `before` take the same values under the names of the links that carried them.
        """
        given = cursor or after or before
        limit = max(1, min(limit, MAX_LIMIT))
        sort = _sort(filters.sort)
        where = self._where(filters)
        backwards, key = _decode(given, sort) if given else (False, None)
        with self.engine.connect() as connection:
            total = int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(_joined()).where(*where)
                ).scalar_one()
            )
            found = self._rows(connection, filters, where, key, backwards, limit + 1)
        more = len(found) > limit
        found = found[:limit]
        if backwards:
            found.reverse()
        rows = tuple(_row(r, filters.now) for r in found)
        if not rows:
            return QueuePage(rows=(), total=total, next_cursor=None, previous_cursor=None)
        has_next = (not backwards and more) or (backwards and given is not None)
        has_previous = (backwards and more) or (not backwards and given is not None)
        column = _ORDER[sort][0]
        return QueuePage(
            rows=rows,
            total=total,
            next_cursor=_encode(sort, False, found[-1], column) if has_next else None,
            previous_cursor=_encode(sort, True, found[0], column) if has_previous else None,
        )

    def iter_queue(self, filters: QueueFilter) -> Iterator[QueueRow]:
        """Every filtered row in the sort order, read in chunks by keyset (for CSV exports)."""
        sort = _sort(filters.sort)
        where = self._where(filters)
        column = _ORDER[sort][0]
        key: tuple[Any, str] | None = None
        while True:
            with self.engine.connect() as connection:
                found = self._rows(connection, filters, where, key, False, ITER_CHUNK)
            for r in found:
                yield _row(r, filters.now)
            if len(found) < ITER_CHUNK:
                return
            key = (found[-1][column], found[-1]["case_id"])

    def _where(self, filters: QueueFilter) -> list[Any]:
        c = cases.c
        where: list[Any] = []
        if filters.intake_id is not None:
            where.append(c.intake_id == filters.intake_id.hex)
        if filters.status is None:
            where.append(c.status != CaseStatus.DRAFT.value)
        else:
            where.append(c.status == filters.status)
        if filters.allocation_state is not None:
            where.append(allocation_status.c.state == filters.allocation_state)
        if filters.assigned == "none":
            where.append(c.assigned_to.is_(None))
        elif filters.assigned is not None:
            where.append(c.assigned_to == filters.assigned)
        if filters.age is not None:
            where.extend(_age(filters.age, filters.now))
        if filters.reference:
            typed = "".join(ch for ch in filters.reference.upper() if ch.isalnum())
            if typed:
                # References are stored as XXXX-XXXX-X: match the typed symbols without hyphens.
                bare = sa.func.replace(c.reference, "-", "")
                where.append(bare.like(f"%{typed}%"))
        return where

    def _rows(
        self,
        connection: Connection,
        filters: QueueFilter,
        where: list[Any],
        key: tuple[Any, str] | None,
        backwards: bool,
        limit: int,
    ) -> list[dict[str, Any]]:
        column, descending = _ORDER[_sort(filters.sort)]
        # Going backwards reads the same order reversed, from the page's first row.
        reverse = descending != backwards
        sort_column, case_id = cases.c[column], cases.c.case_id
        conditions = list(where)
        if key is not None:
            pair, bound = sa.tuple_(sort_column, case_id), sa.tuple_(*key)
            conditions.append(pair < bound if reverse else pair > bound)
        order = (sort_column.desc(), case_id.desc()) if reverse else (sort_column, case_id)
        query = (
            sa.select(
                *cases.c,
                allocation_status.c.state.label("allocation_state"),
                allocation_status.c.slot,
                allocation_status.c.deadline,
            )
            .select_from(_joined())
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
        )
        return [dict(r._mapping) for r in connection.execute(query)]

    # A case

    def timeline(self, case_id: UUID) -> list[TimelineEntry]:
        """Everything recorded about the case, in time order (then source, then position)."""
        entries = []
        with self.engine.connect() as connection:
            for source, table in (("registry", case_timeline), ("allocation", allocation_timeline)):
                for row in connection.execute(
                    sa.select(table).where(table.c.case_id == case_id.hex)
                ):
                    entries.append(
                        TimelineEntry(
                            at=row.at,
                            source=source,
                            position=int(row.position),
                            what=row.what,
                            actor=row.actor,
                            details=dict(row.details or {}),
                        )
                    )
        entries.sort(key=lambda e: (e.at, e.source, e.position))
        return entries

    def references(self, case_ids: Sequence[UUID]) -> dict[str, str]:
        """Case id (hex) -> reference, for the cases the view knows."""
        with self.engine.connect() as connection:
            found = views.select_in(connection, cases, "case_id", [c.hex for c in case_ids])
        return {row["case_id"]: row["reference"] for row in found}

    # The views themselves

    def positions(self) -> dict[str, dict[str, int]]:
        """View name -> application name -> the position the view has reached."""
        with self.engine.connect() as connection:
            return views.positions(connection)

    def wait_for(
        self, view_name: str, application_name: str, position: int, *, timeout: float
    ) -> bool:
        """Wait until the view has reached the position; False on timeout."""
        return views.wait_for(self.engine, view_name, application_name, position, timeout=timeout)


def _joined() -> Any:
    return cases.outerjoin(allocation_status, allocation_status.c.case_id == cases.c.case_id)


def _sort(sort: str) -> str:
    if sort not in _ORDER:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    return sort


def _age(bucket: str, now: datetime) -> list[Any]:
    """Submitted between the bucket's bounds: age in whole days, 0-30, 31-60 or 61 and more."""
    submitted = cases.c.submitted_at
    day = timedelta(days=1)
    if bucket == "0-30":
        return [submitted > now - 31 * day]
    if bucket == "31-60":
        return [submitted <= now - 31 * day, submitted > now - 61 * day]
    if bucket == "61+":
        return [submitted <= now - 61 * day]
    raise ValueError(f"age must be one of {', '.join(AGES)}, not {bucket!r}")


def _all(names: Sequence[str], found: Mapping[str, int]) -> dict[str, int]:
    return {name: found.get(name, 0) for name in names} | {
        k: v for k, v in found.items() if k not in names
    }


def _summed(names: Sequence[str], parts: Iterator[dict[str, int]]) -> dict[str, int]:
    total = {name: 0 for name in names}
    for part in parts:
        for name, n in part.items():
            total[name] = total.get(name, 0) + n
    return total


def _row(r: Mapping[str, Any], now: datetime) -> QueueRow:
    submitted = r["submitted_at"]
    return QueueRow(
        case_id=r["case_id"],
        reference=r["reference"],
        intake_id=r["intake_id"],
        pool=r["pool"],
        status=r["status"],
        allocation_state=r["allocation_state"],
        slot=r["slot"],
        deadline=r["deadline"],
        assigned_to=r["assigned_to"],
        open_request=bool(r["open_request"]),
        registered_at=r["registered_at"],
        submitted_at=submitted,
        decided_at=r["decided_at"],
        updated_at=r["updated_at"],
        version=int(r["version"]),
        age_days=(now - submitted).days if submitted is not None else None,
    )


def _encode(sort: str, backwards: bool, row: Mapping[str, Any], column: str) -> str:
    value = row[column]
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    text = json.dumps([sort, "b" if backwards else "a", value, row["case_id"]])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[bool, tuple[Any, str]]:
    """(whether it points backwards, the sort key of the row it was made from)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_for, way, value, case_id = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadCursor("the page link is damaged: start from the first page") from None
    if made_for != sort or way not in {"a", "b"} or not isinstance(case_id, str):
        raise BadCursor("the page link is for another order: start from the first page")
    if _ORDER[sort][0] != "reference":
        try:
            value = datetime.fromisoformat(str(value))
        except ValueError:
            raise BadCursor("the page link is damaged: start from the first page") from None
    elif not isinstance(value, str):
        raise BadCursor("the page link is damaged: start from the first page")
    return way == "b", (value, case_id)
