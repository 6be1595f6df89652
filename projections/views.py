"""The read-model database: engine, table definitions for queries, tracking, migrations.

Each view writes its rows and its position in the log it follows in one transaction; a view that
sees a position it has already recorded refuses the whole batch, so nothing is applied twice. The
tables are defined here once, for the queries and for the rebuild's scratch copies; Alembic
(projections/migrations) creates them. Read models carry references, ids, statuses and dates,
never an applicant's name, passport, contact details or answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Tracking
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from projections.persistence import views_url

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Times in and out as aware UTC datetimes, whatever the database keeps.

    SQLite has no time zones: values are stored there as naive UTC, and read back as UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


view_tracking = sa.Table(
    "view_tracking",
    metadata,
    sa.Column("view_name", sa.String(64), primary_key=True),
    sa.Column("application_name", sa.String(64), primary_key=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False),
)

ledgers = sa.Table(
    "ledgers",
    metadata,
    sa.Column("ledger_id", sa.String(32), primary_key=True),
    sa.Column("intake_id", sa.String(32), nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("drawn_at", UTCDateTime()),
    sa.Column("draw", sa.JSON),
    sa.Column("pools", sa.JSON),  # reserved pools: name -> places (the general pool has the rest)
)

allocation_status = sa.Table(
    "allocation_status",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("intake_id", sa.String(32), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("pool", sa.String(40)),
    sa.Column("slot", sa.Integer),
    sa.Column("rank", sa.Integer),
    sa.Column("deadline", UTCDateTime()),
    sa.Column("reason", sa.String(200)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Everyone who left a waitlist (invited from it, or withdrawn or expired while waiting), with the
# rank they held: a waiting applicant's position is their rank less the departures ahead of them,
# a count over the few who left rather than over the many still waiting.
waitlist_departures = sa.Table(
    "waitlist_departures",
    metadata,
    sa.Column("intake_id", sa.String(32), primary_key=True),
    sa.Column("pool", sa.String(40), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.String(32), nullable=False),
)


# The allocation view's counters and history (migration 0003).

# How many cases are in each allocation state now, per pool (granted: an offer outstanding). Kept
# incrementally: a case moving from one state to another is -1 on the old, +1 on the new.
allocation_counts = sa.Table(
    "allocation_counts",
    metadata,
    sa.Column("intake_id", sa.String(32), primary_key=True),
    sa.Column("pool", sa.String(40), primary_key=True),  # "": not known to the ledger
    sa.Column("state", sa.String(32), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)

# Net change of places held (granted or accepted) in each minute (UTC, truncated).
allocation_minutes = sa.Table(
    "allocation_minutes",
    metadata,
    sa.Column("intake_id", sa.String(32), primary_key=True),
    sa.Column("minute", UTCDateTime(), primary_key=True),
    sa.Column("granted", sa.Integer, nullable=False),
)

allocation_timeline = sa.Table(
    "allocation_timeline",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),  # the Allocator log's notification id
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("what", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)

# The casework view (the Registry's log): one row per case, counters, minutes, each case's history.

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("reference", sa.String(20), nullable=False),
    sa.Column("intake_id", sa.String(32), nullable=False),
    sa.Column("pool", sa.String(40), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("assigned_to", sa.String(32)),
    sa.Column("open_request", sa.Boolean, nullable=False),
    sa.Column("registered_at", UTCDateTime(), nullable=False),
    sa.Column("submitted_at", UTCDateTime()),
    sa.Column("decided_at", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The queue's time order: when submitted, or registered for a case never submitted. Never
    # null, so keyset paging compares plain tuples.
    sa.Column("queued_at", UTCDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
# Every sort key of the queue with the filters that come with it as equality prefixes, so any
# page is an index range scan from its cursor: page 900 costs what page 1 costs.
CASES_INDEXES = (
    ("cases_queued", ("queued_at", "case_id")),
    ("cases_updated", ("updated_at", "case_id")),
    ("cases_reference", ("reference", "case_id")),
    ("cases_status_queued", ("status", "queued_at", "case_id")),
    ("cases_intake_queued", ("intake_id", "queued_at", "case_id")),
    ("cases_intake_status_queued", ("intake_id", "status", "queued_at", "case_id")),
    ("cases_intake_status_updated", ("intake_id", "status", "updated_at", "case_id")),
    ("cases_intake_status_reference", ("intake_id", "status", "reference", "case_id")),
    ("cases_assigned_queued", ("assigned_to", "queued_at", "case_id")),
)
for _name, _columns in CASES_INDEXES:
    sa.Index(_name, *(cases.c[c] for c in _columns))

# Cases per intake and pool that ever reached each step: registered, submitted, withdrawn,
# application_submitted, accepted, returned, approved, refused.
case_counts = sa.Table(
    "case_counts",
    metadata,
    sa.Column("intake_id", sa.String(32), primary_key=True),
    sa.Column("pool", sa.String(40), primary_key=True),
    sa.Column("metric", sa.String(32), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)

case_minutes = sa.Table(
    "case_minutes",
    metadata,
    sa.Column("intake_id", sa.String(32), primary_key=True),
    sa.Column("minute", UTCDateTime(), primary_key=True),
    sa.Column("registered", sa.Integer, nullable=False),
    sa.Column("submitted", sa.Integer, nullable=False),
)

case_timeline = sa.Table(
    "case_timeline",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),  # the Registry log's notification id
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("what", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)

# The casework view's documents (migration 0004): every document a case ever had, and every digest
# any event named. The file's original name is kept for officers' lists (sanitised, display only).

case_documents = sa.Table(
    "case_documents",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("document_id", sa.String(16), primary_key=True),
    sa.Column("item", sa.String(40), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("scan", sa.String(16), nullable=False),  # a ScanState value
    sa.Column("state", sa.String(16), nullable=False),  # current, replaced or removed
    sa.Column("replaces", sa.String(16)),  # the document this one replaced
    sa.Column("uploaded_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),  # when it was replaced or removed
    sa.Column("position", sa.BigInteger, nullable=False),  # the DocumentAdded's notification id
)
# The rescan job's question: current documents still waiting for the virus scanner.
sa.Index("case_documents_scan", case_documents.c.scan, case_documents.c.state)

# Every digest any event has referenced, kept for ever: the blob collector deletes a blob only if
# its digest is not here (and the view has caught up with the log).
document_digests = sa.Table(
    "document_digests",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("first_position", sa.BigInteger, nullable=False),  # the first event naming it
)


# The Merkle tree of each log (migration 0005, projections/tree.py): one row per leaf in
# notification order, the tree's compact state, and the checkpoints it asked for but has not yet
# seen signed. Leaf and node hashes per RFC 9162; records per domain/evidence.py. Their own
# metadata: `projections rebuild` does not rebuild them, `audit verify` checks them instead (and
# the checkpoints asked for depend on what was signed, not only on the log).
evidence_metadata = sa.MetaData()

audit_leaves = sa.Table(
    "audit_leaves",
    evidence_metadata,
    sa.Column("log", sa.String(32), primary_key=True),
    sa.Column("leaf_index", sa.BigInteger, primary_key=True),  # 0, 1, 2 ... in notification order
    sa.Column("notification_id", sa.BigInteger, nullable=False),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
)

audit_trees = sa.Table(
    "audit_trees",
    evidence_metadata,
    sa.Column("log", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("notification_id", sa.BigInteger, nullable=False),  # of the last leaf
    sa.Column("frontier", sa.LargeBinary, nullable=False),  # subtree roots, 32 bytes each
)

audit_due = sa.Table(
    "audit_due",
    evidence_metadata,
    sa.Column("log", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, primary_key=True),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("reasons", sa.String(200), nullable=False),  # comma-separated
)


def upsert(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    add: Sequence[str] = (),
) -> None:
    """Insert the rows (each key once), or update those already there: the columns in `add` are
    added to, the others replaced."""
    if not rows:
        return
    insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
    statement = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    replaced = {
        name: (table.c[name] + statement.excluded[name])
        if name in add
        else statement.excluded[name]
        for name in rows[0]
        if name not in keys
    }
    connection.execute(
        statement.on_conflict_do_update(index_elements=keys, set_=replaced), list(rows)
    )


def select_in(
    connection: Connection, table: sa.Table, column: str, values: Sequence[str], *, chunk: int = 500
) -> list[dict[str, Any]]:
    """Every row whose `column` is one of `values`, as dicts (in chunks, for SQLite's limits)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        result = connection.execute(sa.select(table).where(table.c[column].in_(part)))
        found.extend(dict(row._mapping) for row in result)
    return found


def minute_of(at: datetime) -> datetime:
    """The UTC minute an instant falls in."""
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def scratch_copy(table: sa.Table, metadata_: sa.MetaData, suffix: str) -> sa.Table:
    """The same columns and primary key under another name, without the secondary indexes
    (a rebuild fills it by key and copies it whole, so they would only slow it down)."""
    return sa.Table(f"{table.name}{suffix}", metadata_, *(c._copy() for c in table.columns))


class StaleBatch(Exception):
    """Raised when a view is handed events at or before a position it has already recorded, or
    finds its recorded position moved since it last looked (rebuilt underneath it)."""


def make_engine(environ: Mapping[str, str], *, pool_size: int = 2, pre_ping: bool = True) -> Engine:
    """The read models' engine. Without `pre_ping` a checkout costs no extra round trip; after a
    database restart the first query on each stale connection then fails (and the pool is
    renewed), which a page that shows a read model as unavailable can afford."""
    url = views_url(environ)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15})

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=pre_ping)


def migrate(environ: Mapping[str, str]) -> str:
    """Bring the read-model tables to the latest migration; returns the revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "projections" / "migrations"))
    url = views_url(environ)
    config.attributes["url"] = url
    command.upgrade(config, "head")
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        revision = MigrationContext.configure(
            connection, opts={"version_table": "carepath_view_migrations"}
        ).get_current_revision()
    engine.dispose()
    return revision or "none"


def position(connection: Connection, view_name: str, application_name: str) -> int:
    found = connection.execute(
        sa.select(view_tracking.c.notification_id).where(
            view_tracking.c.view_name == view_name,
            view_tracking.c.application_name == application_name,
        )
    ).scalar()
    return int(found or 0)


def lock_position(connection: Connection, view_name: str, application_name: str) -> int:
    """The view's position, its tracking row locked until the transaction ends (PostgreSQL; a
    SQLite writer holds the whole database anyway, see `writing`)."""
    query = sa.select(view_tracking.c.notification_id).where(
        view_tracking.c.view_name == view_name,
        view_tracking.c.application_name == application_name,
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(connection.execute(query).scalar() or 0)


def set_position(
    connection: Connection, view_name: str, application_name: str, notification_id: int
) -> None:
    """Put the view's position anywhere (a rebuild's swap); 0 removes it."""
    where = (
        view_tracking.c.view_name == view_name,
        view_tracking.c.application_name == application_name,
    )
    connection.execute(view_tracking.delete().where(*where))
    if notification_id:
        connection.execute(
            view_tracking.insert().values(
                view_name=view_name,
                application_name=application_name,
                notification_id=notification_id,
            )
        )


def positions(connection: Connection) -> dict[str, dict[str, int]]:
    """Every view's positions: view name -> application name -> notification id."""
    found: dict[str, dict[str, int]] = {}
    for row in connection.execute(sa.select(view_tracking)):
        found.setdefault(row.view_name, {})[row.application_name] = int(row.notification_id)
    return found


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction. On SQLite it starts with BEGIN IMMEDIATE, so the writer holds the
    database from its first read (its check of the position) to its commit: a deferred
    transaction that read first could not write after another writer committed."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def record_position(
    connection: Connection, view_name: str, application_name: str, notification_id: int
) -> None:
    """Move the view's position forward inside the caller's transaction, or refuse the batch."""
    current = position(connection, view_name, application_name)
    if notification_id <= current:
        raise StaleBatch(f"{view_name} is at {current}, was handed {notification_id}")
    if current:
        moved = connection.execute(
            view_tracking.update()
            .where(
                view_tracking.c.view_name == view_name,
                view_tracking.c.application_name == application_name,
                view_tracking.c.notification_id == current,
            )
            .values(notification_id=notification_id)
        )
        if moved.rowcount != 1:
            raise StaleBatch(f"{view_name} was moved by another writer")
    else:
        connection.execute(
            view_tracking.insert().values(
                view_name=view_name,
                application_name=application_name,
                notification_id=notification_id,
            )
        )


def wait_for(
    engine: Engine,
    view_name: str,
    application_name: str,
    notification_id: int,
    *,
    timeout: float,
    interrupt: threading.Event | None = None,
) -> bool:
    """Poll until the view has reached the position; False on timeout (tight 20 ms polls)."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            if position(connection, view_name, application_name) >= notification_id:
                return True
        if time.monotonic() >= deadline or (interrupt is not None and interrupt.is_set()):
            return False
        time.sleep(0.02)


class FollowingView:
    """A read model following one log: each batch's rows and its position in one transaction.

    The view remembers the position it last read or recorded; a batch that finds another one
    stored (the view was rebuilt underneath it) is refused with StaleBatch, and the supervisor
    starts the follower again from the stored position.
    """

    name = ""
    topics: tuple[str, ...] = ()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._expected: dict[str, int] = {}

    def position(self, source_name: str) -> int:
        with self.engine.connect() as connection:
            found = position(connection, self.name, source_name)
        self._expected[source_name] = found
        return found

    def process_batch(self, items: Sequence[tuple[Any, Tracking]]) -> int:
        if not items:
            return 0
        last = items[-1][1]
        source = last.application_name
        with writing(self.engine) as connection:
            stored = lock_position(connection, self.name, source)
            expected = self._expected.get(source)
            if expected is not None and stored != expected:
                raise StaleBatch(f"{self.name} expected {expected}, found {stored}: rebuilt?")
            self.apply_batch(connection, items)
            record_position(connection, self.name, source, last.notification_id)
        self._expected[source] = last.notification_id
        return len(items)

    def apply_batch(self, connection: Connection, items: Sequence[tuple[Any, Tracking]]) -> None:
        """Write the rows of these events (their position is recorded by the caller)."""
        raise NotImplementedError
