"""Rebuilding a read model from its log, and where each read model stands against its log.

A rebuild replays the whole log into scratch tables (same columns) while the live view keeps
serving and following. Then, in one transaction, it locks the view's tracking row, applies what
the scratch tables have not seen yet, replaces the live tables' contents with the scratch
tables', records the position and drops the scratch tables. A follower that was running finds
its position moved and starts again from the new one (views.StaleBatch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from sqlalchemy.engine import Connection, Engine

from projections import allocation, casework
from projections.allocation import ReadModelUnavailable
from projections.views import (
    FollowingView,
    lock_position,
    positions,
    scratch_copy,
    set_position,
    writing,
)

SCRATCH = "__rebuild"
BATCH = 2000
WINDOW = 4  # positions read per select, in batches: most positions hold a followed event


@dataclass(frozen=True)
class ViewSpec:
    """A read model: the log it follows, its tables, and how to build it on a set of tables."""

    name: str
    source: str  # the application whose log it follows
    tables: tuple[sa.Table, ...]
    build: Callable[[Engine, tuple[sa.Table, ...]], FollowingView]


VIEWS: dict[str, ViewSpec] = {
    spec.name: spec
    for spec in (
        ViewSpec(
            name=casework.CaseworkView.name,
            source="Registry",
            tables=tuple(casework.LIVE),
            build=lambda engine, t: casework.CaseworkView(engine, casework.CaseworkTables(*t)),
        ),
        ViewSpec(
            name=allocation.AllocationView.name,
            source="Allocator",
            tables=tuple(allocation.LIVE),
            build=lambda engine, t: allocation.AllocationView(
                engine, allocation.AllocationTables(*t)
            ),
        ),
    )
}


class UnknownView(LookupError):
    """Raised when a rebuild is asked for a view that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no read model is called {name!r}: choose one of {', '.join(VIEWS)}")


@dataclass(frozen=True)
class ViewStatus:
    """How far a view has read the log it follows."""

    name: str
    source: str
    position: int
    head: int  # the log's last notification id
    lag: int  # events the view follows that are in the log after its position


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did."""

    name: str
    events: int
    seconds: float
    position: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"rebuilt {self.name}: {self.events} events in {self.seconds:.1f} s "
            f"({self.rate:.0f} events/s)"
        )


def spec_of(name: str) -> ViewSpec:
    if name not in VIEWS:
        raise UnknownView(name)
    return VIEWS[name]


def status(engine: Engine, sources: Mapping[str, Application[Any]]) -> list[ViewStatus]:
    """Each view's position against the head of its log (`sources`: application name -> app)."""
    try:
        with engine.connect() as connection:
            found = positions(connection)
    except sa.exc.SQLAlchemyError as error:
        raise ReadModelUnavailable(_first_line(error)) from error
    rows = []
    for spec in VIEWS.values():
        source = sources[spec.source]
        at = found.get(spec.name, {}).get(spec.source, 0)
        view = spec.build(engine, spec.tables)
        rows.append(
            ViewStatus(
                name=spec.name,
                source=spec.source,
                position=at,
                head=source.recorder.max_notification_id() or 0,
                lag=_followed_after(source, view.topics, at),
            )
        )
    return rows


def _followed_after(source: Application[Any], topics: Sequence[str], after: int) -> int:
    """How many events of these topics the log holds after `after` (the log's own notifications
    of other topics do not count: the view has nothing to do for them)."""
    count = 0
    while page := source.recorder.select_notifications(
        start=after, limit=10_000, topics=topics, inclusive_of_start=False
    ):
        count += len(page)
        after = page[-1].id
    return count


def rebuild(
    engine: Engine,
    source: Application[Any],
    name: str,
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> Rebuilt:
    """Rebuild the view from position 0 of `source`'s log and swap it in; `progress` is called
    with the position reached after each batch."""
    try:
        return _rebuild(engine, source, name, progress, batch)
    except sa.exc.SQLAlchemyError as error:
        raise ReadModelUnavailable(_first_line(error)) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _rebuild(
    engine: Engine,
    source: Application[Any],
    name: str,
    progress: Callable[[int], None] | None,
    batch: int,
) -> Rebuilt:
    spec = spec_of(name)
    if source.name != spec.source:
        raise ValueError(f"{name} follows the {spec.source} log, not the {source.name} log")
    started = time.monotonic()
    scratch_metadata = sa.MetaData()
    scratch = tuple(scratch_copy(t, scratch_metadata, SCRATCH) for t in spec.tables)
    # A scratch table left by a rebuild that died is stale: start from nothing.
    scratch_metadata.drop_all(engine)
    scratch_metadata.create_all(engine)
    try:
        view = spec.build(engine, scratch)
        position = events = 0
        while items := _select(source, view, position, batch):
            with writing(engine) as connection:
                view.apply_batch(connection, items)
            position, events = items[-1][1].notification_id, events + len(items)
            if progress is not None:
                progress(position)
        with writing(engine) as connection:
            live = lock_position(connection, spec.name, spec.source)
            # The log may have grown since: what the scratch tables lack goes in under the lock.
            while items := _select(source, view, position, batch):
                view.apply_batch(connection, items)
                position, events = items[-1][1].notification_id, events + len(items)
            if position < live:
                raise RuntimeError(f"{name} is at {live}, beyond the log's {position}")
            _swap(connection, spec.tables, scratch)
            set_position(connection, spec.name, spec.source, position)
            scratch_metadata.drop_all(connection)
        if progress is not None:
            progress(position)
    except BaseException:
        scratch_metadata.drop_all(engine)
        raise
    return Rebuilt(name=name, events=events, seconds=time.monotonic() - started, position=position)


def _swap(
    connection: Connection, live: tuple[sa.Table, ...], scratch: tuple[sa.Table, ...]
) -> None:
    for table, copy in zip(live, scratch, strict=True):
        columns = [c.name for c in table.columns]
        connection.execute(table.delete())
        connection.execute(
            table.insert().from_select(columns, sa.select(*(copy.c[c] for c in columns)))
        )


def _select(
    source: Application[Any], view: FollowingView, after: int, limit: int
) -> list[tuple[Any, Tracking]]:
    """The next events of the view's topics after `after`, read through bounded windows of
    positions: with a topic filter and no upper bound, PostgreSQL scans every later row of the
    log for each batch (a bitmap scan, then a sort), which makes a whole replay quadratic."""
    head = source.recorder.max_notification_id() or 0
    window = limit * WINDOW
    while after < head:
        notifications = source.recorder.select_notifications(
            start=after,
            limit=limit,
            stop=after + window,
            topics=view.topics,
            inclusive_of_start=False,
        )
        if notifications:
            return [
                (source.mapper.to_domain_event(n), Tracking(source.name, n.id))
                for n in notifications
            ]
        after += window
    return []
