"""`carepath documents collect`: delete stored blobs that no event references, after a grace period.

The scheduler runs the same collection every hour; this command runs it now, for an operator.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import click
from eventsourcing.persistence import PersistenceError

from domain.blobs import FilesystemBlobStore
from projections.allocation import ReadModelUnavailable
from projections.documents import CaughtUp, DocumentQueries, ViewBehind, grace_period
from projections.views import make_engine
from projections.worker import Worker
from web.cli import cli
from web.settings import Settings


# A plain click group: its commands need no Flask app (the web app's commands get one each).
@cli.group("documents", cls=click.Group)
def documents() -> None:
    """Stored documents: collecting the blobs no event references."""


@documents.command("collect")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=None,
    help="Keep unreferenced blobs younger than this (default CAREPATH_DOCUMENT_GRACE_HOURS, 24).",
)
def collect(grace_hours: float | None) -> None:
    """Delete blobs older than the grace period that no event references; wait (at most 30 s)
    for the casework view to reach the Registry log's head first, else delete nothing."""
    try:
        settings = Settings.from_environ()
        grace = (
            grace_period(settings.environ) if grace_hours is None else timedelta(hours=grace_hours)
        )
        store = FilesystemBlobStore(settings.documents_dir)
        registry = Worker(settings.environ, settings.secret).registry()
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    except PersistenceError as down:
        raise click.ClickException(f"database: {down}") from None
    engine = make_engine(settings.environ)
    queries = DocumentQueries(engine)
    older_than = datetime.now(UTC) - grace
    barrier = CaughtUp(engine, registry)

    def wait() -> None:
        _progress("waiting for the casework view to reach the Registry log's head")
        barrier()

    def referenced(digests: Iterable[str]) -> set[str]:
        wanted = list(digests)
        _progress(f"checking {len(wanted)} blobs older than {older_than:%Y-%m-%d %H:%M} UTC")
        return queries.referenced(wanted)

    _progress(f"collecting in {settings.documents_dir} (grace {_hours(grace)})")
    try:
        done = store.collect(older_than, referenced, wait)
    except ViewBehind as behind:
        raise click.ClickException(str(behind)) from None
    except (ReadModelUnavailable, PersistenceError) as down:
        raise click.ClickException(f"database: {_first_line(down)}") from None
    finally:
        registry.close()
        engine.dispose()
    click.echo(
        f"collected: {done.examined} examined, {done.kept} kept, {done.deleted} deleted, "
        f"{done.bytes_freed} bytes freed"
    )


def _progress(line: str) -> None:
    click.echo(line, file=sys.stderr)


def _hours(grace: timedelta) -> str:
    return f"{grace.total_seconds() / 3600:g} h"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
