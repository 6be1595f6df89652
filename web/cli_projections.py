"""`carepath projections status|rebuild`: where each read model stands, and rebuilding them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from eventsourcing.persistence import PersistenceError

from projections import rebuild as rebuilding
from projections.allocation import ReadModelUnavailable
from projections.views import make_engine
from projections.worker import Worker
from web.cli import cli
from web.settings import Settings


# A plain click group: its commands need no Flask app (the web app's commands get one each).
@cli.group("projections", cls=click.Group)
def projections() -> None:
    """The read models: how far each has read its log; rebuilding them from the log."""


@contextmanager
def _sources() -> Iterator[tuple[Any, dict[str, Any]]]:
    """The read models' engine and the applications whose logs they follow (only read)."""
    try:
        settings = Settings.from_environ()
        worker = Worker(settings.environ, settings.secret)
        engine = make_engine(settings.environ)
    except (ValueError, OSError) as bad:
        raise click.ClickException(f"configuration: {bad}") from None
    apps: dict[str, Any] = {}
    try:
        apps["Registry"] = worker.registry()  # with CREATE_TABLE off: a serving process's view
        apps["Allocator"] = worker.allocator()
        yield engine, apps
    except (PersistenceError, ReadModelUnavailable) as down:
        raise click.ClickException(f"database: {_first_line(down)}") from None
    finally:
        for app in apps.values():
            app.close()
        engine.dispose()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@projections.command("status")
def status() -> None:
    """Each read model, the log it follows, its position, the log's head and the lag (the
    events it follows that it has not read yet)."""
    with _sources() as (engine, apps):
        rows = rebuilding.status(engine, apps)
    click.echo(f"{'view':<18} {'follows':<10} {'position':>12} {'head':>12} {'lag':>10}")
    for row in rows:
        click.echo(
            f"{row.name:<18} {row.source:<10} {row.position:>12} {row.head:>12} {row.lag:>10}"
        )


@projections.command("rebuild")
@click.argument("name", required=False)
def rebuild(name: str | None) -> None:
    """Rebuild one read model (or all) from its log and swap it in; safe while the worker runs."""
    if name is not None and name not in rebuilding.VIEWS:
        raise click.ClickException(str(rebuilding.UnknownView(name)))
    names = [name] if name else list(rebuilding.VIEWS)
    with _sources() as (engine, apps):
        for each in names:
            source = apps[rebuilding.VIEWS[each].source]
            head = source.recorder.max_notification_id() or 0
            with click.progressbar(
                length=max(head, 1),
                label=f"rebuilding {each} from {source.name}",
                file=sys.stderr,
            ) as bar:
                done = rebuilding.rebuild(engine, source, each, progress=_Progress(bar, head))
            click.echo(done.summary())


class _Progress:
    """Moves a progress bar over the log's positions (the bar's length is the log's head)."""

    def __init__(self, bar: Any, head: int) -> None:
        self.bar, self.head, self.reached = bar, head, 0

    def __call__(self, position: int) -> None:
        step = min(position, self.head) - self.reached
        if step > 0:
            self.bar.update(step)
            self.reached += step
