"""The read-model database: engine, table definitions for queries, tracking, migrations.

Each view writes its rows and its position in the log it follows in one transaction; a view that
sees a position it has already recorded refuses the whole batch, so nothing is applied twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
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


class StaleBatch(Exception):
    """Raised when a view is handed events at or before a position it has already recorded."""


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
