"""What officers and the scheduler ask of the documents read model: a case's documents with their
history, the documents waiting for a virus scan, which digests some event references, and a
barrier that waits for the casework view to reach the Registry log's head.

Answers are frozen dataclasses of plain values; no SQLAlchemy object leaves this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application
from sqlalchemy.engine import Engine

from projections.allocation import ReadModelUnavailable
from projections.casework import CURRENT, CaseworkView
from projections.views import case_documents, document_digests, position

CHUNK = 500  # digests per query (SQLite limits a statement's parameters)
BARRIER_SECONDS = 30.0
GRACE_HOURS = 24.0


def grace_period(environ: Mapping[str, str]) -> timedelta:
    """How long an unreferenced blob is kept before the collector deletes it
    (CAREPATH_DOCUMENT_GRACE_HOURS, default 24): longer than any upload takes to be recorded."""
    text = environ.get("CAREPATH_DOCUMENT_GRACE_HOURS", "")
    hours = float(text) if text.strip() else GRACE_HOURS
    if not hours >= 0:
        raise ValueError(f"CAREPATH_DOCUMENT_GRACE_HOURS must be 0 or more hours, not {text!r}")
    return timedelta(hours=hours)


class ViewBehind(ReadModelUnavailable):
    """Raised when the casework view has not reached the log's head in time (nothing that
    depends on it being complete, such as deleting blobs, may go ahead)."""


@dataclass(frozen=True)
class DocumentRow:
    """One document a case has had: current, or replaced or removed (officers see all three)."""

    document_id: str
    item: str
    digest: str
    size: int
    media_type: str
    scan: str  # a ScanState value
    state: str  # current, replaced or removed
    replaces: str | None
    uploaded_at: datetime
    ended_at: datetime | None  # when it was replaced or removed
    position: int

    @property
    def current(self) -> bool:
        return self.state == CURRENT


@dataclass(frozen=True)
class ScanCounts:
    """Current documents across every case by scan state (for the board)."""

    clean: int = 0
    not_scanned: int = 0
    pending: int = 0
    infected: int = 0


class DocumentQueries:
    """Reads of the casework view's documents tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def documents_of(self, case_id: UUID) -> list[DocumentRow]:
        """Every document the case has had, in upload order."""
        t = case_documents
        query = sa.select(t).where(t.c.case_id == case_id.hex).order_by(t.c.position)
        with self._connect() as connection:
            rows = connection.execute(query).all()
        return [
            DocumentRow(
                document_id=r.document_id,
                item=r.item,
                digest=r.digest,
                size=int(r.size),
                media_type=r.media_type,
                scan=r.scan,
                state=r.state,
                replaces=r.replaces,
                uploaded_at=r.uploaded_at,
                ended_at=r.ended_at,
                position=int(r.position),
            )
            for r in rows
        ]

    def referenced(self, digests: Iterable[str]) -> set[str]:
        """Those of `digests` that some event has named (the blob collector keeps these)."""
        wanted = sorted(set(digests))
        found: set[str] = set()
        with self._connect() as connection:
            for start in range(0, len(wanted), CHUNK):
                part = wanted[start : start + CHUNK]
                found.update(
                    connection.execute(
                        sa.select(document_digests.c.digest).where(
                            document_digests.c.digest.in_(part)
                        )
                    ).scalars()
                )
        return found

    def pending_scans(self, *, limit: int = 100) -> list[tuple[UUID, str]]:
        """Current documents still waiting for a virus scanner's verdict, oldest first."""
        t = case_documents
        query = (
            sa.select(t.c.case_id, t.c.document_id)
            .where(t.c.scan == "pending", t.c.state == CURRENT)
            .order_by(t.c.position)
            .limit(limit)
        )
        with self._connect() as connection:
            rows = connection.execute(query).all()
        return [(UUID(r.case_id), r.document_id) for r in rows]

    def scan_counts(self) -> ScanCounts:
        """Current documents by scan state (one grouped count over the scan index)."""
        t = case_documents
        n = sa.func.count().label("n")
        query = sa.select(t.c.scan, n).where(t.c.state == CURRENT).group_by(t.c.scan)
        with self._connect() as connection:
            counts = {str(r.scan): int(r.n) for r in connection.execute(query).all()}
        return ScanCounts(**{k: v for k, v in counts.items() if k in ScanCounts.__annotations__})

    def _connect(self) -> sa.engine.Connection:
        try:
            return self.engine.connect()
        except sa.exc.SQLAlchemyError as error:
            raise ReadModelUnavailable(str(error).splitlines()[0]) from error


class CaughtUp:
    """A barrier for the blob collector: returns once the casework view has applied every event
    it follows up to the Registry log's head as it was when the barrier was called, or raises
    ViewBehind after `timeout` seconds.

    The head is read inside the barrier, which the store calls under its exclusive collection
    lock: every event naming a blob already committed is at or before that head. The view
    records the position of the last event it follows, so "caught up" means no followed event
    lies between its position and the head (the head itself may be an event it ignores).
    """

    def __init__(
        self,
        engine: Engine,
        registry: Application[UUID],
        *,
        timeout: float = BARRIER_SECONDS,
        poll: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.timeout = timeout
        self.poll = poll
        self._sleep = sleep
        self._clock = clock

    def __call__(self) -> None:
        head = self.registry.recorder.max_notification_id() or 0
        deadline = self._clock() + self.timeout
        while True:
            reached = self._position()
            if reached >= head or not self._followed_between(reached, head):
                return
            if self._clock() >= deadline:
                raise ViewBehind(
                    f"{CaseworkView.name} is at {reached}, behind the Registry log's {head}, "
                    f"after {self.timeout:g} s: nothing is collected"
                )
            self._sleep(self.poll)

    def _position(self) -> int:
        try:
            with self.engine.connect() as connection:
                return position(connection, CaseworkView.name, self.registry.name)
        except sa.exc.SQLAlchemyError as error:
            raise ViewBehind(str(error).splitlines()[0]) from error

    def _followed_between(self, after: int, head: int) -> bool:
        """Whether the log holds an event the view follows after `after`, up to `head`."""
        return bool(
            self.registry.recorder.select_notifications(
                start=after,
                stop=head,
                limit=1,
                topics=CaseworkView.topics,
                inclusive_of_start=False,
            )
        )
